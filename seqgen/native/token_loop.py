"""What the native token loops (Transformer, ByteNet LM) share: the weights packed and kept alive, and
one call with the arguments and results of ``seqgen.models.token_decoding.token_decode_loop``."""
from __future__ import annotations

import ctypes

import numpy as np

from seqgen.native.build import load
from seqgen.native.wavenet import WEIGHT_DTYPES, _np, pack

_p = ctypes.c_void_p
_pp = ctypes.POINTER(_p)
_i32p = ctypes.POINTER(ctypes.c_int32)
_f32p = ctypes.POINTER(ctypes.c_float)


class NativeTokenLoop:
    """Base of the token loops: ``LIB`` names the C source (``seqgen_<LIB>_loop``, ``seqgen_<LIB>_tile``);
    a subclass fills ``self.struct`` in ``_build`` and says what state the loop needs in ``_state``."""

    LIB = ""
    Struct = None

    def __init__(self, model, weight_dtype="float32"):
        if weight_dtype not in WEIGHT_DTYPES:
            raise ValueError(f"weight_dtype must be one of {', '.join(WEIGHT_DTYPES)}, got {weight_dtype!r}")
        self.lib = load(f"{self.LIB}_loop")
        self.fn = getattr(self.lib, f"seqgen_{self.LIB}_loop")
        self.fn.restype = ctypes.c_int
        self.tile = getattr(self.lib, f"seqgen_{self.LIB}_tile")()
        self.model = model
        self.weight_dtype = weight_dtype
        self._keep = []
        self.struct = self.Struct()
        self._build(model)

    # -- packing helpers: every array the struct points into is kept alive here
    def keep(self, a):
        self._keep.append(a)
        return a.ctypes.data

    def vec(self, w, pad=False):
        a = _np(w)
        if pad:
            a = np.ascontiguousarray(np.pad(a, (0, -len(a) % self.tile)))
        return self.keep(a)

    def mat(self, w):
        """``(packed matrix, int8 scales or None)`` addresses."""
        a, s = pack(_np(w), self.weight_dtype, self.tile)
        return self.keep(a), (self.keep(s) if s is not None else None)

    def ptrs(self, values):
        a = (_p * len(values))(*values)
        self._keep.append(a)
        return ctypes.cast(a, _pp)

    def set_matrices(self, cols):
        """``cols``: name -> per-layer addresses; the int8 scale lists (``*_s``) only with int8 weights."""
        for key, values in cols.items():
            if key.endswith("_s") and self.weight_dtype != "int8":
                continue
            setattr(self.struct, key, self.ptrs(values))

    def pad(self, n):
        return -(-int(n) // self.tile) * self.tile

    # -- subclass hooks
    def _build(self, model):
        raise NotImplementedError

    def _state(self, batch, length):
        """``(ctypes arguments passed before the noise, float scratch size)``."""
        raise NotImplementedError

    def __call__(self, x0, forced, mask, noise, num_steps, temperature=1.0, top_k=0, top_p=1.0, stop_at_eos=True,
                 logits=None):
        """The token buffer ``[B, length]`` of ``token_decode_loop`` (``length``: ``forced.shape[1]``) and
        the positions run.  ``logits``: optional float32 ``[B, length, V]`` receiving each position's
        logits (PAD and BOS banned)."""
        model = self.model
        forced = np.ascontiguousarray(forced, np.int32)
        B, length = forced.shape
        vocab = model.vocab_size
        mask = np.ascontiguousarray(mask, np.uint8)
        noise = np.ascontiguousarray(np.asarray(noise, np.float32).reshape(B, length))
        x0 = np.ascontiguousarray(x0, np.int32).reshape(B)
        out = np.zeros((B, length), np.int32)
        if logits is not None and (logits.dtype != np.float32 or logits.shape != (B, length, vocab)
                                   or not logits.flags.c_contiguous):
            raise ValueError(f"logits must be a C-contiguous float32 array [{B}, {length}, {vocab}]")
        state, scratch = self._state(B, length)
        work = np.zeros(scratch + 2 * self.pad(vocab) + 2 * B + 64, np.float32)
        banned = np.asarray([model.pad_id, model.bos_id], np.int32)
        steps = self.fn(
            ctypes.byref(self.struct), ctypes.c_int(B), ctypes.c_int(length), ctypes.c_int(int(num_steps)),
            x0.ctypes.data_as(_i32p), *state, noise.ctypes.data_as(_f32p), forced.ctypes.data_as(_i32p),
            mask.ctypes.data_as(_p), banned.ctypes.data_as(_i32p), ctypes.c_int(len(banned)),
            ctypes.c_float(float(temperature)), ctypes.c_int(int(top_k)), ctypes.c_float(float(top_p)),
            ctypes.c_int(model.eos_id), ctypes.c_int(model.pad_id), ctypes.c_int(1 if stop_at_eos else 0),
            out.ctypes.data_as(_i32p), None if logits is None else logits.ctypes.data_as(_f32p),
            work.ctypes.data_as(_f32p))
        return out, steps
