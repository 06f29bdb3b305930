"""The cached ByteNet LM decoding loop in C (``bytenet_loop.c``): what ``ByteNet.generate`` (an LM, no
encoder) runs in its compiled Keras loop, with the same plan, uniforms and sampler (see
:mod:`seqgen.native.transformer`)."""
from __future__ import annotations

import ctypes

import numpy as np

from seqgen.native.token_loop import NativeTokenLoop, _i32p, _p, _pp
from seqgen.native.wavenet import WEIGHT_DTYPES

__all__ = ["NativeByteNetLoop"]


class _Model(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ("n_blocks", "d", "hid", "k", "V", "wdtype")] + [
        ("emb", _p), ("dilations", _i32p), ("queue_rows", _i32p),
        ("ln_in_g", _pp), ("ln_in_b", _pp), ("ln_mid_g", _pp), ("ln_mid_b", _pp), ("ln_out_g", _pp),
        ("ln_out_b", _pp), ("red_w", _pp), ("red_b", _pp), ("red_s", _pp), ("conv_w", _pp), ("conv_b", _pp),
        ("conv_s", _pp), ("exp_w", _pp), ("exp_b", _pp), ("exp_s", _pp), ("head_g", _p), ("head_b", _p),
        ("out_w", _p), ("out_b", _p), ("out_s", _p)]


class NativeByteNetLoop(NativeTokenLoop):
    """The C loop for a ByteNet LM's current weights; ``weight_dtype`` as for the Transformer's."""

    LIB = "bytenet"
    Struct = _Model

    def _build(self, model):
        if model.use_encoder:
            raise ValueError("method 'native' decodes the ByteNet LM (encoder=False); translate with 'cached'")
        blocks = model.decoder_blocks
        cols = {k: [] for k in ("ln_in_g", "ln_in_b", "ln_mid_g", "ln_mid_b", "ln_out_g", "ln_out_b", "red_w",
                                "red_b", "red_s", "conv_w", "conv_b", "conv_s", "exp_w", "exp_b", "exp_s")}
        for blk in blocks:
            for key, ln in (("ln_in", blk.ln_in), ("ln_mid", blk.ln_mid), ("ln_out", blk.ln_out)):
                cols[f"{key}_g"].append(self.vec(ln.gamma))
                cols[f"{key}_b"].append(self.vec(ln.beta))
            for key, kernel, bias in (("red", blk.reduce.kernel, blk.reduce.bias),
                                      ("conv", blk.conv.fused_kernel(), blk.conv.bias),
                                      ("exp", blk.expand.kernel, blk.expand.bias)):
                w, s = self.mat(kernel)
                cols[f"{key}_w"].append(w)
                cols[f"{key}_s"].append(s)
                cols[f"{key}_b"].append(self.vec(bias, True))
        m = self.struct
        m.n_blocks, m.d, m.hid, m.k, m.V = len(blocks), model.d_model, model.d_model // 2, model.kernel_size, \
            model.vocab_size
        m.wdtype = WEIGHT_DTYPES.index(self.weight_dtype)
        m.emb = self.vec(model.target_embedding.embeddings)
        self._rows = [blk.conv.queue_rows for blk in blocks]
        dil = np.ascontiguousarray([blk.dilation_rate for blk in blocks], np.int32)
        rows = np.ascontiguousarray(self._rows, np.int32)
        self.keep(dil)
        self.keep(rows)
        m.dilations, m.queue_rows = dil.ctypes.data_as(_i32p), rows.ctypes.data_as(_i32p)
        self.set_matrices(cols)
        m.head_g, m.head_b = self.vec(model.head_norm.gamma), self.vec(model.head_norm.beta)
        m.out_w, out_s = self.mat(model.head_out.kernel)
        if out_s is not None:
            m.out_s = out_s
        m.out_b = self.vec(model.head_out.bias, True)

    def _state(self, batch, length):
        m = self.struct
        self._queues = [np.zeros((r, batch, m.hid), np.float32) for r in self._rows]
        qptrs = (_p * len(self._queues))(*[q.ctypes.data for q in self._queues])
        self._qptrs = qptrs
        hp = self.pad(m.hid)
        scratch = batch * (2 * m.d + 3 * hp + m.k * m.hid + self.pad(m.d) + self.pad(m.V))
        return [qptrs], scratch
