"""Griffin-Lim from seqgen's own features: aligned, seeded, and close to the recording."""
import numpy as np

from seqgen.data import audio as A
from seqgen.quality.griffin_lim import from_normalized, griffin_lim


def _voiced(sr=22050, seconds=0.8):
    t = np.arange(int(sr * seconds)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * 0.2 * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return x.astype(np.float32)


def test_griffin_lim_is_sample_aligned_seeded_and_close_in_log_mel():
    params = A.FeatureParams.for_rate(22050)
    x = _voiced()
    frames = len(x) // params.hop_length
    x = x[: frames * params.hop_length]
    mel = A.log_mel(x, params)
    y = griffin_lim(mel, params, n_iter=30, seed=1)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.array_equal(y, griffin_lim(mel, params, n_iter=30, seed=1))
    assert not np.array_equal(y, griffin_lim(mel, params, n_iter=30, seed=2))
    l1 = np.mean(np.abs(A.log_mel(y, params) - mel))
    assert l1 < 0.35, l1
    # aligned: the envelope of the inverse follows the recording's, not a shifted copy of it
    env = lambda s: np.convolve(np.abs(s), np.ones(512) / 512, "same")  # noqa: E731
    assert np.corrcoef(env(x), env(y))[0, 1] > 0.9


def test_from_normalized_undoes_the_run_statistics():
    params = A.FeatureParams.for_rate(16000)
    x = _voiced(16000, 0.5)
    mel = A.log_mel(x, params)
    mean, std = mel.mean(0), mel.std(0) + 0.1
    a = from_normalized((mel - mean) / std, mean, std, params, n_iter=5, seed=0)
    b = griffin_lim(mel, params, n_iter=5, seed=0)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert len(a) == len(mel) * params.hop_length
