"""Keras models (backend-agnostic, ``keras.ops`` only).

Imported lazily so that ``import seqgen.models.registry`` stays cheap (no
Keras / TensorFlow import until a model class is used).
"""
import importlib

__all__ = ["WaveNet", "TransformerDecoder", "ByteNet"]

_LAZY = {
    "WaveNet": "seqgen.models.wavenet",
    "TransformerDecoder": "seqgen.models.transformer",
    "ByteNet": "seqgen.models.bytenet",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
