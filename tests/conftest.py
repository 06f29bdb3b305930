"""Shared pytest fixtures for seqgen."""
import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:  # property-based tests explore the same examples on every run: CI is reproducible
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("seqgen", derandomize=True, print_blob=True)
    _hyp_settings.load_profile("seqgen")
except ImportError:  # hypothesis is a test extra
    pass

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("SEQGEN_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    # Slow checks run only when asked for with -m slow.
    markexpr = config.getoption("-m") or ""
    if "slow" in markexpr:
        return
    skip = pytest.mark.skip(reason="slow check: run with `pytest -m slow`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def quiet_cli(monkeypatch):
    """For tests that run `seqgen` in this process: no progress bars, no tracebacks."""
    monkeypatch.setenv("SEQGEN_PROGRESS", "0")
    monkeypatch.delenv("SEQGEN_DEBUG", raising=False)


@pytest.fixture
def shared_data():
    """Path of ../shared/data; skips the test with a clear message if absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set SEQGEN_SHARED_DATA to run this test)")
    return SHARED_DATA


REPO_ROOT = REPO
TINY = REPO / "recipes" / "ljspeech_vocoder" / "tiny.yaml"


def run_cli(*args, env=None, timeout=600, check=True):
    """Run the `seqgen` CLI in a subprocess; returns the CompletedProcess."""
    import subprocess
    import sys

    e = dict(os.environ)
    e.setdefault("SEQGEN_PROGRESS", "0")
    e.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "seqgen.cli", *map(str, args)], capture_output=True, text=True,
                          env=e, timeout=timeout, cwd=str(REPO))
    if check and proc.returncode != 0:
        raise AssertionError(f"seqgen {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def espeak_vocoder_data(tmp_path_factory):
    """A small vocoder corpus synthesized offline with espeak-ng (no shared data needed)."""
    out = tmp_path_factory.mktemp("espeak_data")
    run_cli("prepare", "vocoder", "--input", "espeak:10", "--out", out / "data")
    return out / "data"


@pytest.fixture(scope="session")
def tiny_run(espeak_vocoder_data, tmp_path_factory):
    """The tiny vocoder preset trained for a few steps on the espeak corpus."""
    run = tmp_path_factory.mktemp("tiny_run") / "run"
    run_cli("train", TINY, "--data", espeak_vocoder_data, "--out", run, "--max-steps", "20",
            "--set", "train.valid_every=0")
    return run


def cli_here(*args):
    """``seqgen ARGS`` in this process (quick: no interpreter or TensorFlow start-up; what a test
    registered here is seen): ``(exit code, stdout, stderr)``."""
    import contextlib
    import io

    from seqgen import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _np(x):
    """A backend tensor (or anything array-like) as a numpy array."""
    import numpy as np
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x))


def read_manifest_json(data_dir):
    """``DATA/manifest.json`` as a dict (no checks: tests look at what was written)."""
    import json

    return json.loads((pathlib.Path(data_dir) / "manifest.json").read_text())


# `seqgen generate` / `seqgen translate` through their verb modules' adders and a parser of their own.
_TEXT_CLI = ("import argparse, sys\n"
             "from seqgen.cli import generate, translate\n"
             "p = argparse.ArgumentParser(); sub = p.add_subparsers(dest='cmd', required=True)\n"
             "for verb in (generate, translate): verb.add(sub)\n"
             "a = p.parse_args(sys.argv[1:]); a.func(a)\n")


def text_cli(*args, check=True):
    """``seqgen generate|translate ARGS`` in a subprocess; returns the CompletedProcess."""
    import subprocess
    import sys

    env = dict(os.environ, SEQGEN_PROGRESS="0", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", _TEXT_CLI, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=str(REPO))
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc
