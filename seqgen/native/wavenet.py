"""The cached WaveNet loop in C (``wavenet_loop.c``), called chunk by chunk like the compiled Keras loop.

:class:`NativeWaveNetLoop` takes a built :class:`seqgen.models.wavenet.WaveNet` and is called with the
arguments of the Keras chunk function (``WaveNet._loop_fn``): the first input, the cache, the chunk's
start, steps, noise and conditioning.  The conditioning, the noise and the streaming stay in Python and
Keras; only the per-sample loop runs here.  It supports the categorical (mu-law or linear) head, local
and global conditioning, linear prediction, any kernel size, temperature and ``top_p``; other heads raise
a one-line error naming ``--method cached``.
"""
from __future__ import annotations

import ctypes

import numpy as np

from seqgen.native.build import load

__all__ = ["NativeWaveNetLoop", "WEIGHT_DTYPES", "check_supported"]

#: how the loop stores the weights it multiplies by (the embeddings, biases and conditioning stay float32):
#: float32, bfloat16 (rounded to nearest even) or int8 (symmetric, one scale per output column)
WEIGHT_DTYPES = ("float32", "bfloat16", "int8")

_p = ctypes.c_void_p
_i32p = ctypes.POINTER(ctypes.c_int32)
_f32p = ctypes.POINTER(ctypes.c_float)


class _Model(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ("n_layers", "R", "G", "S", "V", "k", "lpc_order",
                                               "bias_per_step", "has_bias", "wdtype")] + [
        ("dilations", _i32p), ("queue_rows", _i32p), ("conv_w", ctypes.POINTER(_p)),
        ("conv_b", ctypes.POINTER(_p)), ("out_w", ctypes.POINTER(_p)), ("out_b", ctypes.POINTER(_p)),
        ("has_residual", _i32p), ("head_w1", _p), ("head_b1", _p), ("head_w2", _p), ("head_b2", _p),
        ("emb_in", _p), ("emb_pred", _p), ("emb_exc", _p), ("class_of_sample", _i32p), ("decode", _f32p),
        ("conv_s", ctypes.POINTER(_p)), ("out_s", ctypes.POINTER(_p)), ("head_s1", _p), ("head_s2", _p)]


def check_supported(model):
    """A one-line ``ValueError`` when ``model`` (a WaveNet) is outside what the C loop does."""
    dist = model.distribution
    if not dist.input_is_discrete:
        raise ValueError(f"method 'native' samples a categorical head; this WaveNet's head is "
                         f"{dist.type_name}: use method 'cached'")


def _np(v, dtype=np.float32):
    from keras import ops
    return np.ascontiguousarray(np.asarray(ops.convert_to_numpy(v)), dtype)


class NativeWaveNetLoop:
    """The C loop for ``model``'s current weights (snapshotted here: build a new one after training).

    ``weight_dtype``: ``"float32"``, ``"bfloat16"`` or ``"int8"`` for the matrices of the residual layers
    and the head (bfloat16 reads half the bytes, int8 a quarter; every product accumulates in float32)."""

    def __init__(self, model, weight_dtype="float32", top_p=1.0):
        if weight_dtype not in WEIGHT_DTYPES:
            raise ValueError(f"weight_dtype must be one of {', '.join(WEIGHT_DTYPES)}, got {weight_dtype!r}")
        check_supported(model)
        self.top_p = float(top_p)
        self.lib = load("wavenet_loop")
        self.lib.seqgen_wavenet_loop.restype = ctypes.c_int
        tile = self.lib.seqgen_wavenet_tile()
        self.tile = tile
        self.weight_dtype = weight_dtype
        self.model = model
        self._keep = []                                # every array the struct points into
        dist = model.distribution
        R, G, S, V = model.residual_channels, model.gate_channels, model.skip_channels, dist.num_classes
        blocks = model.blocks
        L = len(blocks)

        scales = []

        def mat(w):
            a, s = pack(_np(w), weight_dtype, tile)
            self._keep.append(a)
            scales.append(None if s is None else vec(s))
            return a.ctypes.data

        def vec(w, pad=False):
            a = _np(w)
            if pad:
                a = np.ascontiguousarray(np.pad(a, (0, -len(a) % tile)))
            self._keep.append(a)
            return a.ctypes.data

        def ints(values):
            a = np.ascontiguousarray(values, np.int32)
            self._keep.append(a)
            return a.ctypes.data_as(_i32p)

        def ptrs(values):
            a = (_p * len(values))(*values)
            self._keep.append(a)
            return a

        conv_w, conv_b, out_w, out_b, conv_s, out_s = [], [], [], [], [], []
        for blk in blocks:
            sw = blk.step_weights()
            conv_w.append(mat(sw["conv"]))
            conv_s.append(scales[-1])
            conv_b.append(vec(blk.conv.bias if blk.conv.bias is not None else np.zeros(G, np.float32), True))
            out_w.append(mat(sw["out"]))
            out_s.append(scales[-1])
            out_b.append(vec(sw["out_bias"], True))
        m = _Model()
        m.n_layers, m.R, m.G, m.S, m.V, m.k = L, R, G, S, V, model.kernel_size
        m.lpc_order = model.lpc_order
        m.bias_per_step = 1 if model.cond_channels else 0
        m.has_bias = 1 if (model.cond_channels or model.num_speakers) else 0
        m.wdtype = WEIGHT_DTYPES.index(weight_dtype)
        m.dilations = ints([b.dilation_rate for b in blocks])
        m.queue_rows = ints([b.conv.queue_rows for b in blocks])
        m.conv_w, m.conv_b, m.out_w, m.out_b = ptrs(conv_w), ptrs(conv_b), ptrs(out_w), ptrs(out_b)
        m.has_residual = ints([1 if b.residual_output else 0 for b in blocks])
        m.head_w1, m.head_b1 = mat(model.head_hidden.kernel), vec(model.head_hidden.bias, True)
        m.head_s1 = scales[-1]
        m.head_w2, m.head_b2 = mat(model.head_out.kernel), vec(model.head_out.bias, True)
        m.head_s2 = scales[-1]
        if weight_dtype == "int8":
            m.conv_s, m.out_s = ptrs(conv_s), ptrs(out_s)
        m.emb_in = vec(model.input_embedding.embeddings)
        if model.lpc_order:
            m.emb_pred = vec(model.prediction_embedding.embeddings)
            m.emb_exc = vec(model.excitation_embedding.embeddings)
            m.class_of_sample = ints(_np(model._class_of(np.arange(-32768, 32768, dtype=np.int32)), np.int32))
        dec = _np(dist.to_waveform(np.arange(V, dtype=np.int32)))
        self._keep.append(dec)
        m.decode = dec.ctypes.data_as(_f32p)
        self.struct = m
        self.sizes = (L, R, G, S, V, model.kernel_size)

    def __call__(self, x, cache, start, num_steps, noise, bias, forced, num_forced, temperature, params=None):
        """One chunk, with the arguments and results of the Keras chunk function:
        ``(samples [B, chunk(, 2)], next input, cache, steps)``; the cache comes back as numpy arrays
        (updated in place when it was numpy).  ``params``: optional float32 ``[B, chunk, V]`` that receives
        every step's logits."""
        L, R, G, S, V, k = self.sizes
        model = self.model
        noise = np.ascontiguousarray(np.asarray(noise, np.float32).reshape(noise.shape[0], -1))
        B, chunk = noise.shape
        lpc = None
        if model.lpc_order:
            bias, lpc = bias
            lpc = _np(lpc)
        bias = None if bias is None else _np(bias)
        queues = [_writable(q) for q in cache[:L]]
        ring = _writable(cache[L]) if model.lpc_order else None
        width = 2 if model.lpc_order else 1
        x = np.ascontiguousarray(np.array(x, np.int32).reshape(B, width))
        forced = np.ascontiguousarray(np.asarray(forced, np.int32).reshape(B, chunk, width))
        out = np.zeros((B, chunk, width), np.int32)
        if params is not None and (params.dtype != np.float32 or params.shape != (B, chunk, V)
                                   or not params.flags.c_contiguous):
            raise ValueError(f"params must be a C-contiguous float32 array [{B}, {chunk}, {V}]")
        pad = lambda n: -(-n // self.tile) * self.tile                   # noqa: E731
        work = np.zeros(B * (R + S + k * R + 2 * pad(G) + pad(R + S) + pad(S) + pad(V) + 1) + 2 * pad(V) + 64,
                        np.float32)
        qptrs = (_p * L)(*[q.ctypes.data for q in queues])
        steps = self.lib.seqgen_wavenet_loop(
            ctypes.byref(self.struct), ctypes.c_int(B), ctypes.c_int(chunk), ctypes.c_int(int(start)),
            ctypes.c_int(int(num_steps)), x.ctypes.data_as(_i32p), qptrs,
            None if ring is None else ring.ctypes.data_as(_f32p), noise.ctypes.data_as(_f32p),
            None if bias is None else bias.ctypes.data_as(_f32p), None if lpc is None else lpc.ctypes.data_as(_f32p),
            forced.ctypes.data_as(_i32p), ctypes.c_int(int(num_forced)), ctypes.c_float(float(temperature)),
            ctypes.c_float(self.top_p),
            out.ctypes.data_as(_i32p), None if params is None else params.ctypes.data_as(_f32p),
            work.ctypes.data_as(_f32p))
        new_cache = tuple(queues) + ((ring,) if ring is not None else ())
        if width == 1:
            return out[..., 0], x[:, 0], new_cache, steps
        return out, x, new_cache, steps


def pack(w, weight_dtype, tile):
    """A ``[in, out]`` float32 matrix in the C loop's layout: the outputs padded with zeros to a multiple of
    ``tile`` and stored tile by tile, ``[tiles, in, tile]`` float32; with ``"bfloat16"`` (rounded to
    nearest even) ``[tiles, in, tile / 2]`` uint32, each word holding output ``j`` in its low half and
    output ``j + tile / 2`` in its high half; with ``"int8"`` ``[tiles, in, tile]`` int8 of
    ``round(w / scale)``, ``scale = max |w[:, o]| / 127`` per output.  Returns ``(packed, scales)``: the
    scales (float32, padded with zeros) for int8, else None."""
    n_in, n_out = w.shape
    w = np.pad(w, ((0, 0), (0, -n_out % tile)))
    scale = None
    if weight_dtype == "int8":
        from seqgen.native.rounding import quantize_int8

        w, scale = quantize_int8(w)
    tiles = w.reshape(n_in, -1, tile).transpose(1, 0, 2)                        # [tiles, in, tile]
    if weight_dtype == "float32":
        return np.ascontiguousarray(tiles, np.float32), None
    if weight_dtype == "int8":
        return np.ascontiguousarray(tiles, np.int8), scale
    import ml_dtypes

    half = tile // 2
    b = np.ascontiguousarray(tiles).astype(ml_dtypes.bfloat16).view(np.uint16).astype(np.uint32)
    return np.ascontiguousarray(b[..., :half] | (b[..., half:] << 16)), None


def _writable(a):
    if isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.array(_np(a), np.float32, copy=True)
