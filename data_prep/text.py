"""`seqgen prepare text` and `seqgen prepare pairs`.

Text (byte-level language models)
---------------------------------
Input files are streamed in blocks and concatenated (a newline between
files).  The first ``1 - valid_fraction`` of all bytes is the train split and
the rest the valid split (contiguous, so validation text is unseen text).
Output: ``train-NNNNN.bin`` / ``valid-NNNNN.bin`` (raw bytes, at most 64 MiB
each), ``manifest.json``, and with ``--tokenizer sentencepiece`` a
``tokenizer.model`` trained on the train split.  A file that is not UTF-8
text (or is empty) is skipped and listed with the reason.

Pairs (translation)
-------------------
``source<TAB>target`` lines.  The split is grouped by the source side: all
pairs sharing a source sentence land in the same split, chosen by a stable
hash of the source.  Output: ``train-NNNNN.tsv`` / ``valid-NNNNN.tsv``
(UTF-8, one pair a line) and ``manifest.json``.  Malformed lines (no tab,
an empty side, invalid UTF-8, control characters) are skipped and listed.
"""
from __future__ import annotations

import codecs
import pathlib
import sys
import tempfile

from data_prep import common
from seqgen.errors import DataError

BLOCK = 1 << 20


def _check_utf8(path: pathlib.Path) -> str | None:
    """None if the file is non-empty UTF-8 text, else the reason."""
    size = path.stat().st_size
    if size == 0:
        return "empty file"
    dec = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as f:
        while True:
            block = f.read(BLOCK)
            if not block:
                break
            if b"\x00" in block:
                return "binary file (NUL bytes), not text"
            try:
                dec.decode(block)
            except UnicodeDecodeError as e:
                return f"undecodable text (not UTF-8 at byte {e.start})"
    try:
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return "undecodable text (truncated UTF-8 at the end)"
    return None


class _BinShards:
    def __init__(self, out, prefix, max_bytes=64 << 20):
        self.out, self.prefix, self.max_bytes = pathlib.Path(out), prefix, max_bytes
        self.shards, self.total, self._f, self._n = [], 0, None, 0

    def write(self, data: bytes):
        while data:
            if self._f is None or self._n >= self.max_bytes:
                self._close()
                name = f"{self.prefix}-{len(self.shards):05d}.bin"
                self.shards.append(name)
                self._f = open(self.out / name, "wb")
                self._n = 0
            take = data[: self.max_bytes - self._n]
            self._f.write(take)
            self._n += len(take)
            self.total += len(take)
            data = data[len(take):]

    def _close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def close(self):
        self._close()
        if not self.shards:  # an empty split still has one (empty) shard
            name = f"{self.prefix}-00000.bin"
            (self.out / name).write_bytes(b"")
            self.shards.append(name)
        return self.shards


def _resolve_text_inputs(inputs, out: pathlib.Path) -> list[pathlib.Path]:
    paths = []
    for item in inputs:
        if item == "stdlib":
            from data_prep import sources as embedded_sources

            p = out / "stdlib_prose.txt"
            p.write_text(embedded_sources.stdlib_prose(), encoding="utf-8")
            paths.append(p)
        else:
            p = pathlib.Path(item)
            if p.is_dir():
                paths.extend(sorted(q for q in p.rglob("*") if q.is_file()))
            elif not p.exists():
                raise DataError(f"--input {item}: no such file")
            else:
                paths.append(p)
    return paths


def prepare_text(inputs, out, valid_fraction=0.1, tokenizer="bytes", vocab_size=2000) -> dict:
    out = common.prepare_out_dir(out)
    skipped = common.Skipped()
    files = _resolve_text_inputs(inputs, out)
    good = []
    for p in files:
        reason = _check_utf8(p)
        if reason:
            skipped.add(p, reason)
        else:
            good.append(p)
    skipped.report("files")
    if not good:
        raise DataError("nothing usable: " + (f"{skipped.items[0]['path']}: {skipped.items[0]['reason']}"
                                             if skipped.items else "no input files"))
    sizes = [p.stat().st_size for p in good]
    total = sum(sizes) + len(good) - 1
    n_train = total - int(round(total * valid_fraction))
    writers = {"train": _BinShards(out, "train"), "valid": _BinShards(out, "valid")}
    pos = 0
    bar = common.progress(total=total, desc="prepare text", unit="B")
    for k, p in enumerate(good):
        with open(p, "rb") as f:
            chunks = iter(lambda: f.read(BLOCK), b"")
            if k:
                chunks = _prepend(b"\n", chunks)
            for block in chunks:
                if pos < n_train:
                    cut = min(len(block), n_train - pos)
                    writers["train"].write(block[:cut])
                    writers["valid"].write(block[cut:])
                else:
                    writers["valid"].write(block)
                pos += len(block)
                bar.update(len(block))
    bar.close()
    shards = {s: w.close() for s, w in writers.items()}
    manifest = common.base_manifest("text", " ".join(map(str, inputs)))
    manifest.update({
        "files": [str(p) for p in good],
        "num_items": len(good),
        "num_bytes": pos,
        "tokenizer": {"type": "bytes"},
        "splits": {s: {"num_bytes": writers[s].total, "shards": shards[s]} for s in ("train", "valid")},
        "skipped": skipped.items,
    })
    if tokenizer == "sentencepiece":
        from seqgen.data.tokenizers import SentencePieceTokenizer

        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as tmp:
            for name in shards["train"]:
                tmp.write((out / name).read_bytes().decode("utf-8", errors="ignore"))
        SentencePieceTokenizer.train([tmp.name], str(out / "tokenizer"), vocab_size=vocab_size)
        pathlib.Path(tmp.name).unlink()
        manifest["tokenizer"] = {"type": "sentencepiece", "model": "tokenizer.model", "vocab_size": vocab_size}
    common.write_json_atomic(out / common.MANIFEST, manifest)
    print(f"prepared {pos} bytes from {len(good)} file(s): train {writers['train'].total}, "
          f"valid {writers['valid'].total} in {out}", file=sys.stderr)
    return manifest


def _prepend(first, it):
    yield first
    yield from it


def _clean_side(s: str) -> bool:
    return bool(s.strip()) and not any(ord(c) < 32 for c in s)


def prepare_pairs(src, out, valid_fraction=0.05, workers=None, test_fraction=0.0) -> dict:
    from data_prep.sources.g2p import g2p_source_size

    if valid_fraction + test_fraction >= 1:
        raise DataError(f"--valid-fraction {valid_fraction} and --test-fraction {test_fraction} leave nothing to "
                        f"train on; their sum must be below 1")

    n = g2p_source_size(src)  # a bad embedded source fails before the output folder is touched
    out = common.prepare_out_dir(out)
    skipped = common.Skipped()
    if n is not False:
        from data_prep import sources as embedded_sources

        path = out / "g2p_pairs.tsv"
        embedded_sources.write_g2p_tsv(n, path)
    else:
        path = pathlib.Path(src)
        if not path.is_file():
            raise DataError(f"--input {src}: no such file")
    def parse(lineno, raw):
        """(source, target) of a line, or (None, reason) for a malformed one, or None if blank."""
        raw = raw.rstrip(b"\r\n")
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # UTF-8 byte-order mark
        if not raw.strip():
            return None
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, "undecodable text (not UTF-8)"
        parts = line.split("\t")
        if len(parts) < 2:
            return None, "no TAB between source and target"
        s, t = parts[0].strip(), parts[1].strip()
        if not _clean_side(s) or not _clean_side(t):
            return None, "empty side or control characters"
        return s, t

    # Pass 1: the distinct sources of well-formed lines, to split by source side.
    sources = set()
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            r = parse(lineno, raw)
            if r is not None and r[0] is not None:
                sources.add(r[0])
    # valid (dev) and test are whole source sentences, by hash rank: valid the first, test the next ones
    # (with test_fraction 0 the valid split is what it always was)
    valid_sources = common.split_keys(sources, valid_fraction)
    test_sources = set()
    if test_fraction > 0:
        rest = sources - valid_sources
        test_sources = common.split_keys(rest, test_fraction * len(sources) / max(1, len(rest)))
    names = ("train", "valid") + (("test",) if test_sources else ())
    files = {s: open(out / f"{s}-00000.tsv", "w", encoding="utf-8") for s in names}
    counts = {s: 0 for s in names}
    src_bytes, tgt_bytes = [], []
    try:
        with open(path, "rb") as f:
            for lineno, raw in enumerate(common.progress(f, desc="prepare pairs", unit="line"), 1):
                r = parse(lineno, raw)
                if r is None:
                    continue
                s, t = r
                if s is None:
                    skipped.add(f"{path}:{lineno}", t)
                    continue
                split = "valid" if s in valid_sources else "test" if s in test_sources else "train"
                files[split].write(f"{s}\t{t}\n")
                counts[split] += 1
                src_bytes.append(len(s.encode()))
                tgt_bytes.append(len(t.encode()))
    finally:
        for fh in files.values():
            fh.close()
    skipped.report("lines")
    n = sum(counts.values())
    if n == 0:
        raise DataError(f"--input {src}: nothing usable: no source<TAB>target lines")
    import numpy as np

    manifest = common.base_manifest("pairs", src)
    manifest.update({
        "num_items": n,
        "num_sources": len(sources),
        "valid_fraction": float(valid_fraction),
        "test_fraction": float(test_fraction),
        "tokenizer": {"type": "bytes"},
        "source_bytes": {"mean": float(np.mean(src_bytes)), "max": int(np.max(src_bytes)),
                         "p99": float(np.percentile(src_bytes, 99))},
        "target_bytes": {"mean": float(np.mean(tgt_bytes)), "max": int(np.max(tgt_bytes)),
                         "p99": float(np.percentile(tgt_bytes, 99))},
        "splits": {s: {"num_items": counts[s], "shards": [f"{s}-00000.tsv"]} for s in names},
        "skipped": skipped.items,
    })
    common.write_json_atomic(out / common.MANIFEST, manifest)
    print(f"prepared {n} pairs ({len(sources)} distinct sources): train {counts['train']}, "
          f"valid {counts['valid']}" + (f", test {counts['test']}" if "test" in counts else "") + f" in {out}",
          file=sys.stderr)
    return manifest
