"""Machine ceilings for ``seqgen bench``: what the backend reaches on the two
kinds of work that autoregressive generation is made of.

* **matrix-vector** (:func:`matvec_gflops`): one autoregressive step is a
  chain of small dependent matrix-vector products (e.g. a ``[128, 256]``
  weight times a 256-vector).  Measured as a compiled loop (the same
  ``seqgen.core.decoding.compile_fn`` the generators use: XLA on TensorFlow,
  ``jax.jit`` on JAX) in which every iteration depends on the previous one::

      x <- A^T (A x)        A: [rows, cols] float32 with orthonormal rows

  i.e. two matrix-vector products of ``rows x cols`` per iteration
  (``4 * rows * cols`` FLOP).  ``A^T A`` is a projection, so the values stay
  bounded (no overflow, no denormals) however many iterations run.
* **matrix-matrix** (:func:`matmul_gflops`): ``[n, n] @ [n, n]`` (default
  1024), ``2 n^3`` FLOP per product, also a compiled dependent loop
  ``X <- Q X`` with an orthogonal ``Q``.

* **read bandwidth** (:func:`bandwidth_gbs`): at batch 1 a cached decoding
  step is bound by reading its weights (4 bytes per 2 FLOP), so the ceiling
  that matters is how fast a compiled loop streams a weight matrix.  Measured
  as ``x <- A x / |A x|`` with a square float32 ``A`` of a given size, bytes =
  the matrix read once per iteration, for three sizes
  (:data:`BANDWIDTH_SIZES`): 256 KiB (held in a core's L2), 8 MiB (in the
  last-level cache of the hosts we see) and 256 MiB (main memory).

All calibrate the iteration count until one timed call lasts at least
``min_seconds``, then report the best of ``repeats`` calls (a ceiling is
the best the machine does).  FLOP = 2 x multiply-adds.
"""
from __future__ import annotations

import time

import numpy as np

__all__ = ["matvec_gflops", "matmul_gflops", "bandwidth_gbs", "measure_ceilings", "BANDWIDTH_SIZES"]

#: the matrix sizes of the read-bandwidth ceilings (bytes); frozen: figures are compared across hosts
BANDWIDTH_SIZES = {"l2": 256 * 1024, "l3": 8 * 1024 * 1024, "memory": 256 * 1024 * 1024}


def _block(x):
    """Wait for a backend result (JAX dispatch is asynchronous)."""
    if hasattr(x, "block_until_ready"):
        x.block_until_ready()
        return x
    from keras import ops

    return ops.convert_to_numpy(x)


def _orthonormal_rows(rows, cols, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((cols, cols)))
    return np.ascontiguousarray(q[:rows].astype(np.float32))


def _loop_rate(fn, args, flops_per_iter, min_seconds, repeats, max_iters=1 << 24):
    """Calibrate ``n`` so that ``fn(*args, n)`` lasts >= min_seconds; best GFLOP/s."""
    n = 1
    _block(fn(*args, np.int32(n)))  # compile
    while True:
        t0 = time.perf_counter()
        _block(fn(*args, np.int32(n)))
        dt = time.perf_counter() - t0
        if dt >= min_seconds or n >= max_iters:
            break
        n = min(max_iters, n * 2 if dt <= 0 else max(n * 2, int(n * 1.2 * min_seconds / dt)))
    best = dt
    for _ in range(max(0, int(repeats) - 1)):
        t0 = time.perf_counter()
        _block(fn(*args, np.int32(n)))
        best = min(best, time.perf_counter() - t0)
    return flops_per_iter * n / best / 1e9, n, best


def matvec_gflops(rows=128, cols=256, min_seconds=0.2, repeats=3, seed=0):
    """GFLOP/s of dependent ``[rows, cols]`` matrix-vector products in a compiled loop.

    Returns ``{"gflops", "iterations", "seconds", "rows", "cols", "flops_per_iteration"}``.
    """
    from keras import ops

    from seqgen.core.decoding import compile_fn

    a = _orthonormal_rows(rows, cols, seed)
    at = np.ascontiguousarray(a.T)
    x0 = np.random.default_rng(seed + 1).standard_normal((cols,)).astype(np.float32)

    def loop(a_in, at_in, x_in, n):
        def body(i, x):
            return ops.matmul(at_in, ops.matmul(a_in, x))

        return ops.fori_loop(0, n, body, x_in)

    fn = compile_fn(loop)
    flops = 4 * rows * cols
    g, n, dt = _loop_rate(fn, (a, at, x0), flops, min_seconds, repeats)
    return {"gflops": g, "iterations": int(n), "seconds": dt, "rows": int(rows), "cols": int(cols),
            "flops_per_iteration": int(flops)}


def matmul_gflops(n=1024, min_seconds=0.2, repeats=3, seed=0, dtype="float32"):
    """GFLOP/s of dependent ``[n, n] @ [n, n]`` products in a compiled loop, in ``dtype`` (float32; bfloat16
    for the ceiling of ``train.precision=mixed_bfloat16`` on hardware that has it).

    Returns ``{"gflops", "iterations", "seconds", "n", "flops_per_iteration", "dtype"}``.
    """
    from keras import ops

    from seqgen.core.decoding import compile_fn

    q = _orthonormal_rows(n, n, seed)
    x0 = np.random.default_rng(seed + 1).standard_normal((n, n)).astype(np.float32)

    def loop(q_in, x_in, iters):
        q_in, x_in = ops.cast(q_in, dtype), ops.cast(x_in, dtype)

        def body(i, x):
            return ops.matmul(q_in, x)

        return ops.cast(ops.fori_loop(0, iters, body, x_in), "float32")

    fn = compile_fn(loop)
    flops = 2 * n ** 3
    g, iters, dt = _loop_rate(fn, (q, x0), flops, min_seconds, repeats)
    return {"gflops": g, "iterations": int(iters), "seconds": dt, "n": int(n),
            "flops_per_iteration": int(flops), "dtype": str(dtype)}


def bandwidth_gbs(size_bytes, min_seconds=0.2, repeats=3, seed=0):
    """GB/s (1e9 bytes) of reading a square float32 matrix of about ``size_bytes`` once per iteration in a
    compiled dependent loop ``x <- A x / |A x|``.

    Returns ``{"gbs", "bytes", "n", "iterations", "seconds"}``."""
    from keras import ops

    from seqgen.core.decoding import compile_fn

    n = max(8, int((int(size_bytes) / 4) ** 0.5) // 8 * 8)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n), dtype=np.float32)
    a *= np.float32(1.0 / np.sqrt(n))
    x0 = rng.standard_normal((n,), dtype=np.float32)

    def loop(a_in, x_in, iters):
        def body(i, x):
            y = ops.matmul(a_in, x)
            return y * ops.rsqrt(ops.sum(y * y) + 1e-30)

        return ops.fori_loop(0, iters, body, x_in)

    fn = compile_fn(loop)
    nbytes = 4 * n * n
    # _loop_rate counts "flops" per iteration: pass bytes, read GB/s back
    gbs, iters, dt = _loop_rate(fn, (a, x0), nbytes, min_seconds, repeats)
    return {"gbs": gbs, "bytes": int(nbytes), "n": int(n), "iterations": int(iters), "seconds": dt}


def measure_ceilings(matvec_shape=(128, 256), matmul_n=1024, min_seconds=0.2, repeats=3, bandwidth=True):
    """The ceilings: ``{"matvec_gflops", "matmul_gflops", "matvec", "matmul", "bandwidth_gbs", "bandwidth"}``
    (``bandwidth_gbs``: ``{"l2", "l3", "memory"}`` of :data:`BANDWIDTH_SIZES`)."""
    mv = matvec_gflops(*matvec_shape, min_seconds=min_seconds, repeats=repeats)
    mm = matmul_gflops(matmul_n, min_seconds=min_seconds, repeats=repeats)
    out = {"matvec_gflops": mv["gflops"], "matmul_gflops": mm["gflops"], "matvec": mv, "matmul": mm}
    if bandwidth:
        bw = {level: bandwidth_gbs(size, min_seconds=min_seconds, repeats=repeats)
              for level, size in BANDWIDTH_SIZES.items()}
        out["bandwidth"] = bw
        out["bandwidth_gbs"] = {level: r["gbs"] for level, r in bw.items()}
    return out
