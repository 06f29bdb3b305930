"""An LJSpeech-layout speech corpus synthesized offline with espeak-ng (the ``espeak:N`` source).

Sentences come from :mod:`data_prep.sources.prose`; each utterance gets
one of :data:`VOICE_SETTINGS`, in a plan fixed by ``(n, seed)``.
"""
from __future__ import annotations

import csv
import json
import multiprocessing
import os
import pathlib
import random
import sys

import numpy as np

from data_prep.sources.espeak import _engine
from data_prep.sources.prose import stdlib_sentences
from seqgen.errors import DataError


VOICE_SETTINGS: tuple[tuple[str, int, int], ...] = (
    ("en-us", 50, 170),
    ("en-gb", 40, 160),
    ("en-us", 70, 180),
    ("en-gb", 60, 150),
)

_MARKER = ".espeak_corpus.json"
_SAMPLE_RATE = 22050


def _corpus_plan(n: int, seed: int) -> list[tuple[str, str, str, int, int]]:
    """(id, text, voice, pitch, rate) for each utterance, deterministic in (n, seed)."""
    sentences = list(stdlib_sentences(20, 200))
    random.Random(seed).shuffle(sentences)
    plan = []
    for i in range(n):
        # Beyond the number of distinct sentences the texts repeat, each time
        # with the next voice setting.
        text = sentences[i % len(sentences)]
        voice, pitch, rate = VOICE_SETTINGS[(i + seed + i // len(sentences)) % len(VOICE_SETTINGS)]
        plan.append((f"ESPK-{i + 1:05d}", text, voice, pitch, rate))
    return plan


def _synth_job(args) -> tuple[str, int]:
    import soundfile as sf

    utt_id, text, voice, pitch, rate, wav_dir = args
    engine = _engine()
    audio = engine.synthesize(text, voice, pitch, rate)
    if engine.sample_rate != _SAMPLE_RATE:  # pragma: no cover - espeak-ng is 22050 Hz
        raise RuntimeError(f"espeak-ng: unexpected sample rate {engine.sample_rate}")
    if audio.size == 0:
        raise RuntimeError(f"espeak-ng produced no audio for {utt_id}: {text!r}")
    path = pathlib.Path(wav_dir) / f"{utt_id}.wav"
    tmp = path.with_suffix(".tmp.wav")
    sf.write(str(tmp), np.clip(audio, -1.0, 1.0), _SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
    return utt_id, int(audio.size)


def _is_complete(out_dir: pathlib.Path, n: int, seed: int) -> bool:
    marker = out_dir / _MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if info.get("n") != n or info.get("seed") != seed or not info.get("complete"):
        return False
    if not (out_dir / "metadata.csv").is_file() or not (out_dir / "speakers.csv").is_file():
        return False
    ids = [f"ESPK-{i + 1:05d}" for i in range(n)]
    return all((out_dir / "wavs" / f"{i}.wav").is_file() for i in ids)


def _pool_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def synthesize_corpus(n: int, out_dir, seed: int = 0, processes: int | None = None, progress: bool = True) -> pathlib.Path:
    """Write ``n`` espeak-ng utterances to ``out_dir`` in LJSpeech layout.

    Layout::

        out_dir/metadata.csv   ID|text|normalized_text   (ids ESPK-00001, ...)
        out_dir/wavs/ID.wav    16-bit PCM, 22050 Hz, mono
        out_dir/speakers.csv   id,voice,pitch,rate       (one row per utterance)

    Sentences come from :func:`stdlib_sentences`, shuffled by ``seed``; the
    voice settings in :data:`VOICE_SETTINGS` are rotated over the utterances.
    If ``n`` exceeds the number of distinct sentences, texts repeat with
    another voice setting.  A complete corpus already in ``out_dir`` for the
    same ``(n, seed)`` is reused.  Returns ``out_dir`` as a path.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"synthesize_corpus: n must be >= 1, got {n}")
    out_dir = pathlib.Path(out_dir)
    if _is_complete(out_dir, n, seed):
        print(f"Reusing espeak corpus in {out_dir} ({n} utterances, seed {seed})")
        return out_dir

    wav_dir = out_dir / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / _MARKER).unlink(missing_ok=True)
    plan = _corpus_plan(n, seed)
    keep = {f"{utt_id}.wav" for utt_id, *_ in plan}
    for old in wav_dir.glob("ESPK-*.wav"):
        if old.name not in keep:
            old.unlink()

    jobs = [(utt_id, text, voice, pitch, rate, str(wav_dir)) for utt_id, text, voice, pitch, rate in plan]
    if processes is None:
        processes = min(2, os.cpu_count() or 1)
    processes = max(1, min(int(processes), n))

    from tqdm import tqdm

    bar = tqdm(total=n, desc="espeak-ng", unit="utt", file=sys.stderr, disable=not progress)
    try:
        if processes == 1:
            for job in jobs:
                _synth_job(job)
                bar.update(1)
        else:
            with _pool_context().Pool(processes) as pool:
                for _ in pool.imap_unordered(_synth_job, jobs, chunksize=max(1, min(16, n // (4 * processes)))):
                    bar.update(1)
    finally:
        bar.close()

    with open(out_dir / "metadata.csv", "w", encoding="utf-8", newline="\n") as f:
        for utt_id, text, *_ in plan:
            f.write(f"{utt_id}|{text}|{text}\n")
    with open(out_dir / "speakers.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "voice", "pitch", "rate"])
        for utt_id, _text, voice, pitch, rate in plan:
            writer.writerow([utt_id, voice, pitch, rate])
    info = {"n": n, "seed": seed, "complete": True, "sample_rate": _SAMPLE_RATE, "source": "espeak-ng"}
    (out_dir / _MARKER).write_text(json.dumps(info) + "\n", encoding="utf-8")
    return out_dir


def espeak_source_size(src: str) -> int:
    """N for the embedded source ``espeak:N``, 0 for any other source; a bad N is a one-line DataError."""
    if not str(src).startswith("espeak:"):
        return 0
    try:
        n = int(str(src).split(":", 1)[1])
        if n <= 0:
            raise ValueError
    except ValueError:
        raise DataError(f"--input {src}: expected espeak:N with N a positive number of sentences") from None
    return n
