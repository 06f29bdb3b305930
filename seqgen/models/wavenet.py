"""WaveNet (van den Oord et al., 2016) with fast cached generation.

Architecture::

    x [B, T]  (previous sample at each position: int classes or floats)
      -> input embedding [B, T, R]        categorical: class embedding (== one-hot 1x1 conv)
                                          continuous:  1x1 conv from the scalar sample
      -> num_stacks x layers_per_stack ResidualBlocks, dilations 1, 2, ..., 2**(L-1)
         per stack; local conditioning (upsampled mel) and global conditioning
         (speaker embedding) are projected per layer and added inside the gate
      -> sum of skips -> relu -> 1x1 (skip->skip) -> relu -> 1x1 -> params [B, T, P]

Position ``i`` predicts target sample ``i``; ``x[i]`` is sample ``i-1`` and
``x[0] = distribution.from_waveform(0.0)``.  The receptive field is
``1 + (kernel_size-1) * num_stacks * (2**layers_per_stack - 1)`` samples.

Generation (:meth:`WaveNet.generate`):

* ``method="naive"``: reference.  For every sample the whole receptive
  field (the last ``receptive_field`` inputs) is recomputed from empty
  queues, teacher-forced through the same compiled chunk function that
  cached generation runs, and only its last position is sampled.
* ``method="naive-conv"``: the same recompute done with one full-sequence
  (convolution) forward per sample -- about 3x faster than ``naive`` on a
  CPU and the baseline of ``seqgen bench``, but its float rounding differs
  from the per-step arithmetic.
* ``method="cached"``: one rotating queue per layer (``seqgen.core.decoding``
  protocol, see :mod:`seqgen.layers.causal_conv`), O(layers) work per
  sample, each chunk of ``chunk_size`` samples generated inside ONE compiled
  ``keras.ops.while_loop``.  The conditioning of all layers is computed per
  chunk with one fused matmul (so memory does not grow with the length of
  the audio); the chunk's mel frames carry the upsampler's frame context so
  chunked conditioning equals the full one.  Caches are carried across chunks.

All methods draw the noise before the compiled loop runs, with ``distribution.draw_noise`` per block of
:data:`NOISE_BLOCK` positions seeded by ``(seed, block)`` (:meth:`WaveNet.noise`), so
:meth:`WaveNet.generate_stream` can draw each chunk's noise when it needs it and still equal
:meth:`WaveNet.generate`.  ``naive`` and ``cached`` execute
the same floating-point operations on the same values, so with the same seed
and ``chunk_size`` their samples are identical (bit for bit).  (A different
``chunk_size`` computes the conditioning in other shapes: continuous samples
then agree to ~1e-6, categorical ones but for a rare boundary draw.)  ``naive-conv`` gets the same
distribution to float tolerance; a draw falling on a class boundary can then
round the other way (measured: 1 sample in 4,352).
"""

import keras
import numpy as np
from keras import ops

from seqgen.core import emphasis, pitch
from seqgen.core import harmonic_source as hsource
from seqgen.core.decoding import decode_loop
from seqgen.core.methods import CACHED, NAIVE, NAIVE_CONV, NATIVE
from seqgen.core.distributions import get_distribution
from seqgen.layers.residual_block import ResidualBlock
from seqgen.models.decoder import Decoder
from seqgen.models.generation_inputs import check_generation_inputs
from seqgen.layers.upsampler import Upsampler, default_upsample_scales
from seqgen.models.replica_loss import per_replica_share

__all__ = ["WaveNet"]

_DEFAULT_DISTRIBUTION = {"type": "categorical", "num_classes": 256}

#: the noise of positions ``[k * NOISE_BLOCK, (k + 1) * NOISE_BLOCK)`` is drawn from ``(seed, k)``, so a
#: stream made chunk by chunk draws exactly the noise of one whole generation, whatever its chunk size
NOISE_BLOCK = 4096


def block_seed(seed: int, block: int) -> int:
    """The seed of noise block ``block`` of a generation seeded with ``seed``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(block)]).generate_state(1)[0] & 0x7FFFFFFF)


@keras.saving.register_keras_serializable(package="seqgen")
class WaveNet(Decoder, keras.Model):
    """WaveNet vocoder / unconditional audio model.

    Args:
        num_stacks: repetitions of the dilation pattern.
        layers_per_stack: layers per stack (dilations ``1 .. 2**(n-1)``).
        kernel_size: taps of the dilated causal convolutions (>= 2).
        residual_channels, gate_channels, skip_channels: widths
            (``gate_channels`` is split into tanh / sigmoid halves).
        distribution: config dict for :func:`seqgen.core.distributions.get_distribution`
            (or a distribution object).
        cond_channels: mel bands of the local conditioning (0 = none).
        hop_length: samples per mel frame.
        upsample_scales: factors of ``hop_length`` for the upsampler
            (default: :func:`seqgen.layers.default_upsample_scales`).
        num_speakers: size of the speaker table (0 = no global conditioning).
        speaker_dim: speaker embedding size.
        dropout: dropout on the gated activations during training.
        pre_emphasis: coefficient ``a`` in [0, 1) of the pre-emphasis the model's samples are taken
            through (:mod:`seqgen.core.emphasis`; 0 = off): the network models
            ``(x_t - a x_{t-1}) / (1 + a)`` and :meth:`generate` de-emphasizes what it samples.
        lpc_order: order of the linear predictor whose *excitation* the network models (0 = off; see
            "Linear prediction" below).  Needs a mu-law categorical head and mel conditioning.
        mel_stats: ``{"features": FeatureParams dict, "mean": [n_mels], "std": [n_mels]}`` of the mel the
            model is conditioned on (taken from the prepared data); what turns a normalized mel back into
            the spectral envelope the predictor comes from.
        pitch_features: condition on each frame's F0 and periodicity as well, estimated from the mel
            itself (:mod:`seqgen.core.pitch`): two channels beside the mel bands into the upsampler, so
            synthesis still needs only the mel.  Needs mel conditioning and ``mel_stats``.
        harmonic_source: ``K > 0`` adds, at every sample, the sine and cosine of the first ``K`` harmonics
            of the F0 estimated from the mel, faded out on unvoiced frames (:mod:`seqgen.core.harmonic_source`;
            the neural source-filter idea) beside the upsampled conditioning that each layer projects.
            Needs mel conditioning and ``mel_stats``; 0 = off.

    Linear prediction (``lpc_order > 0``; the ExcitNet / LP-WaveNet / LPCNet idea, :mod:`seqgen.core.lpc`):
    the signal ``s`` is the (pre-emphasized) waveform in 16-bit steps.  Each frame's predictor comes
    from its mel; ``p_t = rint(sum_k a_k s_{t-k})`` is computed from the past *quantized* samples (inside
    the decoding loop, from a ring of the last ``lpc_order`` samples it made); the head predicts the
    mu-law class of the excitation ``e_t = s_t - p_t`` and the loop's sample is ``s_t = p_t + e_t``.
    Position ``t``'s input is ``[e_{t-1} class, s_{t-1}, p_t]`` (int32 ``[B, T, 3]`` in training; the
    loop carries ``[e, s]`` pairs and computes ``p``), embedded as the sum of three class embeddings.
    :meth:`generate_samples` returns the ``[B, N, 2]`` pairs; :meth:`waveform` takes their ``s``.
    """

    METHODS = (CACHED, NAIVE, NAIVE_CONV, NATIVE)

    def __init__(self, num_stacks=2, layers_per_stack=10, kernel_size=2, residual_channels=64,
                 gate_channels=128, skip_channels=128, distribution=None, cond_channels=0,
                 hop_length=256, upsample_scales=None, num_speakers=0, speaker_dim=16,
                 dropout=0.0, pre_emphasis=0.0, lpc_order=0, mel_stats=None, pitch_features=False,
                 harmonic_source=0, **kwargs):
        super().__init__(**kwargs)
        if int(kernel_size) < 2:
            raise ValueError(f"kernel_size must be >= 2, got {kernel_size}")
        if int(num_stacks) < 1 or int(layers_per_stack) < 1:
            raise ValueError("num_stacks and layers_per_stack must be >= 1")
        self.num_stacks = int(num_stacks)
        self.layers_per_stack = int(layers_per_stack)
        self.kernel_size = int(kernel_size)
        self.residual_channels = int(residual_channels)
        self.gate_channels = int(gate_channels)
        self.skip_channels = int(skip_channels)
        self.distribution = get_distribution(
            _DEFAULT_DISTRIBUTION if distribution is None else distribution)
        self.cond_channels = int(cond_channels)
        self.hop_length = int(hop_length)
        if self.cond_channels:
            self.upsample_scales = (default_upsample_scales(self.hop_length)
                                    if upsample_scales is None else [int(s) for s in upsample_scales])
        else:
            self.upsample_scales = None if upsample_scales is None else [int(s) for s in upsample_scales]
        self.num_speakers = int(num_speakers)
        self.speaker_dim = int(speaker_dim)
        self.dropout_rate = float(dropout)
        self.pre_emphasis = emphasis.check_coefficient(pre_emphasis)
        self.lpc_order = int(lpc_order)
        self.mel_stats = None if mel_stats is None else {
            "features": dict(mel_stats["features"]), "mean": [float(v) for v in mel_stats["mean"]],
            "std": [float(v) for v in mel_stats["std"]]}
        if self.lpc_order:
            if self.lpc_order < 0:
                raise ValueError(f"lpc_order must be >= 0, got {lpc_order}")
            if not self.cond_channels or self.mel_stats is None:
                raise ValueError("lpc_order needs mel conditioning and the data's mel_stats (the predictor "
                                 "comes from the mel)")
        self.pitch_features = bool(pitch_features)
        self.harmonic_source = int(harmonic_source)
        if self.harmonic_source < 0:
            raise ValueError(f"harmonic_source must be >= 0 (harmonics; 0 = off), got {harmonic_source}")
        self._pitch = None
        if self.pitch_features or self.harmonic_source:
            key = "pitch_features" if self.pitch_features else "harmonic_source"
            if not self.cond_channels or self.mel_stats is None:
                raise ValueError(f"{key} needs mel conditioning and the data's mel_stats (the pitch is "
                                 "estimated from the mel)")
            if len(self.mel_stats["mean"]) != self.cond_channels:
                raise ValueError(f"{key}: mel_stats has {len(self.mel_stats['mean'])} bands, the model "
                                 f"is conditioned on {self.cond_channels}")
            self._pitch = pitch.PitchFeatures(self.mel_stats["features"], self.mel_stats["mean"],
                                              self.mel_stats["std"])
        # what the upsampler and each layer's conditioning projection take per frame: the mel bands (and
        # the pitch features)
        self.frame_channels = self.cond_channels + (pitch.CHANNELS if self.pitch_features else 0)
        # ... and what each layer's conditioning projection takes per sample: the upsampled frames (and the
        # harmonic source)
        self.sample_cond_channels = self.frame_channels + hsource.channels(self.harmonic_source)

        dist = self.distribution
        if self.lpc_order and not (dist.input_is_discrete and getattr(dist, "mu_law", False)):
            raise ValueError(f"lpc_order needs a mu-law categorical head (the excitation's classes), not {dist!r}")
        if dist.input_is_discrete:
            self.input_embedding = keras.layers.Embedding(
                dist.num_classes, self.residual_channels, name="input_embedding")
            if self.lpc_order:
                self.prediction_embedding = keras.layers.Embedding(
                    dist.num_classes, self.residual_channels, name="prediction_embedding")
                self.excitation_embedding = keras.layers.Embedding(
                    dist.num_classes, self.residual_channels, name="excitation_embedding")
        else:
            self.input_embedding = keras.layers.Dense(self.residual_channels, name="input_projection")
        self.upsampler = (Upsampler(self.hop_length, self.frame_channels, self.upsample_scales,
                                    name="upsampler") if self.cond_channels else None)
        self.speaker_embedding = (keras.layers.Embedding(self.num_speakers, self.speaker_dim,
                                                         name="speaker_embedding")
                                  if self.num_speakers else None)
        self.blocks = [
            ResidualBlock(self.residual_channels, self.gate_channels, self.skip_channels,
                          self.kernel_size, 2 ** i, cond_channels=self.sample_cond_channels,
                          global_channels=self.speaker_dim if self.num_speakers else 0,
                          dropout=self.dropout_rate, name=f"block_{s}_{i}",
                          residual_output=not (s == self.num_stacks - 1 and i == self.layers_per_stack - 1))
            for s in range(self.num_stacks) for i in range(self.layers_per_stack)
        ]
        self.head_hidden = keras.layers.Dense(self.skip_channels, name="head_hidden")
        self.head_out = keras.layers.Dense(dist.param_size, name="head_out")
        self._decode_fns = {}
        self.build()

    # ----------------------------------------------------------------- build
    def build(self, input_shape=None):
        if self.distribution.input_is_discrete:
            self.input_embedding.build((None, None))
            if self.lpc_order:
                self.prediction_embedding.build((None, None))
                self.excitation_embedding.build((None, None))
        else:
            self.input_embedding.build((None, None, 1))
        if self.upsampler is not None:
            self.upsampler.build((None, None, self.frame_channels))
        if self.speaker_embedding is not None:
            self.speaker_embedding.build((None,))
        for block in self.blocks:
            block.build()
        self.head_hidden.build((None, None, self.skip_channels))
        self.head_out.build((None, None, self.skip_channels))
        self.built = True

    # ------------------------------------------------------------ properties
    @property
    def dilations(self):
        return [b.dilation_rate for b in self.blocks]

    @property
    def receptive_field(self):
        """Samples seen by one output: ``1 + (k-1) * sum(dilations)``."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    @property
    def num_layers(self):
        return len(self.blocks)

    def summary_text(self, sample_rate=None):
        """A few lines describing the model (layers, receptive field, params)."""
        rf = self.receptive_field
        rf_txt = f"{rf} samples"
        if sample_rate:
            rf_txt += f" ({1000.0 * rf / sample_rate:.1f} ms at {sample_rate} Hz)"
        lines = [
            f"WaveNet: {self.num_stacks} stacks x {self.layers_per_stack} layers, kernel {self.kernel_size}, "
            f"residual {self.residual_channels}, gate {self.gate_channels}, skip {self.skip_channels}",
            f"  distribution: {self.distribution!r} (param_size {self.distribution.param_size})",
            f"  receptive field: {rf_txt}",
        ]
        if self.cond_channels:
            lines.append(f"  local conditioning: {self.cond_channels} mel bands, hop {self.hop_length}, "
                         f"upsample scales {self.upsample_scales}")
        if self.num_speakers:
            lines.append(f"  global conditioning: {self.num_speakers} speakers x {self.speaker_dim}")
        if self.pre_emphasis:
            lines.append(f"  pre-emphasis: {self.pre_emphasis}")
        if self.lpc_order:
            lines.append(f"  linear prediction: order {self.lpc_order} from the mel; the head models the excitation")
        if self.pitch_features:
            lines.append("  pitch features: F0 and periodicity of each frame, estimated from the mel")
        if self.harmonic_source:
            lines.append(f"  harmonic source: {self.harmonic_source} harmonics of the mel's F0 at every sample")
        lines.append(f"  parameters: {self.count_params():,}")
        return "\n".join(lines)

    # --------------------------------------------------------------- forward
    def _class_of(self, s):
        """Mu-law class of integer samples in 16-bit steps."""
        return self.distribution.from_waveform(ops.cast(s, "float32") / 32768.0)

    def _embed(self, x):
        if self.lpc_order:
            # [..., 3]: the previous excitation's class, the previous sample and this step's prediction
            x = ops.cast(x, "int32")
            return (self.input_embedding(self._class_of(x[..., 1])) + self.prediction_embedding(self._class_of(x[..., 2]))
                    + self.excitation_embedding(x[..., 0]))
        if self.distribution.input_is_discrete:
            return self.input_embedding(ops.cast(x, "int32"))
        return self.input_embedding(ops.expand_dims(ops.cast(x, "float32"), -1))

    def _head(self, skip):
        return self.head_out(ops.relu(self.head_hidden(ops.relu(skip))))

    def _forward(self, x, cond=None, speaker_vec=None, training=False):
        """Full-sequence network from upsampled conditioning ``cond [B, T, C]``."""
        h = self._embed(x)
        skip = None
        for block in self.blocks:
            h, s = block(h, cond=cond, global_cond=speaker_vec, training=training)
            skip = s if skip is None else skip + s
        return self._head(skip)

    def _unpack(self, inputs):
        if isinstance(inputs, dict):
            x, mel, spk = inputs["x"], inputs.get("mel"), inputs.get("speaker")
        else:
            x, mel, spk = inputs, None, None
        if self.cond_channels and mel is None:
            raise ValueError("this WaveNet is conditioned on mel: inputs need a 'mel' entry")
        if self.num_speakers and spk is None:
            raise ValueError("this WaveNet has speakers: inputs need a 'speaker' entry")
        return x, mel, spk

    def conditioning_frames(self, mel):
        """What the upsampler takes: the normalized mel frames ``[B, F, C]``, with the pitch features
        appended when the model has them (``[B, F, C + 2]``)."""
        if not self.pitch_features:
            return mel
        return ops.concatenate([ops.cast(mel, "float32"), self._pitch(mel)], axis=-1)

    def source_frames(self, mel, cycles=None, feats=None):
        """``[B, F, 3]``: each frame's F0 (Hz), voicing and start phase in cycles, what the harmonic source
        is made of; ``cycles`` None: counted from the first frame, in the graph (training windows).
        ``feats``: the mel's pitch features when they are computed already."""
        p = self.mel_stats["features"]
        hop, sr = int(p["hop_length"]), int(p["sample_rate"])
        feats = self._pitch(mel) if feats is None else feats
        f0 = pitch.REFERENCE_HZ * ops.power(2.0, feats[..., 0])
        if cycles is None:
            cycles = hsource.frame_cycles_ops(f0, hop, sr)
        return ops.stack([f0, hsource.voicing(feats[..., 1]), ops.cast(cycles, "float32")], axis=-1)

    def source_of(self, frames):
        """The harmonic source ``[B, F * hop, 2 K]`` of :meth:`source_frames`' rows."""
        p = self.mel_stats["features"]
        return hsource.source(frames[..., 0], frames[..., 1], frames[..., 2], int(p["hop_length"]),
                              int(p["sample_rate"]), self.harmonic_source)

    def host_source_frames(self, mel):
        """:meth:`source_frames` of whole utterances for generation (numpy ``[B, F, 3]``), the phase counted
        from each utterance's start in float64, so any chunk of frames gives the same source."""
        p = self.mel_stats["features"]
        rows = np.asarray(ops.convert_to_numpy(self.source_frames(ops.convert_to_tensor(mel, "float32"))),
                          np.float32)
        rows[..., 2] = hsource.frame_cycles(rows[..., 0], int(p["hop_length"]), int(p["sample_rate"]))
        return rows

    def upsampled(self, mel):
        """The per-sample conditioning ``[B, T, sample_cond_channels]`` of whole mels (training)."""
        if not self.harmonic_source:
            return self.upsampler(self.conditioning_frames(mel))
        feats = self._pitch(mel)                                       # once, for both uses
        frames = ops.concatenate([ops.cast(mel, "float32"), feats], axis=-1) if self.pitch_features else mel
        cond = self.upsampler(frames)
        src = self.source_of(self.source_frames(mel, feats=feats))
        return ops.concatenate([cond, ops.cast(src, cond.dtype)], axis=-1)

    def call(self, inputs, training=False):
        """``{"x": [B, T], "mel": [B, T/hop, C], "speaker": [B]}`` -> params ``[B, T, P]``."""
        x, mel, spk = self._unpack(inputs)
        cond = self.upsampled(mel) if self.cond_channels else None
        g = self.speaker_embedding(ops.cast(spk, "int32")) if self.num_speakers else None
        return self._forward(x, cond, g, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean negative log-likelihood (nats per sample) of ``y`` under the
        distribution; ``sample_weight [B]`` or ``[B, T]`` weights a mean.
        Regularization losses are added.  A loss given to ``compile`` is ignored.
        Under tf.distribute it is this replica's share (see ``replica_loss``)."""
        nll = self.distribution.nll(y_pred, y)
        if sample_weight is None:
            loss = ops.mean(nll)
        else:
            w = ops.cast(sample_weight, nll.dtype)
            if len(w.shape) == 1:
                w = ops.expand_dims(w, -1)
            w = ops.broadcast_to(w, ops.shape(nll))
            loss = ops.sum(nll * w) / ops.maximum(ops.sum(w), 1e-12)
        for extra in self.losses:
            loss = loss + ops.cast(ops.sum(extra), loss.dtype)
        return per_replica_share(loss)

    # ------------------------------------------------------------ generation
    def initial_cache(self, batch_size):
        """Decoding cache: one zero queue ``[(k-1)*d + 1, B, R]`` per layer (and, with linear prediction,
        the last ``lpc_order`` samples ``[B, lpc_order]``, newest first)."""
        queues = tuple(b.initial_cache(batch_size) for b in self.blocks)
        if self.lpc_order:
            queues = queues + (ops.zeros((batch_size, self.lpc_order), "float32"),)
        return queues

    def step_weights(self):
        """Per-layer fused weights for :meth:`decode_step` (hoisted out of the loop)."""
        return [b.step_weights() for b in self.blocks]

    def decode_step(self, x_t, cache, t, gate_bias_t=None, weights=None, lpc_t=None):
        """The ``seqgen.core.decoding`` step: ``x_t [B]`` at absolute time ``t``.

        ``gate_bias_t [B, num_layers*gate_channels]``: per-layer conditioning
        already projected (see :meth:`gate_bias`), or None.  ``weights``:
        :meth:`step_weights` or None.  Returns ``(params_t [B, P], cache)``.
        With linear prediction ``x_t`` is the pair ``[B, 2]`` (excitation class, sample), ``lpc_t
        [B, lpc_order]`` this step's predictor, and the prediction ``p_t`` is appended to the params
        (``[B, P + 1]``) for the sampler.
        """
        if weights is None:
            weights = self.step_weights()
        p = None
        if self.lpc_order:
            x_t = ops.cast(x_t, "int32")
            ring = ops.concatenate([ops.cast(x_t[:, 1:2], "float32"), cache[-1][:, :-1]], axis=1)
            p = ops.clip(ops.round(ops.sum(ops.cast(lpc_t, "float32") * ring, axis=1)), -32768.0, 32767.0)
            h = self._embed(ops.stack([x_t[:, 0], x_t[:, 1], ops.cast(p, "int32")], axis=1))
            cache = cache[:-1]
        else:
            h = self._embed(x_t)
        g = self.gate_channels
        skip, new_cache = None, []
        for i, block in enumerate(self.blocks):
            gb = None if gate_bias_t is None else gate_bias_t[:, i * g:(i + 1) * g]
            h, s, q = block.step(h, cache[i], t, gb, weights=weights[i])
            new_cache.append(q)
            skip = s if skip is None else skip + s
        if self.lpc_order:
            return (ops.concatenate([self._head(skip), ops.expand_dims(p, 1)], axis=1),
                    tuple(new_cache) + (ring,))
        return self._head(skip), tuple(new_cache)

    def gate_bias(self, cond=None, speaker=None):
        """All layers' conditioning projections with ONE matmul.

        ``cond [B, n, C]`` (upsampled) -> ``[B, n, L*G]``; speaker only ->
        ``[B, L*G]``; neither -> None.
        """
        out = None
        if self.cond_channels and cond is not None:
            w = ops.concatenate([b.cond_proj.kernel for b in self.blocks], axis=1)
            out = ops.matmul(cond, w)
        if self.num_speakers and speaker is not None:
            g = self.speaker_embedding(ops.cast(speaker, "int32"))
            w = ops.concatenate([b.global_proj.kernel for b in self.blocks], axis=1)
            gs = ops.matmul(g, w)
            out = gs if out is None else out + ops.expand_dims(gs, 1)
        return out

    def _bias_fn(self, mel_frames, speaker, source_frames=None):
        """Conditioning of one chunk: ``[B, chunk, L*G]`` from mel frames that
        carry the upsampler's context (and the chunk's :meth:`source_frames` rows, with a harmonic source),
        ``[B, L*G]`` for a speaker only, or None."""
        cond = self.upsampler.upsample_padded(mel_frames) if self.cond_channels else None
        if source_frames is not None:
            cond = ops.concatenate([cond, ops.cast(self.source_of(source_frames), cond.dtype)], axis=-1)
        return self.gate_bias(cond, speaker)

    def _loop_fn(self, x0, cache, start, num_steps, noise, bias, forced, num_forced, temperature):
        """One chunk of ``seqgen.core.decoding.decode_loop`` (see :meth:`_bias_fn`
        for ``bias``).  Cached generation leaves ``num_forced`` at 0; the naive
        reference feeds known samples through ``forced`` with the SAME compiled
        function, so the two methods share every floating-point operation."""
        return self._loop_body(x0, cache, start, num_steps, noise, bias, forced, num_forced, temperature, 1.0)

    def _loop_fn_top_p(self, x0, cache, start, num_steps, noise, bias, forced, num_forced, temperature, top_p):
        """:meth:`_loop_fn` sampling from the nucleus ``top_p`` of each step's distribution (its own compiled
        function: the default one skips the nucleus' sort)."""
        return self._loop_body(x0, cache, start, num_steps, noise, bias, forced, num_forced, temperature, top_p)

    def _loop(self, b, chunk, top_p):
        """The compiled chunk function and the extra arguments its calls end with."""
        if top_p >= 1.0:
            return self._get_compiled(("loop", b, chunk), self._loop_fn), ()
        return self._get_compiled(("loop-top-p", b, chunk), self._loop_fn_top_p), (np.float32(top_p),)

    def _loop_body(self, x0, cache, start, num_steps, noise, bias, forced, num_forced, temperature, top_p):
        per_step = bias if self.cond_channels else None
        const = None if self.cond_channels else bias
        dist = self.distribution
        weights = self.step_weights()

        if self.lpc_order:  # bias = (conditioning, predictor per step)
            def step(x_t, c, t, ctx):
                return self.decode_step(x_t, c, t, ctx[0], weights, lpc_t=ctx[1])

            def sample(params, nz):
                e = dist.sample(params[:, :-1], nz, temperature, top_p=top_p)
                s = ops.clip(params[:, -1] + ops.round(dist.to_waveform(e) * 32768.0), -32768.0, 32767.0)
                return ops.stack([ops.cast(e, "int32"), ops.cast(s, "int32")], axis=1)

            return decode_loop(step, sample, x0, cache, noise=noise, context=per_step,
                               num_steps=num_steps, start=start, forced=forced, num_forced=num_forced)

        def step(x_t, c, t, ctx):
            return self.decode_step(x_t, c, t, ctx if per_step is not None else const, weights)

        def sample(params, nz):
            if top_p is not None and not (isinstance(top_p, float) and top_p >= 1.0):
                return dist.sample(params, nz, temperature, top_p=top_p)
            return dist.sample(params, nz, temperature)

        return decode_loop(step, sample, x0, cache, noise=noise, context=per_step,
                           num_steps=num_steps, start=start, forced=forced, num_forced=num_forced)

    def _prepare(self, num_samples, mel, speaker, batch_size):
        return check_generation_inputs("this WaveNet", num_samples, mel, speaker, batch_size, self.cond_channels,
                                       self.hop_length, self.num_speakers)

    def generate(self, num_samples=None, mel=None, speaker=None, batch_size=1, method=CACHED,
                 temperature=1.0, seed=0, chunk_size=4096, progress=None, top_p=1.0, weight_dtype="float32"):
        """Sample a waveform ``[B, N]`` float32 in [-1, 1].

        Same arguments as :meth:`generate_samples`, whose output is
        converted with :meth:`waveform`.
        """
        samples = self.generate_samples(num_samples, mel, speaker, batch_size, method,
                                        temperature, seed, chunk_size, progress, top_p, weight_dtype)
        return self.waveform(samples)

    def waveform(self, samples, previous=None):
        """Samples ``[..., N]`` of this model (classes or floats; with linear prediction the ``[..., N, 2]``
        pairs) -> float32 waveform in [-1, 1]: ``distribution.to_waveform`` (the pairs' 16-bit samples),
        then de-emphasis when the model has ``pre_emphasis`` (``previous``: the waveform's sample before
        the first, default silence)."""
        if self.lpc_order:
            y = np.asarray(samples)[..., 1].astype(np.float32) / np.float32(32768.0)
        else:
            y = np.asarray(ops.convert_to_numpy(self.distribution.to_waveform(samples)), np.float32)
        return emphasis.de_emphasize(y, self.pre_emphasis, previous)

    def samples_of(self, waveform):
        """The inverse of :meth:`waveform` for a model without linear prediction: what the network models
        for a waveform ``[..., N]`` in [-1, 1] (pre-emphasis, then ``distribution.from_waveform``; numpy)."""
        y = emphasis.pre_emphasize(waveform, self.pre_emphasis)
        return np.asarray(ops.convert_to_numpy(self.distribution.from_waveform(y)))

    def lpc_coefficients(self, mel):
        """Each frame's predictor ``[..., frames, lpc_order]`` float32 from normalized mel frames
        ``[..., frames, n_mels]`` (de-normalized with ``mel_stats``; :func:`seqgen.core.lpc.from_mel`)."""
        return self.lpc_of_log_mel(np.asarray(mel, np.float64) * np.asarray(self.mel_stats["std"])
                                   + np.asarray(self.mel_stats["mean"]))

    def lpc_of_log_mel(self, log_mel):
        """:meth:`lpc_coefficients` of log-mel frames as the data stores them (not normalized)."""
        from seqgen.core import lpc
        from seqgen.data.audio import FeatureParams

        params = FeatureParams.from_dict(self.mel_stats["features"])
        log_mel = np.asarray(log_mel, np.float64)
        rows = log_mel.reshape((-1,) + log_mel.shape[-2:])
        out = np.stack([lpc.from_mel(m, params, self.lpc_order, self.pre_emphasis) for m in rows])
        return out.reshape(log_mel.shape[:-1] + (self.lpc_order,)).astype(np.float32)

    def training_window(self, audio, start, length, coefficients=None, noise=None):
        """``(inputs, target)`` of this model for samples ``[start, start + length)`` of a waveform in [-1, 1]
        (cut short at its end): ``inputs[i]`` is position ``start + i``'s input (the sample before it, or
        silence at the waveform's start), ``target[i]`` its sample.  Numpy, for the input pipeline.

        With linear prediction, ``coefficients`` (:meth:`lpc_of_log_mel` of the waveform's frames) give
        ``inputs [n, 3]`` (excitation class before, sample before, prediction) and ``target`` the
        excitation's class; the prediction uses the ``lpc_order`` samples before ``start`` (or silence).

        ``noise`` (an array of ints, one per sample from ``start - lpc_order - 1`` on; see
        :meth:`input_noise`) trains on the history sampling makes, not the recording's (LPCNet's noise
        injection): the inputs are the classes moved by it, the targets stay the recording's.  With linear
        prediction the noise moves the *excitation* class, its error goes through the synthesis filter into
        the past samples, and the target is the excitation the recording needs given that noisy past."""
        audio = np.asarray(audio, np.float32)
        start = int(start)
        end = min(len(audio), start + int(length))
        context = 1 + self.lpc_order
        lo = max(0, start - context)
        previous = float(audio[lo - 1]) if lo > 0 else None
        y = emphasis.pre_emphasize(audio[lo:end], self.pre_emphasis, previous)
        dist = self.distribution
        silence = np.asarray(ops.convert_to_numpy(dist.from_waveform(np.zeros((1,), np.float32))))[0]
        if noise is not None:
            noise = np.asarray(noise, np.int64)[: len(y)]
        if not self.lpc_order:
            seq = np.asarray(ops.convert_to_numpy(dist.from_waveform(y))) if dist.input_is_discrete else y
            target = seq[start - lo:]
            if noise is not None:
                seq = np.clip(seq + noise, 0, dist.num_classes - 1).astype(seq.dtype)
            first = seq[start - lo - 1: start - lo] if start > 0 else np.asarray([silence], seq.dtype)
            return np.concatenate([first, seq[start - lo:][:-1]]), target
        from seqgen.core import lpc

        def classes(v):
            return np.asarray(ops.convert_to_numpy(dist.from_waveform(np.clip(v / 32768.0, -1.0, 1.0).astype(
                np.float32)))).astype(np.int32)

        s = np.clip(np.rint(y.astype(np.float64) * 32768.0), -32768, 32767)
        p = np.clip(np.rint(lpc.predict(s, coefficients, self.hop_length, start=lo)), -32768, 32767)
        e = s - p
        e_class = classes(e)
        if noise is not None:
            # the excitation classes a sampler might have drawn, and what their error does to the samples
            moved = np.clip(e_class + noise, 0, dist.num_classes - 1)
            lin = np.asarray(ops.convert_to_numpy(dist.to_waveform(np.stack([e_class, moved]))), np.float64)
            error = lpc.synthesis_filter((lin[1] - lin[0]) * 32768.0, coefficients, self.hop_length, start=lo)
            clean = s
            s = np.clip(np.rint(s + error), -32768, 32767)
            p = np.clip(np.rint(lpc.predict(s, coefficients, self.hop_length, start=lo)), -32768, 32767)
            target = classes(clean - p)  # what the recording needs, given the noisy past
            e_class = classes(s - p)     # the noisy past's own excitation: the inputs
        k = start - lo
        e_prev = np.concatenate([[silence], e_class[:-1]]) if lo == 0 else e_class[:-1]
        s_prev = np.concatenate([[0.0], s[:-1]]) if lo == 0 else s[:-1]
        # lo == 0: position j's input comes from j - 1 (silence before 0); else from index j - 1 of the segment
        off = 0 if lo == 0 else 1
        inputs = np.stack([e_prev[k - off:], s_prev[k - off:], p[k:]], axis=1).astype(np.int32)
        return inputs, (e_class if noise is None else target)[k:]

    def input_noise(self, rng, n, level):
        """Noise for :meth:`training_window`'s ``n`` samples: ``rint(sigma * N(0, 1))`` classes, with one
        ``sigma`` per window drawn uniformly from ``[0, level]`` (some windows clean, some noisy)."""
        sigma = rng.uniform(0.0, float(level))
        return np.rint(sigma * rng.standard_normal(int(n))).astype(np.int64)

    def silence_input(self):
        """The input that stands for silence before a waveform's first sample (and on padding)."""
        dist = self.distribution
        if not dist.input_is_discrete:
            return np.float32(0.0)
        silence = np.int32(np.asarray(ops.convert_to_numpy(dist.from_waveform(np.zeros((1,), np.float32))))[0])
        if self.lpc_order:
            return np.asarray([silence, 0, 0], np.int32)
        return silence

    def generate_samples(self, num_samples=None, mel=None, speaker=None, batch_size=1,
                         method=CACHED, temperature=1.0, seed=0, chunk_size=4096, progress=None, top_p=1.0,
                         weight_dtype="float32"):
        """Sample ``[B, N]`` raw samples (int32 classes for a categorical
        distribution, float32 otherwise).

        Args:
            num_samples: length ``N`` (required without mel; with mel the
                default is ``frames * hop_length``, a smaller value keeps a prefix).
            mel: ``[frames, bands]`` (repeated over ``batch_size``) or
                ``[B, frames, bands]``.
            speaker: int or ``[B]`` ints.
            batch_size: rows to generate (taken from a 3-D mel).
            method: ``"cached"`` (fast), ``"naive"`` (reference, identical
                samples), ``"naive-conv"`` (recompute by convolution) or ``"native"`` (the cached loop
                in C, :mod:`seqgen.native`: the same conditioning, noise and sampler, parameters equal
                to float tolerance; a categorical head).
            temperature: sampling temperature (0 = most probable class).
            seed: int seed of ``distribution.draw_noise((B, N), seed)``, or one int per row (a list or
                tuple): row ``b`` then draws the noise of a batch of one seeded ``seed[b]``, so its samples
                are those of that row generated alone (up to the float rounding of another batch shape).
            chunk_size: samples per compiled loop call (rounded down to a
                multiple of ``hop_length`` when conditioned).  One function is
                compiled per (batch, chunk) shape and kept on the model.  With
                mel, each chunk precomputes ``[B, chunk, layers*gate_channels]``
                float32 of conditioning (42 MB per batch row for 4096 samples
                and 20 layers x 128): lower it for large batches.
            progress: ``callable(done, total)`` called after each chunk
                (each 256 samples for ``naive``).
            top_p: sample each step from the smallest set of classes holding this much of its
                probability (1 = off; a categorical head, cached or naive): the tail of unlikely classes,
                where a wrong draw is a click, is never drawn.
            weight_dtype: ``"float32"``, ``"bfloat16"`` or ``"int8"``: how ``"native"`` stores the
                matrices it multiplies by (bfloat16 reads half the bytes per sample, int8 a quarter;
                the arithmetic stays float32).
        """
        self.check_method(method)
        top_p = self._check_top_p(top_p, method)
        if self.lpc_order and method == NAIVE_CONV:
            raise ValueError("method 'naive-conv' is not available with linear prediction (lpc_order): use "
                             "'cached' or 'naive'")
        b, n, mel, spk = self._prepare(num_samples, mel, speaker, batch_size)
        noise = self.noise(b, 0, n, seed)
        x0 = self._first_input(b)
        if method in (CACHED, NATIVE):
            native = self._native_loop(method, weight_dtype, top_p)
            samples = self._generate_cached(b, n, mel, spk, noise, x0, temperature, chunk_size, progress, top_p,
                                            native)
        elif method == NAIVE:
            samples = self._generate_naive(b, n, mel, spk, noise, x0, temperature, chunk_size, progress, top_p)
        else:
            samples = self._generate_naive_conv(b, n, mel, spk, noise, x0, temperature, progress)
        return samples

    def _native_loop(self, method, weight_dtype, top_p):
        """The C loop (:class:`seqgen.native.wavenet.NativeWaveNetLoop`) for ``method="native"``, else None."""
        if method != NATIVE:
            if weight_dtype != "float32":
                raise ValueError(f"weight_dtype {weight_dtype!r} needs method 'native' (method {method!r} "
                                 "runs float32)")
            return None
        from seqgen.native.reuse import loop_for
        from seqgen.native.wavenet import NativeWaveNetLoop
        return loop_for(self, NativeWaveNetLoop, weight_dtype, float(top_p))

    def _check_top_p(self, top_p, method=CACHED):
        top_p = float(top_p)
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if top_p < 1.0 and not self.distribution.input_is_discrete:
            raise ValueError("top_p samples from a nucleus of classes: it needs a categorical head")
        if top_p < 1.0 and method == NAIVE_CONV:
            raise ValueError("top_p is not available with method 'naive-conv': use 'cached' or 'naive'")
        return top_p

    def noise(self, batch, start, length, seed):
        """The uniforms of positions ``[start, start + length)`` of a generation seeded with ``seed``:
        ``distribution.draw_noise`` per block of :data:`NOISE_BLOCK` positions, block ``k`` from
        :func:`block_seed` ``(seed, k)`` (numpy ``[batch, length, noise_size]``).  ``seed``: one int for
        the batch, or one per row (each row's noise that of a batch of one with its seed)."""
        if isinstance(seed, (list, tuple)):
            if len(seed) != batch:
                raise ValueError(f"{len(seed)} seeds for a batch of {batch}: give one int, or one per row")
            return np.concatenate([self.noise(1, start, length, int(s)) for s in seed], axis=0)
        dist = self.distribution
        first, last = start // NOISE_BLOCK, (start + length - 1) // NOISE_BLOCK
        parts = [ops.convert_to_numpy(dist.draw_noise((batch, NOISE_BLOCK), block_seed(seed, k)))
                 for k in range(first, last + 1)] if length > 0 else []
        if not parts:
            return np.zeros((batch, 0, dist.noise_size), np.float32)
        whole = np.concatenate(parts, axis=1)
        off = start - first * NOISE_BLOCK
        return whole[:, off: off + length]

    def _first_input(self, b):
        dist = self.distribution
        x0 = ops.convert_to_numpy(dist.from_waveform(np.zeros((b,), np.float32)))
        if self.lpc_order:
            x0 = np.stack([x0.astype(np.int32), np.zeros((b,), np.int32)], axis=1)
        return x0

    def generate_stream(self, num_samples=None, mel=None, speaker=None, batch_size=1, temperature=1.0, seed=0,
                        chunk_size=4096, progress=None, top_p=1.0, method=CACHED, weight_dtype="float32"):
        """Cached generation as a stream: yields the waveform ``[B, n_k]`` float32 chunk by chunk.

        Its memory is constant in the length: each chunk draws its noise, reads the frames it needs of
        ``mel`` and computes their conditioning and (with linear prediction) predictor; the queues, the
        predictor's ring, the harmonic source's phase and the de-emphasis state are carried.  For a mel of
        any length, pass a :class:`~seqgen.data.mel_view.MelView` over a memory-mapped ``.npy`` (what
        ``seqgen sample --stream --mel FILE.npy`` does): its frames are read and normalized per chunk.  The
        chunks put together are :meth:`generate`'s waveform (``method="cached"``, same arguments) bit for
        bit.  ``method``: ``"cached"`` or ``"native"`` (the C loop, with ``weight_dtype``)."""
        if method not in (CACHED, NATIVE):
            raise ValueError(f"a stream is generated with method 'cached' or 'native', not {method!r}")
        top_p = self._check_top_p(top_p)
        native = self._native_loop(method, weight_dtype, top_p)
        b, n, mel, spk = self._prepare(num_samples, mel, speaker, batch_size)
        state = None
        for _, samples in self._cached_chunks(b, n, mel, spk, seed, self._first_input(b), temperature, chunk_size,
                                              progress, top_p, native):
            if self.lpc_order:
                y = samples[..., 1].astype(np.float32) / np.float32(32768.0)
            else:
                y = np.asarray(ops.convert_to_numpy(self.distribution.to_waveform(samples)), np.float32)
            wav, state = emphasis.de_emphasize(y, self.pre_emphasis, state, return_state=True)
            yield wav

    def _chunk_len(self, n, chunk_size):
        hop = self.hop_length if self.cond_channels else 1
        chunk = max(hop, (int(chunk_size) // hop) * hop)
        if n < chunk:
            # no bigger than needed, but in power-of-two buckets (times hop)
            # so that nearby lengths share one compiled function
            small = hop
            while small < n:
                small *= 2
            chunk = min(chunk, small)
        return chunk

    def _chunk_bias(self, b, chunk, mel, spk):
        """``start -> bias`` of the chunk starting at ``start`` (a multiple of ``chunk``); with linear
        prediction ``(bias, predictor of each step [B, chunk, lpc_order])``.  Each call reads only the
        frames of ``mel`` its chunk needs (the upsampler's context, the predictor's frames), so a generation
        holds a few chunks' frames whatever the mel's length; cached, naive and streamed generation all go
        through here, which keeps them equal."""
        bias_of = self._chunk_conditioning(b, chunk, mel, spk)
        if not self.lpc_order:
            return bias_of
        from seqgen.core.lpc import per_sample as lpc_rows
        hop, frames = self.hop_length, mel.shape[1]

        def with_lpc(start):
            # sample start + t takes frame (start + t) // hop's predictor; past the last frame, the last one's
            first = start // hop
            coefficients = self.lpc_coefficients(mel[:, first:min(first + chunk // hop, frames)])  # [B, k, order]
            rows = np.stack([lpc_rows(c, chunk, hop, start - first * hop) for c in coefficients])
            return bias_of(start), rows

        return with_lpc

    def _chunk_conditioning(self, b, chunk, mel, spk):
        spk_arr = None if spk is None else np.asarray(spk, np.int32)
        if not self.cond_channels and spk_arr is None:
            return lambda start: None
        fn = self._get_compiled(("bias", b, chunk), self._bias_fn)
        if not self.cond_channels:
            const = fn(None, spk_arr)
            return lambda start: const
        hop = self.hop_length
        features = None
        if self.pitch_features:   # per frame: computed on the frames a chunk reads, before the zero padding
            def features(m):
                return np.asarray(ops.convert_to_numpy(self.conditioning_frames(m)), np.float32)

        def frames(start):
            return self.upsampler.frames_with_context(mel, start // hop, chunk // hop, features)

        if not self.harmonic_source:
            return lambda start: fn(frames(start), spk_arr)
        source = self._source_rows(mel, chunk // hop)

        def bias(start):
            src = np.zeros((b, chunk // hop, 3), np.float32)               # past the end: silent
            got = source(start // hop)
            src[:, :got.shape[1]] = got
            return fn(frames(start), spk_arr, src)

        return bias

    def _source_rows(self, mel, per_call):
        """``first -> ``:meth:`host_source_frames` rows ``[B, <= per_call, 3]`` of frames ``[first, first +
        per_call)`` of ``mel``, reading only those: the phase is carried from call to call (float64), so calls
        in order give the whole utterance's rows bit for bit; a call out of order counts again from frame 0."""
        p = self.mel_stats["features"]
        hop, sr, total = int(p["hop_length"]), int(p["sample_rate"]), mel.shape[1]
        state = {"next": 0, "count": np.zeros((mel.shape[0],))}

        def rows_at(first):
            if first != state["next"]:
                state["next"], state["count"] = 0, np.zeros((mel.shape[0],))
                for lo in range(0, first, per_call):
                    rows_at(lo)
            part = np.asarray(mel[:, first:min(first + per_call, total)], np.float32)
            rows = np.asarray(ops.convert_to_numpy(self.source_frames(ops.convert_to_tensor(part, "float32"))),
                              np.float32)
            rows[..., 2], state["count"] = hsource.frame_cycles_from(rows[..., 0], hop, sr, state["count"])
            state["next"] = first + per_call
            return rows

        return rows_at

    @staticmethod
    def _window(arr, start, length, fill):
        """``arr[:, start:start+length]`` padded with ``fill`` to ``length``."""
        out = arr[:, start:start + length]
        if out.shape[1] < length:
            pad = np.full((out.shape[0], length - out.shape[1]) + out.shape[2:], fill, out.dtype)
            out = np.concatenate([out, pad], axis=1)
        return out

    def _generate_cached(self, b, n, mel, spk, noise, x0, temperature, chunk_size, progress, top_p=1.0,
                         native=None):
        out = np.zeros((b, n) + x0.shape[1:], x0.dtype)
        for start, samples in self._cached_chunks(b, n, mel, spk, noise, x0, temperature, chunk_size, progress,
                                                  top_p, native):
            out[:, start:start + samples.shape[1]] = samples
        return out

    def _cached_chunks(self, b, n, mel, spk, noise, x0, temperature, chunk_size, progress, top_p=1.0, native=None):
        """Yields ``(start, samples [B, steps, ...])`` chunk by chunk.  ``noise``: all of it ``[B, n, ...]``,
        or an int seed (each chunk's noise drawn when it is needed, see :meth:`noise`).  ``native``: a
        :class:`seqgen.native.wavenet.NativeWaveNetLoop` to run each chunk in place of the compiled loop."""
        chunk = self._chunk_len(n, chunk_size)
        loop, extra = (native, ()) if native is not None else self._loop(b, chunk, top_p)
        bias_of = self._chunk_bias(b, chunk, mel, spk)
        cache = self.initial_cache(b)
        x = x0
        temp = np.float32(temperature)
        forced, zero = np.zeros((b, chunk) + x0.shape[1:], x0.dtype), np.int32(0)
        for start in range(0, n, chunk):
            steps = min(chunk, n - start)
            if isinstance(noise, (int, np.integer, list, tuple)):  # a seed, or one per row
                nz = self._window(self.noise(b, start, steps, noise), 0, chunk, 0.5)
            else:
                nz = self._window(noise, start, chunk, 0.5)
            buf, x, cache, _ = loop(x, cache, np.int32(start), np.int32(steps), nz, bias_of(start),
                                    forced, zero, temp, *extra)
            yield start, ops.convert_to_numpy(buf)[:, :steps]
            if progress is not None:
                progress(start + steps, n)

    def _generate_naive(self, b, n, mel, spk, noise, x0, temperature, chunk_size, progress, top_p=1.0):
        """The reference: every sample ``t`` recomputes its whole receptive
        field ``[t-w+1, t]`` from empty queues, feeding the known samples
        (teacher forcing) through the same compiled chunk function as cached
        generation; only the last position is sampled.  Work per sample is
        O(receptive_field * layers) instead of O(layers).  With linear prediction the recompute starts
        ``lpc_order`` samples earlier, so the predictor's ring holds the same samples."""
        w = self.receptive_field + self.lpc_order
        chunk = self._chunk_len(n, chunk_size)
        loop, extra = self._loop(b, chunk, top_p)
        bias_of = self._chunk_bias(b, chunk, mel, spk)
        per_step = self.cond_channels > 0
        biases = {}

        def bias_rows(p):
            if not per_step:
                return bias_of(0)
            first, last = p // chunk, (p + chunk - 1) // chunk
            for k in [k for k in biases if k < first]:
                del biases[k]
            parts = []
            for k in range(first, last + 1):
                if k * chunk >= n:
                    break
                if k not in biases:
                    got = bias_of(k * chunk)
                    biases[k] = (tuple(np.asarray(ops.convert_to_numpy(g)) for g in got)
                                 if isinstance(got, tuple) else ops.convert_to_numpy(got))
                parts.append(biases[k])
            if isinstance(parts[0], tuple):   # (conditioning, predictor rows) with linear prediction
                return tuple(self._window(np.concatenate([q[j] for q in parts], axis=1), p - first * chunk,
                                          chunk, 0.0) for j in range(len(parts[0])))
            rows = np.concatenate(parts, axis=1)
            return self._window(rows, p - first * chunk, chunk, 0.0)

        empty = tuple(ops.convert_to_numpy(q) for q in self.initial_cache(b))
        inputs = np.zeros((b, n + 1) + x0.shape[1:], x0.dtype)      # inputs[:, p]: the input of position p
        inputs[:, 0] = x0
        temp = np.float32(temperature)
        for t in range(n):
            x, cache = inputs[:, max(0, t - w + 1)], empty
            for p in range(max(0, t - w + 1), t + 1, chunk):
                steps = min(chunk, t + 1 - p)
                buf, x, cache, _ = loop(x, cache, np.int32(p), np.int32(steps),
                                        self._window(noise, p, chunk, 0.5), bias_rows(p),
                                        self._window(inputs, p + 1, chunk, 0), np.int32(t - p), temp, *extra)
            inputs[:, t + 1] = ops.convert_to_numpy(buf)[:, t - p]
            if progress is not None and ((t + 1) % 256 == 0 or t + 1 == n):
                progress(t + 1, n)
        return inputs[:, 1:]

    def _naive_conv_fn(self, x_win, cond_win, speaker, pos, noise_t, temperature):
        g = self.speaker_embedding(speaker) if self.num_speakers else None
        params = self._forward(x_win, cond_win, g, training=False)
        # ops.take, not a slice: under TF/XLA a slice index given as an argument
        # would be compiled in as a constant (one compilation per position).
        p_t = ops.squeeze(ops.take(params, ops.reshape(pos, (1,)), axis=1), 1)
        return self.distribution.sample(p_t, noise_t, temperature)

    def _generate_naive_conv(self, b, n, mel, spk, noise, x0, temperature, progress):
        """Recompute the receptive field with one full-sequence (convolution)
        forward per sample: the fastest recompute, the baseline of
        ``seqgen bench``.  Its float rounding differs from the per-step
        arithmetic, so a rare draw that falls on a class boundary can differ
        from cached/naive (measured: 1 sample in 4,352)."""
        w = self.receptive_field
        length = max(n, w)
        mel = None if mel is None else np.asarray(mel, np.float32)    # this recompute reads the mel whole
        hist = np.empty((b, length), x0.dtype)
        hist[:] = x0[:, None]
        cond = None
        if self.cond_channels:
            cond = self.upsampler(self.conditioning_frames(mel))
            if self.harmonic_source:
                cond = ops.concatenate([cond, self.source_of(self.host_source_frames(mel))], axis=-1)
            cond = ops.convert_to_numpy(cond)[:, :n]
            if cond.shape[1] < length:
                cond = np.concatenate(
                    [cond, np.zeros((b, length - cond.shape[1], cond.shape[2]), cond.dtype)], axis=1)
        fn = self._get_compiled((NAIVE_CONV, b), self._naive_conv_fn)
        temp = np.float32(temperature)
        out = np.zeros((b, n), x0.dtype)
        for t in range(n):
            s = max(0, t - w + 1)
            c_win = None if cond is None else cond[:, s:s + w]
            y = ops.convert_to_numpy(fn(hist[:, s:s + w], c_win, spk, np.int32(t - s),
                                        noise[:, t], temp))
            out[:, t] = y
            if t + 1 < length:
                hist[:, t + 1] = y
            if progress is not None and ((t + 1) % 256 == 0 or t + 1 == n):
                progress(t + 1, n)
        return out

    # ---------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            num_stacks=self.num_stacks, layers_per_stack=self.layers_per_stack,
            kernel_size=self.kernel_size, residual_channels=self.residual_channels,
            gate_channels=self.gate_channels, skip_channels=self.skip_channels,
            distribution=self.distribution.to_dict(), cond_channels=self.cond_channels,
            hop_length=self.hop_length, upsample_scales=self.upsample_scales,
            num_speakers=self.num_speakers, speaker_dim=self.speaker_dim,
            dropout=self.dropout_rate, pre_emphasis=self.pre_emphasis, lpc_order=self.lpc_order,
            mel_stats=self.mel_stats, pitch_features=self.pitch_features, harmonic_source=self.harmonic_source)
        return config
