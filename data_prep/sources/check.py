"""A cheap check that a corpus source can be prepared, without preparing it.

``check_source(kind, src)`` parses the embedded sources (``espeak:N``,
``stdlib``, ``espeak-g2p[:N]``) and checks that they can deliver what they
name, or that a file source exists.  The recipe runner calls it before its
first stage, and the test suite calls it on every recipe's default, so a
default that stops working fails in CI rather than for a new user.
"""
from __future__ import annotations

import pathlib

from seqgen.errors import DataError

KINDS = ("vocoder", "text", "pairs")


def check_source(kind: str, src: str) -> str:
    """A one-line description of what ``src`` will give; DataError when it cannot be prepared."""
    src = str(src)
    if kind == "vocoder":
        from data_prep.sources.espeak_speech import espeak_source_size

        n = espeak_source_size(src)
        if n:
            from data_prep.sources.prose import stdlib_sentences

            distinct = len(stdlib_sentences(20, 200))
            return f"{n} espeak-ng utterances of {distinct} distinct sentences"
        if not pathlib.Path(src).exists():
            raise DataError(f"--input {src}: no such file or folder")
        return f"audio from {src}"
    if kind == "text":
        if src == "stdlib":
            from data_prep.sources.prose import stdlib_prose

            size = len(stdlib_prose().encode("utf-8"))
            if size < 100_000:
                raise DataError(f"--input stdlib: the standard library's prose is only {size} bytes here")
            return f"standard-library prose ({size} bytes)"
        if not pathlib.Path(src).exists():
            raise DataError(f"--input {src}: no such file")
        return f"text from {src}"
    if kind == "pairs":
        from data_prep.sources.g2p import g2p_source_size

        n = g2p_source_size(src)
        if n is not False:
            from data_prep.sources.g2p import g2p_available

            return f"{n or g2p_available()} English -> IPA pairs from espeak-ng"
        if not pathlib.Path(src).is_file():
            raise DataError(f"--input {src}: no such file")
        return f"pairs from {src}"
    raise DataError(f"unknown corpus kind '{kind}'; expected one of {', '.join(KINDS)}")
