"""Keep a native loop on its model while the model's weights stay the same.

Packing the weights (the tiled layout, bfloat16 rounding, int8 scales) costs 20-70 ms for the bench's
models, as much as generating a thousand tokens.  :func:`loop_for` builds a loop once per (class,
arguments) and hands it out again while a fingerprint of the weights is unchanged, so a model trained
further, or given other weights, is repacked.
"""
from __future__ import annotations

import numpy as np


def fingerprint(model) -> tuple:
    """Each variable's float64 sum, read into numpy (5-20 ms for the bench's models; a compiled version was
    tried and dropped: its per-call closure, traced by TensorFlow, once confused autograph's cache with
    another function's in a full test run)."""
    from keras import ops

    return tuple(float(np.sum(ops.convert_to_numpy(v), dtype=np.float64)) for v in model.weights)


def loop_for(model, cls, *args):
    """``cls(model, *args)``, reused while ``model``'s weights are unchanged."""
    store = model.__dict__.setdefault("_native_loops", {})   # outside Keras' attribute tracking
    key = (cls.__name__,) + tuple(args)
    now = fingerprint(model)
    hit = store.get(key)
    if hit is not None and hit[0] == now:
        return hit[1]
    loop = cls(model, *args)
    store[key] = (now, loop)
    return loop
