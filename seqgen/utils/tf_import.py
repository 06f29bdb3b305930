"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ runtime prints informational lines (oneDNN, CUDA stubs)
before its logging is configured, so TF_CPP_MIN_LOG_LEVEL cannot hide them.
``tensorflow()`` imports it once with file descriptor 2 pointed at
/dev/null; set SEQGEN_DEBUG=1 to see everything.
"""
import os
import sys


def tensorflow():
    """Return the ``tensorflow`` module, importing it quietly the first time."""
    if "tensorflow" in sys.modules or os.environ.get("SEQGEN_DEBUG") == "1":
        import tensorflow as tf

        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        import tensorflow as tf

        tf.config.list_physical_devices()  # device probing (CUDA stubs) also chatters
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
    return tf
