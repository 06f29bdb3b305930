"""Upsampler: exact lengths, frame alignment, chunked == full."""
import numpy as np
import pytest
from keras import ops

from seqgen.layers import Upsampler, default_upsample_scales

pytestmark = pytest.mark.multibackend


@pytest.mark.parametrize("hop", [1, 2, 80, 200, 256, 300, 441, 600])
def test_default_scales_factor_hop(hop):
    scales = default_upsample_scales(hop)
    assert int(np.prod(scales)) == hop
    assert all(s >= 2 for s in scales)
    # small factors: only primes > 4 are left as they are
    assert all(s <= 5 or all(s % p for p in range(2, s)) for s in scales)
    assert scales == sorted(scales, reverse=True)


def test_default_scales_examples():
    assert default_upsample_scales(256) == [4, 4, 4, 4]
    assert default_upsample_scales(200) == [5, 5, 4, 2]
    assert default_upsample_scales(1) == []
    with pytest.raises(ValueError):
        default_upsample_scales(0)


def _make(hop=12, scales=None, context=2, cin=4, ch=3, seed=0):
    up = Upsampler(hop, ch, upsample_scales=scales, context=context)
    up.build((None, None, cin))
    rng = np.random.default_rng(seed)
    for w in up.weights:   # non-zero biases
        if "bias" in w.path:
            w.assign(rng.normal(size=w.shape).astype(np.float32) * 0.2)
    return up


def test_output_length_is_frames_times_hop():
    up = _make(hop=12, scales=[3, 4])
    mel = np.random.default_rng(0).normal(size=(2, 7, 4)).astype(np.float32)
    out = ops.convert_to_numpy(up(mel))
    assert out.shape == (2, 7 * 12, 3)
    assert up.compute_output_shape((2, 7, 4)) == (2, 84, 3)


@pytest.mark.parametrize("context", [0, 1, 2])
def test_sample_t_depends_on_frame_t_over_hop_and_context_only(context):
    hop, frames = 6, 9
    up = _make(hop=hop, scales=[2, 3], context=context)
    rng = np.random.default_rng(1)
    mel = rng.normal(size=(1, frames, 4)).astype(np.float32)
    base = ops.convert_to_numpy(up(mel))[0]
    f = 4
    mel2 = mel.copy()
    mel2[0, f] += 3.0
    diff = np.abs(ops.convert_to_numpy(up(mel2))[0] - base).max(axis=-1)
    changed = diff > 1e-6
    lo, hi = (f - context) * hop, (f + context + 1) * hop
    expected = np.zeros(frames * hop, bool)
    expected[lo:hi] = True
    # nothing outside the frame's context window changes...
    assert not changed[~expected].any()
    # ...and every hop-sized block inside it does
    for block in range(f - context, f + context + 1):
        assert changed[block * hop:(block + 1) * hop].any()


@pytest.mark.parametrize("start,num", [(0, 3), (2, 4), (5, 5), (8, 2), (0, 10)])
def test_chunked_equals_full(start, num):
    up = _make(hop=8, scales=[4, 2], context=2)
    mel = np.random.default_rng(2).normal(size=(2, 10, 4)).astype(np.float32)
    full = ops.convert_to_numpy(up(mel))
    frames = up.frames_with_context(mel, start, num)
    assert frames.shape == (2, num + 4, 4)
    chunk = ops.convert_to_numpy(up.upsample_padded(frames))
    np.testing.assert_allclose(chunk, full[:, start * 8:(start + num) * 8], atol=1e-5)


def test_chunk_past_the_end_is_zero_padded():
    # a last chunk may extend beyond the mel: its valid part is still exact
    up = _make(hop=4, scales=[2, 2], context=1)
    mel = np.random.default_rng(3).normal(size=(1, 5, 4)).astype(np.float32)
    full = ops.convert_to_numpy(up(mel))
    frames = up.frames_with_context(mel, 3, 4)        # frames 3..6, only 3..4 exist
    chunk = ops.convert_to_numpy(up.upsample_padded(frames))
    np.testing.assert_allclose(chunk[:, :2 * 4], full[:, 3 * 4:], atol=1e-5)


def test_validation_and_config():
    with pytest.raises(ValueError):
        Upsampler(12, 3, upsample_scales=[2, 5])
    with pytest.raises(ValueError):
        Upsampler(12, 3, context=-1)
    up = _make(hop=12, scales=[4, 3], context=1)
    cfg = up.get_config()
    clone = Upsampler.from_config(cfg)
    assert clone.get_config() == cfg
    clone.build((None, None, 4))
    clone.set_weights(up.get_weights())
    mel = np.random.default_rng(4).normal(size=(1, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(ops.convert_to_numpy(clone(mel)), ops.convert_to_numpy(up(mel)))
