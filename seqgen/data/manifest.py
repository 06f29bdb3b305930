"""``DATA/manifest.json``: what `seqgen prepare` made, read back with clear errors.

``data_prep`` writes it; training, evaluation and the pipelines read it through
:func:`read_manifest`.
"""
from __future__ import annotations

import json
import pathlib

from seqgen.errors import DataError

MANIFEST = "manifest.json"


def read_manifest(data_dir, kind: str | None = None) -> dict:
    """Load ``DATA/manifest.json``; clear errors when missing or of another kind."""
    path = pathlib.Path(data_dir) / MANIFEST
    if not path.is_file():
        raise DataError(f"{data_dir}: no {MANIFEST} here; prepare the data first with `seqgen prepare ...`")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as e:
        raise DataError(f"{path}: not valid JSON ({e}); prepare the data again") from None
    if kind is not None and manifest.get("kind") != kind:
        raise DataError(f"{data_dir}: holds '{manifest.get('kind')}' data, but '{kind}' data is needed "
                        f"(prepare it with `seqgen prepare {kind}`)")
    return manifest
