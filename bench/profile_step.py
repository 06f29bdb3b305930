"""Where a Transformer byte LM's training step spends its time on XLA:CPU (TensorFlow backend).

Compiles the loss and gradients of a byte-LM config's model (random tokens, the config's batch and
window) with ``tf.function(jit_compile=True)``, runs it under the TensorFlow profiler with XLA's
per-thunk trace on, and prints the time per step of each kind of thunk (``MatMul``: dots, ``*_fusion``:
fused elementwise work) and of the slowest thunks, with their output shapes and dot dimensions from
the optimized HLO. ``--matmul`` instead times one layer's three products (forward ``x W``, input
gradient ``dy W^T``, weight gradient ``x^T dy``) alone, in XLA, for comparison with another library's
GEMM (bench/README.md: "Where the byte LM's step loses").

    taskset -c 1 python bench/profile_step.py [--config recipes/byte_lm/small.yaml] [--threads 1]
    taskset -c 1 python bench/profile_step.py --matmul [--rows 2048 --cols 256 --out 1024]

Run it on a quiet core: other work on the machine moves every figure (about 10% here).
"""
import argparse
import collections
import glob
import os
import re
import statistics
import sys
import tempfile


def _median_seconds(fn, *args, repeats=12):
    """Median wall time of ``fn(*args)`` after two warm-up calls (the first compiles)."""
    import numpy as np

    from seqgen.bench.runner import _measure

    def run():
        out = fn(*args)
        np.asarray(out[0] if isinstance(out, (list, tuple)) else out)  # wait for the result

    run()  # the first warm-up; _measure makes (and leaves out) the second
    return statistics.median(_measure(run, repeats)[1])


def matmul_table(rows, cols, out):
    """GFLOP/s of the three products of one dense layer y = x W (x [rows, cols], W [cols, out])."""
    import tensorflow as tf

    x, dy, w = tf.random.normal((rows, cols)), tf.random.normal((rows, out)), tf.random.normal((cols, out))
    flop = 2.0 * rows * cols * out
    cases = [("forward x W", lambda: tf.matmul(x, w)),
             ("input gradient dy W^T", lambda: tf.matmul(dy, w, transpose_b=True)),
             ("weight gradient x^T dy", lambda: tf.matmul(x, dy, transpose_a=True))]
    for name, f in cases:
        t = _median_seconds(tf.function(f, jit_compile=True), repeats=20)
        print(f"{name:24s} {flop / t / 1e9:6.1f} GFLOP/s  {1e3 * t:6.2f} ms")


def thunk_profile(config, steps=5, top=30):
    import numpy as np
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from seqgen import config as C
    from seqgen.data.tokenizers import BOS_ID, BYTE_VOCAB_SIZE, EOS_ID, PAD_ID
    from seqgen.models.registry import build_model
    from seqgen.models.token_decoding import masked_token_loss

    cfg = C.load(config)
    if cfg["model"]["type"] != "transformer":
        raise SystemExit(f"{config}: profile_step.py times Transformer byte LMs (model.type transformer)")
    model = build_model(cfg["model"], {"vocab_size": BYTE_VOCAB_SIZE, "pad_id": PAD_ID, "bos_id": BOS_ID,
                                       "eos_id": EOS_ID})
    batch, window = int(cfg["data"]["batch_size"]), int(cfg["data"]["window"])
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (batch, window)), tf.int32)
    weights = model.trainable_variables

    @tf.function(jit_compile=True)
    def gradients(x):
        with tf.GradientTape() as tape:
            loss = masked_token_loss(x, model(x, training=True))
        return tape.gradient(loss, weights)

    total = _median_seconds(gradients, x)
    print(f"{config}: batch {batch} x {window}; loss and gradients {1e3 * total:.1f} ms per step (median)")
    logdir = tempfile.mkdtemp(prefix="seqgen-profile-")
    tf.profiler.experimental.start(logdir)
    for _ in range(steps):
        np.asarray(gradients(x)[0])
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    space.ParseFromString(open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb").read())
    per_thunk = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for ev in line.events:
                per_thunk[names.get(ev.metadata_id, "?")] += ev.duration_ps / 1e9 / steps
    hlo = gradients.experimental_get_compiler_ir(x)(stage="optimized_hlo")
    described = {}
    for line in hlo.splitlines():
        m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (\w+\[[\d,]*\])\S* [\w\-]+\((.*)", line)
        if m:
            dims = re.findall(r"(?:lhs|rhs)_contracting_dims=\{[\d,]*\}", m.group(3))
            described[m.group(1)] = (m.group(2), " ".join(dims))
    thunks = {k: v for k, v in per_thunk.items() if k in described}
    kinds = collections.Counter()
    for name, ms in thunks.items():
        kinds[re.sub(r"[._]\d+$", "", name)] += ms
    print(f"thunks: {sum(thunks.values()):.1f} ms per step")
    for kind, ms in kinds.most_common(12):
        print(f"  {ms:8.1f} ms  {kind}")
    print("slowest thunks (output shape, dot contraction):")
    for name, ms in sorted(thunks.items(), key=lambda kv: -kv[1])[:top]:
        shape, dims = described[name]
        print(f"  {ms:7.2f} ms  {name:30s} {shape:22s} {dims}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="recipes/byte_lm/small.yaml")
    p.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads (default 1)")
    p.add_argument("--matmul", action="store_true", help="time one dense layer's three products instead")
    p.add_argument("--rows", type=int, default=2048)
    p.add_argument("--cols", type=int, default=256)
    p.add_argument("--out", type=int, default=1024)
    a = p.parse_args(argv)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(a.threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_enable_xprof_traceme" not in flags:  # XLA:CPU's per-thunk trace events (read at first use)
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_enable_xprof_traceme=true").strip()
    if a.matmul:
        matmul_table(a.rows, a.cols, a.out)
    else:
        thunk_profile(a.config)


if __name__ == "__main__":
    sys.exit(main())
