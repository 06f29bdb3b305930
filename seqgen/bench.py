"""`seqgen bench`: sampling speed of the generators, against the machine's ceilings.

Every preset is a model with random weights (speed does not depend on the
weights) run through its real generation code (``model.generate`` with
``method="cached"`` or ``"naive"``).  One record per (preset, method, batch):

* timing: the first call (trace + compile + one run) is timed on its own
  (``first_call_seconds``; ``compile_seconds`` = first call minus the median
  run); then ``repeats`` identical calls are timed and their median gives
  ``samples_per_sec`` (audio) / ``tokens_per_sec`` (text): all rows of the
  batch together, ``batch * steps / median``.
* naive generation recomputes the whole receptive field (WaveNet: with one
  convolution forward per sample, ``method="naive-conv"``, the fastest way)
  or prefix (Transformer, ByteNet) for every step, so it is timed on a short prefix of
  ``timed_samples`` / ``timed_tokens`` steps and reported per step.
* ``flops_per_sample``: FLOP (2 x multiply-adds) that the method executes per
  generated sample and row, counted from the configuration (see
  :func:`wavenet_flops`, :func:`transformer_flops`, :func:`bytenet_flops`);
  ``model_flops_per_sample`` is the cached (incremental) count, the work one
  sample needs.  ``achieved_gflops = samples_per_sec * flops_per_sample / 1e9``
  and its fractions of the ceilings measured in the same process by
  :mod:`seqgen.roofline` (matrix-vector and matrix-matrix GFLOP/s).
* memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (process high-water
  mark of resident memory); ``peak_rss_delta_mb`` is its growth during the
  record (0 when the record stays below an earlier peak), ``peak_rss_mb`` the
  mark after it.

Presets live in :data:`PRESETS`; add one with :func:`register_preset`
(``build`` makes the model, ``make_call`` returns the timed callable,
``flops`` counts the work).  ``test-tiny`` is a hidden preset for the tests.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import platform
import resource
import statistics
import sys
import time
from typing import Callable

import numpy as np

__all__ = ["Preset", "PRESETS", "register_preset", "run_bench", "wavenet_flops", "transformer_flops",
           "bytenet_flops", "environment", "markdown_table", "add_bench", "ADDERS", "AUDIO_RATES"]

AUDIO_RATES = (16000, 22050, 24000)
#: generation methods: WaveNet / text decoders (cached, naive) and the Parallel WaveNet student (parallel)
METHODS = ("cached", "naive", "parallel")


# =============================================================== FLOP counting
def _upsampler_flops_per_sample(model):
    """Mel upsampler (frame conv + per-scale matmuls) per output sample."""
    up = model.upsampler
    c_in, c, hop = up.input_channels, up.channels, model.hop_length
    per_frame = 2 * (2 * up.context + 1) * c_in * c          # frame conv
    rows = 1
    for s in up.upsample_scales:                            # [rows, C] @ [C, s*C]
        per_frame += 2 * rows * c * s * c
        rows *= s
    return per_frame / hop


def wavenet_flops(model, method="cached"):
    """FLOP per generated sample (one row) of a :class:`~seqgen.models.wavenet.WaveNet`.

    Per network position (2 x multiply-adds; biases, gates, sampling and
    other elementwise work not counted)::

        input:       2*R                      continuous input (Dense 1->R); 0 for a
                                              class embedding (a table lookup)
        per layer:   2*k*R*G                  dilated conv (k taps)
                   + 2*C*G                    conditioning projection (mel, C bands)
                   + 2*(G/2)*(R+S)            residual + skip 1x1 (2*(G/2)*S on the last layer)
        head:        2*S*S + 2*S*P            skip->skip 1x1, skip->params 1x1

    plus the mel upsampler per sample: ``(2*(2c+1)*C*C + sum_i 2*C*C*prod(s_1..s_i)) / hop``
    (frame conv with ``c`` frames of context, transposed convs of scales ``s_i``).
    ``cached`` runs one position per sample; ``naive`` runs the whole window of
    ``receptive_field`` positions per sample (the upsampler once).  The speaker
    projection is once per sequence and not counted.
    """
    r, g, s = model.residual_channels, model.gate_channels, model.skip_channels
    k, c = model.kernel_size, model.cond_channels
    p = model.distribution.param_size
    pos = 0 if model.distribution.input_is_discrete else 2 * r
    for block in model.blocks:
        pos += 2 * k * r * g + 2 * c * g
        pos += 2 * (g // 2) * ((r if block.residual_output else 0) + s)
    pos += 2 * s * s + 2 * s * p
    up = _upsampler_flops_per_sample(model) if c else 0.0
    if method == "naive":
        return model.receptive_field * pos + up
    return pos + up


def student_flops(model):
    """FLOP per generated sample (one row) of a Parallel WaveNet student
    (:class:`~seqgen.models.parallel_wavenet.ParallelWaveNet`): every flow is a
    WaveNet position over its noise (input ``2*R``, per layer as in
    :func:`wavenet_flops`, head ``2*S*S + 2*S*2``), all flows per sample, plus
    the mel upsampler (shared by the flows) per sample."""
    r, g, s, k, c = (model.residual_channels, model.gate_channels, model.skip_channels, model.kernel_size,
                     model.cond_channels)
    total = 0
    for flow in model.flows:
        total += 2 * r
        for block in flow.blocks:
            total += 2 * k * r * g + 2 * c * g + 2 * (g // 2) * ((r if block.residual_output else 0) + s)
        total += 2 * s * s + 2 * s * 2
    return total + (_upsampler_flops_per_sample(model) if c else 0.0)


def _transformer_position_flops(model):
    d, f, v = model.d_model, model.d_ff, model.vocab_size
    return model.num_layers * (2 * d * 3 * d + 2 * d * d + 2 * 2 * d * f) + 2 * d * v


def transformer_flops(model, method="cached", steps=1, cache_length=None):
    """FLOP per generated token (one row) of a :class:`~seqgen.models.transformer.TransformerDecoder`.

    Per position: ``L * (2*d*3d  [q,k,v]  + 2*d*d  [out]  + 2*2*d*f  [MLP d->f->d]) + 2*d*V  [head]``.
    Attention, cached: each token attends over the key/value buffer of
    ``T`` positions (``T = cache_length``: the whole buffer is multiplied,
    the causal mask is applied after): ``L * (2*T*d [q.k] + 2*T*d [weights.v])``.
    Naive: token ``t`` runs the full network over a prefix of
    ``S_t = bucket(t+1)`` positions (power of two >= 16):
    ``S_t * position + L * 2 * 2 * S_t^2 * d``; averaged over the ``steps``
    timed tokens.
    """
    d, nl = model.d_model, model.num_layers
    pos = _transformer_position_flops(model)
    if method == "cached":
        t_len = model.max_length if cache_length is None else int(cache_length)
        return pos + nl * 4 * t_len * d
    from seqgen.models.transformer import bucket_length

    total = 0
    for t in range(int(steps)):
        size = min(bucket_length(t + 1), model.max_length)
        total += size * pos + nl * 4 * size * size * d
    return total / int(steps)


def bytenet_flops(model, method="cached", steps=1):
    """FLOP per generated token (one row) of the ByteNet LM (``encoder=False``).

    Per position: ``sum over decoder blocks of 2*d*(d/2) [reduce] + 2*k*(d/2)^2
    [dilated conv] + 2*(d/2)*d [expand]``, plus ``2*d*V`` [head].  Cached:
    one position per token.  Naive: token ``t`` recomputes a prefix of
    ``S_t = bucket(t+1)`` positions; averaged over the ``steps`` timed tokens.
    """
    d, h, k, v = model.d_model, model.d_model // 2, model.kernel_size, model.vocab_size
    pos = len(model.decoder_blocks) * (2 * d * h + 2 * k * h * h + 2 * h * d) + 2 * d * v
    if method == "cached":
        return pos
    from seqgen.models.transformer import bucket_length

    length = bucket_length(int(steps))
    total = sum(min(bucket_length(t + 1), length) * pos for t in range(int(steps)))
    return total / int(steps)


# ===================================================================== presets
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
    methods: tuple = ("cached", "naive")
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
    method = "naive-conv" if method == "naive" else method
    frames = -(-int(steps) // model.hop_length)
    mel = np.random.default_rng(0).standard_normal((batch, frames, model.cond_channels)).astype(np.float32)
    speaker = 0 if model.num_speakers else None

    def call():
        return model.generate_samples(num_samples=int(steps), mel=mel, speaker=speaker, batch_size=batch,
                                      method=method, seed=0)
    return call


def _token_call(model, method, batch, steps):
    def call():
        return model.generate(None, max_new_tokens=int(steps), method=method, batch_size=batch,
                              seed=0, stop_at_eos=False)
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
    from seqgen.models.transformer import bucket_length

    return transformer_flops(model, method, steps,
                             cache_length=min(bucket_length(int(steps)), model.max_length))


def _bytenet_flops(model, method, steps):
    return bytenet_flops(model, method, steps)


def _audio_preset(name, description, steps, naive_steps, hidden=False, **kw):
    return register_preset(Preset(name, "audio", description, _wavenet_builder(**kw), _vocoder_call,
                                  _wavenet_flops, steps, naive_steps, hidden=hidden))


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
                       _token_call, _transformer_flops, 1024, 32))
register_preset(Preset("bytenet-byte", "text", "ByteNet LM, d_model 256, dilations 1..16 x 3, k=3",
                       _bytenet_builder(d_model=256, dilations=(1, 2, 4, 8, 16), num_sets=3, kernel_size=3),
                       _token_call, _bytenet_flops, 1024, 32))
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
                                  _student_flops, steps, 0, methods=("parallel",), hidden=hidden))


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
        return Preset(name, "audio", f"trained run {path} (step {step})", lambda: model, _vocoder_call,
                      _wavenet_flops, 16000, 8)
    from seqgen.models.parallel_wavenet import ParallelWaveNet

    if isinstance(model, ParallelWaveNet):
        return Preset(name, "audio", f"trained student run {path} (step {step})", lambda: model, _student_call,
                      _student_flops, 16000, 0, methods=("parallel",))
    if isinstance(model, TransformerDecoder):
        return Preset(name, "text", f"trained run {path} (step {step})", lambda: model, _token_call,
                      _transformer_flops, min(1024, model.max_length), 32)
    if isinstance(model, ByteNet) and not model.use_encoder:
        return Preset(name, "text", f"trained run {path} (step {step})", lambda: model, _token_call,
                      _bytenet_flops, 1024, 32)
    from seqgen.errors import SeqgenError

    raise SeqgenError(f"{path}: no benchmark for a {type(model).__name__} model")


# ================================================================= environment
def _cpu_model():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(threads=None):
    """Backend, device, versions, CPU and the thread settings in effect."""
    import keras

    backend = keras.backend.backend()
    env = {"backend": backend, "keras": keras.__version__, "numpy": np.__version__,
           "python": platform.python_version(), "cpu": _cpu_model(), "cores": os.cpu_count(),
           "threads_requested": threads,
           "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "XLA_FLAGS", "TF_NUM_INTRAOP_THREADS",
                                                     "CUDA_VISIBLE_DEVICES") if k in os.environ}}
    if backend == "tensorflow":
        from seqgen.tf_import import tensorflow

        tf = tensorflow()
        env["tensorflow"] = tf.__version__
        gpus = tf.config.list_physical_devices("GPU")
        env["device"] = f"GPU: {gpus[0].name}" if gpus else f"CPU: {env['cpu']}"
        env["intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
        env["inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
        env["thread_note"] = "intra/inter-op threads: 0 = TensorFlow's default (all cores)"
    elif backend == "jax":
        import jax

        env["jax"] = jax.__version__
        dev = jax.devices()[0]
        kind = env["cpu"] if dev.platform == "cpu" else getattr(dev, "device_kind", dev.platform)
        env["device"] = f"{dev.platform.upper()}: {kind}"
        env["thread_note"] = "JAX/XLA uses its own thread pool (set XLA_FLAGS to change it)"
    else:
        env["device"] = f"CPU: {env['cpu']}"
    return env


def _maxrss_mb():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024.0 * 1024.0) if sys.platform == "darwin" else r / 1024.0


# ======================================================================== run
def _parse_list(value, cast=str):
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return [cast(v.strip() if isinstance(v, str) else v) for v in value]


def _measure(call, repeats):
    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    times = []
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return first, times


def _sequential_steps(model, method, steps):
    """Layers run one after another to generate ``steps`` samples/tokens (one row)."""
    if method == "parallel":
        return int(model.sequential_steps)                 # whatever the length
    layers = getattr(model, "num_layers", None) or len(getattr(model, "decoder_blocks", [])) or 1
    return int(steps) * int(layers)


def _record(preset, model, method, batch, steps, repeats, ceilings, env):
    rss0 = _maxrss_mb()
    call = preset.make_call(model, method, batch, steps)
    first, times = _measure(call, repeats)
    rss1 = _maxrss_mb()
    med = statistics.median(times)
    rate = batch * steps / med
    flops = float(preset.flops(model, method, steps))
    model_flops = float(preset.flops(model, "cached", steps))
    gflops = rate * flops / 1e9
    unit = "samples" if preset.kind == "audio" else "tokens"
    rec = {
        "preset": preset.name, "kind": preset.kind, "method": method, "batch": int(batch),
        f"{unit}_per_sec": rate, f"{unit}_per_sec_per_sequence": rate / batch,
        f"timed_{unit}": int(steps),
        "timed_note": {"naive": "naive: timed on the first timed_samples/timed_tokens steps (a short prefix "
                                 "by default), reported per step",
                       "cached": "cached: the full length, one position per step",
                       "parallel": "parallel: the full length in one pass per flow"}[method],
        "sequential_steps": _sequential_steps(model, method, steps),
        "repeats": int(repeats), "run_seconds_median": med, "run_seconds": times,
        "first_call_seconds": first, "compile_seconds": max(0.0, first - med),
        "flops_per_sample": flops, "model_flops_per_sample": model_flops, "achieved_gflops": gflops,
        "matvec_ceiling_gflops": ceilings["matvec_gflops"], "matmul_ceiling_gflops": ceilings["matmul_gflops"],
        "fraction_of_matvec_ceiling": gflops / ceilings["matvec_gflops"],
        "fraction_of_matmul_ceiling": gflops / ceilings["matmul_gflops"],
        "peak_rss_mb": rss1, "peak_rss_delta_mb": max(0.0, rss1 - rss0),
        "memory_method": "resource.getrusage(RUSAGE_SELF).ru_maxrss (process peak RSS; delta = growth "
                         "of the peak during this record, 0 if below an earlier peak)",
        "parameters": int(model.count_params()),
        "environment": env,
    }
    if preset.kind == "audio":
        rec["realtime_factor"] = {str(sr): rate / sr for sr in AUDIO_RATES}
        rec["realtime_note"] = ("seconds of audio generated per second of wall time at that sample rate "
                                "(all rows together; > 1 is faster than real time)")
    return rec


def summary_line(rec):
    unit = "samples/s" if rec["kind"] == "audio" else "tokens/s"
    rate = rec.get("samples_per_sec", rec.get("tokens_per_sec"))
    steps = rec.get("timed_samples", rec.get("timed_tokens"))
    line = (f"{rec['preset']:18s} {rec['method']:6s} b={rec['batch']:<3d} {rate:12.1f} {unit:9s} "
            f"{rec['achieved_gflops']:8.2f} GFLOP/s  {100 * rec['fraction_of_matvec_ceiling']:6.1f}% matvec  "
            f"{100 * rec['fraction_of_matmul_ceiling']:5.1f}% matmul  compile {rec['compile_seconds']:.1f}s  "
            f"steps {steps}")
    if rec["kind"] == "audio":
        line += f"  RTF@16k {rec['realtime_factor']['16000']:.3g}"
    return line


def run_bench(presets, methods=("cached", "naive"), batches=(1,), seconds=None, tokens=None, repeats=3,
              json_path=None, plot_path=None, run=None, naive_steps=None, threads=None, ceilings=None,
              ceiling_seconds=0.2, log=None):
    """Benchmark generation speed; returns ``{"environment", "ceilings", "records"}``.

    Args:
        presets: names of :data:`PRESETS` (list or comma-separated string).
        methods: ``"cached"`` and/or ``"naive"``.  batches: batch sizes.
        seconds: audio per timed cached run (converted at 16 kHz; default:
            the preset's length, 1 s).  tokens: text tokens per timed cached
            run (default: the preset's context, 1024).
        repeats: timed runs after the warm-up (first) call; the median counts.
        json_path: write the result as JSON.  plot_path: write a bar chart (PNG).
        run: a trained run directory whose model is benchmarked too.
        naive_steps: steps of a timed naive run (default: the preset's).
        threads: the intra-op thread setting in effect, recorded (set it with
            :func:`seqgen.sampling.configure_threads` before TensorFlow starts).
        ceilings: precomputed :func:`seqgen.roofline.measure_ceilings` (else measured here,
            each ceiling timed for at least ``ceiling_seconds`` per call).
        log: ``callable(str)`` for progress lines (default: print to stderr).
    """
    from seqgen.errors import SeqgenError

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    names = _parse_list(presets) or []
    methods = _parse_list(methods) or ["cached"]
    batches = _parse_list(batches, int) or [1]
    chosen = []
    for n in names:
        if n not in PRESETS:
            known = ", ".join(p.name for p in PRESETS.values() if not p.hidden)
            raise SeqgenError(f"unknown preset '{n}'; known: {known}")
        chosen.append(PRESETS[n])
    if run is not None:
        chosen.append(_run_preset(run))
    if not chosen:
        raise SeqgenError("no preset to benchmark")
    for m in methods:
        if m not in METHODS:
            raise SeqgenError(f"unknown method '{m}' ({', '.join(METHODS)})")
    if any(b < 1 for b in batches) or int(repeats) < 1:
        raise SeqgenError("batches and repeats must be >= 1")

    env = environment(threads)
    if ceilings is None:
        from seqgen import roofline

        log("measuring ceilings (matrix-vector, matrix-matrix) ...")
        ceilings = roofline.measure_ceilings(min_seconds=ceiling_seconds)
    log(f"ceilings: matvec {ceilings['matvec_gflops']:.2f} GFLOP/s, matmul {ceilings['matmul_gflops']:.2f} GFLOP/s")
    records = []
    for preset in chosen:
        model = preset.build()
        for method in methods:
            if method not in preset.methods:
                continue
            if method == "naive":
                steps = int(naive_steps or preset.naive_steps)
            elif preset.kind == "audio":
                steps = int(round(seconds * 16000)) if seconds else preset.steps
            else:
                steps = int(tokens) if tokens else preset.steps
            if steps < 1:
                raise SeqgenError("seconds/tokens/naive_steps give no step to time")
            for b in batches:
                rec = _record(preset, model, method, b, steps, repeats, ceilings, env)
                records.append(rec)
                log(summary_line(rec))
    result = {"environment": env, "ceilings": ceilings, "records": records}
    if json_path:
        p = pathlib.Path(json_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(result, indent=2) + "\n")
    if plot_path:
        plot(records, plot_path)
    return result


def threads_label(rec):
    """The intra-op thread setting of a record: ``1``, ``all`` (0 = the backend's default) or ``?``."""
    t = rec.get("environment", {}).get("threads_requested")
    return "?" if t is None else ("all" if int(t) == 0 else str(t))


def merge(paths):
    """Records of several ``--json`` files in one result (e.g. runs with different thread settings)."""
    from seqgen.errors import SeqgenError

    records, ceilings = [], None
    for path in paths:
        try:
            data = json.loads(pathlib.Path(path).read_text())
            records.extend(data["records"])
            ceilings = ceilings or data.get("ceilings")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SeqgenError(f"{path}: not a `seqgen bench --json` file ({e})") from None
    return {"environment": records[0]["environment"] if records else {}, "ceilings": ceilings,
            "records": records, "merged_from": [str(p) for p in paths]}


def markdown_table(records):
    """The results table of bench/README.md (one row per record)."""
    lines = ["| preset | method | batch | threads | samples or tokens/s | x real time @16k / 22.05k / 24k "
             "| sequential steps | GFLOP/s | % matvec ceiling | % matmul ceiling | compile s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        rate = r.get("samples_per_sec", r.get("tokens_per_sec"))
        rtf = (" / ".join(f"{r['realtime_factor'][str(sr)]:.3g}" for sr in AUDIO_RATES)
               if r["kind"] == "audio" else "-")
        steps = r.get("timed_samples", r.get("timed_tokens"))
        seq = r.get("sequential_steps")
        seq = "-" if seq is None else f"{seq:,} for {steps:,}"
        lines.append(f"| {r['preset']} | {r['method']} | {r['batch']} | {threads_label(r)} | {rate:.1f} | {rtf} | "
                     f"{seq} | "
                     f"{r['achieved_gflops']:.2f} | {100 * r['fraction_of_matvec_ceiling']:.1f} | "
                     f"{100 * r['fraction_of_matmul_ceiling']:.1f} | {r['compile_seconds']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


# ======================================================================= plot
def plot(records, path):
    """Bar chart of samples (tokens)/s, log scale, one bar per preset/method/batch,
    annotated with the fraction of the matrix-vector ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['preset']}\n{r['method']} b={r['batch']} t={threads_label(r)}" for r in records]
    rates = [r.get("samples_per_sec", r.get("tokens_per_sec")) for r in records]
    palette = {"cached": "tab:blue", "naive": "tab:orange", "parallel": "tab:green"}
    colors = [palette.get(r["method"], "tab:gray") for r in records]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(records) + 2), 4.8))
    bars = ax.bar(range(len(records)), rates, color=colors)
    ax.set_yscale("log")
    ax.set_xticks(range(len(records)))
    ax.set_xticklabels(labels, fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("samples/s (audio) or tokens/s (text), log scale")
    env = records[0]["environment"] if records else {}
    ax.set_title(f"seqgen bench: {env.get('backend', '')} on {env.get('device', '')[:60]}", fontsize=9)
    for bar, r in zip(bars, records):
        ax.annotate(f"{100 * r['fraction_of_matvec_ceiling']:.1f}% mv\n{100 * r['fraction_of_matmul_ceiling']:.1f}% mm",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=6)
    ax.margins(y=0.2)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=m) for m, c in palette.items()],
              fontsize=7, loc="upper right")
    fig.text(0.01, 0.01, "labels: fraction of the matrix-vector (mv) / matrix-matrix (mm) GFLOP/s ceilings",
             fontsize=6)
    fig.tight_layout()
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


# ======================================================================== CLI
def _cmd_bench(a):
    from seqgen import sampling

    # Must come before TensorFlow runs any op: the setting is fixed for the process.
    if a.merge:
        res = merge(a.merge)
        if a.json:
            pathlib.Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
        if a.plot:
            plot(res["records"], a.plot)
        print(markdown_table(res["records"]))
        return 0
    sampling.configure_threads(a.threads)
    res = run_bench(a.presets, a.methods, a.batches, seconds=a.seconds, tokens=a.tokens, repeats=a.repeats,
                    json_path=a.json, plot_path=a.plot, run=a.run, naive_steps=a.naive_steps,
                    threads=a.threads, log=lambda line: print(line, flush=True))
    print()
    print(markdown_table(res["records"]))
    if a.json:
        print(f"wrote {a.json} ({len(res['records'])} records)")
    return 0


def add_bench(sub):
    """argparse adder of `seqgen bench`."""
    from seqgen.cli_types import positive_float as pos_float
    from seqgen.cli_types import positive_int as pos_int
    from seqgen.cli_types import positive_int_list as int_list

    visible = [p.name for p in PRESETS.values() if not p.hidden]
    p = sub.add_parser("bench", help="sampling-speed benchmark with roofline (JSON, chart)",
                       description="Time cached and naive generation of preset models (random weights) "
                                   "and relate the speed to the matrix-vector and matrix-matrix GFLOP/s "
                                   "ceilings measured in the same run. Presets: " + ", ".join(visible) +
                                   ". See bench/README.md.")
    p.add_argument("--presets", default=",".join(visible), help="comma-separated presets (default: all)")
    p.add_argument("--methods", default="cached,naive,parallel",
                   help="comma-separated: cached, naive (WaveNet, text), parallel (student); a preset runs "
                        "the ones it has")
    p.add_argument("--batches", type=int_list, default=[1], help="comma-separated batch sizes (default 1)")
    p.add_argument("--seconds", type=pos_float, default=None,
                   help="audio per timed cached run, at 16 kHz (default 1)")
    p.add_argument("--tokens", type=pos_int, default=None, help="text tokens per timed cached run (default 1024)")
    p.add_argument("--naive-steps", type=pos_int, default=None,
                   help="samples/tokens per timed naive run (default per preset: 4-32)")
    p.add_argument("--repeats", type=pos_int, default=3, help="timed runs after the warm-up; median (default 3)")
    p.add_argument("--run", default=None, metavar="RUN", help="also benchmark the model of a trained run")
    p.add_argument("--json", default=None, metavar="FILE.json", help="write all records as JSON")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="bar chart of samples/s (log scale)")
    p.add_argument("--threads", type=int, default=1,
                   help="TensorFlow intra-op threads, set before TensorFlow starts and kept for the whole "
                        "run (default 1: fastest for batch 1 on a CPU; 0 = TensorFlow's default)")
    p.add_argument("--merge", nargs="+", default=None, metavar="FILE.json",
                   help="run nothing: combine the records of earlier --json files into one --json/--plot/table "
                        "(e.g. runs with different --threads)")
    p.set_defaults(func=_cmd_bench)


ADDERS = [add_bench]


def main(argv=None):
    """``python -m seqgen.bench [options]``: the same as ``seqgen bench [options]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m seqgen.bench")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench(sub)
    args = parser.parse_args(["bench"] + list(sys.argv[1:] if argv is None else argv))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
