"""Pitch from the mel alone (seqgen.core.pitch): the F0 of known harmonic tones, periodicity against noise,
and features that depend on each frame alone."""
import numpy as np
import pytest

from seqgen.core.pitch import CHANNELS, PitchFeatures, contrast_matrix
from seqgen.data.audio import FeatureParams, log_mel

pytestmark = pytest.mark.multibackend

PARAMS = FeatureParams.for_rate(22050)


def _tone(f0, seconds=0.6, sr=22050, harmonics=12, seed=0):
    """A voiced-like tone: harmonics of f0 falling off at 6 dB per octave, a little noise."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * h * f0 * t + h) / h for h in range(1, harmonics + 1) if h * f0 < sr / 2)
    x = 0.3 * x / np.abs(x).max() + 0.003 * np.random.default_rng(seed).normal(size=len(t))
    return x.astype(np.float32)


def _features(audio):
    pf = PitchFeatures(PARAMS, np.zeros(PARAMS.n_mels), np.ones(PARAMS.n_mels))   # identity normalization
    feats = np.asarray(pf(log_mel(audio, PARAMS)))
    assert feats.shape[-1] == CHANNELS and np.all(np.isfinite(feats))
    return pf, feats


@pytest.mark.parametrize("f0", [110.0, 165.0, 240.0])
def test_the_f0_of_a_harmonic_tone_is_found_from_its_mel(f0):
    pf, feats = _features(_tone(f0))
    inner = feats[4:-4]                                   # frames away from the edges
    cents = 1200 * np.log2(pf.f0_hz(inner) / f0)
    assert np.median(np.abs(cents)) < 35, cents
    assert np.mean(np.abs(cents) < 100) > 0.8


def test_periodicity_is_higher_for_a_tone_than_for_noise():
    _, tone = _features(_tone(150.0))
    noise = (0.1 * np.random.default_rng(3).normal(size=int(0.6 * 22050))).astype(np.float32)
    _, hiss = _features(noise)
    assert np.median(tone[4:-4, 1]) > np.median(hiss[4:-4, 1]) + 0.1


def test_each_frames_features_depend_on_that_frame_alone():
    """Chunks of the mel, batched or not, give the features of the whole mel (synthesis computes them once
    for the whole mel; training, on windows)."""
    pf = PitchFeatures(PARAMS, np.full(PARAMS.n_mels, -3.0), np.full(PARAMS.n_mels, 2.0))
    mel = np.random.default_rng(0).normal(size=(2, 30, PARAMS.n_mels)).astype(np.float32)
    whole = np.asarray(pf(mel))
    part = np.asarray(pf(mel[:, 7:19]))
    np.testing.assert_allclose(part, whole[:, 7:19], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(pf(mel[1])), whole[1], rtol=1e-5, atol=1e-6)


def test_the_contrast_map_sums_to_zero_per_candidate():
    """Each candidate's harmonic weights and half-way weights are equal and opposite: a flat spectrum has
    no contrast at any F0."""
    m = contrast_matrix(22050, 1024)
    np.testing.assert_allclose(m.sum(axis=0), 0.0, atol=1e-12)
    assert np.all(m.max(axis=0) > 0) and np.all(m.min(axis=0) < 0)
