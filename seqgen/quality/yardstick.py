"""Committed lists of evaluation and dev utterances (the vocoder's fixed yardstick).

A list is a tab-separated file: ``#`` comment lines (the rule that made it), then a header
``id<TAB>set<TAB>seconds`` and one row per utterance, ``set`` being ``eval`` (scored, never trained on,
never used to choose anything) or ``dev`` (where temperature and checkpoint are chosen).  A plain
file of ids, one per line, is read as an ``eval`` list.

The LJ Speech list (``recipes/ljspeech_vocoder/yardstick.tsv``) is made by :func:`choose` from
``../shared/data/ljspeech`` with the rule stated there; ``python -m seqgen.quality.yardstick``
writes it again, and a test checks that the committed file is what the rule gives.
"""
from __future__ import annotations

import hashlib
import pathlib

from seqgen.errors import SeqgenError

SETS = ("eval", "dev")
SALT = "seqgen-yardstick:"
RULE = ("the utterances of ljspeech/metadata.csv that ljspeech_mini does not have (those are trained on by "
        "tests and quick runs), ranked by the 64-bit BLAKE2b hash of 'seqgen-yardstick:' + id (ties by id): "
        "the first {n_eval} are eval, the next {n_dev} dev")


def rank_key(uid: str) -> tuple[int, str]:
    return int.from_bytes(hashlib.blake2b((SALT + uid).encode("utf-8"), digest_size=8).digest(), "big"), uid


def metadata_ids(folder: pathlib.Path) -> list[str]:
    meta = folder / "metadata.csv"
    if not meta.is_file():
        raise SeqgenError(f"{meta}: not found (an LJSpeech-layout folder has metadata.csv and wavs/)")
    ids = []
    for line in meta.read_text(encoding="utf-8").splitlines():
        uid = line.split("|")[0].strip()
        if uid:
            ids.append(uid)
    return ids


def choose(corpus, exclude=None, n_eval: int = 24, n_dev: int = 4) -> list[tuple[str, str, float]]:
    """``[(id, set, seconds)]`` by the rule above; ``exclude``: an LJSpeech-layout folder whose ids are left out."""
    import soundfile as sf

    corpus = pathlib.Path(corpus)
    skip = set(metadata_ids(pathlib.Path(exclude))) if exclude else set()
    candidates = sorted(set(metadata_ids(corpus)) - skip, key=rank_key)
    if len(candidates) < n_eval + n_dev:
        raise SeqgenError(f"{corpus}: only {len(candidates)} candidate utterances for {n_eval} eval + {n_dev} dev")
    rows = []
    for k, uid in enumerate(candidates[: n_eval + n_dev]):
        seconds = sf.info(str(corpus / "wavs" / f"{uid}.wav")).duration
        rows.append((uid, "eval" if k < n_eval else "dev", round(float(seconds), 3)))
    return rows


def write(path, rows, corpus_name: str, n_eval: int, n_dev: int) -> pathlib.Path:
    path = pathlib.Path(path)
    secs = {s: sum(r[2] for r in rows if r[1] == s) for s in SETS}
    lines = [f"# seqgen vocoder yardstick: {corpus_name} ({n_eval} eval utterances, {secs['eval']:.1f} s; "
             f"{n_dev} dev, {secs['dev']:.1f} s)",
             "# rule: " + RULE.format(n_eval=n_eval, n_dev=n_dev),
             "# prepare with --valid-ids THIS_FILE so that none of them is trained on",
             "id\tset\tseconds"]
    lines += [f"{uid}\t{s}\t{sec:.3f}" for uid, s, sec in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def read(path, subset: str | None = None) -> list[str]:
    """The ids of a list (those of ``subset``, ``eval`` or ``dev``, if given), in file order."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise SeqgenError(f"--utterances {path}: no such file")
    if subset is not None and subset not in SETS + ("all",):
        raise SeqgenError(f"--subset {subset}: expected eval, dev or all")
    ids = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if fields[0] == "id" and len(fields) > 1 and fields[1] == "set":
            continue
        uid = fields[0].strip()
        which = fields[1].strip() if len(fields) > 1 else "eval"
        if which not in SETS:
            raise SeqgenError(f"{path}:{lineno}: set {which!r} is not eval or dev")
        if subset in (None, "all") or which == subset:
            ids.append(uid)
    if not ids:
        raise SeqgenError(f"--utterances {path}: no {subset or ''} utterances listed".replace("  ", " "))
    return ids


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m seqgen.quality.yardstick",
                                 description="Write the LJ Speech yardstick list by its stated rule.")
    ap.add_argument("--corpus", default="../shared/data/ljspeech")
    ap.add_argument("--exclude", default="../shared/data/ljspeech_mini")
    ap.add_argument("--eval", type=int, default=24)
    ap.add_argument("--dev", type=int, default=4)
    ap.add_argument("--out", default="recipes/ljspeech_vocoder/yardstick.tsv")
    a = ap.parse_args(argv)
    rows = choose(a.corpus, a.exclude, a.eval, a.dev)
    print(write(a.out, rows, "LJ Speech 1.1, ../shared/data/ljspeech (384 utterances)", a.eval, a.dev))


if __name__ == "__main__":
    main()
