"""Speech-quality scores on known signals: a recording against itself, against noise, shifted."""
import numpy as np
import pytest

from seqgen.data import audio as A

from conftest import SHARED_DATA

pytest.importorskip("pesq", reason="the [quality] extra is not installed (pip install -e '.[quality]')")

from seqgen.quality import metrics as M  # noqa: E402


@pytest.fixture(scope="module")
def speech(espeak_vocoder_data):
    """A real LJ Speech recording when the shared data is here, else an espeak-ng utterance (embedded)."""
    lj = SHARED_DATA / "ljspeech_mini" / "wavs" / "LJ001-0001.wav"
    params = A.FeatureParams.for_rate(22050)
    if lj.is_file():
        wav = A.load(lj, 22050)
    else:
        from seqgen.data import pipeline as D

        wav = next(D.vocoder_utterances(espeak_vocoder_data, ("train",)))["audio"]
        params = A.FeatureParams.from_dict(D.VocoderData(espeak_vocoder_data).features.to_dict())
    wav = wav[: len(wav) // params.hop_length * params.hop_length]
    return M.Reference(wav, params.sample_rate, params)


def _noisy(x, snr_db, seed):
    n = np.random.default_rng(seed).standard_normal(len(x))
    n *= np.sqrt(np.mean(np.square(x)) / np.mean(np.square(n)) / 10 ** (snr_db / 10))
    return (x + n).astype(np.float32)


def test_a_recording_against_itself_is_perfect(speech):
    s, errors = speech.score(speech.audio)
    assert not errors
    assert s["pesq_wb"] == pytest.approx(4.64, abs=0.02)
    assert s["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert s["mcd_db"] == 0.0 and s["log_mel_l1"] == 0.0
    assert s["f0_rmse_cents"] == 0.0 and s["vuv_error"] == 0.0
    own = speech.own_scores()
    assert own["dnsmos_ovrl"] == pytest.approx(s["dnsmos_ovrl"])
    assert 1.0 <= own["dnsmos_ovrl"] <= 5.0 and 0.2 < own["voiced_fraction"] < 1.0


def test_white_noise_lowers_every_intrusive_score_monotonically(speech):
    rows = [speech.score(_noisy(speech.audio, snr, seed=snr))[0] for snr in (30, 10, 0)]
    for key in ("pesq_wb", "stoi"):
        got = [r[key] for r in rows]
        assert got[0] > got[1] > got[2], (key, got)
    assert rows[0]["pesq_wb"] < 4.0  # 30 dB of white noise is audible
    for key in ("mcd_db", "log_mel_l1"):
        got = [r[key] for r in rows]
        assert 0 < got[0] < got[1] < got[2], (key, got)
    assert rows[0]["dnsmos_bak"] > rows[2]["dnsmos_bak"]


def test_a_10ms_shift_leaves_pesq_nearly_unchanged(speech):
    shift = int(0.010 * speech.sample_rate)
    shifted = np.concatenate([np.zeros(shift, np.float32), speech.audio[:-shift]])
    s, _ = speech.score(shifted)
    assert s["pesq_wb"] > 4.5


def test_silence_is_a_row_of_nan_with_the_reason_not_a_crash(speech):
    s, errors = speech.score(np.zeros_like(speech.audio))
    assert np.isnan(s["pesq_wb"]) and "pesq_wb" in errors
    assert s["log_mel_l1"] > 1.0


def test_f0_errors_on_known_tracks():
    f_ref = np.array([100.0, 200.0, np.nan, 150.0])
    v_ref = np.array([True, True, False, True])
    f_deg = np.array([200.0, 200.0, 120.0, np.nan])  # an octave up on frame 0; frame 2 and 3 flip voicing
    v_deg = np.array([True, True, True, False])
    e = M.f0_errors((f_ref, v_ref), (f_deg, v_deg))
    assert e["f0_rmse_cents"] == pytest.approx(np.sqrt((1200.0 ** 2 + 0.0) / 2))
    assert e["vuv_error"] == pytest.approx(0.5)
