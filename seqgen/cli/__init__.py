"""The `seqgen` command line: :mod:`seqgen.cli.app` and one module per verb."""


def main(argv=None) -> int:
    from seqgen.cli.app import main as _main

    return _main(argv)


def build_parser():
    from seqgen.cli.app import build_parser as _build

    return _build()
