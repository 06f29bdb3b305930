"""seqgen: autoregressive audio and text generation on Keras 3.

Importing this package is cheap: it imports neither Keras nor TensorFlow.
Submodules are imported on demand (``seqgen.data.audio``, ``seqgen.models``, ...).
TensorFlow-only code lives in ``seqgen.data.pipeline`` (tf.data readers) and
``seqgen.train.loop`` and is never imported by the backend-agnostic core.
"""
import os as _os

__version__ = "0.1.0"

# Quieter TensorFlow start-up unless the user asked otherwise.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
