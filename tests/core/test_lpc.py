"""Linear prediction: Levinson-Durbin against scipy's Toeplitz solver and a known AR process, the
excitation transform's exact round trip, and the predictor derived from the mel on real speech."""
import numpy as np
import pytest

from seqgen.core import lpc


def _autocorrelation(x, lags):
    x = np.asarray(x, np.float64)
    return np.array([np.dot(x[: len(x) - k], x[k:]) for k in range(lags + 1)]) / len(x)


def test_levinson_durbin_matches_solve_toeplitz():
    from scipy.linalg import solve_toeplitz

    rng = np.random.default_rng(0)
    for order in (1, 4, 20):
        frames = np.stack([_autocorrelation(np.convolve(rng.normal(size=4000), rng.normal(size=6)), order)
                           for _ in range(5)])
        a, err = lpc.levinson_durbin(frames, order)
        assert a.shape == (5, order) and err.shape == (5,)
        for f in range(5):
            want = solve_toeplitz(frames[f, :order], frames[f, 1:order + 1])
            np.testing.assert_allclose(a[f], want, rtol=1e-6, atol=1e-9)
            # err is the residual power r0 - a . r[1:]
            assert err[f] == pytest.approx(frames[f, 0] - a[f] @ frames[f, 1:order + 1], rel=1e-9)
    # silence: zeros, not NaN
    a, err = lpc.levinson_durbin(np.zeros((2, 5)), 4)
    assert np.all(a == 0) and np.all(err == 0)


def test_levinson_durbin_recovers_an_ar_process():
    from scipy.signal import lfilter

    true = np.array([1.3, -0.9, 0.35, -0.1])           # poles inside the unit circle
    assert np.all(np.abs(np.roots(np.r_[1.0, -true])) < 1)
    x = lfilter([1.0], np.r_[1.0, -true], np.random.default_rng(1).normal(size=200_000))
    a, err = lpc.levinson_durbin(_autocorrelation(x, 4), 4)
    np.testing.assert_allclose(a, true, atol=0.01)
    assert err == pytest.approx(1.0, rel=0.02)          # the driving noise's variance


def test_excitation_round_trips_exactly_on_integer_samples():
    rng = np.random.default_rng(2)
    hop, frames, order = 32, 12, lpc.ORDER
    t = np.arange(hop * frames)
    s = np.rint(12000 * np.sin(2 * np.pi * t / 37.0) + 800 * rng.normal(size=len(t))).astype(np.int16)
    a = lpc.from_waveform(s / 32768.0, _Params(hop=hop, n_fft=128), order)
    assert a.shape == (frames, order)
    e = lpc.excitation(s, a, hop)
    assert e.dtype == np.int64
    np.testing.assert_array_equal(lpc.reconstruct(e, a, hop), s)
    # the predictor takes most of this tone's energy away
    assert np.abs(e).mean() < 0.25 * np.abs(s.astype(np.int64)).mean()
    with pytest.raises(ValueError, match="integers"):
        lpc.excitation(s / 32768.0, a, hop)


class _Params:
    def __init__(self, hop=256, n_fft=1024, sample_rate=22050):
        self.hop_length, self.n_fft, self.win_length, self.sample_rate = hop, n_fft, n_fft, sample_rate
        self.n_mels, self.fmin, self.fmax = 80, 0.0, 8000.0


@pytest.mark.parametrize("pre_emphasis", [0.0, 0.86])
def test_predictor_from_the_mel_on_voiced_speech(shared_data, pre_emphasis):
    """On voiced frames of real held-out speech: the mel's predictor takes at least 6 dB off the signal's
    power, within 3 dB of the waveform's own predictor of the same order."""
    import librosa

    from seqgen.core import emphasis
    from seqgen.data import audio as A

    folder = shared_data / "ljspeech_mini" / "wavs"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    params = A.FeatureParams.for_rate(22050)
    gains_mel, gains_wav = [], []
    for path in sorted(folder.glob("*.wav"))[:3]:
        x = A.load(path, params.sample_rate)
        x = x[: len(x) // params.hop_length * params.hop_length]
        log_mel = A.log_mel(x, params)
        _, voiced, _ = librosa.pyin(x, fmin=60, fmax=400, sr=params.sample_rate, frame_length=params.n_fft,
                                    hop_length=params.hop_length, center=False)
        voiced = np.asarray(voiced[: len(log_mel)], bool)
        voiced = np.pad(voiced, (0, len(log_mel) - len(voiced)))
        assert voiced.sum() > 50
        y = emphasis.pre_emphasize(x, pre_emphasis).astype(np.float64)
        a_mel = lpc.from_mel(log_mel, params, pre_emphasis=pre_emphasis)
        a_wav = lpc.from_waveform(x, params, pre_emphasis=pre_emphasis)
        gains_mel.append(lpc.prediction_gain_db(y, a_mel, params.hop_length, voiced))
        gains_wav.append(lpc.prediction_gain_db(y, a_wav, params.hop_length, voiced))
    print("prediction gain (dB) from the mel", np.round(gains_mel, 2), "from the waveform", np.round(gains_wav, 2))
    assert min(gains_mel) >= 6.0
    assert max(np.subtract(gains_wav, gains_mel)) <= 3.0


def test_synthesis_filter_inverts_the_predictor_across_frame_changes():
    rng = np.random.default_rng(3)
    hop, frames = 64, 7
    # stable per-frame predictors: bandwidth-expanded LPC of random AR(2)-ish spectra
    a = np.stack([np.array([1.2 * np.cos(0.3 * f + 0.5), -0.7]) for f in range(frames)])
    x = rng.standard_normal(hop * frames + 10)   # 10 samples past the last frame keep its predictor
    for start in (0, 37):
        y = lpc.synthesis_filter(x, a, hop, start=start)
        # the predictor of the filter's output gives back its input: y - p(y) = x
        np.testing.assert_allclose(y - lpc.predict(y, a, hop, start=start), x, atol=1e-9)
    # and it is the sample-by-sample recursion
    y = lpc.synthesis_filter(x, a, hop)
    ref = np.zeros_like(x)
    for t in range(len(x)):
        f = min(t // hop, frames - 1)
        ref[t] = x[t] + sum(a[f, k - 1] * ref[t - k] for k in (1, 2) if t >= k)
    np.testing.assert_allclose(y, ref, atol=1e-9)
