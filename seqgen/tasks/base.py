"""What every data kind provides, and the registry that maps kinds and runs to their task.

A task owns one data kind (the ``kind`` of a prepared corpus's manifest and of
a run's ``run.json``): what a run records about its data, the constructor
arguments the data dictates, the training batches, the held-out figure that
validation logs, ``seqgen evaluate``, and which verb samples from such a run.
Training, the CLI and the recipes ask the task; nothing outside ``tasks/``
switches on the kind.  A fourth kind is one new class passed to
:func:`register_task` (see ``tests/test_tasks.py``).

A loaded task is also the public Python API (``seqgen.load(RUN)``)::

    import seqgen
    lm = seqgen.load("runs/lm")              # a LanguageModel
    print(lm.generate("ROMEO:", max_bytes=200, seed=1))
    print(lm.evaluate())                      # {"bits_per_byte": ..., ...}
"""
from __future__ import annotations

import importlib
import pathlib

from seqgen.errors import SeqgenError

#: kind -> task class; the built-in ones are imported on first use
TASKS: dict[str, type] = {}
_BUILTIN = ("seqgen.tasks.vocoder", "seqgen.tasks.language_model", "seqgen.tasks.translation")


class Task:
    """A trained run of one data kind, and that kind's training-side rules (class methods)."""

    #: the data kind: the ``kind`` of the manifest and of ``run.json``'s ``data``
    kind = ""
    #: what the held-out figure counts bits per ("sample", "byte")
    unit = "byte"
    #: the `seqgen` verb that makes something from such a run
    verb = ""
    #: what the run is, for messages ("vocoder", "byte language model", ...)
    title = ""

    def __init__(self, run_dir, info=None, step=None):
        from seqgen.runs import Run

        self.run = Run(run_dir)
        self.info = info if info is not None else self.run.info()
        self._model = self._step = self._ckpt = None
        self._at_step = None if step is None else int(step)  # a given checkpoint's step; None = the newest

    # ------------------------------------------------------------ a trained run
    @property
    def model(self):
        """The newest readable checkpoint's model (or the one at the step the task was loaded at), with its
        EMA weights when training kept them."""
        if self._model is None:
            self._model, self._step, self._ckpt = self.run.load_model(use_ema=True, compile=False,
                                                                      step=self._at_step)
        return self._model

    @property
    def step(self) -> int:
        self.model  # noqa: B018 (loads it)
        return int(self._step)

    @property
    def checkpoint(self) -> str | None:
        """The file name of the checkpoint the model was loaded from."""
        self.model  # noqa: B018
        return self._ckpt.name if self._ckpt is not None else None

    def config(self) -> dict:
        return self.run.config()

    def data_dir(self, data=None) -> str:
        return str(data or self.info["data"]["data_dir"])

    def evaluate(self, data=None, split="valid", max_windows=0, progress=True, **_) -> dict:
        """Held-out figures of the run on prepared data (default: its training data)."""
        return self.held_out(self.model, self.data_dir(data), split, self.config().get("data", {}), max_windows,
                             progress)

    def quality(self, **options) -> dict:
        """Speech-quality scores of whole resyntheses (vocoders only: `seqgen evaluate --quality`)."""
        raise SeqgenError(f"--quality scores vocoder runs; {self.run.path} is a {self.title} run "
                          f"(leave out --quality for its held-out figures)")

    # ------------------------------------------------------------ training side
    @classmethod
    def data_info(cls, data_dir) -> dict:
        """What ``run.json`` records about the prepared data (``kind`` and ``data_dir`` included)."""
        from seqgen.data.manifest import read_manifest

        read_manifest(data_dir, cls.kind)
        return {"kind": cls.kind, "data_dir": str(pathlib.Path(data_dir).resolve())}

    @classmethod
    def model_kwargs(cls, model_type: str, model_cfg: dict, data_info: dict) -> dict:
        """Constructor arguments that the data dictates (never written in a config)."""
        return {}

    @classmethod
    def build_model(cls, model_cfg: dict, data_info: dict):
        """The model of a validated config (``model`` section) for data described by ``data_info``."""
        from seqgen.models.registry import build_model

        return build_model(model_cfg, cls.model_kwargs(model_cfg["type"], model_cfg, data_info))

    @classmethod
    def train_dataset(cls, model, data_dir, data_cfg: dict, seed: int, shard=(0, 1)):
        """Training batches ``(inputs, targets)`` of ``data_cfg["batch_size"]``, seeded by ``seed``;
        ``shard = (index, count)`` of this worker's input pipeline."""
        raise NotImplementedError

    #: the keys of :meth:`held_out`'s result that validation logs: bits per unit, and how many units
    held_out_keys = ("bits_per_byte", "num_bytes")
    #: further keys of :meth:`held_out`'s result that validation logs, and the names it logs them under
    held_out_extra: dict = {}

    @classmethod
    def held_out(cls, model, data_dir, split, data_cfg: dict, max_windows=0, progress=False) -> dict:
        """The model's likelihood of ``split`` (the first ``max_windows`` windows; 0 = all)."""
        raise NotImplementedError

    @classmethod
    def valid_bits(cls, model, data_dir, data_cfg: dict) -> tuple[float, int, dict]:
        """``(bits per unit, number of units, {further figures})`` on the valid split, as validation logs them."""
        res = cls.held_out(model, data_dir, "valid", data_cfg, int(data_cfg["max_valid_windows"]))
        bits, count = cls.held_out_keys
        return res[bits], res[count], {name: res[key] for key, name in cls.held_out_extra.items()}

    @classmethod
    def after_validation(cls, model, loop, step) -> None:
        """What else training writes after each validation (the vocoder: a generated clip)."""

    @classmethod
    def run_recipe(cls, recipe) -> dict:
        """A recipe's stages for this kind (:class:`seqgen.recipes.runner.Recipe`)."""
        raise SeqgenError(f"recipe {recipe.name}: data of kind {cls.kind!r} has no recipe stages")


def register_task(cls: type) -> type:
    """Add a task class for its ``kind`` (usable as a decorator)."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__}: a task needs a kind")
    TASKS[cls.kind] = cls
    return cls


def _builtin():
    for module in _BUILTIN:
        importlib.import_module(module)


def task_for_kind(kind: str) -> type:
    _builtin()
    if kind not in TASKS:
        raise SeqgenError(f"no task for data of kind {kind!r}; known kinds: {', '.join(sorted(TASKS))}")
    return TASKS[kind]


def task_for_model_type(model_type: str) -> type:
    from seqgen.models.registry import data_kind

    return task_for_kind(data_kind(model_type))


def task_for_recipe(spec: dict) -> type:
    """The task of a recipe (its ``recipe.yaml``'s ``kind``, vocoder by default)."""
    return task_for_kind(spec.get("kind", "vocoder"))


def load(run_dir, verb: str | None = None, step: int | None = None) -> Task:
    """The task object of a trained run; with ``verb``, a one-line error when that verb does not fit the run;
    with ``step``, the model is that checkpoint's (default: the newest)."""
    from seqgen.runs import Run
    from seqgen.utils import backend

    backend.keep_tensorflow_out()
    info = Run(run_dir).info()
    task = task_for_kind((info.get("data") or {}).get("kind"))
    if verb is not None and verb != task.verb:
        raise SeqgenError(f"{run_dir} is a {task.title} run ({task.kind} data): `seqgen {verb}` does not apply; "
                          f"use `seqgen {task.verb} --run {run_dir}`")
    return task(run_dir, info=info, step=step)
