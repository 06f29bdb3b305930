"""The generic incremental-decoding protocol (seqgen.core.decoding)."""
import keras
import numpy as np
import pytest
from keras import ops

from seqgen.core.decoding import compile_fn, decode_loop, time_slice

pytestmark = pytest.mark.multibackend

B, L, V = 2, 12, 5


def _toy():
    """A toy autoregressive model: a decaying state + one-hot input; the cache
    is a nested dict (state + a rotating 3-slot history) to exercise nesting."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(V, V)).astype(np.float32)

    def step_fn(x_t, cache, t, ctx):
        state = cache["state"] * 0.5 + ops.one_hot(x_t, V)
        hist = ops.slice_update(cache["hist"], [0, ops.mod(t, 3)], ops.expand_dims(ops.cast(x_t, "float32"), 1))
        params = ops.matmul(state, w) + ops.sum(hist, axis=1, keepdims=True) * 0.1
        if ctx is not None:
            params = params + ctx["bias"]
        return params, {"state": state, "hist": hist}

    def sample_fn(params, noise):
        if noise is not None:
            params = params + noise
        return ops.cast(ops.argmax(params, axis=-1), "int32")

    def reference(x0, noise, ctx_bias, steps, start=0):
        state = np.zeros((B, V), np.float32)
        hist = np.zeros((B, 3), np.float32)
        x = x0.copy()
        out = np.zeros((B, steps), np.int32)
        for i in range(steps):
            t = start + i
            state = state * 0.5 + np.eye(V, dtype=np.float32)[x]
            hist[:, t % 3] = x
            params = state @ w + hist.sum(1, keepdims=True) * 0.1
            if ctx_bias is not None:
                params = params + ctx_bias[:, i]
            if noise is not None:
                params = params + noise[:, i]
            x = params.argmax(-1).astype(np.int32)
            out[:, i] = x
        return out, x

    cache0 = {"state": np.zeros((B, V), np.float32), "hist": np.zeros((B, 3), np.float32)}
    return step_fn, sample_fn, reference, cache0


def test_loop_matches_python_reference_with_noise_and_context():
    step_fn, sample_fn, reference, cache0 = _toy()
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(B, L, V)).astype(np.float32)
    bias = rng.normal(size=(B, L, V)).astype(np.float32)
    x0 = np.array([1, 3], np.int32)
    out, last, cache, steps = decode_loop(step_fn, sample_fn, x0, cache0, noise=noise,
                                          context={"bias": bias})
    ref, ref_last = reference(x0, noise, bias, L)
    np.testing.assert_array_equal(ops.convert_to_numpy(out), ref)
    np.testing.assert_array_equal(ops.convert_to_numpy(last), ref_last)
    assert int(ops.convert_to_numpy(steps)) == L
    assert set(cache) == {"state", "hist"}


def test_compiled_partial_steps_and_carried_cache_equal_one_long_run():
    step_fn, sample_fn, reference, cache0 = _toy()
    rng = np.random.default_rng(2)
    noise = rng.normal(size=(B, 2 * L, V)).astype(np.float32)
    x0 = np.array([0, 4], np.int32)
    traces = []

    def chunk(x, cache, start, n, nz):
        traces.append(1)
        return decode_loop(step_fn, sample_fn, x, cache, noise=nz, num_steps=n, start=start)

    run = compile_fn(chunk)
    # three calls: L steps, 5 steps, L - 5 steps, with cache and input
    # carried over, must equal one run of 2L steps
    x, cache, pos, pieces = x0, cache0, 0, []
    for n in (L, 5, L - 5):
        nz = np.zeros((B, L, V), np.float32)
        nz[:, :n] = noise[:, pos:pos + n]
        out, x, cache, steps = run(x, cache, np.int32(pos), np.int32(n), nz)
        out = ops.convert_to_numpy(out)
        assert int(ops.convert_to_numpy(steps)) == n
        assert (out[:, n:] == 0).all()          # untouched buffer tail
        pieces.append(out[:, :n])
        pos += n
    full, _ = reference(x0, noise, None, 2 * L)
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), full)
    assert len(traces) == 1, "one trace for all (start, num_steps) values"


def test_absolute_time_and_early_stop():
    def step_fn(x_t, cache, t, ctx):
        return ops.cast(ops.stack([t, t], 0), "int32"), cache

    def sample_fn(params, noise):
        return params

    out, last, _, steps = decode_loop(step_fn, sample_fn, np.zeros((2,), np.int32),
                                      (np.zeros((1,), np.float32),), length=6, start=100)
    np.testing.assert_array_equal(ops.convert_to_numpy(out), np.tile(np.arange(100, 106), (2, 1)))
    # stop once every row has produced a value >= 102
    out, last, _, steps = decode_loop(step_fn, sample_fn, np.zeros((2,), np.int32),
                                      (np.zeros((1,), np.float32),), length=6, start=100,
                                      finished_fn=lambda s: s >= 102)
    assert int(ops.convert_to_numpy(steps)) == 3
    np.testing.assert_array_equal(ops.convert_to_numpy(out)[0], [100, 101, 102, 0, 0, 0])
    with pytest.raises(ValueError):
        decode_loop(step_fn, sample_fn, np.zeros((2,), np.int32), (), length=None)


def test_time_slice():
    x = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    for i in range(4):
        np.testing.assert_array_equal(ops.convert_to_numpy(time_slice(x, i)), x[:, i])
    y = np.arange(8, dtype=np.int32).reshape(2, 4)
    np.testing.assert_array_equal(ops.convert_to_numpy(time_slice(y, 2)), y[:, 2])


def test_compile_fn_sees_variable_updates():
    v = keras.Variable(np.ones((3,), np.float32))

    def fn(x):
        return x * v

    run = compile_fn(fn, variables=[v])
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_allclose(ops.convert_to_numpy(run(x)), x)
    v.assign(np.full((3,), 2.0, np.float32))
    np.testing.assert_allclose(ops.convert_to_numpy(run(x)), 2 * x)
