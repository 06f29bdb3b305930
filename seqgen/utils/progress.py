"""Progress bars on stderr (tqdm), off with SEQGEN_PROGRESS=0."""
from __future__ import annotations

import os
import sys


def progress(iterable=None, total=None, desc="", unit="it", disable=None):
    """A tqdm progress bar on stderr (disabled when stderr is not a terminal and SEQGEN_PROGRESS=0)."""
    from tqdm.auto import tqdm

    if disable is None:
        disable = os.environ.get("SEQGEN_PROGRESS", "1") == "0"
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5)
