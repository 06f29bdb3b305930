"""Which Keras backend seqgen runs on, chosen and kept without loading TensorFlow where it is not used.

* :func:`name` reads the backend as Keras will (``KERAS_BACKEND``, else ``keras.json``'s ``backend``, else
  ``tensorflow``) without importing Keras.
* :func:`choose` runs when ``seqgen`` is imported: on a machine with JAX and no TensorFlow (the TensorFlow
  extra not installed) and no backend named anywhere, it names ``jax``, where Keras would fail to start on
  its default.
* :func:`keep_tensorflow_out`: Keras itself imports TensorFlow whenever it is installed, whatever the
  backend (``serialize_keras_object`` asks ``tf.available`` of every object it saves); under another
  backend seqgen tells Keras' lazy TensorFlow handle that it is absent, so a JAX run behaves exactly as it
  does on a machine without TensorFlow, and saves, loads and trains without the import.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import sys


def _keras_json_backend() -> str | None:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        return json.loads((pathlib.Path(home) / "keras.json").read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        return None


def name() -> str:
    """The backend Keras will use in this process (no import)."""
    return os.environ.get("KERAS_BACKEND") or _keras_json_backend() or "tensorflow"


def installed(module: str) -> bool:
    return module in sys.modules or importlib.util.find_spec(module) is not None


def choose() -> None:
    """Name ``jax`` when nothing names a backend and TensorFlow is not installed but JAX is."""
    if os.environ.get("KERAS_BACKEND") or _keras_json_backend():
        return
    if not installed("tensorflow") and installed("jax"):
        os.environ["KERAS_BACKEND"] = "jax"


def keep_tensorflow_out() -> None:
    """Under a backend other than TensorFlow, stop Keras from importing TensorFlow (see the module doc)."""
    if name() == "tensorflow" or "tensorflow" in sys.modules:
        return
    from keras.src.utils import module_utils

    handle = getattr(module_utils, "tensorflow", None)
    if handle is not None and getattr(handle, "module", None) is None:
        handle._available = False
