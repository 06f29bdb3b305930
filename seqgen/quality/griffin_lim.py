"""The floor every vocoder must beat: Griffin-Lim from the run's own mel features, with no training.

The features are seqgen's (:func:`seqgen.data.audio.log_mel`): natural-log *magnitude* (power 1) mel
of a signal reflect-padded by ``(n_fft - hop) // 2`` on the left and the rest of ``n_fft - hop`` on the
right, framed with ``center=False``.  Griffin-Lim inverts exactly that: ``exp`` of the (de-normalized)
log-mel, a non-negative least-squares inverse of the mel basis (``librosa``'s ``mel_to_stft``, power 1),
60 iterations of ``librosa.griffinlim`` (momentum 0.99, random initial phase from ``seed``) with
``center=False``, and the left padding cut off, so the result is sample-aligned with the recording and
``frames * hop`` samples long.
"""
from __future__ import annotations

import numpy as np

ITERATIONS = 60


def griffin_lim(log_mel: np.ndarray, params, n_iter: int = ITERATIONS, seed: int = 0) -> np.ndarray:
    """Audio ``[frames * hop]`` float32 from log-mel frames ``[frames, n_mels]`` (not normalized)."""
    import librosa

    log_mel = np.asarray(log_mel, np.float64)
    frames = log_mel.shape[0]
    mag = librosa.feature.inverse.mel_to_stft(
        np.exp(log_mel).T, sr=params.sample_rate, n_fft=params.n_fft, power=1.0, fmin=params.fmin,
        fmax=params.fmax)
    audio = librosa.griffinlim(mag, n_iter=int(n_iter), hop_length=params.hop_length, win_length=params.win_length,
                               n_fft=params.n_fft, center=False, random_state=np.random.default_rng(int(seed)))
    pad = (params.n_fft - params.hop_length) // 2
    out = np.zeros(frames * params.hop_length, np.float32)
    got = np.asarray(audio[pad: pad + len(out)], np.float32)
    out[: len(got)] = got
    return np.clip(out, -1.0, 1.0)


def from_normalized(mel_normalized: np.ndarray, mean, std, params, n_iter: int = ITERATIONS,
                    seed: int = 0) -> np.ndarray:
    """Griffin-Lim from normalized frames, as a vocoder run is conditioned (de-normalized first)."""
    log_mel = np.asarray(mel_normalized, np.float64) * np.asarray(std, np.float64) + np.asarray(mean, np.float64)
    return griffin_lim(log_mel, params, n_iter, seed)
