"""``python -m data_prep.sources speech|g2p|prose ...``: write an embedded corpus to disk.

    python -m data_prep.sources speech 200 data/espeak      # LJSpeech layout
    python -m data_prep.sources g2p all data/g2p.tsv        # text<TAB>ipa
    python -m data_prep.sources prose data/prose.txt        # plain paragraphs
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from data_prep.sources import stdlib_prose, synthesize_corpus, write_g2p_tsv


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.sources", description="Write an embedded corpus to disk.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("speech", help="espeak-ng speech corpus in LJSpeech layout")
    p.add_argument("n", type=int)
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--processes", type=int, default=None)
    p = sub.add_parser("g2p", help="text<TAB>ipa pairs")
    p.add_argument("n", type=lambda v: None if v == "all" else int(v), help="number of pairs, or 'all'")
    p.add_argument("path")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("prose", help="standard-library prose as plain text")
    p.add_argument("path")
    args = parser.parse_args(argv)
    if args.cmd == "speech":
        print(synthesize_corpus(args.n, args.out_dir, seed=args.seed, processes=args.processes))
    elif args.cmd == "g2p":
        print(write_g2p_tsv(args.n, args.path, seed=args.seed))
    else:
        path = pathlib.Path(args.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(stdlib_prose(), encoding="utf-8")
        print(path)
    return 0


sys.exit(main())
