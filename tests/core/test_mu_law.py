"""seqgen.core.mu_law against librosa (float64 reference on the same float32 inputs)."""
import librosa
import numpy as np
import pytest

from seqgen.core.decoding import compile_fn as _jit
from seqgen.core import mu_law


def _ref_encode(x, bits):
    n = 2**bits
    return librosa.mu_compress(np.asarray(x, np.float64), mu=n - 1, quantize=True) + n // 2


def _ref_decode(q, bits):
    n = 2**bits
    return librosa.mu_expand(np.asarray(q) - n // 2, mu=n - 1, quantize=True)


def _edge_points(bits):
    """float32 values at and around every bin edge, computed independently of
    seqgen: the x whose compressed value is an edge, plus its float32
    neighbours (a few ulps either side)."""
    n = 2**bits
    mu = n - 1
    edges = np.linspace(-1, 1, n)
    x_edges = np.sign(edges) / mu * (np.power(1.0 + mu, np.abs(edges)) - 1.0)
    pts = [x_edges.astype(np.float32)]
    for direction in (-2.0, 2.0):
        cur = x_edges.astype(np.float32)
        for _ in range(3):
            cur = np.nextafter(cur, np.float32(direction))
            pts.append(cur)
    return np.clip(np.concatenate(pts), -1, 1).astype(np.float32)


@pytest.mark.multibackend
@pytest.mark.parametrize("bits", [8, 16, 4])
def test_encode_matches_librosa(bits):
    rng = np.random.default_rng(bits)
    special = np.array(
        [-1.0, 1.0, 0.0, -0.0, 1e-30, -1e-30, 1e-45, -1e-45, 1e-8, -1e-8, 0.5, -0.5,
         np.nextafter(np.float32(1), np.float32(0)), np.nextafter(np.float32(-1), np.float32(0))],
        np.float32,
    )
    x = np.concatenate(
        [
            special,
            rng.uniform(-1, 1, 50_000).astype(np.float32),
            np.clip(rng.normal(0, 1e-3, 20_000), -1, 1).astype(np.float32),
            (rng.uniform(-1, 1, 5_000) * 10.0 ** rng.uniform(-12, 0, 5_000)).astype(np.float32),
            _edge_points(bits),
        ]
    )
    got = np.asarray(mu_law.encode(x, bits))
    ref = _ref_encode(x, bits)
    assert got.dtype == np.int32
    mismatch = np.flatnonzero(got != ref)
    assert mismatch.size == 0, (x[mismatch[:5]], got[mismatch[:5]], ref[mismatch[:5]])
    assert got.min() == 0 and got.max() == 2**bits - 1  # ±1 reach both ends


@pytest.mark.multibackend
@pytest.mark.parametrize("bits", [8, 16])
def test_decode_matches_librosa_all_classes(bits):
    q = np.arange(2**bits, dtype=np.int32)
    got = np.asarray(mu_law.decode(q, bits))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _ref_decode(q, bits).astype(np.float32))
    assert np.all(np.diff(got) > 0)
    assert got[0] == -1.0 and got[-1] <= 1.0


@pytest.mark.multibackend
def test_encode_is_monotone_and_clips_out_of_range():
    x = np.linspace(-1, 1, 200_001).astype(np.float32)
    q = np.asarray(mu_law.encode(x))
    assert np.all(np.diff(q) >= 0)
    assert set(np.unique(q)) == set(range(256))
    out = np.asarray(mu_law.encode(np.array([-3.0, 2.0, -1.0, 1.0], np.float32)))
    np.testing.assert_array_equal(out, [0, 255, 0, 255])


@pytest.mark.multibackend
def test_roundtrip_matches_librosa_roundtrip():
    q = np.arange(256)
    x = np.asarray(mu_law.decode(q))
    np.testing.assert_array_equal(np.asarray(mu_law.encode(x)), _ref_encode(x, 8))


@pytest.mark.multibackend
def test_jit_matches_eager():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-1, 1, 4096), _edge_points(8)]).astype(np.float32)

    def fn(x):
        q = mu_law.encode(x, 8)
        return q, mu_law.decode(q, 8)

    q_jit, y_jit = _jit(fn)(x)
    q, y = fn(x)
    np.testing.assert_array_equal(np.asarray(q_jit), np.asarray(q))
    np.testing.assert_array_equal(np.asarray(y_jit), np.asarray(y))
    np.testing.assert_array_equal(np.asarray(q), _ref_encode(x, 8))


def test_bad_bits():
    with pytest.raises(ValueError):
        mu_law.encode(np.zeros(3, np.float32), bits=0)
    with pytest.raises(ValueError):
        mu_law.decode(np.zeros(3, np.int32), bits=17)
