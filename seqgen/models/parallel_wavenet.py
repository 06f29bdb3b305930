"""Parallel WaveNet student (van den Oord et al., 2018; Ping et al., 2019): a
stack of inverse autoregressive flows that samples every time step at once.

::

    z_0 [B, T] ~ base noise (standard logistic, or standard Gaussian)
    for flow i = 1..N:                                   (default 4 flows: 10, 10, 10, 30 layers)
        mu_i, log_s_i = WaveNet_i(z_{i-1} shifted right by one, mel, speaker)
        z_i = z_{i-1} * exp(log_s_i) + mu_i
    x = z_N

Each flow is a small WaveNet over its input noise.  Its input is shifted by
one step (position ``t`` sees ``z_{i-1}[<t]``, zero at ``t = 0``) and its
convolutions are causal, so ``mu_i[t]`` and ``log_s_i[t]`` depend only on
``z_{i-1}[<t]`` and on the conditioning (upsampled mel: one upsampler shared by
all flows; speaker embedding).  The flows compose in closed form::

    S_i = S_{i-1} * s_i          M_i = M_{i-1} * s_i + mu_i        (S_0 = 1, M_0 = 0)
    x_t = M_t + S_t * z_0[t]

with ``M_t, S_t`` functions of ``z_0[<t]`` (equivalently of ``x[<t]``: the map
is triangular with a positive diagonal), so given the past every output step
is a logistic (or Gaussian) ``(M_t, S_t)`` in the first noise:

    log p(x) = sum_t [ log f(z_0[t]) - log S_t ]      (f: the base density)

and the entropy of the student is ``sum_t E[log S_t] + T * H(f)`` (``H(f) = 2``
nats for the standard logistic, ``0.5 log(2 pi e)`` for the Gaussian).

Sampling (:meth:`ParallelWaveNet.generate`) runs each flow once over the whole
sequence (convolutions, no loop over time): the number of sequential steps is
the number of layers, whatever the length of the audio.

Training is :mod:`seqgen.train.distillation` (``seqgen distill``): a frozen teacher
WaveNet is attached with :func:`seqgen.train.distillation.attach`, and
``compute_loss`` returns the distillation objective.
"""
import math

import keras
import numpy as np
from keras import ops

from seqgen.core.methods import PARALLEL
from seqgen.layers.iaf_flow import IAFFlow
from seqgen.layers.upsampler import Upsampler, default_upsample_scales
from seqgen.models.decoder import Decoder
from seqgen.models.generation_inputs import check_generation_inputs

__all__ = ["ParallelWaveNet", "IAFFlow", "FAMILIES", "base_entropy"]

FAMILIES = ("logistic", "gaussian")
_EPS = 1e-6


def base_entropy(family):
    """Entropy (nats) of the standard base distribution of ``family``."""
    return 2.0 if family == "logistic" else 0.5 * math.log(2.0 * math.pi * math.e)


def base_log_pdf(family, z):
    """Log density of the standard logistic / Gaussian at ``z``."""
    if family == "logistic":
        return -z - 2.0 * ops.softplus(-z)
    return -0.5 * ops.square(z) - 0.5 * math.log(2.0 * math.pi)


def base_from_uniform(family, u):
    """Standard logistic / Gaussian noise from uniforms in (0, 1) (inverse CDF)."""
    u = ops.clip(u, _EPS, 1.0 - _EPS)
    if family == "logistic":
        return ops.log(u) - ops.log1p(-u)
    return math.sqrt(2.0) * ops.erfinv(2.0 * u - 1.0)


@keras.saving.register_keras_serializable(package="seqgen")
class ParallelWaveNet(Decoder, keras.Model):
    """IAF student: ``len(flow_layers)`` flows, all conditioned on the same upsampled mel.

    Args:
        flow_layers: layers of each flow (default ``[10, 10, 10, 30]``, the paper's).
        layers_per_cycle: dilations cycle ``1 .. 2**(layers_per_cycle-1)`` within a flow.
        kernel_size, residual_channels, gate_channels, skip_channels: widths of every flow.
        family: ``"logistic"`` (Parallel WaveNet) or ``"gaussian"`` (ClariNet): the base
            noise, hence the per-step output distribution.
        cond_channels, hop_length, upsample_scales: mel conditioning (from the data).
        num_speakers, speaker_dim: global conditioning (0 speakers = none).
        log_scale_min, log_scale_max: clip of each flow's log-scale.
        initial_scale: the output scale ``S`` of a fresh student (audio is ~0.1 in
            amplitude, the base noise ~1): the last flow's log-scale bias starts at
            ``log(initial_scale)``, the others at 0.
    """

    METHODS = (PARALLEL,)

    def __init__(self, flow_layers=(10, 10, 10, 30), layers_per_cycle=10, kernel_size=2, residual_channels=64,
                 gate_channels=128, skip_channels=64, family="logistic", cond_channels=0, hop_length=256,
                 upsample_scales=None, num_speakers=0, speaker_dim=16, log_scale_min=-7.0, log_scale_max=3.0,
                 initial_scale=0.05, **kwargs):
        super().__init__(**kwargs)
        flow_layers = [int(n) for n in (flow_layers if isinstance(flow_layers, (list, tuple)) else [flow_layers])]
        if not flow_layers or min(flow_layers) < 1:
            raise ValueError(f"flow_layers must be a non-empty list of positive ints, got {flow_layers}")
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
        if not float(initial_scale) > 0:
            raise ValueError(f"initial_scale must be > 0, got {initial_scale}")
        self.flow_layers = flow_layers
        self.layers_per_cycle = int(layers_per_cycle)
        self.kernel_size = int(kernel_size)
        self.residual_channels = int(residual_channels)
        self.gate_channels = int(gate_channels)
        self.skip_channels = int(skip_channels)
        self.family = family
        self.cond_channels = int(cond_channels)
        self.hop_length = int(hop_length)
        if self.cond_channels:
            self.upsample_scales = (default_upsample_scales(self.hop_length) if upsample_scales is None
                                    else [int(s) for s in upsample_scales])
        else:
            self.upsample_scales = None if upsample_scales is None else [int(s) for s in upsample_scales]
        self.num_speakers = int(num_speakers)
        self.speaker_dim = int(speaker_dim)
        self.log_scale_min = float(log_scale_min)
        self.log_scale_max = float(log_scale_max)
        self.initial_scale = float(initial_scale)

        self.upsampler = (Upsampler(self.hop_length, self.cond_channels, self.upsample_scales, name="upsampler")
                          if self.cond_channels else None)
        self.speaker_embedding = (keras.layers.Embedding(self.num_speakers, self.speaker_dim,
                                                         name="speaker_embedding")
                                  if self.num_speakers else None)
        last = len(flow_layers) - 1
        self.flows = [
            IAFFlow(n, self.layers_per_cycle, self.kernel_size, self.residual_channels, self.gate_channels,
                    self.skip_channels, cond_channels=self.cond_channels,
                    global_channels=self.speaker_dim if self.num_speakers else 0,
                    log_scale_min=self.log_scale_min, log_scale_max=self.log_scale_max,
                    initial_log_scale=math.log(self.initial_scale) if i == last else 0.0, name=f"flow_{i}")
            for i, n in enumerate(flow_layers)
        ]
        self.seed_generator = keras.random.SeedGenerator(0, name="noise_seed")
        self._distillation = None      # set by seqgen.train.distillation.attach (never saved)
        self._decode_fns = {}
        self.build()

    def build(self, input_shape=None):
        if self.upsampler is not None:
            self.upsampler.build((None, None, self.cond_channels))
        if self.speaker_embedding is not None:
            self.speaker_embedding.build((None,))
        for flow in self.flows:
            flow.build()
        self.built = True

    # ------------------------------------------------------------ properties
    @property
    def num_flows(self):
        return len(self.flows)

    @property
    def sequential_steps(self):
        """Layers run one after another by :meth:`generate` (independent of the length)."""
        return sum(self.flow_layers)

    @property
    def receptive_field(self):
        """Noise samples ``z_0`` one output depends on (flows chain their fields)."""
        return 1 + sum(f.receptive_field for f in self.flows)

    def summary_text(self, sample_rate=None):
        rf = self.receptive_field
        rf_txt = f"{rf} samples" + (f" ({1000.0 * rf / sample_rate:.1f} ms at {sample_rate} Hz)"
                                    if sample_rate else "")
        lines = [f"ParallelWaveNet student: {self.num_flows} IAF flows of {self.flow_layers} layers "
                 f"(dilation cycle {self.layers_per_cycle}), kernel {self.kernel_size}, residual "
                 f"{self.residual_channels}, gate {self.gate_channels}, skip {self.skip_channels}",
                 f"  per-step distribution: {self.family}; sequential steps per sample: {self.sequential_steps} "
                 f"layers (any length)",
                 f"  receptive field: {rf_txt}"]
        if self.cond_channels:
            lines.append(f"  local conditioning: {self.cond_channels} mel bands, hop {self.hop_length}, "
                         f"upsample scales {self.upsample_scales}")
        if self.num_speakers:
            lines.append(f"  global conditioning: {self.num_speakers} speakers x {self.speaker_dim}")
        lines.append(f"  parameters: {self.count_params():,}")
        return "\n".join(lines)

    # --------------------------------------------------------------- forward
    def conditioning(self, mel=None, speaker=None):
        """``(cond [B, T, C] or None, speaker vector [B, D] or None)``."""
        cond = self.upsampler(ops.cast(mel, self.compute_dtype)) if self.cond_channels else None
        g = self.speaker_embedding(ops.cast(speaker, "int32")) if self.num_speakers else None
        return cond, g

    def transform(self, z0, cond=None, speaker_vec=None, training=False):
        """Run the flows on the base noise ``z0 [B, T]``.

        Returns ``(x, loc, log_scale)``, each ``[B, T]``: the sample and the
        per-step distribution ``x_t ~ family(loc_t, exp(log_scale_t))`` given
        the past (``x = loc + exp(log_scale) * z0``).
        """
        z = ops.cast(z0, self.compute_dtype)
        loc = ops.zeros_like(z)
        log_scale = ops.zeros_like(z)
        for flow in self.flows:
            mu, log_s = flow(z, cond, speaker_vec, training=training)
            s = ops.exp(log_s)
            z = z * s + mu
            loc = loc * s + mu
            log_scale = log_scale + log_s
        return z, loc, log_scale

    def base_noise(self, shape, seed=None, temperature=1.0):
        """Standard ``family`` noise ``[B, T]`` (``seed``: int, SeedGenerator, or the model's generator)."""
        u = keras.random.uniform(tuple(shape), dtype=self.compute_dtype,
                                 seed=self.seed_generator if seed is None else seed)
        return base_from_uniform(self.family, u) * temperature

    def _unpack(self, inputs):
        if not isinstance(inputs, dict):
            raise ValueError("ParallelWaveNet inputs are a dict {'mel', 'speaker', optional 'noise'}")
        mel, spk, noise = inputs.get("mel"), inputs.get("speaker"), inputs.get("noise")
        if self.cond_channels and mel is None:
            raise ValueError("this student is conditioned on mel: inputs need a 'mel' entry")
        if self.num_speakers and spk is None:
            raise ValueError("this student has speakers: inputs need a 'speaker' entry")
        return mel, spk, noise

    def call(self, inputs, training=False):
        """``{"mel": [B, F, C], "speaker": [B], "noise": optional z0 [B, F*hop]}`` ->
        ``{"x", "loc", "log_scale", "noise"}`` each ``[B, T]``.  Without ``noise`` it is
        drawn from the model's seed generator (length ``F * hop_length``)."""
        mel, spk, noise = self._unpack(inputs)
        if noise is None:
            if mel is None:
                raise ValueError("give 'noise' [B, T] to an unconditioned student")
            shape = ops.shape(mel)
            noise = self.base_noise((shape[0], shape[1] * self.hop_length))
        cond, g = self.conditioning(mel, spk)
        x, loc, log_scale = self.transform(noise, cond, g, training=training)
        return {"x": x, "loc": loc, "log_scale": log_scale, "noise": ops.cast(noise, x.dtype)}

    def log_density(self, outputs, x=None):
        """Per-step log density ``[B, T]`` of ``x`` (default: the student's own sample)
        under the per-step distributions of ``outputs`` (a :meth:`call` result)."""
        x = outputs["x"] if x is None else x
        z = (ops.cast(x, outputs["loc"].dtype) - outputs["loc"]) * ops.exp(-outputs["log_scale"])
        return base_log_pdf(self.family, z) - outputs["log_scale"]

    def entropy(self, outputs):
        """Per-step entropy ``[B, T]`` (nats) of the per-step distributions: ``log S_t + H(base)``."""
        return outputs["log_scale"] + base_entropy(self.family)

    # ------------------------------------------------------------ training
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The distillation objective of the attached teacher (:func:`seqgen.train.distillation.attach`)."""
        if self._distillation is None:
            raise ValueError("a ParallelWaveNet student is trained by distillation: attach a teacher with "
                             "seqgen.train.distillation.attach(student, teacher) (or run `seqgen distill`)")
        return self._distillation.loss(self, x, y, y_pred, sample_weight)

    @property
    def metrics(self):
        extra = list(self._distillation.metrics) if getattr(self, "_distillation", None) is not None else []
        return super().metrics + extra

    # ------------------------------------------------------------ generation
    def _generate_fn(self, mel, speaker, noise):
        cond, g = self.conditioning(mel, speaker)
        x, _, _ = self.transform(noise, cond, g, training=False)
        return ops.clip(x, -1.0, 1.0)

    def generate(self, num_samples=None, mel=None, speaker=None, batch_size=1, method=PARALLEL,
                 temperature=1.0, seed=0, chunk_size=None, progress=None, frame_bucket=64):
        """Sample a waveform ``[B, N]`` float32 in [-1, 1] in ONE parallel pass per flow.

        Args:
            num_samples: length (default ``frames * hop_length`` with mel;
                required without mel).
            mel: ``[frames, bands]`` (repeated over ``batch_size``) or ``[B, frames, bands]``.
            speaker: int or ``[B]`` ints.
            method: only ``"parallel"``.
            temperature: scales the base noise (1 = the student's distribution).
            seed: int seed of the base noise, or one int per row (a list or tuple; each row's noise is
                then drawn alone, as a batch of one of the padded length).
            chunk_size: ignored (kept for the ``seqgen sample`` interface).
            progress: ``callable(done, total)``, called once at the end.
            frame_bucket: the mel is zero-padded to a multiple of this many frames
                so that nearby lengths share one compiled function (the flows are
                causal, so the padding does not change the kept samples).
        """
        del chunk_size
        if method != PARALLEL:
            raise ValueError(f"a ParallelWaveNet student samples with method='{PARALLEL}', got {method!r}")
        b, n, mel, spk = check_generation_inputs("this student", num_samples, mel, speaker, batch_size,
                                                 self.cond_channels, self.hop_length, self.num_speakers)
        length = n
        if self.cond_channels:
            frames = mel.shape[1]
            bucket = max(1, int(frame_bucket))
            padded = -(-frames // bucket) * bucket
            # zeros past the end, as the upsampler's own padding; the flows are
            # causal, so samples before the padding do not see it
            mel = np.concatenate([mel, np.zeros((b, padded - frames, mel.shape[2]), np.float32)], axis=1)
            length = padded * self.hop_length
        if isinstance(seed, (list, tuple)):
            if len(seed) != b:
                raise ValueError(f"{len(seed)} seeds for a batch of {b}: give one int, or one per row")
            noise = np.concatenate([ops.convert_to_numpy(self.base_noise((1, length), seed=int(s),
                                                                         temperature=float(temperature)))
                                    for s in seed], axis=0)
        else:
            noise = ops.convert_to_numpy(self.base_noise((b, length), seed=int(seed),
                                                         temperature=float(temperature)))
        fn = self._get_compiled((b, length), self._generate_fn)
        out = np.asarray(ops.convert_to_numpy(fn(mel, spk, noise.astype(np.float32))), np.float32)[:, :n]
        if progress is not None:
            progress(n, n)
        return out

    # ---------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            flow_layers=list(self.flow_layers), layers_per_cycle=self.layers_per_cycle,
            kernel_size=self.kernel_size, residual_channels=self.residual_channels,
            gate_channels=self.gate_channels, skip_channels=self.skip_channels, family=self.family,
            cond_channels=self.cond_channels, hop_length=self.hop_length, upsample_scales=self.upsample_scales,
            num_speakers=self.num_speakers, speaker_dim=self.speaker_dim, log_scale_min=self.log_scale_min,
            log_scale_max=self.log_scale_max, initial_scale=self.initial_scale)
        return config
