"""Pitch from the mel alone: each frame's F0 and a periodicity score, as extra conditioning for a vocoder.

A mel-conditioned WaveNet trained for minutes on a CPU does not find the pitch in its mel: the voicing of
its resyntheses is wrong on a third to two thirds of the frames (``recipes/ljspeech_vocoder/README.md``).
:class:`PitchFeatures` hands it the pitch explicitly, computed from the same normalized mel frames it is
conditioned on, so synthesis still needs nothing but the mel (no F0 from the recording, nothing more from a
TTS front end):

1. de-normalize and ``exp``: the magnitude mel (power 1) of :func:`seqgen.data.audio.log_mel`; a
   non-negative inverse of the mel basis (:data:`NNLS_ITERATIONS` multiplicative updates from the same
   start as :func:`seqgen.core.lpc.inverse_mel`) gives each frame's magnitude spectrum;
2. the band below :data:`BAND_HZ`, where the mel bands are narrow enough to resolve the first harmonics,
   compressed (square root) and scaled to its frame's peak;
3. for each of :data:`CANDIDATES` F0 candidates (geometric steps from :data:`F0_LOW` to :data:`F0_HIGH` Hz),
   the harmonic contrast: the weighted mean of the spectrum at the harmonics ``h f0`` below the band's top
   minus its mean half-way between them, at ``(h - 1/2) f0`` (weights ``0.9^(h-1)``, linear interpolation
   between bins).  That is a fixed linear map of the spectrum: one matrix product for every candidate;
4. the best candidate: the features are ``log2(f0 / 150 Hz)`` and its contrast (high on voiced frames).

Everything is ``keras.ops`` (any backend; no gradient flows through it) and frame by frame: a frame's
features depend on that frame's mel alone, so chunked and streamed synthesis see what training saw.
Measured on 4 LJ Speech dev utterances against ``librosa.pyin`` on the recordings (1,194 voiced frames):
median error 29 cents, 70% of voiced frames within 50 cents, 6% off by more than 200 cents (1% by an
octave either way); the contrast alone tells voiced from unvoiced frames 82% of the time.
"""
from __future__ import annotations

import numpy as np

#: features per frame: log2(f0 / REFERENCE_HZ) and the harmonic contrast
CHANNELS = 2
F0_LOW, F0_HIGH, CANDIDATES = 70.0, 400.0, 200
REFERENCE_HZ = 150.0
#: the top of the band the harmonics are read from
BAND_HZ = 1500.0
HARMONIC_DECAY = 0.9
NNLS_ITERATIONS = 30


def candidates() -> np.ndarray:
    """The F0 candidates in Hz."""
    return np.geomspace(F0_LOW, F0_HIGH, CANDIDATES)


def contrast_matrix(sample_rate: int, n_fft: int) -> np.ndarray:
    """``[bins, CANDIDATES]``: a band-limited spectrum ``[..., bins]`` times it is each candidate's contrast."""
    hz_per_bin = sample_rate / n_fft
    bins = int(BAND_HZ / hz_per_bin) + 2
    out = np.zeros((bins, CANDIDATES))

    def add(column, hz, weight):
        x = hz / hz_per_bin
        i = int(np.floor(x))
        frac = x - i
        out[i, column] += weight * (1.0 - frac)
        out[min(i + 1, bins - 1), column] += weight * frac

    for j, f0 in enumerate(candidates()):
        harmonics = np.arange(1, int(BAND_HZ // f0) + 1)
        weights = HARMONIC_DECAY ** (harmonics - 1)
        weights = weights / weights.sum()
        for h, w in zip(harmonics, weights):
            add(j, h * f0, w)
            add(j, (h - 0.5) * f0, -w)
    return out


class PitchFeatures:
    """``features(mel) -> [..., frames, CHANNELS]`` from normalized mel frames ``[..., frames, n_mels]``.

    Args:
        features: the mel's :class:`~seqgen.data.audio.FeatureParams` (or its dict).
        mean, std: the per-band normalization of the mel (``mel = (log_mel - mean) / std``).
    """

    def __init__(self, features, mean, std):
        from seqgen.core.lpc import _mel_basis
        from seqgen.data.audio import FeatureParams

        p = features if isinstance(features, FeatureParams) else FeatureParams.from_dict(dict(features))
        self.params = p
        basis = _mel_basis(p.sample_rate, p.n_fft, p.n_mels, p.fmin, p.fmax)         # [n_mels, n_fft/2+1], cached
        if len(mean) != p.n_mels or len(std) != p.n_mels:
            raise ValueError(f"pitch features: {p.n_mels} mel bands, but mean/std have {len(mean)}/{len(std)}")
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.basis = basis.astype(np.float32)
        self.band_norm = np.maximum(basis.sum(axis=1), 1e-12).astype(np.float32)        # [n_mels]
        self.cover = np.maximum(basis.sum(axis=0), 1e-12).astype(np.float32)            # [bins]
        self.covered = (basis.sum(axis=0) > 0).astype(np.float32)
        self.contrast = contrast_matrix(p.sample_rate, p.n_fft).astype(np.float32)      # [band bins, C]
        self.log_f0 = np.log2(candidates() / REFERENCE_HZ).astype(np.float32)

    def spectrum(self, mel):
        """Non-negative magnitudes ``[..., frames, n_fft/2+1]`` whose mel fits the de-normalized mel."""
        from keras import ops

        mag = ops.exp(ops.cast(mel, "float32") * self.std + self.mean)                 # magnitude mel
        basis = ops.convert_to_tensor(self.basis)
        s = ops.matmul(mag / self.band_norm, basis) / self.cover * self.covered
        target = ops.matmul(mag, basis)
        basis_t = ops.transpose(basis)
        for _ in range(NNLS_ITERATIONS):
            s = s * target / ops.maximum(ops.matmul(ops.matmul(s, basis_t), basis), 1e-12)
        return s

    def __call__(self, mel):
        from keras import ops

        s = self.spectrum(ops.convert_to_tensor(mel, "float32"))
        band = ops.sqrt(s[..., : self.contrast.shape[0]])
        band = band / ops.maximum(ops.max(band, axis=-1, keepdims=True), 1e-12)
        score = ops.matmul(band, ops.convert_to_tensor(self.contrast))               # [..., frames, C]
        best = ops.argmax(score, axis=-1)
        log_f0 = ops.take(ops.convert_to_tensor(self.log_f0), best)
        return ops.stop_gradient(ops.stack([log_f0, ops.max(score, axis=-1)], axis=-1))

    @staticmethod
    def f0_hz(features) -> np.ndarray:
        """The F0 in Hz of features ``[..., CHANNELS]`` (numpy)."""
        return REFERENCE_HZ * np.exp2(np.asarray(features, np.float64)[..., 0])
