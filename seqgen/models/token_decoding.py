"""What the token decoders (Transformer, ByteNet) share: prompts and teacher forcing, the
noise drawn before decoding, the compiled token loop, the naive reference loop and the
masked loss.  Length buckets (powers of two) keep the number of compiled shapes small.
"""
import keras
import numpy as np
from keras import ops

from seqgen.core.decoding import decode_loop, time_slice
from seqgen.core.sampling import sample_logits
from seqgen.data.tokenizers import PAD_ID


def masked_token_loss(y, y_pred, sample_weight=None, pad_id=PAD_ID, extra_losses=(), label_smoothing=0.0):
    """Mean cross-entropy (nats per token) of targets ``y [B, T]`` under
    logits ``y_pred [B, T, V]``, ignoring targets equal to ``pad_id``;
    ``sample_weight`` (``[B]`` or ``[B, T]``) weights the mean.  ``label_smoothing`` ``e``: the target is
    ``1 - e`` on the token and ``e`` spread evenly over the vocabulary (a training objective; held-out
    figures are plain NLL)."""
    y = ops.cast(y, "int32")
    logits = ops.cast(y_pred, "float32")
    ce = ops.sparse_categorical_crossentropy(y, logits, from_logits=True)
    if label_smoothing:
        uniform = -ops.mean(ops.log_softmax(logits, axis=-1), axis=-1)
        ce = (1.0 - float(label_smoothing)) * ce + float(label_smoothing) * uniform
    w = ops.cast(ops.not_equal(y, pad_id), ce.dtype)
    if sample_weight is not None:
        sw = ops.cast(sample_weight, ce.dtype)
        if len(sw.shape) == 1:
            sw = ops.expand_dims(sw, -1)
        w = w * ops.broadcast_to(sw, ops.shape(ce))
    loss = ops.sum(ce * w) / ops.maximum(ops.sum(w), 1e-12)
    for extra in extra_losses:
        loss = loss + ops.cast(ops.sum(extra), loss.dtype)
    return loss


def bucket_length(n, minimum=16):
    """Smallest power of two ``>= n`` (at least ``minimum``): nearby lengths
    share one compiled function."""
    size = int(minimum)
    while size < n:
        size *= 2
    return size


def prepare_prompts(prompt_ids, batch_size, bos_id, eos_id, pad_id):
    """Prompts as a list of 1-D int32 arrays (content tokens, no BOS).

    Accepts None (``batch_size`` empty prompts), one sequence (list / 1-D
    array), a list of sequences, or a ``[B, P]`` array padded with ``pad_id``.
    A leading BOS is dropped (generation always starts from BOS); PAD entries
    are dropped; an EOS inside a prompt is an error.
    """
    if prompt_ids is None:
        return [np.zeros((0,), np.int32) for _ in range(int(batch_size))]
    if hasattr(prompt_ids, "shape") and not isinstance(prompt_ids, np.ndarray):
        prompt_ids = ops.convert_to_numpy(prompt_ids)
    if isinstance(prompt_ids, np.ndarray):
        rows = [prompt_ids] if prompt_ids.ndim == 1 else list(prompt_ids)
    elif len(prompt_ids) and np.ndim(prompt_ids[0]) == 0:
        rows = [prompt_ids]
    else:
        rows = list(prompt_ids)
    if not rows:
        raise ValueError("prompt_ids is empty: pass None for unconditional generation")
    out = []
    for r in rows:
        r = np.asarray(r, np.int64).reshape(-1)
        r = r[r != pad_id]
        if r.size and r[0] == bos_id:
            r = r[1:]
        if np.any(r == eos_id):
            raise ValueError("a prompt contains the EOS id")
        out.append(r.astype(np.int32))
    if len(out) == 1 and int(batch_size) > 1:
        out = out * int(batch_size)
    return out


def uniforms(batch, n, seed):
    """The sampling uniforms ``[B, N]`` drawn before decoding (numpy)."""
    return np.asarray(ops.convert_to_numpy(
        keras.random.uniform((int(batch), int(n)), seed=int(seed))), np.float32)


def pad_time(x, length, value):
    """Pad/crop numpy ``x [B, n, ...]`` to ``length`` on axis 1 with ``value``."""
    if x.shape[1] >= length:
        return x[:, :length]
    pad = np.full((x.shape[0], length - x.shape[1]) + x.shape[2:], value, x.dtype)
    return np.concatenate([x, pad], axis=1)


def forced_tokens(prompts, max_new_tokens, length, pad_id):
    """Teacher forcing for the token loop: ``forced [B, L]`` and ``mask [B, L]``.

    Position ``t`` of row ``b`` is forced to the prompt token while
    ``t < P_b`` and to ``pad_id`` from ``P_b + max_new_tokens`` on (that row
    is then done); in between the model samples.
    """
    b = len(prompts)
    forced = np.full((b, length), pad_id, np.int32)
    mask = np.zeros((b, length), bool)
    for i, p in enumerate(prompts):
        forced[i, :len(p)] = p
        mask[i, :len(p)] = True
        mask[i, len(p) + max_new_tokens:] = True
    return forced, mask


def finalize_tokens(samples, starts, max_new_tokens, eos_id, pad_id, stop_at_eos):
    """Cut each row's new tokens out of the position buffer ``samples [B, L]``:
    ``[B, max_new_tokens]`` int32, PAD after the first EOS when ``stop_at_eos``."""
    b = samples.shape[0]
    out = np.full((b, max_new_tokens), pad_id, np.int32)
    for i in range(b):
        row = np.asarray(samples[i, starts[i]:starts[i] + max_new_tokens], np.int32)
        if stop_at_eos:
            hits = np.nonzero(row == eos_id)[0]
            if hits.size:
                row = row[:hits[0] + 1]
        out[i, :len(row)] = row
    return out


def ban_tokens(logits, ids):
    """``logits [..., V]`` with the classes ``ids`` (e.g. PAD and BOS, never
    valid outputs) set to -1e9 so that sampling cannot pick them."""
    vocab = logits.shape[-1]
    ids = [int(i) for i in ids if 0 <= int(i) < vocab]
    if not ids:
        return logits
    banned = np.zeros((vocab,), bool)
    banned[ids] = True
    return ops.where(ops.convert_to_tensor(banned), ops.cast(-1e9, logits.dtype), logits)


def token_decode_loop(step, x0, cache, *, forced, mask, num_steps, settings, eos_id, pad_id, noise=None,
                      stop_at_eos=True, context=None, start=0, banned=(), length=None):
    """:func:`seqgen.core.decoding.decode_loop` for token models with teacher forcing.

    ``step(x_t, cache, t, context_t) -> (logits_t, cache)``; ``forced`` /
    ``mask`` ``[B, L]`` override the sampled token where ``mask`` is True
    (see :func:`forced_tokens`); ``settings`` (a
    :class:`~seqgen.core.sampling.SamplingSettings`) picks the others from
    the uniforms ``noise``.  With ``stop_at_eos`` the loop ends once every row
    has produced EOS or a forced PAD.  ``banned`` ids are never sampled (see
    :func:`ban_tokens`).
    """
    ctx = (forced, mask) if context is None else (forced, mask, context)

    def step_fn(x_t, c, t, ctx_t):
        logits, c = step(x_t, c, t, ctx_t[2] if len(ctx_t) > 2 else None)
        return (logits, ctx_t[0], ctx_t[1]), c

    def sample_fn(params, u):
        logits, f, m = params
        s = settings.sample(ban_tokens(logits, banned), u)
        return ops.where(m, ops.cast(f, "int32"), s)

    def stop_fn(s):
        return ops.logical_or(ops.equal(s, eos_id), ops.equal(s, pad_id))

    finished = stop_fn if stop_at_eos else None
    return decode_loop(step_fn, sample_fn, x0, cache, noise=noise, context=ctx, length=length,
                       num_steps=num_steps, start=start, finished_fn=finished)


def naive_decode(model, forward, b, n, length, window, forced, mask, noise, settings, stop_at_eos, context=None):
    """Reference token decoding shared by the text decoders: ``forward(x_win, context_win) -> logits``
    recomputed over the whole prefix (power-of-two buckets, at most ``window``) for every token."""
    tokens = np.full((b, length + 1), model.pad_id, np.int32)
    tokens[:, 0] = model.bos_id
    samples = np.zeros((b, length), np.int32)
    done = np.zeros((b,), bool)
    temp, tp = np.float32(settings.temperature), np.float32(settings.top_p)
    top_k, use_top_p = int(settings.top_k), settings.uses_top_p
    for t in range(n):
        size = min(bucket_length(t + 1), window)

        def fn(x_win, ctx_win, pos, u, temp_in, tp_in):
            logits = forward(x_win, ctx_win)
            # ops.take, not a slice: a position given as an argument would be
            # compiled in as a constant under TF/XLA
            l_t = ops.squeeze(ops.take(logits, ops.reshape(pos, (1,)), axis=1), 1)
            l_t = ban_tokens(l_t, (model.pad_id, model.bos_id))
            return sample_logits(l_t, u, temp_in, top_k, tp_in if use_top_p else 1.0)

        run = model._get_compiled(("naive", b, size, top_k, use_top_p, context is None), fn)
        s = ops.convert_to_numpy(run(tokens[:, :size], None if context is None else context[:, :size],
                                     np.int32(t), noise[:, t], temp, tp))
        s = np.where(mask[:, t], forced[:, t], s).astype(np.int32)
        samples[:, t] = s
        tokens[:, t + 1] = s
        if stop_at_eos:
            done |= (s == model.eos_id) | (s == model.pad_id)
            if done.all():
                break
    return samples


def teacher_forced_logits(step, cache, x, vocab_size, context=None):
    """Logits ``[B, T, V]`` of every position of ``x [B, T]`` computed by the
    incremental ``step`` (cache path), for checking it against the full
    forward.  ``context``: per-step tensors ``[B, T, ...]`` or None."""
    x = ops.cast(ops.convert_to_tensor(x), "int32")
    b, length = x.shape[0], x.shape[1]
    buf = ops.zeros((b, length, vocab_size), "float32")

    def body(i, state):
        c, out = state
        ctx_t = None if context is None else keras.tree.map_structure(
            lambda a: time_slice(a, i), context)
        logits, c = step(time_slice(x, i), c, i, ctx_t)
        out = ops.slice_update(out, [0, i, 0], ops.expand_dims(ops.cast(logits, out.dtype), 1))
        return c, out

    return ops.fori_loop(0, length, body, (cache, buf))[1]


def generation_plan(model, prompt_ids, max_new_tokens, batch_size, seed, max_length=None):
    """What a token decoder's ``generate`` sets up before decoding: ``(prompts, starts, n, length,
    forced, mask, noise)``: the prompts, where each row's new tokens start, the positions to decode,
    the compiled length (a power-of-two bucket, at most ``max_length``), teacher forcing and the
    uniforms drawn before the loop."""
    prompts = prepare_prompts(prompt_ids, batch_size, model.bos_id, model.eos_id, model.pad_id)
    n_new = int(max_new_tokens)
    if n_new < 1:
        raise ValueError("max_new_tokens must be >= 1")
    starts = np.array([len(p) for p in prompts], np.int32)
    n = int(starts.max()) + n_new
    if max_length is not None and n > max_length:
        raise ValueError(f"prompt + max_new_tokens = {n} exceeds max_length={max_length}")
    length = bucket_length(n) if max_length is None else min(bucket_length(n), max_length)
    forced, mask = forced_tokens(prompts, n_new, length, model.pad_id)
    noise = pad_time(uniforms(len(prompts), n, seed), length, 0.5)
    return prompts, starts, n, length, forced, mask, noise
