"""Normalized mel frames read on demand: a vocoder's conditioning for a mel of any length.

A 60-minute utterance has 232,000 frames of 80 bands (74 MB of float32).  :class:`MelView` wraps raw
log-mel frames (typically ``np.load(path, mmap_mode="r")``, nothing read yet) and hands out normalized
float32 frames only for the slices asked for, so a streamed generation that reads its mel chunk by chunk
holds a few chunks' frames, whatever the length.  Numpy only.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MelView", "load_log_mel"]

#: frames per block when a view is scanned whole (the finiteness check, a full read)
SCAN_FRAMES = 65536


class MelView:
    """Normalized frames ``[1, frames, bands]`` of raw log-mel frames, computed per slice.

    Args:
        raw: log-mel frames ``[frames, bands]`` (any array-like that slices, e.g. a memory-mapped ``.npy``;
            a ``[bands, frames]`` file goes in as ``raw.T``, still a view).
        mean, std: the run's per-band statistics; a slice ``v[:, a:b]`` is ``((raw[a:b] - mean) / std)`` as
            float32, the same bits as normalizing the whole array and slicing it.

    It has ``shape``, ``ndim``, ``dtype`` and ``len``, slices like an array whose band axis is kept, and
    ``np.asarray(view)`` gives the whole normalized array (for the paths that need it whole)."""

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, raw, mean, std):
        if getattr(raw, "ndim", None) != 2:
            raise ValueError(f"MelView: raw log-mel frames must be [frames, bands], got shape "
                             f"{getattr(raw, 'shape', None)}")
        self._raw = raw
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        if self.mean.shape != (raw.shape[1],) or self.std.shape != (raw.shape[1],):
            raise ValueError(f"MelView: {raw.shape[1]} bands, but mean/std have shapes {self.mean.shape}/"
                             f"{self.std.shape}")
        self.shape = (1,) + tuple(int(d) for d in raw.shape)

    def __len__(self):
        return 1

    def _norm(self, raw):
        return ((np.asarray(raw) - self.mean) / self.std).astype(np.float32)

    def __getitem__(self, idx):
        if not isinstance(idx, tuple):
            idx = (idx,)
        if len(idx) > 3 or any(i is Ellipsis or i is None for i in idx):
            raise IndexError("MelView slices [batch, frames, bands] (no Ellipsis or new axes)")
        batch, rest = idx[0], idx[1:]
        if len(rest) > 1 and not (isinstance(rest[1], slice) and rest[1] == slice(None)):
            raise IndexError("MelView keeps the band axis whole (slice it after reading)")
        frames = self._norm(self._raw[rest[0]] if rest else self._raw[:])
        whole = frames[None]                                    # [1, ...] then the batch index on it
        return whole[batch]

    def __array__(self, dtype=None, copy=None):
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)

    def blocks(self, frames=SCAN_FRAMES):
        """``(start, raw block [n, bands])`` over the whole mel, ``frames`` at a time (constant memory)."""
        for lo in range(0, self.shape[1], int(frames)):
            yield lo, np.asarray(self._raw[lo:lo + int(frames)])


def load_log_mel(path, n_mels: int, mean, std, flag: str = "--mel") -> MelView:
    """A :class:`MelView` of the raw log-mel frames in ``path`` (``.npy``, ``[frames, n_mels]`` or
    ``[n_mels, frames]``), memory-mapped where the file allows it, checked finite block by block.
    Raises ValueError with one line naming the file and ``flag``."""
    try:
        raw = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise ValueError(f"{flag} {path}: cannot read a numpy array ({e})") from None
    if not isinstance(raw, np.ndarray) or raw.ndim != 2 or n_mels not in raw.shape:
        raise ValueError(f"{flag} {path}: expected [frames, {n_mels}] log-mel frames, got shape "
                         f"{getattr(raw, 'shape', None)}")
    if raw.shape[1] != n_mels:
        raw = raw.T
    if not np.issubdtype(raw.dtype, np.floating):
        raise ValueError(f"{flag} {path}: log-mel frames must be floating point, got {raw.dtype}")
    view = MelView(raw, mean, std)
    for lo, block in view.blocks():
        if not np.all(np.isfinite(block)):
            bad = lo + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise ValueError(f"{flag} {path}: contains NaN or Inf (first at frame {bad})")
    return view
