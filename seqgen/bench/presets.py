"""The models `seqgen bench` times: named presets with random weights, and trained runs.

A :class:`Preset` says how to build the model, how to call its generation for
a timed run and how much work one step is (:mod:`seqgen.models.flops`).  Add
one with :func:`register_preset`; ``test-tiny`` and ``test-tiny-student`` are
hidden presets for the tests.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Callable

import numpy as np

from seqgen.core.methods import CACHED, NAIVE, NAIVE_CONV, NATIVE, PARALLEL
from seqgen.models.flops import bytenet_flops, student_flops, transformer_flops, wavenet_flops

AUDIO_RATES = (16000, 22050, 24000)
#: the native C loop with bfloat16 or int8 weights (bench names for ``method="native"`` with that
#: ``weight_dtype``)
NATIVE_BF16, NATIVE_INT8 = "native-bf16", "native-int8"
NATIVE_WEIGHTS = {NATIVE_BF16: "bfloat16", NATIVE_INT8: "int8"}
#: generation methods: WaveNet / text decoders (cached, naive), the Parallel WaveNet student (parallel) and
#: the cached loops in C (native, native-bf16, native-int8)
METHODS = (CACHED, NAIVE, PARALLEL, NATIVE, NATIVE_BF16, NATIVE_INT8)
#: the methods that run the cached step (one position per step; what the traffic counts describe)
CACHED_METHODS = (CACHED, NATIVE, NATIVE_BF16, NATIVE_INT8)
#: bytes per weight each cached method reads (int8's per-output scales, one float per column, not counted)
WEIGHT_BYTES = {CACHED: 4, NATIVE: 4, NATIVE_BF16: 2, NATIVE_INT8: 1}


@dataclasses.dataclass
class Preset:
    """A benchmark configuration.

    ``build()`` -> model (random weights).  ``make_call(model, method, batch,
    steps)`` -> a no-argument callable generating ``steps`` samples/tokens for
    ``batch`` rows.  ``flops(model, method, steps)`` -> FLOP per generated
    sample and row.  ``kind``: ``"audio"`` (samples, real-time factors) or
    ``"text"`` (tokens).  ``steps`` / ``naive_steps``: default length of one
    timed cached / naive run.  ``hidden``: not listed by ``--help`` (tests).
    """
    name: str
    kind: str
    description: str
    build: Callable
    make_call: Callable
    flops: Callable
    steps: int
    naive_steps: int
    methods: tuple = (CACHED, NAIVE)
    hidden: bool = False


PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    """Add (or replace) a preset of :data:`PRESETS`."""
    PRESETS[preset.name] = preset
    return preset


def _vocoder_call(model, method, batch, steps):
    # the baseline is the FASTEST recompute: one convolution forward over the
    # receptive field per sample (WaveNet's "naive-conv"; its "naive" replays
    # the per-step arithmetic to match cached bit for bit and is ~3x slower)
    method = NAIVE_CONV if method == NAIVE else method
    weight_dtype = "float32"
    if method in NATIVE_WEIGHTS:
        method, weight_dtype = NATIVE, NATIVE_WEIGHTS[method]
    frames = -(-int(steps) // model.hop_length)
    mel = np.random.default_rng(0).standard_normal((batch, frames, model.cond_channels)).astype(np.float32)
    speaker = 0 if model.num_speakers else None

    def call():
        return model.generate_samples(num_samples=int(steps), mel=mel, speaker=speaker, batch_size=batch,
                                      method=method, seed=0, weight_dtype=weight_dtype)
    return call


def _token_call(model, method, batch, steps):
    kw = {}
    if method in NATIVE_WEIGHTS:
        method, kw = NATIVE, {"weight_dtype": NATIVE_WEIGHTS[method]}

    def call():
        return model.generate(None, max_new_tokens=int(steps), method=method, batch_size=batch,
                              seed=0, stop_at_eos=False, **kw)
    return call


def _wavenet_builder(num_classes=256, **kw):
    def build():
        from seqgen.models.wavenet import WaveNet

        return WaveNet(distribution={"type": "categorical", "num_classes": num_classes}, **kw)
    return build


def _transformer_builder(**kw):
    def build():
        from seqgen.models.transformer import TransformerDecoder

        return TransformerDecoder(dropout=0.0, **kw)
    return build


def _bytenet_builder(**kw):
    def build():
        from seqgen.models.bytenet import ByteNet

        return ByteNet(encoder=False, **kw)
    return build


def _wavenet_flops(model, method, steps):
    return wavenet_flops(model, method)


def _transformer_flops(model, method, steps):
    from seqgen.models.token_decoding import bucket_length

    return transformer_flops(model, method, steps,
                             cache_length=min(bucket_length(int(steps)), model.max_length))


def _bytenet_flops(model, method, steps):
    return bytenet_flops(model, method, steps)


def bytes_per_step(model, method, batch, steps):
    """Bytes moved per generated sample or token and row (:mod:`seqgen.models.traffic`), or None where
    that count does not apply (naive, parallel)."""
    from seqgen.models import traffic
    from seqgen.models.bytenet import ByteNet
    from seqgen.models.transformer import TransformerDecoder
    from seqgen.models.wavenet import WaveNet

    if method not in CACHED_METHODS:
        return None
    if isinstance(model, WaveNet):
        return traffic.wavenet_bytes(model, batch, WEIGHT_BYTES[method])["total"]
    if isinstance(model, TransformerDecoder):
        from seqgen.models.token_decoding import bucket_length

        return traffic.transformer_bytes(model, batch, min(bucket_length(int(steps)), model.max_length),
                                         WEIGHT_BYTES[method])["total"]
    if isinstance(model, ByteNet) and not model.use_encoder:
        return traffic.bytenet_bytes(model, batch, WEIGHT_BYTES[method])["total"]
    return None


def _audio_preset(name, description, steps, naive_steps, hidden=False, **kw):
    return register_preset(Preset(name, "audio", description, _wavenet_builder(**kw), _vocoder_call,
                                  _wavenet_flops, steps, naive_steps, methods=WITH_NATIVE, hidden=hidden))


#: the methods of the models the native loops cover (a WaveNet with a categorical head, the Transformer, the
#: ByteNet LM)
WITH_NATIVE = (CACHED, NAIVE, NATIVE, NATIVE_BF16, NATIVE_INT8)


_audio_preset("vocoder-small",
              "WaveNet 2x10, k=2, residual 64, gate 128, skip 128, 256 classes, 80-band mel hop 256", 16000, 8,
              num_stacks=2, layers_per_stack=10, kernel_size=2, residual_channels=64,
              gate_channels=128, skip_channels=128, cond_channels=80, hop_length=256)
_audio_preset("vocoder-large",
              "WaveNet 3x10, k=2, residual 128, gate 256, skip 256, 256 classes, 80-band mel hop 256", 16000, 4,
              num_stacks=3, layers_per_stack=10, kernel_size=2, residual_channels=128,
              gate_channels=256, skip_channels=256, cond_channels=80, hop_length=256)
register_preset(Preset("transformer-byte", "text",
                       "Transformer decoder, 6 layers, d_model 384, 6 heads, context 1024",
                       _transformer_builder(num_layers=6, d_model=384, num_heads=6, max_length=1024),
                       _token_call, _transformer_flops, 1024, 32, methods=WITH_NATIVE))
register_preset(Preset("bytenet-byte", "text", "ByteNet LM, d_model 256, dilations 1..16 x 3, k=3",
                       _bytenet_builder(d_model=256, dilations=(1, 2, 4, 8, 16), num_sets=3, kernel_size=3),
                       _token_call, _bytenet_flops, 1024, 32, methods=WITH_NATIVE))
def _student_builder(**kw):
    def build():
        from seqgen.models.parallel_wavenet import ParallelWaveNet

        return ParallelWaveNet(**kw)
    return build


def _student_call(model, method, batch, steps):
    frames = -(-int(steps) // model.hop_length)
    mel = np.random.default_rng(0).standard_normal((batch, frames, model.cond_channels)).astype(np.float32)

    def call():
        return model.generate(num_samples=int(steps), mel=mel, batch_size=batch, seed=0)
    return call


def _student_flops(model, method, steps):
    return student_flops(model)


def _student_preset(name, description, steps, hidden=False, **kw):
    return register_preset(Preset(name, "audio", description, _student_builder(**kw), _student_call,
                                  _student_flops, steps, 0, methods=(PARALLEL,), hidden=hidden))


_student_preset("student-paper",
                "Parallel WaveNet IAF student: 4 flows of 10/10/10/30 layers, k=2, width 64 (gate 128, skip 64), "
                "80-band mel hop 256", 16000,
                flow_layers=[10, 10, 10, 30], layers_per_cycle=10, kernel_size=2, residual_channels=64,
                gate_channels=128, skip_channels=64, cond_channels=80, hop_length=256)
# FOR TESTS ONLY: a student small enough for a smoke run in seconds (hidden from --help).
_student_preset("test-tiny-student", "FOR TESTS ONLY: 2 flows of 2 layers, width 8, 4-band mel hop 4", 512,
                hidden=True, flow_layers=[2, 2], layers_per_cycle=2, kernel_size=2, residual_channels=8,
                gate_channels=16, skip_channels=8, cond_channels=4, hop_length=4)
# FOR TESTS ONLY: a WaveNet small enough for a smoke run in seconds (hidden from --help).
_audio_preset("test-tiny",
              "FOR TESTS ONLY: WaveNet 1x4, residual 8, gate 16, skip 8, 16 classes, 4-band mel hop 4", 512, 16,
              hidden=True, num_classes=16, num_stacks=1, layers_per_stack=4, kernel_size=2, residual_channels=8,
              gate_channels=16, skip_channels=8, cond_channels=4, hop_length=4)


def _run_preset(path):
    """A preset for the model of a trained run (``seqgen.runs.Run``), EMA weights."""
    from seqgen.runs import Run

    run = Run(path)
    model, step, _ = run.load_model(use_ema=True, compile=False)
    name = f"run:{pathlib.Path(path).name}@{step}"
    from seqgen.models.bytenet import ByteNet
    from seqgen.models.transformer import TransformerDecoder
    from seqgen.models.wavenet import WaveNet

    if isinstance(model, WaveNet):
        methods = WITH_NATIVE if model.distribution.input_is_discrete else (CACHED, NAIVE)
        return Preset(name, "audio", f"trained run {path} (step {step})", lambda: model, _vocoder_call,
                      _wavenet_flops, 16000, 8, methods=methods)
    from seqgen.models.parallel_wavenet import ParallelWaveNet

    if isinstance(model, ParallelWaveNet):
        return Preset(name, "audio", f"trained student run {path} (step {step})", lambda: model, _student_call,
                      _student_flops, 16000, 0, methods=(PARALLEL,))
    if isinstance(model, TransformerDecoder):
        return Preset(name, "text", f"trained run {path} (step {step})", lambda: model, _token_call,
                      _transformer_flops, min(1024, model.max_length), 32, methods=WITH_NATIVE)
    if isinstance(model, ByteNet) and not model.use_encoder:
        return Preset(name, "text", f"trained run {path} (step {step})", lambda: model, _token_call,
                      _bytenet_flops, 1024, 32, methods=WITH_NATIVE)
    from seqgen.errors import SeqgenError

    raise SeqgenError(f"{path}: no benchmark for a {type(model).__name__} model")
