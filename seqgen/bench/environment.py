"""What a benchmark record says about the machine and software it ran on."""
from __future__ import annotations

import os
import pathlib
import platform
import resource
import sys

import numpy as np


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
        from seqgen.utils.tf_import import tensorflow

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
