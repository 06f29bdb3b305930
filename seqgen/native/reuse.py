"""Keep a native loop on its model while the model's weights stay the same.

Packing the weights (the tiled layout, bfloat16 rounding, int8 scales) costs 20-70 ms for the bench's
models, as much as generating a thousand tokens.  :func:`loop_for` builds a loop once per (class,
arguments) and hands it out again while a fingerprint of the weights is unchanged, so a model trained
further, or given other weights, is repacked.
"""
from __future__ import annotations

import numpy as np


def fingerprint(model) -> tuple:
    """Each variable's float64 sum.  On TensorFlow one compiled function computes them all (about 1 ms for
    the bench's ByteNet, 185 variables, where reading each variable into numpy took 10 ms, 15% of
    generating its 1,024 tokens); it is built once per model, without XLA or autograph (one straight line
    of reductions), and reads the variables' current values at every call.  On JAX reading a variable
    into numpy is free of copies, and numpy sums them (JAX has no float64 unless enabled).  A change
    that keeps every variable's sum (two weights swapped) is not seen."""
    import keras
    from keras import ops

    variables = list(model.weights)
    if keras.backend.backend() != "tensorflow":
        return tuple(float(np.sum(ops.convert_to_numpy(v), dtype=np.float64)) for v in variables)
    from seqgen.core.decoding import compile_fn

    store = model.__dict__.setdefault("_native_loops", {})
    key = ("fingerprint",) + tuple(id(v) for v in variables)
    fn = store.get(key)
    if fn is None:
        def sums():
            return ops.stack([ops.sum(ops.cast(v, "float64")) for v in variables])

        fn = store[key] = compile_fn(sums, variables=variables, xla=False)
    return tuple(np.asarray(ops.convert_to_numpy(fn()), np.float64).tolist())


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
