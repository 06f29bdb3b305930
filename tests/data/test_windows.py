"""The scoring windows of a byte stream: every byte once, with the context asked for."""
import numpy as np
import pytest

from seqgen.data.windows import scoring_windows


@pytest.mark.parametrize("n,window,context", [(1001, 100, 0), (1001, 100, 50), (1000, 128, 127), (129, 128, 64),
                                              (5000, 256, 192)])
def test_every_target_is_scored_once_with_its_context(n, window, context):
    plan = scoring_windows(n, window, context)
    scored = np.zeros(n, int)
    for k, (start, first) in enumerate(plan):
        assert 0 <= start and start + window <= n - 1 and 0 <= first < window
        targets = start + 1 + np.arange(first, window)
        scored[targets] += 1
        if k > 0:   # every scored target has at least `context` bytes of its window before its input byte
            assert first >= context
    assert scored[0] == 0 and np.all(scored[1:] == 1)


def test_back_to_back_windows_without_context_and_bad_arguments():
    plan = scoring_windows(1 + 3 * 10, 10, 0)
    assert plan.tolist() == [[0, 0], [10, 0], [20, 0]]
    with pytest.raises(ValueError, match="context"):
        scoring_windows(100, 10, 10)
    with pytest.raises(ValueError, match="shorter than one window"):
        scoring_windows(10, 10, 0)
