"""ByteNet (Kalchbrenner et al., 2016, "Neural Machine Translation in Linear Time").

Architecture::

    source s [B, S] -> embedding -> encoder: num_sets x [ByteNetBlock("same", dilation d)
                                                         for d in dilations]
                    -> enc [B, S, d_model], zero at padded positions
    target_in [B, T] (BOS, t_0, ..., t_{T-2}) -> embedding
                    + enc aligned on time (position t gets enc[t]; zero for
                      t >= |s|: "dynamic unfolding", the target may be longer
                      than the source)
                    -> decoder: num_sets x [ByteNetBlock(causal, dilation d) ...]
                    -> LN -> ReLU -> Dense(V) -> logits [B, T, V]

``encoder=False`` gives the decoder-only byte LM (``{"x": ids}`` input).
Here the encoder representation is added to the target embedding (the
paper concatenates them; adding is the same up to a linear map of the
input and keeps the decoder width at ``d_model``).

Decoding follows ``seqgen.core.decoding``: one rotating queue per decoder block
(O(layers) work per token); the encoder output enters each step as the
per-step ``context``.  :meth:`ByteNet.translate` unfolds the decoder over
the source up to ``a*|s| + b`` target tokens (per row), stopping at EOS;
:meth:`ByteNet.generate` continues prompts with the LM.
"""
import keras
import numpy as np
from keras import ops

from seqgen.core.beam_search import beam_search
from seqgen.core.methods import CACHED, NAIVE, NATIVE
from seqgen.core.sampling import SamplingSettings
from seqgen.layers.bytenet_block import ByteNetBlock
from seqgen.models.decoder import Decoder
from seqgen.models.token_decoding import (bucket_length, finalize_tokens, generation_plan, masked_token_loss,
                                          naive_decode, pad_time, prepare_prompts, teacher_forced_logits,
                                          token_decode_loop, uniforms)
from seqgen.data.tokenizers import BOS_ID, BYTE_VOCAB_SIZE, EOS_ID, PAD_ID
from seqgen.models.replica_loss import per_replica_share

__all__ = ["ByteNet"]


@keras.saving.register_keras_serializable(package="seqgen")
class ByteNet(Decoder, keras.Model):
    """ByteNet translation model or byte LM.

    Args:
        vocab_size: ``V`` (259: bytes + PAD/BOS/EOS).
        d_model: residual channels (blocks work at ``d_model/2`` inside).
        dilations: one cycle of dilation rates; repeated ``num_sets`` times
            in the encoder and in the decoder.
        kernel_size: decoder (causal) kernel; encoder_kernel_size: encoder kernel.
        encoder: True = source encoder + decoder; False = decoder-only LM.
        unfold_a, unfold_b: target bound ``floor(a*|s| + b)`` of translation.
        dropout: block output dropout (training only).
        label_smoothing: of the training loss (0 = off). Validation and evaluation report plain NLL; the
            logged training loss (and its curve) is the smoothed one.
        pad_id, bos_id, eos_id: special ids.
    """

    #: ``native`` (the loop in C) decodes the LM only; translation runs ``cached`` or ``naive``
    METHODS = (CACHED, NAIVE, NATIVE)

    def __init__(self, vocab_size=BYTE_VOCAB_SIZE, d_model=256, dilations=(1, 2, 4, 8, 16),
                 num_sets=3, kernel_size=3, encoder_kernel_size=3, encoder=True, unfold_a=1.2,
                 unfold_b=10, dropout=0.0, pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, label_smoothing=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.d_model = int(d_model)
        self.dilation_cycle = [int(d) for d in dilations]
        self.num_sets = int(num_sets)
        self.kernel_size = int(kernel_size)
        self.encoder_kernel_size = int(encoder_kernel_size)
        self.use_encoder = bool(encoder)
        self.unfold_a = float(unfold_a)
        self.unfold_b = float(unfold_b)
        self.dropout_rate = float(dropout)
        self.label_smoothing = float(label_smoothing)
        self.pad_id, self.bos_id, self.eos_id = int(pad_id), int(bos_id), int(eos_id)
        if self.num_sets < 1 or not self.dilation_cycle:
            raise ValueError("need num_sets >= 1 and at least one dilation")
        if self.kernel_size < 2:
            raise ValueError(f"decoder kernel_size must be >= 2, got {kernel_size}")

        rates = self.dilation_cycle * self.num_sets
        self.target_embedding = keras.layers.Embedding(self.vocab_size, self.d_model,
                                                       name="target_embedding")
        self.source_embedding = (keras.layers.Embedding(self.vocab_size, self.d_model,
                                                        name="source_embedding")
                                 if self.use_encoder else None)
        self.encoder_blocks = ([ByteNetBlock(self.d_model, self.encoder_kernel_size, r, causal=False,
                                             dropout=self.dropout_rate, name=f"encoder_{i}")
                                for i, r in enumerate(rates)] if self.use_encoder else [])
        self.decoder_blocks = [ByteNetBlock(self.d_model, self.kernel_size, r, causal=True,
                                            dropout=self.dropout_rate, name=f"decoder_{i}")
                               for i, r in enumerate(rates)]
        self.head_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="head_norm")
        self.head_out = keras.layers.Dense(self.vocab_size, name="head_out")
        self._decode_fns = {}
        self.build()

    def build(self, input_shape=None):
        self.target_embedding.build((None, None))
        if self.source_embedding is not None:
            self.source_embedding.build((None, None))
        for block in self.encoder_blocks + self.decoder_blocks:
            block.build()
        self.head_norm.build((None, None, self.d_model))
        self.head_out.build((None, None, self.d_model))
        self.built = True

    @property
    def dilations(self):
        return self.dilation_cycle * self.num_sets

    @property
    def receptive_field(self):
        """Target tokens seen by one decoder output: ``1 + (k-1) * sum(dilations)``."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    # --------------------------------------------------------------- forward
    def encode(self, source, training=False):
        """``source [B, S]`` (PAD-padded) -> ``[B, S, d]``, zero at PAD positions."""
        if not self.use_encoder:
            raise ValueError("this ByteNet has no encoder (encoder=False)")
        source = ops.cast(source, "int32")
        valid = ops.not_equal(source, self.pad_id)
        h = self.source_embedding(source)
        for block in self.encoder_blocks:
            h = block(h, valid=valid, training=training)
        return h * ops.expand_dims(ops.cast(valid, h.dtype), -1)

    @staticmethod
    def _align(enc, length):
        """``enc [B, S, d]`` cut or zero-extended to ``length`` positions."""
        s = enc.shape[1]
        # the shortcut needs both lengths static (in a traced function the
        # target length can be a tensor: then pad and cut)
        if s is not None and isinstance(length, int) and s >= length:
            return enc[:, :length]
        zeros = ops.zeros_like(enc)[:, :1] * 0.0
        pad = ops.repeat(zeros, length, axis=1)
        return ops.concatenate([enc, pad], axis=1)[:, :length]

    def _head(self, h):
        return self.head_out(ops.relu(self.head_norm(h)))

    def decode_full(self, target_in, enc_aligned=None, training=False):
        """Decoder over ``target_in [B, T]`` with ``enc_aligned [B, T, d]`` (or None)."""
        h = self.target_embedding(ops.cast(target_in, "int32"))
        if enc_aligned is not None:
            h = h + enc_aligned
        for block in self.decoder_blocks:
            h = block(h, training=training)
        return self._head(h)

    def _unpack(self, inputs):
        if not isinstance(inputs, dict):
            if self.use_encoder:
                raise ValueError("ByteNet with an encoder needs {'source': ..., 'target_in': ...}")
            return None, inputs
        target = inputs.get("target_in", inputs.get("x"))
        if target is None:
            raise ValueError("inputs need a 'target_in' (or 'x') entry")
        source = inputs.get("source")
        if self.use_encoder and source is None:
            raise ValueError("this ByteNet has an encoder: inputs need a 'source' entry")
        return (source if self.use_encoder else None), target

    def call(self, inputs, training=False):
        """``{"source": [B, S], "target_in": [B, T]}`` (or ``{"x": [B, T]}``
        for the LM) -> logits ``[B, T, V]``."""
        source, target = self._unpack(inputs)
        enc = None
        if source is not None:
            enc = self._align(self.encode(source, training=training), ops.shape(target)[1])
        return self.decode_full(target, enc, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean cross-entropy (nats per token) ignoring PAD targets."""
        return per_replica_share(masked_token_loss(y, y_pred, sample_weight, self.pad_id, self.losses,
                                                   self.label_smoothing if training else 0.0))

    # ------------------------------------------------------- incremental step
    def initial_cache(self, batch_size):
        """One zero queue ``[(k-1)*dilation + 1, B, d/2]`` per decoder block."""
        return tuple(b.initial_cache(batch_size) for b in self.decoder_blocks)

    def decode_step(self, x_t, cache, t, enc_t=None):
        """The ``seqgen.core.decoding`` step: ``x_t [B]`` at position ``t``, with
        the encoder output of that position ``enc_t [B, d]`` (or None)
        -> ``(logits_t [B, V], cache)``."""
        h = self.target_embedding(ops.cast(x_t, "int32"))
        if enc_t is not None:
            h = h + enc_t
        new_cache = []
        for block, q in zip(self.decoder_blocks, cache):
            h, q = block.step(h, q, t)
            new_cache.append(q)
        return self._head(h), tuple(new_cache)

    def cached_logits(self, target_in, source=None):
        """Logits ``[B, T, V]`` computed token by token through the queues."""
        x = np.asarray(target_in, np.int32)
        b, length = x.shape

        def fn(x_in, src):
            enc = None if src is None else self._align(self.encode(src), length)
            return teacher_forced_logits(self.decode_step, self.initial_cache(b), x_in,
                                         self.vocab_size, context=enc)

        src = None if source is None else np.asarray(source, np.int32)
        key = ("logits", b, length, None if src is None else src.shape[1])
        return ops.convert_to_numpy(self._get_compiled(key, fn)(x, src))

    # ------------------------------------------------------------ generation
    def unfold_bound(self, source_lengths):
        """Target length bound ``floor(a*|s| + b)`` per source length."""
        lengths = np.asarray(source_lengths, np.float64)
        return np.maximum(np.floor(self.unfold_a * lengths + self.unfold_b), 1).astype(np.int32)

    def _sources(self, source_ids):
        rows = prepare_prompts(source_ids, 1, -1, -1, self.pad_id)
        lengths = np.array([len(r) for r in rows], np.int32)
        size = bucket_length(max(int(lengths.max()), 1))
        src = np.full((len(rows), size), self.pad_id, np.int32)
        for i, r in enumerate(rows):
            src[i, :len(r)] = r
        return src, lengths

    def translate(self, source_ids, max_length=None, temperature=0.0, top_k=0, top_p=1.0, seed=0,
                  method=CACHED, beam_size=None, length_penalty=0.6):
        """Decode targets for sources; returns int32 ``[B, L]`` (EOS included,
        PAD after it; ``L`` = the largest bound).

        Args:
            source_ids: one sequence, a list of sequences or a PAD-padded ``[B, S]``.
            max_length: target bound for every row; None = ``floor(a*|s|+b)``
                per row (dynamic unfolding).  Never exceeded.
            temperature: 0 (default) = greedy; top_k / top_p / seed: sampling.
            method: ``"cached"`` (queues) or ``"naive"`` (full decoder recompute per token).
            beam_size: None = sample / greedy; an int K >= 1 = beam search
                (:func:`seqgen.core.beam_search.beam_search`, cached queues; the
                sampling arguments are ignored); length_penalty: its GNMT alpha.
        """
        if not self.use_encoder:
            raise ValueError("translate needs a ByteNet with an encoder; use generate for the LM")
        self.check_method(method)
        if method == NATIVE:
            raise ValueError("translate decodes with method 'cached' or 'naive'; 'native' is the ByteNet LM's")
        src, lengths = self._sources(source_ids)
        b = src.shape[0]
        bound = (self.unfold_bound(lengths) if max_length is None
                 else np.full((b,), int(max_length), np.int32))
        if bound.min() < 1:
            raise ValueError("max_length must be >= 1")
        n = int(bound.max())
        length = bucket_length(n)
        if beam_size is not None:
            out = self._translate_beam(src, bound, length, int(beam_size), float(length_penalty))
            return finalize_tokens(out, np.zeros((b,), np.int32), n, self.eos_id, self.pad_id, True)
        noise = pad_time(uniforms(b, n, seed), length, 0.5)
        forced = np.full((b, length), self.pad_id, np.int32)
        mask = np.arange(length)[None, :] >= bound[:, None]
        use_top_p = float(top_p) < 1.0
        top_k = int(top_k)
        if method == CACHED:
            def fn(src_in, forced_in, mask_in, noise_in, steps, temp, tp):
                enc = self._align(self.encode(src_in), length)
                return token_decode_loop(
                    self.decode_step, ops.full((b,), self.bos_id, "int32"), self.initial_cache(b),
                    forced=forced_in, mask=mask_in, num_steps=steps,
                    settings=SamplingSettings(temp, top_k, tp if use_top_p else 1.0), eos_id=self.eos_id,
                    pad_id=self.pad_id, noise=noise_in, stop_at_eos=True, context=enc,
                    banned=(self.pad_id, self.bos_id))[0]

            run = self._get_compiled(("translate", b, src.shape[1], length, top_k, use_top_p), fn)
            samples = ops.convert_to_numpy(run(src, forced, mask, noise, np.int32(n),
                                               np.float32(temperature), np.float32(top_p)))
        else:
            enc_fn = self._get_compiled(("encode", b, src.shape[1], length),
                                        lambda s: self._align(self.encode(s), length))
            enc = ops.convert_to_numpy(enc_fn(src))
            samples = self._naive_loop(b, n, length, forced, mask, noise,
                                       SamplingSettings(temperature, top_k, float(top_p)), True, enc)
        return finalize_tokens(samples, np.zeros((b,), np.int32), n, self.eos_id, self.pad_id, True)

    def _translate_beam(self, src, bound, length, beam_size, alpha):
        b = src.shape[0]

        def fn(src_in, bound_in):
            enc = self._align(self.encode(src_in), length)
            seqs, _ = beam_search(
                self.decode_step, self.initial_cache(b), ops.full((b,), self.bos_id, "int32"),
                beam_size=beam_size, length=length, max_length=bound_in, eos_id=self.eos_id,
                pad_id=self.pad_id, length_penalty=alpha, context=enc,
                cache_batch_axis=1, banned=(self.pad_id, self.bos_id))
            return seqs

        run = self._get_compiled(("beam", b, src.shape[1], length, beam_size, alpha), fn)
        return ops.convert_to_numpy(run(src, bound))

    def generate(self, prompt_ids=None, max_new_tokens=64, temperature=1.0, top_k=0, top_p=1.0,
                 seed=0, method=CACHED, stop_at_eos=True, batch_size=1, weight_dtype="float32"):
        """Sample from the LM (``encoder=False``); same arguments and output
        (``[B, max_new_tokens]`` int32) as ``TransformerDecoder.generate``, ``method="native"`` (the loop in
        C, :mod:`seqgen.native.bytenet`) and its ``weight_dtype`` included."""
        if self.use_encoder:
            raise ValueError("generate is for the ByteNet LM (encoder=False); use translate")
        self.check_method(method)
        if weight_dtype != "float32" and method != NATIVE:
            raise ValueError(f"weight_dtype {weight_dtype!r} needs method 'native' (method {method!r} runs float32)")
        prompts, starts, n, length, forced, mask, noise = generation_plan(
            self, prompt_ids, max_new_tokens, batch_size, seed)
        b, n_new = len(prompts), int(max_new_tokens)
        use_top_p = float(top_p) < 1.0
        top_k = int(top_k)
        if method == CACHED:
            def fn(forced_in, mask_in, noise_in, steps, temp, tp):
                return token_decode_loop(
                    self.decode_step, ops.full((b,), self.bos_id, "int32"), self.initial_cache(b),
                    forced=forced_in, mask=mask_in, num_steps=steps,
                    settings=SamplingSettings(temp, top_k, tp if use_top_p else 1.0), eos_id=self.eos_id,
                    pad_id=self.pad_id, noise=noise_in, stop_at_eos=stop_at_eos,
                    banned=(self.pad_id, self.bos_id))[0]

            run = self._get_compiled(("generate", b, length, top_k, use_top_p, bool(stop_at_eos)), fn)
            samples = ops.convert_to_numpy(run(forced, mask, noise, np.int32(n),
                                               np.float32(temperature), np.float32(top_p)))
        elif method == NATIVE:
            from seqgen.native.bytenet import NativeByteNetLoop
            from seqgen.native.reuse import loop_for

            samples, _ = loop_for(self, NativeByteNetLoop, weight_dtype)(
                np.full((b,), self.bos_id, np.int32), forced, mask, noise, n, temperature, top_k, float(top_p),
                stop_at_eos)
        else:
            samples = self._naive_loop(b, n, length, forced, mask, noise,
                                       SamplingSettings(temperature, top_k, float(top_p)), stop_at_eos, None)
        return finalize_tokens(samples, starts, n_new, self.eos_id, self.pad_id, stop_at_eos)

    def _naive_loop(self, b, n, length, forced, mask, noise, settings, stop_at_eos, enc):
        """Reference decoding: the whole decoder recomputed over the prefix for every token."""
        return naive_decode(self, self.decode_full, b, n, length, length, forced, mask, noise, settings,
                            stop_at_eos, context=enc)

    # ---------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size, d_model=self.d_model, dilations=self.dilation_cycle,
            num_sets=self.num_sets, kernel_size=self.kernel_size,
            encoder_kernel_size=self.encoder_kernel_size, encoder=self.use_encoder,
            unfold_a=self.unfold_a, unfold_b=self.unfold_b, dropout=self.dropout_rate,
            pad_id=self.pad_id, bos_id=self.bos_id, eos_id=self.eos_id, label_smoothing=self.label_smoothing)
        return config
