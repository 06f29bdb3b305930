"""`seqgen translate`: sources translated by a trained ByteNet, one line per input line."""
from __future__ import annotations

import pathlib
import sys

from seqgen.errors import SeqgenError


def _cmd_translate(a):
    from seqgen.tasks.base import load
    from seqgen.utils.threads import configure_threads

    if a.input and a.text:
        raise SeqgenError("give TEXT or --input FILE, not both")
    if a.input:
        path = pathlib.Path(a.input)
        if not path.is_file():
            raise SeqgenError(f"--input {a.input}: no such file")
        texts = path.read_text(encoding="utf-8").splitlines()
    elif a.text:
        texts = list(a.text)
    else:
        texts = sys.stdin.read().splitlines()
    configure_threads(a.threads)
    translator = load(a.run, verb="translate")
    keep = [i for i, t in enumerate(texts) if t.strip()]
    hyps = translator.translate([texts[i].strip() for i in keep], beam_size=a.beam)
    out = [""] * len(texts)
    for i, h in zip(keep, hyps):
        out[i] = h
    for line in out:
        print(line)


def add(sub):
    from seqgen.cli.types import positive_int as _positive_int

    p = sub.add_parser("translate", help="translate text with a trained ByteNet (one line per input)",
                       description="Translate TEXT arguments, the lines of --input FILE, or stdin; prints one "
                                   "translation per line (empty input lines give empty lines).")
    p.add_argument("text", nargs="*", metavar="TEXT")
    p.add_argument("--run", required=True, metavar="RUN")
    p.add_argument("--input", metavar="FILE", help="one source sentence per line")
    p.add_argument("--beam", type=_positive_int, default=None, metavar="K", help="beam search (default: greedy)")
    p.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads (0 = all cores)")
    p.set_defaults(func=_cmd_translate)
