"""A sample-rate harmonic source at the F0 the mel itself gives: sinusoids a vocoder only has to shape.

The neural source-filter idea: rather than finding the pitch period in its past samples, the network is
handed, at every sample, ``sin`` and ``cos`` of the first ``K`` harmonics of the frame's F0, faded out on
unvoiced frames.  Here the F0 and the voicing come from the normalized mel frames alone
(:class:`seqgen.core.pitch.PitchFeatures`), so synthesis still needs nothing but the mel.

Each frame's F0 holds for its ``hop`` samples; the phase, counted in cycles, accumulates across frames, so
the sinusoids are continuous.  With ``c_j`` the cycles at frame ``j``'s first sample (mod 1) and ``m`` the
sample within the frame, the source is ``v_j sin(2 pi k (c_j + m f0_j / sr))`` and its cosine, ``k = 1..K``.
``c_j`` is all that links frames: :func:`frame_cycles` (numpy, float64: exact over an hour of audio)
gives it for a whole utterance before generation, so a chunk, a stream or the naive reference each build
their samples from their own frames and get the same numbers; training windows count their cycles from
the window's first frame (:func:`frame_cycles_ops`, in the graph), a phase no more arbitrary than the
recording's own relative to the estimate.

The voicing ``v`` is the periodicity score (the harmonic contrast of :mod:`seqgen.core.pitch`) mapped
linearly from :data:`VOICING_LOW` (0) to :data:`VOICING_HIGH` (1): on 4 LJ Speech dev utterances the score
best tells voiced from unvoiced frames (pyin's decision on the recording) at 0.23, 82% of frames right.
"""
from __future__ import annotations

import math

import numpy as np

#: periodicity scores mapped to voicing 0 and 1 (linear between, clipped)
VOICING_LOW, VOICING_HIGH = 0.18, 0.28


def channels(harmonics: int) -> int:
    """Source channels per sample: a sine and a cosine per harmonic."""
    return 2 * int(harmonics)


def voicing(score):
    """Voicing weights in ``[0, 1]`` of periodicity scores (keras.ops)."""
    from keras import ops

    return ops.clip((score - VOICING_LOW) / (VOICING_HIGH - VOICING_LOW), 0.0, 1.0)


def frame_cycles(f0_hz: np.ndarray, hop: int, sample_rate: int) -> np.ndarray:
    """Host side: the phase in cycles (mod 1) at each frame's first sample, ``[B, F]`` float32, counted
    from the utterance's start, in float64."""
    return frame_cycles_from(f0_hz, hop, sample_rate, np.zeros(np.shape(f0_hz)[:-1]))[0]


def frame_cycles_from(f0_hz: np.ndarray, hop: int, sample_rate: int, before) -> tuple[np.ndarray, np.ndarray]:
    """:func:`frame_cycles` of a run of frames that starts ``before`` cycles (float64 ``[B]``, not reduced)
    into the utterance: ``(cycles [B, F] float32, the count after the last frame)``.  Calls over
    consecutive runs, each given the count the one before returned, give :func:`frame_cycles` of the
    frames put together bit for bit (the same float64 additions in the same order)."""
    per_frame = np.asarray(f0_hz, np.float64) * (hop / float(sample_rate))
    before = np.asarray(before, np.float64)
    counted = np.cumsum(np.concatenate([before[..., None], per_frame], axis=-1), axis=-1)[..., 1:]
    after = counted[..., -1] if per_frame.shape[-1] else before
    return np.mod(counted - per_frame, 1.0).astype(np.float32), after


def frame_cycles_ops(f0_hz, hop: int, sample_rate: int):
    """In the graph: :func:`frame_cycles` counted from the first frame given, in float32 (training windows
    are a few dozen frames)."""
    from keras import ops

    per_frame = ops.cast(f0_hz, "float32") * (hop / float(sample_rate))
    before = ops.cumsum(per_frame, axis=-1) - per_frame
    return before - ops.floor(before)


def source(f0_hz, voiced, cycles, hop: int, sample_rate: int, harmonics: int):
    """``[B, F * hop, 2 K]``: the source of frames with F0 ``f0_hz [B, F]``, voicing ``voiced [B, F]`` and
    start phases ``cycles [B, F]`` (keras.ops; float32)."""
    from keras import ops

    f0 = ops.cast(f0_hz, "float32")
    within = ops.convert_to_tensor(np.arange(hop, dtype=np.float32) / np.float32(sample_rate))      # [hop]
    c = ops.expand_dims(ops.cast(cycles, "float32"), -1) + ops.expand_dims(f0, -1) * within           # [B, F, hop]
    c = c - ops.floor(c)
    k = ops.convert_to_tensor(np.arange(1, int(harmonics) + 1, dtype=np.float32))                    # [K]
    c = ops.expand_dims(c, -1) * k
    angle = (2.0 * math.pi) * (c - ops.floor(c))                                                       # [B, F, hop, K]
    v = ops.expand_dims(ops.expand_dims(ops.cast(voiced, "float32"), -1), -1)
    out = ops.concatenate([ops.sin(angle), ops.cos(angle)], axis=-1) * v
    shape = ops.shape(out)
    return ops.reshape(out, (shape[0], shape[1] * shape[2], 2 * int(harmonics)))
