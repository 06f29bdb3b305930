"""The `seqgen` command line.

Each verb has its module in this package (``seqgen/cli/VERB.py``) with an
``add(subparsers)`` that defines its arguments; the work is done by the
library modules, imported only when the subcommand runs so that `seqgen
--help` is instant.  A :class:`~seqgen.errors.SeqgenError` (bad input) is
printed as one line and exits with status 2; other errors exit with 1.  Add
``--debug`` for a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys

from seqgen.errors import SeqgenError




#: the verbs in the order `seqgen --help` lists them (``train`` also adds ``distill``)
VERBS = ("prepare", "train", "sample", "evaluate", "average", "recipe", "bench", "generate", "translate")


def build_parser() -> argparse.ArgumentParser:
    from seqgen import __version__

    parser = argparse.ArgumentParser(
        prog="seqgen",
        description="Autoregressive audio and text generation: WaveNet, ByteNet, Transformer decoders.")
    parser.add_argument("--version", action="version", version=f"seqgen {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    import importlib

    for verb in VERBS:
        importlib.import_module(f"seqgen.cli.{verb}").add(sub)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SEQGEN_DEBUG") == "1"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command != "prepare":
            from seqgen.utils import backend

            missing = backend.missing_message()
            if missing:
                raise SeqgenError(missing)
            if backend.name() == "tensorflow":
                # Keras imports TensorFlow; do it first, quietly (see seqgen.utils.tf_import).
                from seqgen.utils.tf_import import tensorflow

                tensorflow()
            else:
                backend.keep_tensorflow_out()
        result = args.func(args)
        return int(result or 0)
    except SeqgenError as e:
        if debug:
            raise
        print(f"seqgen: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seqgen: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an unexpected failure: one line unless --debug
        if debug:
            raise
        msg = str(e).strip().splitlines()
        print(f"seqgen: error: {type(e).__name__}: {msg[0] if msg else ''} (run with --debug for a traceback)",
              file=sys.stderr)
        return 1

