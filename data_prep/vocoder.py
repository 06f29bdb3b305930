"""`seqgen prepare vocoder`: audio corpus -> TFRecord shards for vocoder training.

Sources
-------
* an LJSpeech-layout folder (``metadata.csv`` with ``ID|text|normalized`` and
  ``wavs/``); audio files in ``wavs/`` that metadata.csv does not list are
  prepared too (a vocoder needs no text);
* any folder of audio files (searched recursively);
* a CSV manifest with configurable columns (``--audio-column``,
  ``--text-column``, ``--speaker-column``), paths relative to the CSV;
* ``espeak:N``: N English sentences synthesized offline with espeak-ng.

Output (``DATA/``)
------------------
``train-NNNNN.array_record`` / ``valid-NNNNN.array_record`` (one record per utterance with the fields of
:mod:`seqgen.data.schema`, see :mod:`seqgen.data.records`: no TensorFlow on either side), ``stats.json``
(log-mel mean/std over the train split) and ``manifest.json``.  Every utterance is trimmed to a whole number of hops.
"""
from __future__ import annotations

import csv
import io
import multiprocessing
import os
import pathlib
import sys

import numpy as np

from data_prep import common
from seqgen.data import records
from seqgen.data.schema import mulaw_dtype
from seqgen.errors import DataError

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".opus", ".w64", ".caf"}


# --------------------------------------------------------------------------- sources


def _ljspeech_items(root: pathlib.Path, skipped: common.Skipped) -> list[dict]:
    items, listed = [], set()
    meta = root / "metadata.csv"
    with open(meta, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                skipped.add(f"{meta}:{lineno}", "undecodable text (not UTF-8)")
                continue
            fields = line.split("|")
            uid = fields[0].strip()
            if not uid:
                skipped.add(f"{meta}:{lineno}", "metadata row without an id")
                continue
            text = fields[2] if len(fields) > 2 and fields[2] else (fields[1] if len(fields) > 1 else "")
            wav = root / "wavs" / f"{uid}.wav"
            listed.add(wav.name)
            if not wav.is_file():
                skipped.add(wav, "missing audio file (listed in metadata.csv)")
                continue
            items.append({"id": uid, "path": str(wav), "text": text, "speaker": root.name})
    wavs = root / "wavs"
    if wavs.is_dir():
        for p in sorted(wavs.iterdir()):
            if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and p.name not in listed:
                items.append({"id": p.stem, "path": str(p), "text": "", "speaker": root.name})
    return items


def _folder_items(root: pathlib.Path) -> list[dict]:
    items = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS:
            rel = p.relative_to(root).with_suffix("")
            items.append({"id": str(rel).replace(os.sep, "/"), "path": str(p), "text": "", "speaker": root.name})
    return items


def _csv_items(path: pathlib.Path, audio_col: str, text_col: str | None, speaker_col: str | None,
               skipped: common.Skipped) -> list[dict]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    for flag, col in (("--audio-column", audio_col), ("--text-column", text_col), ("--speaker-column", speaker_col)):
        if col and col not in columns:
            raise DataError(f"{path}: no column '{col}' for {flag}; the columns are {', '.join(columns)}")
    items = []
    for lineno, row in enumerate(reader, 2):
        rel = (row.get(audio_col) or "").strip()
        if "\ufffd" in "".join(str(v) for v in row.values()):
            skipped.add(f"{path}:{lineno}", "undecodable text (not UTF-8)")
            continue
        if not rel:
            skipped.add(f"{path}:{lineno}", f"empty '{audio_col}' value")
            continue
        p = pathlib.Path(rel)
        p = p if p.is_absolute() else path.parent / p
        if not p.is_file():
            skipped.add(p, f"missing audio file (row {lineno} of {path.name})")
            continue
        uid = str(pathlib.Path(rel).with_suffix("")).replace(os.sep, "/")
        items.append({"id": uid, "path": str(p), "text": (row.get(text_col) or "") if text_col else "",
                      "speaker": (row.get(speaker_col) or "").strip() if speaker_col else path.parent.name})
    return items


def discover(src: str, out: pathlib.Path, audio_col="path", text_col=None, speaker_col=None,
             skipped: common.Skipped | None = None, workers=None) -> tuple[list[dict], str]:
    """The list of items of a source, and a description of the source kind."""
    skipped = skipped if skipped is not None else common.Skipped()
    from data_prep.sources.espeak_speech import espeak_source_size

    n = espeak_source_size(src)
    if n:
        from data_prep import sources as embedded_sources

        corpus = embedded_sources.synthesize_corpus(n, out / "espeak_corpus", processes=workers)
        return _ljspeech_items(pathlib.Path(corpus), skipped), "espeak-ng (embedded)"
    path = pathlib.Path(src)
    if not path.exists():
        raise DataError(f"--input {src}: no such file or folder")
    if path.is_dir():
        if (path / "metadata.csv").is_file():
            return _ljspeech_items(path, skipped), "ljspeech"
        return _folder_items(path), "folder"
    if path.suffix.lower() in (".csv", ".tsv"):
        return _csv_items(path, audio_col, text_col, speaker_col, skipped), "csv"
    raise DataError(f"--input {src}: expected an LJSpeech-layout folder, a folder of audio files, "
                    "a CSV manifest or espeak:N")


# --------------------------------------------------------------------------- worker


def _process(args):
    """Load and featurize one item in a worker process; never raises."""
    item, params_dict, bits = args
    from seqgen.data import audio as A
    from seqgen.errors import AudioError

    params = A.FeatureParams.from_dict(params_dict)
    try:
        wav = A.load(item["path"], params.sample_rate)
    except AudioError as e:
        return ("skip", item["path"], getattr(e, "reason", str(e)))
    except Exception as e:  # anything else a decoder throws is still a bad file
        return ("skip", item["path"], f"corrupt or not audio ({type(e).__name__}: {str(e)[:120]})")
    if len(wav) < params.hop_length:
        return ("skip", item["path"], f"shorter than one hop ({len(wav)} < {params.hop_length} samples)")
    frames = len(wav) // params.hop_length
    wav = wav[: frames * params.hop_length]
    mel = A.log_mel(wav, params)
    if not np.all(np.isfinite(mel)):
        return ("skip", item["path"], "non-finite features")
    mulaw = A.mu_law_encode(wav, bits)
    return ("ok", item, wav.astype(np.float32), mulaw.astype(mulaw_dtype(bits)), mel)


def _detect_rate(items) -> int:
    from seqgen.data import audio as A

    for it in items:
        try:
            rate = A.info(it["path"])[0]
        except Exception:
            continue
        if A.MIN_FILE_RATE <= rate <= A.MAX_FILE_RATE:  # not a corrupt header's claim
            return rate
    return 22050


# --------------------------------------------------------------------------- main


def prepare(src: str, out, sample_rate: int | None = None, bits: int = 8, n_mels: int = 80,
            valid_fraction: float = 0.05, audio_column: str = "path", text_column: str | None = None,
            speaker_column: str | None = None, workers: int | None = None, shard_mb: int = 64,
            valid_ids=None) -> dict:
    """Prepare a vocoder corpus; returns the manifest (also written to OUT/manifest.json).

    ``valid_ids``: a list file (:mod:`seqgen.quality.yardstick`: every listed utterance, eval and dev)
    or a list of ids that make the valid split, instead of a hashed ``valid_fraction``: so a fixed set
    of evaluation utterances is never trained on.  Each must be in the source."""
    from seqgen.data import audio as A

    out = common.prepare_out_dir(out)
    skipped = common.Skipped()
    items, source_kind = discover(src, out, audio_column, text_column, speaker_column, skipped, workers)
    if not items:
        skipped.report("inputs")
        raise DataError(f"--input {src}: no audio files found to prepare")
    if sample_rate is None:
        sample_rate = _detect_rate(items)
    params = A.FeatureParams.for_rate(sample_rate, n_mels=n_mels)
    speakers = sorted({it["speaker"] for it in items})
    speaker_ids = {s: k for k, s in enumerate(speakers)}
    # The same id in two places (e.g. a.wav and a.flac) must stay distinct.
    seen: dict[str, int] = {}
    for it in items:
        n = seen.get(it["id"], 0)
        seen[it["id"]] = n + 1
        if n:
            it["id"] = f"{it['id']}#{n}"
    valid_list = valid_ids if isinstance(valid_ids, (str, pathlib.Path)) else None
    if valid_ids is not None:
        valid_ids = _listed_valid_ids(valid_ids, items, src)
    else:
        valid_ids = common.split_keys([it["id"] for it in items], valid_fraction)

    workers = max(1, workers or min(4, os.cpu_count() or 1))
    ctx = multiprocessing.get_context("spawn")
    jobs = [(it, params.to_dict(), bits) for it in items]
    stats = {"train": A.NormStats(n_mels), "valid": A.NormStats(n_mels)}
    totals = {"train": [0, 0], "valid": [0, 0]}  # items, samples
    split_ids: dict[str, list[str]] = {"train": [], "valid": []}
    used_speakers: set[str] = set()
    with ctx.Pool(workers) if workers > 1 else _InlinePool() as pool:
        writers = {s: records.ShardWriter(out, s, shard_mb << 20) for s in ("train", "valid")}
        bar = common.progress(total=len(jobs), desc="prepare vocoder", unit="file")
        for res in pool.imap(_process, jobs, chunksize=2):
            bar.update(1)
            if res[0] == "skip":
                skipped.add(res[1], res[2])
                continue
            _, item, wav, mulaw, mel = res
            split = "valid" if item["id"] in valid_ids else "train"
            writers[split].write(records.encode(item["id"], item.get("text", ""), speaker_ids[item["speaker"]],
                                                wav, mulaw, mel, bits))
            totals[split][0] += 1
            totals[split][1] += len(wav)
            split_ids[split].append(item["id"])
            used_speakers.add(item["speaker"])
            stats[split].update(mel)
        bar.close()
        shards = {s: w.close() for s, w in writers.items()}
    if totals["train"][0] == 0 and totals["valid"][0] > 0:
        # the split was drawn before the corrupt files were known, and every usable utterance fell in
        # valid: they become the train split (as for a one-file corpus), and there is no valid split
        print(f"prepare vocoder: all {totals['valid'][0]} usable utterance(s) fell in the valid split "
              f"(the others were skipped); using them for training, with no valid split", file=sys.stderr)
        renamed = []
        for k, name in enumerate(shards["valid"]):
            new = f"train-{k:05d}{records.SUFFIX}"
            os.replace(out / name, out / new)
            renamed.append(new)
        shards = {"train": renamed, "valid": []}
        totals = {"train": totals["valid"], "valid": [0, 0]}
        split_ids = {"train": split_ids["valid"], "valid": []}
        stats["train"] = stats["valid"]
    stats = stats["train"]
    skipped.report("inputs")
    num_items = totals["train"][0] + totals["valid"][0]
    if num_items == 0:
        raise DataError(f"--input {src}: nothing usable: all {len(items)} inputs were skipped "
                        f"(first: {skipped.items[0]['path']}: {skipped.items[0]['reason']})" if skipped.items
                        else f"--input {src}: nothing usable")
    if stats.count == 0:  # everything landed in valid; use it for statistics
        raise DataError(f"--input {src}: the train split is empty; lower --valid-fraction")
    stats.save(out / "stats.json")
    manifest = common.base_manifest("vocoder", src)
    manifest.update({
        "source_kind": source_kind,
        "num_items": num_items,
        "total_seconds": round((totals["train"][1] + totals["valid"][1]) / sample_rate, 3),
        "sample_rate": int(sample_rate),
        "mu_law_bits": int(bits),
        "features": params.to_dict(),
        "speakers": speakers,
        "speakers_present": sorted(used_speakers),
        "stats": "stats.json",
        "splits": {s: {"num_items": totals[s][0], "num_samples": int(totals[s][1]),
                       "seconds": round(totals[s][1] / sample_rate, 3), "shards": shards[s],
                       "ids": sorted(split_ids[s])}
                   for s in ("train", "valid")},
        "skipped": skipped.items,
        "valid_ids": str(valid_list) if valid_list is not None else None,
    })
    common.write_json_atomic(out / common.MANIFEST, manifest)
    print(f"prepared {num_items} utterances ({manifest['total_seconds']:.1f} s at {sample_rate} Hz, "
          f"{len(speakers)} speaker(s); train {totals['train'][0]}, valid {totals['valid'][0]}) in {out}",
          file=sys.stderr)
    return manifest


def _listed_valid_ids(listed, items, src) -> set:
    """The ids of a ``--valid-ids`` list, each checked to be in the source."""
    from seqgen.quality import yardstick

    where = f"--valid-ids {listed}"
    ids = yardstick.read(listed, "all") if isinstance(listed, (str, pathlib.Path)) else [str(i) for i in listed]
    have = {it["id"] for it in items}
    absent = [i for i in ids if i not in have]
    if absent:
        raise DataError(f"{where}: {len(absent)} of the {len(ids)} listed utterances are not in --input {src} "
                        f"(first: {absent[0]}); list ids of this corpus, or leave --valid-ids out")
    if len(set(ids)) == len(have):
        raise DataError(f"{where}: lists every utterance of --input {src}; nothing would be left to train on")
    return set(ids)


class _InlinePool:
    """Same interface as a Pool, running in this process (workers=1)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap(self, fn, jobs, chunksize=1):
        return map(fn, jobs)
