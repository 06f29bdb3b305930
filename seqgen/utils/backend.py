"""Which Keras backend seqgen runs on, chosen and kept without loading TensorFlow where it is not used.

* :func:`name` reads the backend as Keras will (``KERAS_BACKEND``, else ``keras.json``'s ``backend``, else
  ``tensorflow``) without importing Keras.
* :func:`choose` runs when ``seqgen`` is imported: on a machine with JAX and no TensorFlow (the TensorFlow
  extra not installed), unless ``KERAS_BACKEND`` names one, it names ``jax`` where Keras would fail to
  start on TensorFlow (its default, or the ``keras.json`` it wrote with that default).
* :func:`keep_tensorflow_out`: Keras itself imports TensorFlow whenever it is installed, whatever the
  backend (``serialize_keras_object`` asks ``tf.available`` of every object it saves); under another
  backend seqgen tells Keras' lazy TensorFlow handle that it is absent, so a JAX run behaves exactly as it
  does on a machine without TensorFlow, and saves, loads and trains without the import.
* :func:`dtype_policy`: Keras' global dtype policy for the length of a block (``train.precision``).
"""
from __future__ import annotations

import contextlib
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
    """Name ``jax`` when ``KERAS_BACKEND`` is unset, the backend would be TensorFlow (``keras.json``, which
    Keras writes with its default on first import, or nothing), and TensorFlow is not installed but JAX is."""
    if os.environ.get("KERAS_BACKEND") or name() != "tensorflow":
        return
    if not installed("tensorflow") and installed("jax"):
        os.environ["KERAS_BACKEND"] = "jax"


def missing_message() -> str | None:
    """A one-line error when the backend Keras will use is not installed, else None."""
    backend = name()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if module is None or installed(module):
        return None
    extra = {"tensorflow": "tf", "jax": "jax"}.get(backend)
    fix = f"pip install -e '.[{extra}]'" if extra else f"pip install {module}"
    return (f"the Keras backend is {backend} (KERAS_BACKEND or ~/.keras/keras.json), which is not installed: "
            f"{fix}, or name an installed one (e.g. KERAS_BACKEND=jax)")


def keep_tensorflow_out() -> None:
    """Under a backend other than TensorFlow, stop Keras from importing TensorFlow (see the module doc)."""
    if name() == "tensorflow" or "tensorflow" in sys.modules:
        return
    from keras.src.utils import module_utils

    handle = getattr(module_utils, "tensorflow", None)
    if handle is not None and getattr(handle, "module", None) is None:
        handle._available = False


@contextlib.contextmanager
def dtype_policy(policy: str):
    """Keras' global dtype policy set to ``policy`` (e.g. ``train.precision``) inside the block, restored after:
    seqgen's models build their sub-layers from hyper-parameters, so the policy in force when a model is built
    or loaded is the one all its layers take."""
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)
