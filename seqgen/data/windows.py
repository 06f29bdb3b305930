"""Which windows score a byte stream, so that every byte is scored once and with enough context.

A model of window ``W`` reads inputs ``data[a : a + W]`` and predicts ``data[a + 1 : a + W + 1]``.  Cut
into back-to-back windows, the first bytes of each window are predicted from almost nothing.
:func:`scoring_windows` overlaps them instead: consecutive windows advance by ``W - context`` and each
scores only its last ``W - context`` targets (the first window scores all of its), so every target
``1 .. n - 1`` is scored exactly once and all but the first window's have at least ``context`` bytes
before them in the window.  Pure numpy: a peer's evaluator (``bench/peers/nanogpt_eval.py``) uses the same
plan, so two models are scored on the same bytes with the same context.
"""
from __future__ import annotations

import numpy as np


def scoring_windows(n: int, window: int, context: int = 0) -> np.ndarray:
    """``[K, 2]`` rows ``(start, first)``: the window reads ``data[start : start + window]`` and scores its
    targets ``data[start + 1 + j]`` for ``j >= first``.  ``n`` bytes in the stream; ``0 <= context < window``.
    The last window ends at the stream's end (its ``first`` skips what earlier windows scored)."""
    n, window, context = int(n), int(window), int(context)
    if not 0 <= context < window:
        raise ValueError(f"context must be in [0, window): got {context} for a window of {window}")
    if n - 1 < window:
        raise ValueError(f"a stream of {n} bytes is shorter than one window of {window} targets")
    rows, start, scored_to = [], 0, 0  # scored_to: targets 1 .. scored_to are scored
    while scored_to < n - 1:
        start = min(start, n - 1 - window)
        first = scored_to - start      # target index (start + 1 + j) == scored_to + 1
        rows.append((start, first))
        scored_to = start + window
        start += window - context
    return np.asarray(rows, np.int64)
