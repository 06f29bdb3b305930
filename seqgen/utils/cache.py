"""seqgen's cache folder: ``$SEQGEN_CACHE`` (default ``~/.cache/seqgen``), one subfolder per user of it."""
from __future__ import annotations

import os
import pathlib


def cache_dir(name: str) -> pathlib.Path:
    """``$SEQGEN_CACHE/NAME`` (not created here)."""
    root = os.environ.get("SEQGEN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "seqgen")
    return pathlib.Path(root) / name
