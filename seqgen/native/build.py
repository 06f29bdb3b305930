"""Compile a C source of this folder once per host and load it with ctypes.

The shared object is cached under ``$SEQGEN_CACHE/native`` (default ``~/.cache/seqgen/native``), keyed by
the source, the compiler's version, the flags and the CPU's feature flags (the code is built with
``-march=native``, so an object from another CPU is never loaded).  ``$CC`` picks the compiler (default
``cc``).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

from seqgen.utils.cache import cache_dir

HERE = pathlib.Path(__file__).resolve().parent
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared")


class NativeBuildError(RuntimeError):
    """The C loop could not be compiled or loaded (the message says what to do)."""


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def compiler() -> str:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise NativeBuildError(f"method 'native' compiles a C loop on first use and found no compiler "
                               f"({cc!r} is not on PATH): install gcc or set CC, or use --method cached")
    return cc


@functools.lru_cache(maxsize=None)
def load(name: str) -> ctypes.CDLL:
    """The shared object built from ``seqgen/native/NAME.c`` (compiled now if not cached)."""
    source = HERE / f"{name}.c"
    cc = compiler()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    headers = [h.read_text() for h in sorted(HERE.glob("*.h"))]
    key = hashlib.sha256("\n".join([source.read_text(), *headers, cc, *version, " ".join(FLAGS),
                                    platform.machine(), _cpu_flags()]).encode()).hexdigest()[:16]
    folder = cache_dir("native")
    target = folder / f"{name}-{key}.so"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(fd)
        proc = subprocess.run([cc, *FLAGS, "-I", str(HERE), "-o", tmp, str(source), "-lm"], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            os.unlink(tmp)
            first = (proc.stderr.strip().splitlines() or ["no message"])[0]
            raise NativeBuildError(f"compiling {source.name} with {cc} failed ({first}): use --method cached")
        os.replace(tmp, target)     # atomic: a concurrent build writes the same bytes
    try:
        return ctypes.CDLL(str(target))
    except OSError as e:
        raise NativeBuildError(f"loading {target} failed ({e}): delete it and retry, or use --method cached")
