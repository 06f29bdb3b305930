"""CausalConv1D: full convolution vs numpy, incremental step vs full, causality."""
import numpy as np
import pytest
from keras import ops

from seqgen.layers import CausalConv1D

pytestmark = pytest.mark.multibackend


def numpy_causal_conv(x, kernel, bias, dilation):
    """Reference: y[t] = b + sum_i x[t - (k-1-i)*d] @ K[i], zeros before t=0."""
    b, t_len, _ = x.shape
    k = kernel.shape[0]
    y = np.tile(bias, (b, t_len, 1)).astype(np.float64)
    for t in range(t_len):
        for i in range(k):
            s = t - (k - 1 - i) * dilation
            if s >= 0:
                y[:, t] += x[:, s] @ kernel[i]
    return y


CASES = [(1, 1), (2, 1), (2, 4), (3, 2), (4, 3)]


@pytest.mark.parametrize("kernel_size,dilation", CASES)
def test_full_conv_matches_numpy_reference(kernel_size, dilation):
    rng = np.random.default_rng(kernel_size * 10 + dilation)
    layer = CausalConv1D(5, kernel_size, dilation, bias_initializer="random_normal")
    x = rng.normal(size=(2, 25, 3)).astype(np.float32)
    y = ops.convert_to_numpy(layer(x))
    ref = numpy_causal_conv(x, ops.convert_to_numpy(layer.kernel), ops.convert_to_numpy(layer.bias), dilation)
    assert y.shape == (2, 25, 5)
    np.testing.assert_allclose(y, ref, atol=1e-5)


@pytest.mark.parametrize("kernel_size,dilation", CASES)
def test_step_equals_full_conv(kernel_size, dilation):
    # T much larger than the queue: the rotating index wraps many times.
    rng = np.random.default_rng(kernel_size + 7 * dilation)
    layer = CausalConv1D(4, kernel_size, dilation, bias_initializer="random_normal")
    x = rng.normal(size=(3, 40, 6)).astype(np.float32)
    full = ops.convert_to_numpy(layer(x))
    queue = layer.initial_cache(3)
    assert tuple(queue.shape) == (layer.queue_size + 1, 3, 6)
    assert layer.queue_size == (kernel_size - 1) * dilation
    outs = []
    for t in range(x.shape[1]):
        y, queue = layer.step(x[:, t], queue, t)
        assert tuple(queue.shape) == (layer.queue_size + 1, 3, 6)
        outs.append(ops.convert_to_numpy(y))
    np.testing.assert_allclose(np.stack(outs, 1), full, atol=1e-5)


def test_step_with_precomputed_fused_kernel_and_offset_time():
    # Starting at an arbitrary absolute time t0 with a zero queue is the
    # same as starting at 0: only differences of t matter.
    rng = np.random.default_rng(1)
    layer = CausalConv1D(3, 3, 2)
    x = rng.normal(size=(1, 20, 2)).astype(np.float32)
    full = ops.convert_to_numpy(layer(x))
    kernel = layer.fused_kernel()
    assert tuple(kernel.shape) == (3 * 2, 3)
    queue = layer.initial_cache(1)
    outs = []
    for i in range(20):
        y, queue = layer.step(x[:, i], queue, 1000 + i, kernel=kernel)
        outs.append(ops.convert_to_numpy(y))
    np.testing.assert_allclose(np.stack(outs, 1), full, atol=1e-5)


def test_causality_future_inputs_do_not_matter():
    rng = np.random.default_rng(2)
    layer = CausalConv1D(4, 3, 2)
    x = rng.normal(size=(2, 30, 3)).astype(np.float32)
    y = ops.convert_to_numpy(layer(x))
    t = 12
    x2 = x.copy()
    x2[:, t + 1:] = rng.normal(size=x2[:, t + 1:].shape)
    y2 = ops.convert_to_numpy(layer(x2))
    np.testing.assert_array_equal(y[:, :t + 1], y2[:, :t + 1])
    assert np.abs(y[:, t + 1:] - y2[:, t + 1:]).max() > 1e-3
    # and the receptive field is exactly (k-1)*d + 1 = 5
    x3 = x.copy()
    x3[:, t - 4] += 1.0
    assert np.abs(ops.convert_to_numpy(layer(x3))[:, t] - y[:, t]).max() > 1e-4
    x4 = x.copy()
    x4[:, t - 5] += 1.0
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x4))[:, t], y[:, t])


def test_config_round_trip_and_validation():
    layer = CausalConv1D(7, 3, 4, use_bias=False, name="cc")
    layer.build((None, None, 2))
    clone = CausalConv1D.from_config(layer.get_config())
    assert (clone.filters, clone.kernel_size, clone.dilation_rate, clone.use_bias) == (7, 3, 4, False)
    clone.build((None, None, 2))
    clone.set_weights(layer.get_weights())
    x = np.random.default_rng(0).normal(size=(1, 9, 2)).astype(np.float32)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), ops.convert_to_numpy(clone(x)))
    assert layer.compute_output_shape((1, 9, 2)) == (1, 9, 7)
    for bad in [dict(filters=0), dict(filters=2, kernel_size=0), dict(filters=2, dilation_rate=0)]:
        with pytest.raises(ValueError):
            CausalConv1D(**bad)
