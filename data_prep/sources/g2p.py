"""English -> IPA pairs (the ``espeak-g2p[:N]`` source): short sentences of the standard-library
prose and their espeak-ng transcriptions.
"""
from __future__ import annotations

import pathlib
import random
import re
from functools import lru_cache

from data_prep.sources.espeak import EspeakSynth
from data_prep.sources.prose import _sentences
from seqgen.errors import DataError


_CLAUSE_SPLIT = re.compile(r"(?<=[,;:])\s+")


@lru_cache(maxsize=1)
def _short_texts() -> tuple[str, ...]:
    """Sentences of 10..80 characters; longer ones are split into clauses."""
    seen, out = set(), []
    for sentence in _sentences(10, 400):
        if len(sentence) <= 80:
            pieces = [sentence]
        else:
            pieces = []
            for clause in _CLAUSE_SPLIT.split(sentence):
                clause = clause.strip().rstrip(",;:").strip()
                if clause.lower().startswith(("and ", "or ", "but ")):
                    clause = clause.split(" ", 1)[1]
                pieces.append(clause[:1].upper() + clause[1:])
        for piece in pieces:
            if 10 <= len(piece) <= 80 and len(piece.split()) >= 2 and piece.lower() not in seen:
                seen.add(piece.lower())
                out.append(piece)
    return tuple(out)


def g2p_available() -> int:
    """How many distinct short texts :func:`g2p_pairs` can draw from (about 1,100 on Python 3.11)."""
    return len(_short_texts())


def g2p_pairs(n: int | None = None, seed: int = 0, voice: str = "en-us") -> list[tuple[str, str]]:
    """``n`` (text, IPA) pairs, or one per distinct text when ``n`` is None.

    Texts are short English sentences and clauses (10..80 characters) from the
    standard library prose, drawn without repetition in an order fixed by
    ``seed``; the targets are espeak-ng's IPA transcriptions.  Asking for more
    pairs than :func:`g2p_available` raises :class:`seqgen.errors.DataError`.
    """
    texts = list(_short_texts())
    n = len(texts) if n is None else int(n)
    if n > len(texts):
        raise DataError(f"g2p_pairs: n={n} but only {len(texts)} distinct short sentences exist; use n <= {len(texts)}")
    random.Random(seed).shuffle(texts)
    synth = EspeakSynth()
    pairs = []
    for text in texts[:n]:
        pairs.append((text, synth.phonemize(text, voice=voice)))
    return pairs


def write_g2p_tsv(n: int | None, path, seed: int = 0) -> pathlib.Path:
    """Write :func:`g2p_pairs` (all of them when ``n`` is None) as ``text<TAB>ipa`` lines (UTF-8)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pairs = g2p_pairs(n, seed=seed)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for text, ipa in pairs:
            f.write(f"{text}\t{ipa}\n")
    return path


def g2p_source_size(src):
    """For the embedded source ``espeak-g2p[:N]``: N, or None for every available pair.

    Returns False for any other source.  A count that is not a positive
    number, or more than the embedded prose offers, is a one-line DataError.
    """
    src = str(src)
    if src != "espeak-g2p" and not src.startswith("espeak-g2p:"):
        return False
    value = src.partition(":")[2]
    if value in ("", "all"):
        return None
    try:
        n = int(value)
        if n <= 0:
            raise ValueError
    except ValueError:
        raise DataError(f"--input {src}: expected espeak-g2p, espeak-g2p:all or espeak-g2p:N "
                        "with N a positive number of pairs") from None
    available = g2p_available()
    if n > available:
        raise DataError(f"--input {src}: the embedded prose offers {available} distinct short sentences; "
                        f"use espeak-g2p (all of them) or N <= {available}")
    return n
