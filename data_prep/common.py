"""Pieces shared by every corpus preparer: splits, shards, manifests, reporting."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import pathlib
import sys
import tempfile

from seqgen.data.manifest import MANIFEST, read_manifest  # noqa: F401  (re-exported for the preparers)
from seqgen.data.records import FORMAT_VERSION
from seqgen.errors import DataError
from seqgen.utils.progress import progress  # noqa: F401

def stable_hash(key: str) -> int:
    """A hash of a string that is the same on every machine and Python run."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def split_keys(keys, valid_fraction: float, min_valid: int = 1) -> set:
    """The keys that go to the validation split.

    Deterministic and independent of input order: keys are ranked by a
    stable hash and the first ``round(valid_fraction * n)`` (at least
    ``min_valid`` when there are two keys or more) are validation keys.
    """
    keys = sorted(set(keys))
    if len(keys) < 2 or valid_fraction <= 0:
        return set()
    n_valid = max(min_valid, int(round(valid_fraction * len(keys))))
    n_valid = min(n_valid, len(keys) - 1)
    ranked = sorted(keys, key=lambda k: (stable_hash(k), k))
    return set(ranked[:n_valid])


class Skipped:
    """Collects inputs that could not be used, with the reason."""

    def __init__(self):
        self.items: list[dict] = []

    def add(self, path, reason: str) -> None:
        self.items.append({"path": str(path), "reason": str(reason)})

    def __len__(self):
        return len(self.items)

    def summary_line(self, what: str = "inputs") -> str | None:
        if not self.items:
            return None
        reasons: dict[str, int] = {}
        for it in self.items:
            key = it["reason"].split(" (")[0]
            reasons[key] = reasons.get(key, 0) + 1
        parts = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
        return f"seqgen prepare: skipped {len(self.items)} {what} ({parts}); see 'skipped' in the manifest"

    def report(self, what: str = "inputs") -> None:
        line = self.summary_line(what)
        if line:
            print(line, file=sys.stderr)


def write_json_atomic(path, obj) -> None:
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def base_manifest(kind: str, source: str) -> dict:
    from seqgen import __version__

    return {
        "kind": kind,
        "source": str(source),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seqgen_version": __version__,
        "format_version": FORMAT_VERSION,
    }


def prepare_out_dir(out) -> pathlib.Path:
    out = pathlib.Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    # Stale shards from an earlier preparation would mix into this one.
    for old in list(out.glob("*.tfrecord")) + list(out.glob("*.tfrecord.tmp")) + list(out.glob("*.array_record")) \
            + list(out.glob("*.array_record.tmp")) + list(out.glob("*.bin")) + list(out.glob("*-?????.tsv")):
        old.unlink()
    return out
