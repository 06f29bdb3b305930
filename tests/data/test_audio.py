"""Tests for seqgen.data.audio: mu-law, log-mel features, audio I/O and normalization stats."""
import json

import librosa
import numpy as np
import pytest
import soundfile as sf

from seqgen.data import audio as A
from seqgen.errors import AudioError, DataError

DOCUMENTED = {
    # rate: (n_fft, hop, win, fmax) from the table in the module docstring
    8000: (512, 80, 400, 4000.0),
    16000: (1024, 200, 800, 8000.0),
    22050: (1024, 256, 1024, 8000.0),
    24000: (2048, 300, 1200, 12000.0),
    44100: (2048, 512, 2048, 11025.0),
    48000: (2048, 600, 2048, 12000.0),
}


def _sine(freq, sr, n, amp=0.5, phase=0.0):
    t = np.arange(n) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def _peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


# --------------------------------------------------------------------------- mu-law


@pytest.mark.parametrize("bits", [8, 10])
def test_mu_law_matches_librosa_shifted(bits):
    rng = np.random.default_rng(bits)
    x = np.concatenate([rng.uniform(-1, 1, 20000), rng.normal(0, 0.01, 5000).clip(-1, 1),
                        [-1.0, 0.0, 1.0, -1e-9, 1e-9]]).astype(np.float32)
    mu = 2 ** bits - 1
    q = A.mu_law_encode(x, bits)
    expected = librosa.mu_compress(x.astype(np.float64), mu=mu, quantize=True) + 2 ** (bits - 1)
    np.testing.assert_array_equal(q, expected)
    assert q.min() >= 0 and q.max() < 2 ** bits
    assert q.min() == 0 and q.max() == 2 ** bits - 1  # the extremes reach the end classes

    classes = np.arange(2 ** bits)
    dec = A.mu_law_decode(classes, bits)
    assert dec.dtype == np.float32
    ref = librosa.mu_expand(classes - 2 ** (bits - 1), mu=mu, quantize=True)
    np.testing.assert_allclose(dec, ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bits", [8, 10])
def test_mu_law_round_trip_within_one_step(bits):
    mu = 2 ** bits - 1
    x = np.linspace(-1, 1, 50001).astype(np.float32)
    y = A.mu_law_decode(A.mu_law_encode(x, bits), bits).astype(np.float64)
    # The quantization grid is uniform in the compressed domain: step 2 / 2**bits.
    comp = lambda v: np.sign(v) * np.log1p(mu * np.abs(v)) / np.log1p(mu)  # noqa: E731
    err = np.abs(comp(x.astype(np.float64)) - comp(y))
    assert err.max() <= 2.0 / 2 ** bits + 1e-6
    # ... and the decoded level lies between the neighbouring levels of x's class.
    q = A.mu_law_encode(x, bits)
    levels = A.mu_law_decode(np.arange(2 ** bits), bits).astype(np.float64)
    lo = levels[np.maximum(q - 1, 0)]
    assert np.all(x >= lo - 1e-7)
    inner = q < 2 ** bits - 1
    assert np.all(x[inner] <= levels[q[inner] + 1] + 1e-7)
    # Near zero the companding is fine-grained.
    small = np.abs(x) < 0.01
    assert np.abs(x[small] - y[small]).max() < (2e-3 if bits == 8 else 5e-4)


@pytest.mark.parametrize("bits", [8, 10])
def test_mu_law_encode_decode_identity_on_classes(bits):
    classes = np.arange(2 ** bits)
    np.testing.assert_array_equal(A.mu_law_encode(A.mu_law_decode(classes, bits), bits), classes)


def test_mu_law_decode_monotonic_and_symmetric_range():
    dec = A.mu_law_decode(np.arange(256))
    assert np.all(np.diff(dec) > 0)
    assert dec[0] == pytest.approx(-1.0)
    assert dec[128] == pytest.approx(0.0, abs=1e-7)
    assert 0.9 < dec[255] <= 1.0


def test_mu_law_clips_out_of_range():
    x = np.array([-5.0, -1.0001, -1.0, 1.0, 1.5, 100.0])
    q = A.mu_law_encode(x)
    np.testing.assert_array_equal(q, [0, 0, 0, 255, 255, 255])
    q10 = A.mu_law_encode(x, 10)
    np.testing.assert_array_equal(q10, [0, 0, 0, 1023, 1023, 1023])


# --------------------------------------------------------------------------- features


@pytest.mark.parametrize("rate", sorted(DOCUMENTED))
def test_feature_params_documented_table(rate):
    p = A.FeatureParams.for_rate(rate)
    n_fft, hop, win, fmax = DOCUMENTED[rate]
    assert (p.n_fft, p.hop_length, p.win_length, p.fmax, p.fmin, p.n_mels) == (n_fft, hop, win, fmax, 0.0, 80)
    assert A.FeatureParams.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("rate", [11025, 32000, 96000])
def test_feature_params_other_rates(rate):
    p = A.FeatureParams.for_rate(rate)
    assert p.hop_length % 4 == 0
    assert abs(p.hop_length / rate - 1 / 86) < 4 / rate  # about 11.6 ms
    assert p.win_length == 4 * p.hop_length
    assert p.n_fft >= p.win_length and p.n_fft & (p.n_fft - 1) == 0 and p.n_fft < 2 * p.win_length
    assert p.fmax == min(8000.0, rate / 2)


def test_feature_params_errors():
    with pytest.raises(AudioError):
        A.FeatureParams.for_rate(0)
    with pytest.raises(DataError, match="bogus"):
        A.FeatureParams.from_dict({**A.FeatureParams.for_rate(16000).to_dict(), "bogus": 1})


@pytest.mark.parametrize("rate", sorted(DOCUMENTED) + [11025])
def test_log_mel_frame_count_and_shape(rate):
    p = A.FeatureParams.for_rate(rate)
    hop = p.hop_length
    rng = np.random.default_rng(rate)
    for n in (0, hop - 1, hop, hop + 1, 3 * hop + 7, 10 * hop - 1, 2 * p.n_fft + 13, rate // 3 + 1):
        x = (0.1 * rng.standard_normal(n)).astype(np.float32)
        mel = A.log_mel(x, p)
        assert mel.shape == (n // hop, 80), (rate, n)
        assert mel.dtype == np.float32
        assert np.all(np.isfinite(mel))
        assert A.num_frames(n, p) == n // hop
        if mel.size:
            assert mel.min() >= np.log(1e-5) - 1e-4


def test_log_mel_silence_is_floor_and_trims_tail():
    p = A.FeatureParams.for_rate(22050)
    mel = A.log_mel(np.zeros(5 * 256 + 100, np.float32), p)
    np.testing.assert_allclose(mel, np.log(1e-5), rtol=1e-6)
    # Samples past frames * hop do not influence the features.
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(20 * 256)).astype(np.float32)
    tail = np.concatenate([x, rng.standard_normal(255).astype(np.float32)])
    np.testing.assert_array_equal(A.log_mel(x, p), A.log_mel(tail, p))


@pytest.mark.parametrize("rate,freq", [(22050, 1000.0), (16000, 440.0), (8000, 2500.0), (44100, 5000.0)])
def test_sine_energy_in_right_mel_band(rate, freq):
    p = A.FeatureParams.for_rate(rate)
    mel = A.log_mel(_sine(freq, rate, rate), p)
    centres = librosa.mel_frequencies(p.n_mels + 2, fmin=p.fmin, fmax=p.fmax)[1:-1]
    expected = int(np.argmin(np.abs(centres - freq)))
    profile = mel[2:-2].mean(axis=0)
    band = int(np.argmax(profile))
    assert abs(band - expected) <= 1, (band, expected, centres[band])
    far = np.abs(np.arange(p.n_mels) - band) > 10
    assert profile[band] - profile[far].max() > 4.0  # > 4 nats above any distant band


def test_frame_alignment_of_a_burst():
    # A burst inside samples [k*hop, (k+1)*hop) is loudest in frame k, whether it sits
    # in the first or the second half of that hop (frame k is centred on its middle).
    p = A.FeatureParams.for_rate(22050)
    hop = p.hop_length
    half = hop // 2
    for k in (3, 10, 17):
        for lo in (k * hop, k * hop + half):
            x = np.zeros(30 * hop, np.float32)
            x[lo: lo + half] = _sine(3000, 22050, half, amp=0.9)
            energy = A.log_mel(x, p).max(axis=1)
            assert int(np.argmax(energy)) == k, (k, lo - k * hop)


# --------------------------------------------------------------------------- load / save


def test_load_8k_pcm16_wav(tmp_path):
    x = _sine(440, 8000, 8001, amp=0.7)
    sf.write(tmp_path / "a.wav", x, 8000, subtype="PCM_16")
    y = A.load(tmp_path / "a.wav")
    assert y.dtype == np.float32 and y.ndim == 1 and len(y) == 8001
    np.testing.assert_allclose(y, x, atol=1.0 / 32768 + 1e-7)
    assert A.info(tmp_path / "a.wav") == (8000, 1, 8001)
    # Asking for the native rate does not resample.
    np.testing.assert_array_equal(A.load(tmp_path / "a.wav", 8000), y)


def test_load_stereo_24bit_flac_downmix_and_resample(tmp_path):
    n = 44100
    left = _sine(1000, 44100, n, amp=0.6)
    right = _sine(1000, 44100, n, amp=0.2, phase=0.3) + _sine(15000, 44100, n, amp=0.2)
    path = tmp_path / "st.flac"
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="PCM_24")
    assert A.info(path) == (44100, 2, n)

    mono = A.load(path)
    assert mono.shape == (n,)
    np.testing.assert_allclose(mono, (left + right) / 2, atol=2.0 ** -22)

    y = A.load(path, 22050)
    assert y.dtype == np.float32 and len(y) == 22050
    assert abs(_peak_hz(y, 22050) - 1000) <= 2
    # The 15 kHz part is above the new Nyquist: it must be filtered, not aliased to 7050 Hz.
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / 22050)
    alias = spec[np.abs(freqs - 7050) < 20].max()
    assert alias < 1e-3 * spec.max()
    # The level of the 1 kHz component is preserved by the resampler.
    one_k = ((left + _sine(1000, 44100, n, amp=0.2, phase=0.3)) / 2)[4000:-4000]
    rms = lambda v: float(np.sqrt(np.mean(np.square(v, dtype=np.float64))))  # noqa: E731
    assert rms(y[2000:-2000]) == pytest.approx(rms(one_k), rel=0.01)


def test_load_ogg_vorbis(tmp_path):
    x = _sine(660, 22050, 22050, amp=0.5)
    path = tmp_path / "a.ogg"
    sf.write(path, x, 22050, format="OGG", subtype="VORBIS")
    y = A.load(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - len(x)) <= 1024
    assert abs(_peak_hz(y, 22050) - 660) <= 2
    m = min(len(x), len(y))
    corr = np.corrcoef(x[1000:m - 1000], y[1000:m - 1000])[0, 1]
    assert corr > 0.95


def test_load_float_wav_exact(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 1234).astype(np.float32)
    sf.write(tmp_path / "f.wav", x, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(A.load(tmp_path / "f.wav"), x)


def _assert_audio_error(path, reason_part):
    with pytest.raises(AudioError) as exc:
        A.load(path)
    err = exc.value
    assert reason_part in err.reason
    assert str(path) in str(err)
    assert reason_part in str(err)
    assert "\n" not in str(err)
    return err


def test_load_errors(tmp_path):
    _assert_audio_error(tmp_path / "missing.wav", "not found")
    (tmp_path / "empty.wav").write_bytes(b"")
    _assert_audio_error(tmp_path / "empty.wav", "empty")
    (tmp_path / "text.wav").write_text("this is not audio, just some text\n" * 20)
    _assert_audio_error(tmp_path / "text.wav", "corrupt or not audio")
    (tmp_path / "rand.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    _assert_audio_error(tmp_path / "rand.wav", "corrupt or not audio")
    x = np.full(1000, 0.1, np.float32)
    x[500] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    _assert_audio_error(tmp_path / "nan.wav", "NaN")
    x[500] = np.inf
    sf.write(tmp_path / "inf.wav", x, 16000, subtype="FLOAT")
    _assert_audio_error(tmp_path / "inf.wav", "Inf")
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    _assert_audio_error(tmp_path / "zero.wav", "no audio samples")


def test_info_error(tmp_path):
    (tmp_path / "t.wav").write_text("hello")
    with pytest.raises(AudioError, match="not a readable audio file"):
        A.info(tmp_path / "t.wav")


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.uniform(-0.99, 0.99, 5000).astype(np.float32)
    p = A.save(tmp_path / "sub" / "a.wav", x, 16000)
    assert p.is_file() and sf.info(p).subtype == "PCM_16"
    np.testing.assert_allclose(A.load(p), x, atol=1.0 / 32768 + 1e-7)

    p = A.save(tmp_path / "f.wav", x, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(A.load(p), x)

    p = A.save(tmp_path / "a.flac", x, 16000, subtype="FLOAT")  # FLAC has no float: 24-bit
    assert sf.info(p).subtype == "PCM_24"
    np.testing.assert_allclose(A.load(p), x, atol=2.0 ** -22)

    # Out-of-range and NaN values are clipped / zeroed before writing.
    y = np.array([2.0, -3.0, np.nan, 0.5], np.float32)
    p = A.save(tmp_path / "c.wav", y, 8000, subtype="FLOAT")
    np.testing.assert_array_equal(A.load(p), [1.0, -1.0, 0.0, 0.5])
    assert A.info(p) == (8000, 1, 4)


# --------------------------------------------------------------------------- NormStats


def test_norm_stats_streaming_matches_numpy(tmp_path):
    rng = np.random.default_rng(3)
    chunks = [rng.normal(loc=rng.uniform(-8, 2, 16), scale=rng.uniform(0.2, 3, 16), size=(n, 16))
              for n in (5, 1, 300, 37, 0)]
    s = A.NormStats(16)
    for c in chunks:
        s.update(c)
    allf = np.concatenate(chunks)
    assert s.count == len(allf)
    np.testing.assert_allclose(s.mean, allf.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.std, allf.std(0), rtol=1e-4, atol=1e-5)
    norm = s.normalize(allf)
    assert norm.dtype == np.float32
    np.testing.assert_allclose(norm.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(norm.std(0), 1, atol=1e-3)

    a, b = A.NormStats(16), A.NormStats(16)
    for c in chunks[:2]:
        a.update(c)
    for c in chunks[2:]:
        b.update(c)
    a.merge(b)
    assert a.count == s.count
    np.testing.assert_allclose(a.mean, s.mean, rtol=1e-6)
    np.testing.assert_allclose(a.std, s.std, rtol=1e-6)

    s.save(tmp_path / "stats.json")
    d = json.loads((tmp_path / "stats.json").read_text())
    assert d["n_mels"] == 16 and d["num_frames"] == len(allf)
    np.testing.assert_allclose(d["mel_mean"], allf.mean(0), rtol=1e-5, atol=1e-5)
    t = A.NormStats.load(tmp_path / "stats.json")
    assert t.count == s.count and t.n_mels == 16
    np.testing.assert_array_equal(t.mean, s.mean)
    np.testing.assert_array_equal(t.std, s.std)
    # A loaded object keeps streaming correctly.
    extra = rng.normal(size=(50, 16))
    t.update(extra)
    both = np.concatenate([allf, extra])
    np.testing.assert_allclose(t.mean, both.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(t.std, both.std(0), rtol=1e-4, atol=1e-5)


def test_norm_stats_constant_band_and_load_errors(tmp_path):
    s = A.NormStats(3)
    s.update(np.tile([1.0, 2.0, 3.0], (10, 1)))
    assert np.all(s.std > 0) and np.all(np.isfinite(s.normalize(np.ones((2, 3)))))
    with pytest.raises(DataError, match="cannot read normalization statistics"):
        A.NormStats.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="bad.json"):
        A.NormStats.load(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text(json.dumps({"n_mels": 3}))
    with pytest.raises(DataError):
        A.NormStats.load(tmp_path / "partial.json")
