"""ResidualBlock: gated maths vs numpy, step vs full sequence, conditioning."""
import numpy as np
import pytest

from seqgen.layers import ResidualBlock

from conftest import _np

pytestmark = pytest.mark.multibackend




def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _numpy_block(block, h, cond, g):
    """Reference implementation of the documented formula (numpy)."""
    k = _np(block.conv.kernel)
    kb = _np(block.conv.bias)
    d = block.dilation_rate
    b, t_len, _ = h.shape
    gate = np.tile(kb, (b, t_len, 1)).astype(np.float64)
    for t in range(t_len):
        for i in range(k.shape[0]):
            s = t - (k.shape[0] - 1 - i) * d
            if s >= 0:
                gate[:, t] += h[:, s] @ k[i]
    if cond is not None:
        gate += cond @ _np(block.cond_proj.kernel)
    if g is not None:
        gate += (g @ _np(block.global_proj.kernel))[:, None, :]
    half = block.gate_channels // 2
    z = np.tanh(gate[..., :half]) * _sigmoid(gate[..., half:])
    skip = z @ _np(block.skip_proj.kernel) + _np(block.skip_proj.bias)
    h_out = h + z @ _np(block.res_proj.kernel) + _np(block.res_proj.bias)
    return h_out, skip


def _make(kernel_size=2, dilation=2, cond=3, glob=4, residual_output=True):
    block = ResidualBlock(residual_channels=6, gate_channels=10, skip_channels=5,
                          kernel_size=kernel_size, dilation_rate=dilation, cond_channels=cond,
                          global_channels=glob, residual_output=residual_output)
    block.build()
    rng = np.random.default_rng(kernel_size * 100 + dilation)
    # non-zero biases so that they are exercised
    for w in block.weights:
        if "bias" in w.path:
            w.assign(rng.normal(size=w.shape).astype(np.float32) * 0.3)
    return block


def test_call_matches_numpy_formula():
    block = _make(kernel_size=3, dilation=2)
    rng = np.random.default_rng(0)
    h = rng.normal(size=(2, 15, 6)).astype(np.float32)
    c = rng.normal(size=(2, 15, 3)).astype(np.float32)
    g = rng.normal(size=(2, 4)).astype(np.float32)
    h_out, skip = block(h, cond=c, global_cond=g)
    ref_h, ref_s = _numpy_block(block, h, c, g)
    np.testing.assert_allclose(_np(h_out), ref_h, atol=1e-5)
    np.testing.assert_allclose(_np(skip), ref_s, atol=1e-5)


@pytest.mark.parametrize("kernel_size,dilation,residual_output", [(2, 1, True), (2, 4, False), (3, 3, True)])
def test_step_equals_full_sequence(kernel_size, dilation, residual_output):
    block = _make(kernel_size, dilation, residual_output=residual_output)
    rng = np.random.default_rng(1)
    t_len = 30
    h = rng.normal(size=(2, t_len, 6)).astype(np.float32)
    c = rng.normal(size=(2, t_len, 3)).astype(np.float32)
    g = rng.normal(size=(2, 4)).astype(np.float32)
    h_full, s_full = block(h, cond=c, global_cond=g)
    gate_bias = _np(block.gate_bias(c, g))               # [B, T, G]
    assert gate_bias.shape == (2, t_len, 10)
    weights = block.step_weights()
    queue = block.initial_cache(2)
    hs, ss = [], []
    for t in range(t_len):
        h_t, s_t, queue = block.step(h[:, t], queue, t, gate_bias[:, t], weights=weights)
        ss.append(_np(s_t))
        if residual_output:
            hs.append(_np(h_t))
        else:
            assert h_t is None
    np.testing.assert_allclose(np.stack(ss, 1), _np(s_full), atol=1e-5)
    if residual_output:
        np.testing.assert_allclose(np.stack(hs, 1), _np(h_full), atol=1e-5)
    else:
        assert h_full is None
        assert block.res_proj is None
        assert not any("res_proj" in w.path for w in block.weights)


def test_global_conditioning_only_and_none():
    rng = np.random.default_rng(2)
    h = rng.normal(size=(2, 8, 6)).astype(np.float32)
    g = rng.normal(size=(2, 4)).astype(np.float32)
    block = _make(cond=0, glob=4)
    gb = _np(block.gate_bias(None, g))
    assert gb.shape == (2, 10)
    h_out, _ = block(h, global_cond=g)
    ref_h, _ = _numpy_block(block, h, None, g)
    np.testing.assert_allclose(_np(h_out), ref_h, atol=1e-5)
    # speaker vectors change the output
    h_out2, _ = block(h, global_cond=g[::-1].copy())
    assert np.abs(_np(h_out2) - _np(h_out)).max() > 1e-4
    plain = _make(cond=0, glob=0)
    assert plain.gate_bias(None, None) is None
    out, skip = plain(h)
    assert _np(skip).shape == (2, 8, 5)


def test_missing_conditioning_and_bad_gate_raise():
    block = _make()
    h = np.zeros((1, 4, 6), np.float32)
    with pytest.raises(ValueError):
        block(h, global_cond=np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError):
        block(h, cond=np.zeros((1, 4, 3), np.float32))
    with pytest.raises(ValueError):
        ResidualBlock(gate_channels=7)


def test_config_round_trip():
    block = _make(kernel_size=3, dilation=8, residual_output=False)
    cfg = block.get_config()
    clone = ResidualBlock.from_config(cfg)
    assert clone.get_config() == cfg
    clone.build()
    assert len(clone.weights) == len(block.weights)
