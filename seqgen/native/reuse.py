"""Keep a native loop on its model while the model's weights stay the same.

Packing the weights (the tiled layout, bfloat16 rounding, int8 scales) costs 20-70 ms for the bench's
models, as much as generating a thousand tokens.  :func:`loop_for` builds a loop once per (class,
arguments) and hands it out again while a fingerprint of the weights is unchanged, so a model trained
further, or given other weights, is repacked.  The fingerprint is each variable's sum and sum of squares,
computed by one compiled function (about a millisecond; reading every variable into numpy instead took
15-70 ms, a quarter of a ByteNet's 1024 tokens).
"""
from __future__ import annotations

import numpy as np


def fingerprint(model) -> tuple:
    from keras import ops

    def sums():
        return ops.stack([ops.stack([ops.sum(ops.cast(v, "float32")), ops.sum(ops.square(ops.cast(v, "float32")))])
                          for v in model.weights])

    return tuple(np.asarray(ops.convert_to_numpy(model._get_compiled(("native-fingerprint",), sums)()),
                            np.float64).ravel().tolist())


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
