"""Beam search over the ``seqgen.core.decoding`` step protocol (``keras.ops`` only).

The whole search is ONE ``keras.ops.while_loop`` with fixed shapes, so it
compiles with :func:`seqgen.core.decoding.compile_fn` like the sampling loops:

* the decoder cache is tiled from ``B`` to ``B*K`` rows (row ``b*K + k`` is
  beam ``k`` of example ``b``) and, after each step, reordered by the
  parents of the surviving beams with ``ops.take``;
* two sets of ``K`` hypotheses per example are kept: *alive* (no EOS yet,
  ranked by log-probability) and *finished* (ended by EOS, or cut at the
  example's ``max_length``, ranked by the GNMT length-normalised score
  ``logp / ((5 + len) / 6) ** alpha``, Wu et al. 2016);
* each step scores the ``K*V`` extensions of the alive beams, takes the top
  ``2K`` (so that at least ``K`` of them do not end with EOS), moves the EOS
  ones to the finished set and keeps the best ``K`` others alive;
* an example stops at its ``max_length`` or once no alive beam can beat its
  worst finished hypothesis (``logp`` only decreases and, for
  ``alpha >= 0``, the penalty is largest at ``max_length``); the loop ends
  when every example has stopped.

With ``beam_size=1`` and ``length_penalty=0`` this is greedy decoding.
"""
import keras
import numpy as np
from keras import ops

from seqgen.core.decoding import time_slice

__all__ = ["beam_search", "length_penalty_factor"]

_NEG = -1e9


def length_penalty_factor(length, alpha):
    """GNMT length penalty ``((5 + length) / 6) ** alpha``."""
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, float(alpha))


def beam_search(step_fn, initial_cache, first_inputs, *, beam_size, length, eos_id,
                max_length=None, length_penalty=0.6, pad_id=0, context=None, start=0,
                cache_batch_axis=0, banned=(), return_all=False):
    """Beam search decoding.

    Args:
        step_fn: ``(inputs_t [N], cache, t, context_t) -> (logits_t [N, V], cache)``
            (the ``seqgen.core.decoding`` step; ``N = B*K`` here).
        initial_cache: nested cache tensors for batch ``B``; each leaf has
            its batch on axis ``cache_batch_axis``.
        first_inputs: ``[B]`` int tokens fed at the first step (e.g. BOS).
        beam_size: ``K`` (``2*K <= V``).
        length: static number of decoding steps / output length ``L``.
        eos_id: end-of-sequence id.
        max_length: int or ``[B]`` int tensor ``<= L``: tokens per example
            (EOS included); default ``L``.
        length_penalty: GNMT ``alpha`` (0 = raw log-probability).
        pad_id: written after EOS.
        context: nested per-step tensors ``[B, L, ...]`` (e.g. encoder
            output), tiled to the beams and sliced at each step; or None.
        start: absolute position of the first step (``t = start + i``).
        cache_batch_axis: batch axis of the cache leaves (0 for key/value
            caches ``[B, T, H, D]``, 1 for conv queues ``[Q+1, B, C]``).
        banned: ids never generated (e.g. PAD, BOS).
        return_all: also return all ``K`` finished hypotheses.

    Returns:
        ``(sequences [B, L] int32, scores [B])`` -- the best hypothesis per
        example (PAD after its EOS) and its normalised score; with
        ``return_all`` ``(sequences [B, K, L], scores [B, K])`` sorted best first.
    """
    k = int(beam_size)
    length = int(length)
    alpha = float(length_penalty)
    if k < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    x0 = ops.cast(ops.convert_to_tensor(first_inputs), "int32")
    b = x0.shape[0]
    axis = int(cache_batch_axis)

    cache = keras.tree.map_structure(lambda c: ops.repeat(c, k, axis=axis), initial_cache)
    ctx = (None if context is None
           else keras.tree.map_structure(lambda c: ops.repeat(c, k, axis=0), context))
    if max_length is None:
        max_len = ops.full((b,), length, "int32")
    else:
        max_len = ops.minimum(ops.broadcast_to(ops.cast(max_length, "int32"), (b,)), length)
    max_lp = length_penalty_factor(max_len, alpha)

    positions = ops.arange(length, dtype="int32")
    batch_base = ops.expand_dims(ops.arange(b, dtype="int32") * k, 1)

    def gather_beams(x, idx):
        # x [B, M, ...], idx [B, N] -> [B, N, ...]
        extra = list(x.shape[2:])
        full_idx = ops.reshape(idx, [b, idx.shape[1]] + [1] * len(extra))
        full_idx = ops.broadcast_to(full_idx, [b, idx.shape[1]] + extra)
        return ops.take_along_axis(x, full_idx, axis=1)

    def cond(i, t, x, cache, alive_seq, alive_logp, fin_seq, fin_score, done):
        return ops.logical_and(i < length, ops.logical_not(ops.all(done)))

    def body(i, t, x, cache, alive_seq, alive_logp, fin_seq, fin_score, done):
        ctx_t = (None if ctx is None
                 else keras.tree.map_structure(lambda c: time_slice(c, i), ctx))
        logits, new_cache = step_fn(x, cache, t, ctx_t)
        logits = ops.cast(logits, "float32")
        vocab = logits.shape[-1]
        if 2 * k > vocab:
            raise ValueError(f"beam_size={k} too large for a vocabulary of {vocab}")
        ids = [int(v) for v in banned if 0 <= int(v) < vocab]
        if ids:
            m = np.zeros((vocab,), bool)
            m[ids] = True
            logits = ops.where(ops.convert_to_tensor(m), _NEG, logits)
        logp = ops.reshape(ops.log_softmax(logits, axis=-1), (b, k, vocab))
        cand = ops.reshape(ops.expand_dims(alive_logp, -1) + logp, (b, k * vocab))
        top_logp, top_idx = ops.top_k(cand, 2 * k)                  # [B, 2K]
        top_idx = ops.cast(top_idx, "int32")
        parent = top_idx // vocab
        token = top_idx % vocab
        here = ops.reshape(positions == i, (1, 1, length))
        cand_seq = ops.where(here, ops.expand_dims(token, -1), gather_beams(alive_seq, parent))
        is_eos = token == eos_id
        last = ops.expand_dims(i + 1 >= max_len, 1)                  # [B, 1]
        finishing = ops.logical_or(is_eos, last)
        cand_score = ops.where(finishing, top_logp / length_penalty_factor(i + 1, alpha), _NEG)

        # alive: the best K candidates that did not end with EOS
        a_logp, a_idx = ops.top_k(ops.where(is_eos, _NEG, top_logp), k)
        a_idx = ops.cast(a_idx, "int32")
        new_alive_seq = gather_beams(cand_seq, a_idx)
        new_parent = ops.take_along_axis(parent, a_idx, axis=1)
        new_x = ops.reshape(ops.take_along_axis(token, a_idx, axis=1), (b * k,))
        flat = ops.reshape(batch_base + new_parent, (b * k,))
        new_cache = keras.tree.map_structure(lambda c: ops.take(c, flat, axis=axis), new_cache)

        # finished: best K of the old finished and the finishing candidates
        all_score = ops.concatenate([fin_score, cand_score], axis=1)
        f_score, f_idx = ops.top_k(all_score, k)
        f_seq = gather_beams(ops.concatenate([fin_seq, cand_seq], axis=1), ops.cast(f_idx, "int32"))

        # examples that had stopped keep their state
        keep = ops.expand_dims(done, 1)
        keep3 = ops.expand_dims(keep, 2)
        alive_seq = ops.where(keep3, alive_seq, new_alive_seq)
        alive_logp = ops.where(keep, alive_logp, a_logp)
        fin_seq = ops.where(keep3, fin_seq, f_seq)
        fin_score = ops.where(keep, fin_score, f_score)
        cant_improve = (a_logp[:, 0] / max_lp) <= f_score[:, k - 1]
        done = ops.logical_or(done, ops.logical_or(last[:, 0], cant_improve))
        return i + 1, t + 1, new_x, new_cache, alive_seq, alive_logp, fin_seq, fin_score, done

    alive_logp0 = ops.concatenate([ops.zeros((b, 1)), ops.full((b, k - 1), _NEG)], axis=1)
    state = (ops.zeros((), "int32"), ops.cast(start, "int32"), ops.repeat(x0, k, axis=0), cache,
             ops.full((b, k, length), pad_id, "int32"), alive_logp0,
             ops.full((b, k, length), pad_id, "int32"), ops.full((b, k), _NEG, "float32"),
             max_len <= 0)
    state = ops.while_loop(cond, body, state)
    fin_seq, fin_score = state[6], state[7]
    if return_all:
        return fin_seq, fin_score
    return fin_seq[:, 0], fin_score[:, 0]
