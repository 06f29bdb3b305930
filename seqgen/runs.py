"""A run directory: what `seqgen train` writes and `sample`/`evaluate` read.

Layout::

    RUN/
      config.yaml            the resolved config (defaults filled in)
      run.json               model type and what the data dictates (features,
                             normalization stats, sample rate, speakers)
      checkpoints/
        ckpt-00001200.keras  model + optimizer state (step = optimizer iterations)
        latest               name of the newest complete checkpoint
      metrics.jsonl          one JSON line per log interval / validation
      tb/                    TensorBoard events
      loss.png               training and validation curves
      .lock                  held while `seqgen train` runs (.lock-worker-N: worker N of a job)
      backup/                Keras BackupAndRestore state of a --strategy mirrored|multi-worker job

Checkpoints are written to a temporary name and renamed, so a crash or a
full disk never leaves a half-written checkpoint under a real name; when the
newest checkpoint cannot be read, the previous one is used (with a warning).
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import sys

from seqgen.errors import SeqgenError

_CKPT = re.compile(r"^ckpt-(\d+)\.keras$")

#: the layout of a run directory and its run.json (1: before the version was written; 2: with it)
RUN_FORMAT_VERSION = 2


class RunError(SeqgenError):
    pass


class Run:
    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.ckpt_dir = self.path / "checkpoints"
        self._lock_fd = None

    # ------------------------------------------------------------ metadata
    @property
    def info_path(self):
        return self.path / "run.json"

    def exists(self) -> bool:
        return self.info_path.is_file()

    def info(self) -> dict:
        """``run.json``; a run written by a newer seqgen (a higher ``format_version``) fails in one line."""
        info = self._read_info()
        version = int(info.get("format_version", 1))
        if version > RUN_FORMAT_VERSION:
            raise RunError(f"{self.info_path}: run format {version} is newer than this seqgen reads "
                           f"({RUN_FORMAT_VERSION}); upgrade seqgen")
        return info

    def _read_info(self) -> dict:
        if not self.path.is_dir():
            raise RunError(f"{self.path}: no such run directory")
        if not self.info_path.is_file():
            raise RunError(f"{self.path}: not a seqgen run (no run.json); train one with `seqgen train`")
        try:
            return json.loads(self.info_path.read_text())
        except ValueError as e:
            raise RunError(f"{self.info_path}: unreadable ({e})") from None

    def write_info(self, info: dict) -> None:
        """Write ``run.json``, with the run format's version (:data:`RUN_FORMAT_VERSION`)."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.info_path, json.dumps({"format_version": RUN_FORMAT_VERSION, **info}, indent=2))

    def config(self) -> dict:
        import yaml

        p = self.path / "config.yaml"
        if not p.is_file():
            raise RunError(f"{self.path}: no config.yaml")
        return yaml.safe_load(p.read_text())

    # ------------------------------------------------------------ lock
    def lock(self, name=".lock") -> None:
        """Take the run's lock; a second trainer on the same directory is refused.

        The workers of a multi-worker job other than the chief take ``.lock-worker-N``."""
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            who = "another `seqgen train`" if name == ".lock" else f"another process with this worker's task ({name})"
            raise RunError(f"{self.path}: {who} is using this run directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------ checkpoints
    def checkpoints(self) -> list[tuple[int, pathlib.Path]]:
        """Complete checkpoints, newest first."""
        if not self.ckpt_dir.is_dir():
            return []
        found = []
        for p in self.ckpt_dir.iterdir():
            m = _CKPT.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
        return sorted(found, reverse=True)

    def steps_text(self) -> str:
        """The steps of the run's checkpoints, oldest first, for messages."""
        steps = sorted(s for s, _ in self.checkpoints())
        return "steps " + ", ".join(map(str, steps)) if steps else "no checkpoint"

    def training_minutes(self) -> dict[int, float]:
        """Step -> wall-clock minutes of training up to that logged step, summed over the processes that
        trained the run (each restarts ``metrics.jsonl``'s ``time`` at 0 when it resumes)."""
        out, offset, last = {}, 0.0, None
        path = self.path / "metrics.jsonl"
        if not path.is_file():
            return out
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                step, t = int(row["step"]), float(row["time"])
            except (ValueError, KeyError, TypeError):
                continue
            if last is not None and t < last:  # a resumed process: its clock starts again
                offset += last
            last = t
            out[step] = (offset + t) / 60.0
        return out

    def save_checkpoint(self, model, step: int, keep: int = 3, keep_every: int = 0) -> pathlib.Path | None:
        """Save atomically; returns the path, or None (with a warning) if the write failed.  The newest
        ``keep`` checkpoints stay, and with ``keep_every`` also every one at a multiple of that many steps."""
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        final = self.ckpt_dir / f"ckpt-{step:08d}.keras"
        tmp = self.ckpt_dir / f".tmp-{step:08d}-{os.getpid()}.keras"
        if not save_then_point(model.save, tmp, final, self.ckpt_dir / "latest", final.name + "\n",
                               f"checkpoint at step {step}", "the previous checkpoint is kept"):
            return None
        for old_step, old in self.checkpoints()[keep:]:
            if keep_every and old_step % keep_every == 0:
                continue
            try:
                old.unlink()
            except OSError:
                pass
        return final

    def load_model(self, use_ema: bool = True, compile: bool = True, step: int | None = None,
                   precision: str = "float32"):
        """Load the newest readable checkpoint (with ``step``, that step's); returns (model, step, path).

        The model computes in ``precision`` (a Keras dtype policy): float32 for sampling and evaluation,
        whatever the run trained in (its weights are float32 either way), so cached == naive holds bit for
        bit; training resumes under the run's ``train.precision``.

        With ``use_ema`` and an optimizer that tracks EMA weights, the model's
        weights are replaced by their moving averages (what sampling wants).
        """
        import keras

        import seqgen.train.schedules  # noqa: F401 (registers PerUpdate, which a checkpoint's optimizer may name)
        from seqgen.models.registry import import_all
        from seqgen.utils.backend import dtype_policy

        import_all()  # registers every serializable model class before deserializing

        ckpts = self.checkpoints()
        if not ckpts:
            raise RunError(f"{self.path}: no checkpoint yet; train first (checkpoints are written every "
                           f"train.checkpoint_every steps and when training stops)")
        if step is not None:
            ckpts = [(s, p) for s, p in ckpts if s == int(step)]
            if not ckpts:
                raise RunError(f"{self.path}: no checkpoint at step {step}; it has {self.steps_text()}")
        errors = []
        for step, path in ckpts:
            try:
                with dtype_policy(precision):  # the model is rebuilt under it (Decoder.from_config)
                    model = keras.saving.load_model(path, compile=compile)
            except Exception as e:  # a truncated zip, a bad h5, ...
                errors.append(f"{path.name}: {type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''}")
                print(f"seqgen: warning: checkpoint {path} is unreadable ({errors[-1]}); trying an older one",
                      file=sys.stderr)
                continue
            opt = getattr(model, "optimizer", None)
            if opt is not None and getattr(opt, "iterations", None) is not None:
                step = int(opt.iterations.numpy() if hasattr(opt.iterations, "numpy") else opt.iterations)
            if use_ema and opt is not None and getattr(opt, "use_ema", False):
                opt.finalize_variable_values(model.trainable_variables)
            return model, step, path
        raise RunError(f"{self.path}: no readable checkpoint ({'; '.join(errors)})")


def save_then_point(save, tmp: pathlib.Path, final: pathlib.Path, pointer: pathlib.Path, pointer_text: str,
                    what: str, kept: str) -> bool:
    """``save(tmp)`` writes a file that becomes ``final`` once complete and synced; then ``pointer``
    (a small file naming it) is replaced.  A failed write (a full disk...) changes nothing but leaves
    one warning line (``what``, then ``kept``); returns whether it worked."""
    try:
        save(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        atomic_write(pointer, pointer_text)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        print(f"seqgen train: warning: could not write the {what} ({e.strerror or e}); {kept}", file=sys.stderr)
        return False
    return True


def atomic_write(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk: leave no temporary file behind
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
