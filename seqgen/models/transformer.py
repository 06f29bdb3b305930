"""Decoder-only Transformer language model with key/value-cached generation.

Architecture (pre-LayerNorm, Vaswani et al. 2017 / GPT-2 style)::

    x [B, T] token ids (x[0] = BOS, x[t] = token t-1)
      -> token embedding + position (learned table or sinusoids;   [B, T, d]
         none with rotary positions, which rotate each attention's queries and keys instead)
      -> num_layers x [ h += Dropout(Attn(LN(h)));  h += Dropout(FF(LN(h))) ]
      -> LN -> logits = h E^T + b   (tied to the token embedding)  [B, T, V]

Position ``t`` predicts token ``t``; training targets are ``x`` shifted by
one with EOS at the end and PAD after it (PAD targets are ignored by
:meth:`TransformerDecoder.compute_loss`).

Generation (:meth:`TransformerDecoder.generate`) follows the
``seqgen.core.decoding`` protocol:

* ``method="cached"``: cache = one key/value buffer pair ``[B, T, H, D]`` per
  layer (:class:`seqgen.layers.attention.CausalSelfAttention`), ``T`` the
  length of this generation rounded up to a power of two.  The prompt is
  consumed by the same compiled ``while_loop`` as the new tokens: while
  ``t`` is inside a row's prompt, the sampled token is replaced by the
  prompt token (teacher forcing through the step's ``context``), so rows
  with prompts of different lengths batch together.
* ``method="naive"``: the reference: for every token the full network is
  recomputed over the whole prefix (one compiled forward per power-of-two
  prefix length).

Both draw their uniforms up front (``keras.random.uniform((B, N), seed)``)
and sample with :func:`seqgen.core.sampling.sample_logits`, so they give the same
tokens for the same seed.

The pieces it shares with :mod:`seqgen.models.bytenet` (prompt handling,
the token decoding loop, the masked loss) are in
:mod:`seqgen.models.token_decoding`.
"""
import math

import keras
import numpy as np
from keras import ops

from seqgen.core.beam_search import beam_search
from seqgen.core.methods import CACHED, NAIVE, NATIVE
from seqgen.core.sampling import SamplingSettings
from seqgen.layers.attention import CausalSelfAttention, normal_or_glorot
from seqgen.models.decoder import Decoder
from seqgen.models.token_decoding import (bucket_length, finalize_tokens, generation_plan, masked_token_loss,
                                          naive_decode, prepare_prompts, teacher_forced_logits, token_decode_loop)
from seqgen.data.tokenizers import BOS_ID, BYTE_VOCAB_SIZE, EOS_ID, PAD_ID
from seqgen.models.replica_loss import per_replica_share

__all__ = ["TransformerDecoder", "TransformerBlock"]

#: how a Transformer knows positions (``positions``)
POSITIONS = ("learned", "sinusoidal", "rotary")


# =========================================================== shared helpers
@keras.saving.register_keras_serializable(package="seqgen")
def gelu_tanh(x):
    """The GELU's tanh approximation (GPT-2's original form)."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="seqgen")
def relu2(x):
    """The squared ReLU (So et al. 2021, "Primer")."""
    return ops.square(ops.relu(x))


#: the feed-forward activations a Transformer may use (name -> Keras activation)
ACTIVATIONS = {"gelu": keras.activations.gelu, "gelu_tanh": gelu_tanh, "relu": keras.activations.relu,
               "relu2": relu2}


class TransformerBlock(keras.layers.Layer):
    """Pre-LN block: ``h += Drop(Attn(LN(h)))``; ``h += Drop(W2 act(W1 LN(h)))`` (``act``: the exact GELU by
    default; :data:`ACTIVATIONS`)."""

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, activation="gelu", init_std=None, out_std=None,
                 rotary=False, **kwargs):
        super().__init__(**kwargs)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.d_model = int(d_model)
        self.num_heads = int(num_heads)
        self.d_ff = int(d_ff)
        self.dropout_rate = float(dropout)
        self.init_std = None if init_std is None else float(init_std)
        self.out_std = None if out_std is None else float(out_std)
        self.rotary = bool(rotary)
        self.ln1 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln1")
        self.attn = CausalSelfAttention(self.num_heads, dropout=self.dropout_rate, init_std=self.init_std,
                                        out_std=self.out_std, rotary=self.rotary, name="attn")
        self.ln2 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln2")
        self.ff1 = keras.layers.Dense(self.d_ff, activation=ACTIVATIONS[activation], name="ff1",
                                      kernel_initializer=normal_or_glorot(self.init_std))
        self.ff2 = keras.layers.Dense(self.d_model, name="ff2", kernel_initializer=normal_or_glorot(self.out_std))
        self.drop = keras.layers.Dropout(self.dropout_rate)

    def build(self, input_shape=None):
        shape = (None, None, self.d_model)
        self.ln1.build(shape)
        self.attn.build(shape)
        self.ln2.build(shape)
        self.ff1.build(shape)
        self.ff2.build((None, None, self.d_ff))
        self.built = True

    def call(self, h, training=False):
        h = h + self.drop(self.attn(self.ln1(h), training=training), training=training)
        return h + self.drop(self.ff2(self.ff1(self.ln2(h))), training=training)

    def step(self, h_t, cache, t):
        """``h_t [B, d]`` at position ``t`` -> ``(h_t, (keys, values))``."""
        a, cache = self.attn.step(self.ln1(h_t), cache, t)
        h_t = h_t + a
        return h_t + self.ff2(self.ff1(self.ln2(h_t))), cache

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(d_model=self.d_model, num_heads=self.num_heads, d_ff=self.d_ff,
                      dropout=self.dropout_rate, activation=self.activation, init_std=self.init_std,
                      out_std=self.out_std, rotary=self.rotary)
        return config


# ==================================================================== model
@keras.saving.register_keras_serializable(package="seqgen")
class TransformerDecoder(Decoder, keras.Model):
    """Decoder-only Transformer LM (byte vocabulary by default).

    Args:
        vocab_size: ``V`` (259 = bytes + PAD/BOS/EOS, see :mod:`seqgen.data.tokenizers`).
        num_layers, d_model, num_heads: size; ``d_model % num_heads == 0``.
        d_ff: feed-forward width (default ``4 * d_model``).
        max_length: longest sequence (positions ``0 .. max_length-1``).
        dropout: residual and attention-weight dropout (training only).
        positions: ``"learned"`` (table), ``"sinusoidal"`` (added to the embedding) or ``"rotary"`` (nothing
            added; every attention rotates its queries and keys by their positions, :func:`seqgen.layers.attention.rotate`).
        tie_embeddings: output projection = transposed token embedding
            (plus an output bias); False = separate ``Dense(V)``.
        label_smoothing: of the training loss (0 = off). Validation and evaluation report plain NLL; the
            logged training loss (and its curve) is the smoothed one.
        activation: the feed-forward nonlinearity: ``gelu`` (exact, as GPT-2 and nanoGPT), ``gelu_tanh``
            (its tanh approximation), ``relu`` or ``relu2`` (the squared ReLU of Primer).
        init_std: None (default): Glorot-uniform kernels and token embeddings of standard deviation
            ``d_model ** -0.5``. A number (GPT-2 and nanoGPT use 0.02): every kernel and the token embedding
            drawn from a normal of that deviation, and the two projections that write into the residual
            stream (attention output, second feed-forward) of ``init_std / sqrt(2 * num_layers)``.
        pad_id, bos_id, eos_id: special ids.
    """

    METHODS = (CACHED, NAIVE, NATIVE)

    def __init__(self, vocab_size=BYTE_VOCAB_SIZE, num_layers=6, d_model=384, num_heads=6,
                 d_ff=None, max_length=1024, dropout=0.1, positions="learned",
                 tie_embeddings=True, pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, label_smoothing=0.0,
                 activation="gelu", init_std=None, **kwargs):
        super().__init__(**kwargs)
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {', '.join(POSITIONS)}, got {positions!r}")
        if int(d_model) % int(num_heads):
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        if positions == "sinusoidal" and int(d_model) % 2:
            raise ValueError("sinusoidal positions need an even d_model")
        if positions == "rotary" and (int(d_model) // int(num_heads)) % 2:
            raise ValueError(f"rotary positions need an even head size, got d_model/num_heads = "
                             f"{int(d_model) // int(num_heads)}")
        self.vocab_size = int(vocab_size)
        self.num_layers = int(num_layers)
        self.d_model = int(d_model)
        self.num_heads = int(num_heads)
        self.d_ff = 4 * self.d_model if d_ff is None else int(d_ff)
        self.max_length = int(max_length)
        self.dropout_rate = float(dropout)
        self.positions = positions
        self.tie_embeddings = bool(tie_embeddings)
        self.label_smoothing = float(label_smoothing)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.pad_id, self.bos_id, self.eos_id = int(pad_id), int(bos_id), int(eos_id)
        self.init_std = None if init_std is None else float(init_std)
        if self.init_std is not None and not self.init_std > 0:
            raise ValueError(f"init_std must be > 0 (or None), got {init_std!r}")
        out_std = None if self.init_std is None else self.init_std / math.sqrt(2 * self.num_layers)

        init = keras.initializers.RandomNormal(stddev=self.init_std or self.d_model ** -0.5)
        self.token_embedding = keras.layers.Embedding(self.vocab_size, self.d_model,
                                                      embeddings_initializer=init,
                                                      name="token_embedding")
        self.position_embedding = (
            keras.layers.Embedding(self.max_length, self.d_model, name="position_embedding",
                                   embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02))
            if positions == "learned" else None)
        self.embed_dropout = keras.layers.Dropout(self.dropout_rate)
        self.blocks = [TransformerBlock(self.d_model, self.num_heads, self.d_ff, self.dropout_rate,
                                        activation=self.activation, init_std=self.init_std, out_std=out_std,
                                        rotary=positions == "rotary", name=f"block_{i}")
                       for i in range(self.num_layers)]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        self.output_projection = (None if self.tie_embeddings
                                  else keras.layers.Dense(self.vocab_size, use_bias=False,
                                                          name="output_projection"))
        self._decode_fns = {}
        self.build()

    def build(self, input_shape=None):
        self.token_embedding.build((None, None))
        if self.position_embedding is not None:
            self.position_embedding.build((None,))
        for block in self.blocks:
            block.build()
        self.final_norm.build((None, None, self.d_model))
        if self.output_projection is not None:
            self.output_projection.build((None, None, self.d_model))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,),
                                           initializer="zeros")
        self.built = True

    # --------------------------------------------------------------- forward
    def _add_position(self, h, pos):
        """``h [..., d]`` plus the position vectors of int positions ``pos`` (broadcast over the batch);
        ``h`` itself with rotary positions (the attention layers rotate instead)."""
        if self.positions == "rotary":
            return h
        return h + ops.expand_dims(self._position(pos), 0)

    def _position(self, pos):
        """Position vectors for int positions ``pos [...]`` -> ``[..., d]``."""
        if self.position_embedding is not None:
            return self.position_embedding(pos)
        half = self.d_model // 2
        freqs = ops.exp(ops.arange(half, dtype="float32") * (-math.log(10000.0) / half))
        angles = ops.expand_dims(ops.cast(pos, "float32"), -1) * freqs
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def _logits(self, h):
        h = self.final_norm(h)
        if self.output_projection is None:
            logits = ops.matmul(h, ops.transpose(self.token_embedding.embeddings))
        else:
            logits = self.output_projection(h)
        return logits + self.output_bias

    def call(self, inputs, training=False):
        """``{"x": [B, T] ids}`` (or the ids) -> logits ``[B, T, V]``."""
        x = inputs["x"] if isinstance(inputs, dict) else inputs
        x = ops.cast(x, "int32")
        length = x.shape[1]
        if length is not None and length > self.max_length:
            raise ValueError(f"sequence length {length} exceeds max_length={self.max_length}")
        pos = ops.arange(ops.shape(x)[1], dtype="int32")
        h = self._add_position(self.token_embedding(x), pos)
        h = self.embed_dropout(h, training=training)
        for block in self.blocks:
            h = block(h, training=training)
        return self._logits(h)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean cross-entropy (nats per token) ignoring PAD targets;
        ``sample_weight [B]`` or ``[B, T]`` weights the mean.  Regularization
        losses are added; a loss given to ``compile`` is ignored."""
        return per_replica_share(masked_token_loss(y, y_pred, sample_weight, self.pad_id, self.losses,
                                                   self.label_smoothing if training else 0.0))

    # ------------------------------------------------------- incremental step
    def initial_cache(self, batch_size, length=None):
        """One zero ``(keys, values)`` pair ``[B, length, H, D]`` per layer
        (``length`` defaults to ``max_length``)."""
        length = self.max_length if length is None else int(length)
        if length > self.max_length:
            raise ValueError(f"cache length {length} exceeds max_length={self.max_length}")
        return tuple(b.attn.initial_cache(batch_size, length) for b in self.blocks)

    def decode_step(self, x_t, cache, t, context_t=None):
        """The ``seqgen.core.decoding`` step: token ``x_t [B]`` at position ``t``
        -> ``(logits_t [B, V], cache)``."""
        t = ops.cast(t, "int32")
        h = self._add_position(self.token_embedding(ops.cast(x_t, "int32")), t)
        new_cache = []
        for block, c in zip(self.blocks, cache):
            h, c = block.step(h, c, t)
            new_cache.append(c)
        return self._logits(h), tuple(new_cache)

    def cached_logits(self, x):
        """Logits ``[B, T, V]`` of ``x [B, T]`` computed token by token through
        the key/value cache (compiled); equals ``self(x)`` up to rounding."""
        x = np.asarray(x, np.int32)
        b, length = x.shape

        def fn(x_in):
            return teacher_forced_logits(self.decode_step, self.initial_cache(b, length),
                                         x_in, self.vocab_size)

        return ops.convert_to_numpy(self._get_compiled(("logits", b, length), fn)(x))

    # ------------------------------------------------------------ generation

    def generate(self, prompt_ids=None, max_new_tokens=64, temperature=1.0, top_k=0, top_p=1.0,
                 seed=0, method=CACHED, stop_at_eos=True, batch_size=1, weight_dtype="float32"):
        """Sample continuations; returns int32 ``[B, max_new_tokens]``.

        Args:
            prompt_ids: None, one sequence, a list of sequences (lengths may
                differ) or a ``[B, P]`` array padded with PAD; a leading BOS
                is optional (decoding always starts from BOS).
            max_new_tokens: tokens generated after each prompt; prompt length
                plus ``max_new_tokens`` must not exceed ``max_length``.
            temperature: 0 = greedy (PAD and BOS are never generated).  top_k: keep the k most likely (0 = off).
            top_p: nucleus mass (1 = off).  seed: seed of the uniforms.
            method: ``"cached"`` (key/value cache), ``"naive"`` (reference) or ``"native"`` (the cached
                loop in C, :mod:`seqgen.native.transformer`: the same plan, uniforms and sampler; logits
                equal to float tolerance).
            weight_dtype: ``"native"``'s storage of the weight matrices: ``"float32"``, ``"bfloat16"``
                or ``"int8"`` (the arithmetic stays float32).
            stop_at_eos: end a row at its first EOS (kept; PAD after it) and
                stop once every row has ended.
            batch_size: rows when ``prompt_ids`` is None or one sequence.
        """
        self.check_method(method)
        if weight_dtype != "float32" and method != NATIVE:
            raise ValueError(f"weight_dtype {weight_dtype!r} needs method 'native' (method {method!r} runs float32)")
        prompts, starts, n, length, forced, mask, noise = generation_plan(
            self, prompt_ids, max_new_tokens, batch_size, seed, max_length=self.max_length)
        b, n_new = len(prompts), int(max_new_tokens)
        use_top_p = float(top_p) < 1.0
        top_k = int(top_k)
        if method == CACHED:
            def fn(x0, forced_in, mask_in, noise_in, steps, temp, tp):
                settings = SamplingSettings(temp, top_k, tp if use_top_p else 1.0)
                return token_decode_loop(
                    self.decode_step, x0, self.initial_cache(b, length), forced=forced_in, mask=mask_in,
                    num_steps=steps, settings=settings, eos_id=self.eos_id, pad_id=self.pad_id, noise=noise_in,
                    stop_at_eos=stop_at_eos, banned=(self.pad_id, self.bos_id))[0]

            run = self._get_compiled(("cached", b, length, top_k, use_top_p, bool(stop_at_eos)), fn)
            samples = ops.convert_to_numpy(run(
                np.full((b,), self.bos_id, np.int32), forced, mask, noise, np.int32(n),
                np.float32(temperature), np.float32(top_p)))
        elif method == NATIVE:
            from seqgen.native.reuse import loop_for
            from seqgen.native.transformer import NativeTransformerLoop

            samples, _ = loop_for(self, NativeTransformerLoop, weight_dtype)(
                np.full((b,), self.bos_id, np.int32), forced, mask, noise, n, temperature, top_k,
                float(top_p), stop_at_eos)
        else:
            samples = self._generate_naive(b, n, forced, mask, noise,
                                           SamplingSettings(temperature, top_k, float(top_p)), stop_at_eos)
        return finalize_tokens(samples, starts, n_new, self.eos_id, self.pad_id, stop_at_eos)

    def generate_beam(self, prompt_ids=None, max_new_tokens=64, beam_size=4, length_penalty=0.6,
                      batch_size=1, return_scores=False):
        """Beam search continuation (:func:`seqgen.core.beam_search.beam_search`).

        The prompts (all of the same length here) are first consumed by the
        cached loop (teacher forcing), then the search runs from that cache.
        Returns int32 ``[B, max_new_tokens]`` (EOS included, PAD after it)
        and, with ``return_scores``, the normalised log-probabilities ``[B]``.
        """
        prompts = prepare_prompts(prompt_ids, batch_size, self.bos_id, self.eos_id, self.pad_id)
        b = len(prompts)
        p_len = len(prompts[0])
        if any(len(p) != p_len for p in prompts):
            raise ValueError("generate_beam needs prompts of equal length")
        n_new = int(max_new_tokens)
        n = p_len + n_new
        if n > self.max_length:
            raise ValueError(f"prompt + max_new_tokens = {n} exceeds max_length={self.max_length}")
        length = min(bucket_length(n), self.max_length)
        k, alpha = int(beam_size), float(length_penalty)
        prompt = np.stack(prompts).astype(np.int32).reshape(b, p_len)

        def fn(prompt_in):
            cache = self.initial_cache(b, length)
            x = ops.full((b,), self.bos_id, "int32")
            if p_len:
                mask = ops.ones((b, p_len), "bool")
                # forced everywhere: temperature 0 needs no uniforms
                _, x, cache, _ = token_decode_loop(
                    self.decode_step, x, cache, forced=prompt_in, mask=mask, num_steps=p_len,
                    settings=SamplingSettings(temperature=0.0), eos_id=self.eos_id, pad_id=self.pad_id,
                    stop_at_eos=False, length=p_len)
            return beam_search(self.decode_step, cache, x, beam_size=k, length=n_new,
                               eos_id=self.eos_id, length_penalty=alpha, pad_id=self.pad_id,
                               start=p_len, cache_batch_axis=0, banned=(self.pad_id, self.bos_id))

        run = self._get_compiled(("beam", b, p_len, n_new, length, k, alpha), fn)
        seqs, scores = run(prompt)
        seqs = finalize_tokens(ops.convert_to_numpy(seqs), np.zeros((b,), np.int32), n_new,
                               self.eos_id, self.pad_id, True)
        return (seqs, ops.convert_to_numpy(scores)) if return_scores else seqs

    def _generate_naive(self, b, n, forced, mask, noise, settings, stop_at_eos):
        return naive_decode(self, lambda x_win, _: self(x_win, training=False), b, n, forced.shape[1],
                            self.max_length, forced, mask, noise, settings, stop_at_eos)

    # ---------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size, num_layers=self.num_layers, d_model=self.d_model,
            num_heads=self.num_heads, d_ff=self.d_ff, max_length=self.max_length,
            dropout=self.dropout_rate, positions=self.positions,
            tie_embeddings=self.tie_embeddings, pad_id=self.pad_id, bos_id=self.bos_id,
            eos_id=self.eos_id, label_smoothing=self.label_smoothing, activation=self.activation,
            init_std=self.init_std)
        return config
