"""Tests for the `seqgen` command line: help, error reporting, and cheap imports."""
import os
import pathlib
import subprocess
import sys

import pytest

from seqgen import cli

from conftest import REPO



def _main(argv):
    return cli.main(argv)


def _seqgen_cmd():
    script = pathlib.Path(sys.executable).parent / "seqgen"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "seqgen.cli"]


def _run(args, env=None, **kw):
    full_env = {k: v for k, v in os.environ.items() if k != "SEQGEN_DEBUG"}
    full_env.update({"SEQGEN_PROGRESS": "0", **(env or {})})
    return subprocess.run(_seqgen_cmd() + list(args), capture_output=True, text=True, env=full_env,
                          cwd=REPO, timeout=120, **kw)


def test_help_exits_zero():
    r = _run(["--help"])
    assert r.returncode == 0, r.stderr
    assert "prepare" in r.stdout and "usage: seqgen" in r.stdout
    assert "Traceback" not in r.stderr


def test_prepare_vocoder_help_exits_zero():
    r = _run(["prepare", "vocoder", "--help"])
    assert r.returncode == 0, r.stderr
    for flag in ("--input", "--out", "--sample-rate", "--speaker-column", "espeak:N"):
        assert flag in r.stdout
    assert "Traceback" not in r.stderr


def test_version():
    from seqgen import __version__

    r = _run(["--version"])
    assert r.returncode == 0
    assert r.stdout.strip() == f"seqgen {__version__}"


def test_user_error_is_one_line_exit_2(tmp_path):
    missing = tmp_path / "no_such_corpus"
    r = _run(["prepare", "vocoder", "--input", str(missing), "--out", str(tmp_path / "out")])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("seqgen: error:")
    assert str(missing) in lines[0]
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_debug_flag_shows_traceback(tmp_path):
    missing = tmp_path / "no_such_corpus"
    r = _run(["--debug", "prepare", "vocoder", "--input", str(missing), "--out", str(tmp_path / "out")])
    assert r.returncode != 0
    assert "Traceback (most recent call last)" in r.stderr
    assert "DataError" in r.stderr and str(missing) in r.stderr


def test_debug_env_shows_traceback_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQGEN_DEBUG", "1")
    from seqgen.errors import DataError

    with pytest.raises(DataError):
        _main(["prepare", "text", "--input", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o")])


def test_main_in_process_error_codes(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SEQGEN_DEBUG", raising=False)
    rc = _main(["prepare", "pairs", "--input", str(tmp_path / "nope.tsv"), "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seqgen: error:") and "nope.tsv" in err[0]

    # An unexpected exception exits 1 with one line that points at --debug.
    from data_prep import vocoder

    def boom(*a, **k):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(vocoder, "prepare", boom)
    rc = _main(["prepare", "vocoder", "--input", "x", "--out", str(tmp_path / "o")])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("seqgen: error: RuntimeError: kaboom") and "--debug" in err[0]
    with pytest.raises(RuntimeError, match="kaboom"):
        _main(["--debug", "prepare", "vocoder", "--input", "x", "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("args", [
    ["prepare", "vocoder", "--input", "x", "--out", "y", "--valid-fraction", "1.5"],
    ["prepare", "text", "--input", "x", "--out", "y", "--vocab-size", "0"],
    ["prepare", "vocoder", "--input", "x", "--out", "y", "--bits", "40"],
    ["prepare", "vocoder", "--out", "y"],
])
def test_bad_arguments_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exc:
        _main(args)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_core_imports_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "import seqgen, seqgen.data.audio, seqgen.data.tokenizers, seqgen.errors, data_prep.common, seqgen.cli\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        seqgen.cli.main(['--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        "bad = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "print('LOADED=' + ','.join(bad))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "LOADED=\n" in r.stdout, r.stdout


def test_main_can_be_called_twice_in_process(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SEQGEN_DEBUG", raising=False)
    argv = ["prepare", "text", "--input", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("nope.txt" in line for line in err)
