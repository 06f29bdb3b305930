"""One seed for Python, NumPy and Keras, without importing TensorFlow on other backends.

``keras.utils.set_random_seed`` also seeds TensorFlow whenever it is installed, which imports it (seconds,
hundreds of MB) even under JAX.  :func:`set_seed` does what it does for the backend in use: under
TensorFlow it is Keras' own call; elsewhere it seeds ``random`` and NumPy and resets Keras' global seed
generator from the seed, as Keras does (weights initialized without a seed and dropout draw from it).
"""
from __future__ import annotations

import random

import numpy as np


def set_seed(seed: int) -> None:
    import keras

    seed = int(seed)
    if keras.backend.backend() in ("tensorflow", "torch"):
        keras.utils.set_random_seed(seed)
        return
    try:  # Keras' global state, as set_random_seed leaves it
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils import rng_utils

        global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
        global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    except (ImportError, AttributeError):  # a Keras that moved them: its public call (may import TensorFlow)
        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)
    np.random.seed(seed)
