"""argparse value types shared by the `seqgen` subcommands (one-line errors)."""
import argparse


def _number(s, cast, what):
    try:
        return cast(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got '{s}'") from None


def positive_int(s):
    v = _number(s, int, "a positive integer")
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{s}'")
    return v


def positive_float(s):
    v = _number(s, float, "a number > 0")
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got '{s}'")
    return v


def nonneg_float(s):
    v = _number(s, float, "a number >= 0")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got '{s}'")
    return v


def fraction(s):
    v = _number(s, float, "a number in [0, 1)")
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got '{s}'")
    return v


def positive_int_list(s):
    try:
        v = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{s}'") from None
    if not v or min(v) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got '{s}'")
    return v
