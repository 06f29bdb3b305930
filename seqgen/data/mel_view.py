"""Normalized mel frames read on demand: a vocoder's conditioning for a mel of any length.

A 60-minute utterance at hop 256 and 22.05 kHz has 310,000 frames of 80 bands (99 MB of float32).
:class:`MelView` wraps raw log-mel frames and hands out normalized float32 frames only for the slices
asked for, so a streamed generation that reads its mel chunk by chunk holds a few chunks' frames,
whatever the length.

:func:`load_log_mel` maps the ``.npy`` afresh for each read and lets the mapping go with it: the pages of a
file mapped once for the whole run would stay in the process's resident set as they are read (a 60-minute
mel would add its 99 MB by the end), while a mapping per read holds only that read's pages.  Numpy only.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MelView", "load_log_mel"]

#: frames per block when a view is scanned whole (the finiteness check, a full read): 2.6 MB of 80 bands
SCAN_FRAMES = 8192


class MelView:
    """Normalized frames ``[1, frames, bands]`` of raw log-mel frames, computed per slice.

    Args:
        raw: log-mel frames ``[frames, bands]``: an array-like that slices, or a callable that opens one
            (called once per read and let go after it, e.g. a memory-mapped ``.npy``; a ``[bands, frames]``
            file is opened as ``raw.T``, still a view).
        mean, std: the run's per-band statistics; a slice ``v[:, a:b]`` is ``((raw[a:b] - mean) / std)`` as
            float32, the same bits as normalizing the whole array and slicing it.
        shape: ``[frames, bands]`` of what ``raw`` opens (a callable only; default: open it once to see).

    It has ``shape``, ``ndim``, ``dtype`` and ``len``, slices like an array whose band axis is kept, and
    ``np.asarray(view)`` gives the whole normalized array (for the paths that need it whole)."""

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, raw, mean, std, shape=None):
        self._open = raw if callable(raw) else (lambda: raw)
        if shape is None:
            first = self._open()
            if getattr(first, "ndim", None) != 2:
                raise ValueError(f"MelView: raw log-mel frames must be [frames, bands], got shape "
                                 f"{getattr(first, 'shape', None)}")
            shape = first.shape
            del first
        frames, bands = (int(d) for d in shape)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        if self.mean.shape != (bands,) or self.std.shape != (bands,):
            raise ValueError(f"MelView: {bands} bands, but mean/std have shapes {self.mean.shape}/"
                             f"{self.std.shape}")
        self.shape = (1, frames, bands)

    def _read(self, sel):
        """``raw[sel]`` as an array of its own (the mapping, if any, is let go)."""
        raw = self._open()
        out = np.array(raw[sel])
        del raw
        return out

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
        frames = self._norm(self._read(rest[0] if rest else slice(None)))
        whole = frames[None]                                    # [1, ...] then the batch index on it
        return whole[batch]

    def __array__(self, dtype=None, copy=None):
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)

    def blocks(self, frames=SCAN_FRAMES):
        """``(start, raw block [n, bands])`` over the whole mel, ``frames`` at a time (constant memory)."""
        for lo in range(0, self.shape[1], int(frames)):
            yield lo, self._read(slice(lo, lo + int(frames)))


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
    if not np.issubdtype(raw.dtype, np.floating):
        raise ValueError(f"{flag} {path}: log-mel frames must be floating point, got {raw.dtype}")
    transpose = raw.shape[1] != n_mels
    shape = raw.shape[::-1] if transpose else raw.shape
    del raw

    def opened():
        m = np.load(path, mmap_mode="r")
        return m.T if transpose else m

    view = MelView(opened, mean, std, shape=shape)
    for lo, block in view.blocks():
        if not np.all(np.isfinite(block)):
            bad = lo + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise ValueError(f"{flag} {path}: contains NaN or Inf (first at frame {bad})")
    return view
