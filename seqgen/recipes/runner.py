"""`seqgen recipe run NAME`: a recipe's stages end to end.

A recipe is a folder ``recipes/NAME/`` with ``recipe.yaml`` (what it
prepares and how it samples), one YAML config per preset and a README.
``kind`` in ``recipe.yaml`` is the data kind; its task (:mod:`seqgen.tasks`)
runs the stages through a :class:`Recipe`, in the working folder ``W``
(default ``runs/NAME-PRESET``): prepare ``W/data/`` (reused when the source
is the same) -> train ``W/run/`` (resumed when it has checkpoints) -> sample
-> evaluate into ``W/metrics.json``.

* vocoder: ``W/reference.wav`` (a held-out utterance), ``W/sample.wav`` (its
  resynthesis) and ``W/sample.png``, held-out NLL in bits per sample;
  with ``distill: true`` two configs per preset, ``teacher_PRESET.yaml`` and
  ``student_PRESET.yaml``: the teacher in ``W/teacher``, the Parallel WaveNet
  student distilled into ``W/student``, ``W/sample.wav`` from the student in
  parallel and ``W/teacher_sample.wav`` from the teacher's cached loop;
* text: ``W/sample.txt`` (a continuation of ``sample.prompt``), bits per byte;
* pairs: ``W/sample.txt`` (``source / reference / output`` for a few valid
  pairs), BLEU and chrF with their sacrebleu signatures.

Re-running a recipe picks up where it stopped.  The recipes folder is found
at ``$SEQGEN_RECIPES`` or in the repository beside the ``seqgen`` package.
"""
from __future__ import annotations

import json
import os
import pathlib
import sys
import time

from seqgen.errors import ConfigError, SeqgenError

RECIPE_KEYS = {"name", "description", "kind", "distill", "default_input", "default_preset", "presets", "prepare",
               "sample", "shared_input", "data_hint", "yardstick"}


def recipes_root() -> pathlib.Path:
    env = os.environ.get("SEQGEN_RECIPES")
    if env:
        return pathlib.Path(env)
    cand = pathlib.Path(__file__).resolve().parents[2] / "recipes"  # the repository's recipes/
    if cand.is_dir():
        return cand
    raise SeqgenError("recipes folder not found; set SEQGEN_RECIPES to the repository's recipes/ folder")


def load_recipe(name: str) -> dict:
    import yaml

    root = recipes_root()
    folder = root / name
    spec_path = folder / "recipe.yaml"
    if not spec_path.is_file():
        known = ", ".join(n for n, _ in list_recipes()) or "none"
        raise SeqgenError(f"no recipe '{name}' in {root}; known recipes: {known}")
    spec = yaml.safe_load(spec_path.read_text()) or {}
    unknown = set(spec) - RECIPE_KEYS
    if unknown:
        raise ConfigError(f"{spec_path}: unknown key(s) {sorted(unknown)}; valid: {sorted(RECIPE_KEYS)}")
    spec["folder"] = folder
    return spec


def list_recipes():
    import yaml

    root = recipes_root()
    out = []
    for d in sorted(root.iterdir()):
        if (d / "recipe.yaml").is_file():
            spec = yaml.safe_load((d / "recipe.yaml").read_text()) or {}
            out.append((d.name, spec.get("description", "")))
    return out


def _resolve_input(spec, data):
    if data:
        return data
    src = spec.get("default_input")
    if src is None:
        raise SeqgenError(f"recipe {spec['name']}: no embedded default corpus; give --data SRC")
    if spec.get("shared_input"):
        # Relative to the repository (e.g. ../shared/data/...).
        p = (recipes_root().parent / src).resolve()
        if not p.exists():
            raise SeqgenError(f"recipe {spec['name']}: its default data lives only in this repository's shared data "
                              f"({src}), not found at {p}; pass --data with your own copy "
                              f"({spec.get('data_hint') or 'see the recipe README'})")
        return str(p)
    return src


def check_input(spec, data=None) -> str:
    """The recipe's source (``data`` or its default), checked cheaply; a one-line error when unusable."""
    from data_prep.sources import check_source
    from seqgen.tasks.base import task_for_recipe

    task = task_for_recipe(spec)
    src = _resolve_input(spec, data)
    check_source(task.kind, src)
    return src


def sample_settings(spec, preset) -> dict:
    """The recipe's ``sample`` settings for ``preset``: the common ones, updated by ``sample.presets.PRESET``
    (e.g. the decoding chosen on the dev split for one preset's run)."""
    conf = dict(spec.get("sample") or {})
    per = conf.pop("presets", None) or {}
    where = f"{spec['folder'] / 'recipe.yaml'}: sample.presets"
    if not isinstance(per, dict):
        raise ConfigError(f"{where} must map preset names to settings")
    unknown = set(per) - set(spec.get("presets") or [])
    if unknown:
        raise ConfigError(f"{where}: no preset {sorted(unknown)[0]!r}; presets: {', '.join(spec.get('presets') or [])}")
    own = per.get(preset) or {}
    if not isinstance(own, dict):
        raise ConfigError(f"{where}.{preset} must be a mapping of sample settings")
    conf.update(own)
    return conf


class Recipe:
    """One run of a recipe: its spec, preset, working folder and source, and the stages' plumbing.

    A task's ``run_recipe(recipe)`` calls :meth:`prepare`, :meth:`train` (or
    :meth:`distill`) and :meth:`stage`, then :meth:`finish` with its metrics."""

    def __init__(self, spec, preset, work, src, max_minutes=None, max_steps=None, overrides=()):
        self.spec, self.preset, self.work, self.src = spec, preset, pathlib.Path(work), src
        self.max_minutes, self.max_steps, self.overrides = max_minutes, max_steps, list(overrides or ())
        self.sample_conf = sample_settings(spec, preset)
        self.distill = bool(spec.get("distill"))
        self.total = 6 if self.distill else 4
        self.t0 = time.time()

    @property
    def name(self):
        return self.spec["name"]

    def config(self, stem="") -> pathlib.Path:
        return self.spec["folder"] / f"{stem}{self.preset}.yaml"

    def minutes(self) -> float:
        return (time.time() - self.t0) / 60

    def stage(self, n, what):
        print(f"\n[{n}/{self.total}] {what}", file=sys.stderr)

    def prepare(self, kind) -> pathlib.Path:
        """Stage 1: ``seqgen prepare KIND`` of the source into ``W/data`` (reused when its source is the same)."""
        from data_prep import prepare_corpus

        data_dir = self.work / "data"
        self.stage(1, f"prepare {self.src} -> {data_dir}")
        manifest_path = data_dir / "manifest.json"
        options = dict(self.spec.get("prepare") or {})
        if self.yardstick:
            options["valid_ids"] = str(self.yardstick)
            print(f"the valid split is the yardstick {self.yardstick} (never trained on)", file=sys.stderr)
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        same_split = all(float(manifest.get(k, 0) or 0) == float(options.get(k, 0) or 0) for k in ("test_fraction",))
        if (manifest.get("source") == str(self.src) and manifest.get("valid_ids") == options.get("valid_ids")
                and same_split):
            print(f"reusing prepared data in {data_dir}", file=sys.stderr)
        else:
            prepare_corpus(kind, self.src, data_dir, **options)
        return data_dir

    @property
    def yardstick(self) -> pathlib.Path | None:
        """The recipe's committed evaluation list, when the source is an LJSpeech-layout folder that holds
        every listed utterance (then they make the valid split and the quality stage scores its eval rows)."""
        name = self.spec.get("yardstick")
        if not name:
            return None
        from seqgen.quality import yardstick

        path = self.spec["folder"] / name
        src = pathlib.Path(str(self.src))
        if not (src / "metadata.csv").is_file():
            return None
        have = set(yardstick.metadata_ids(src))
        return path if set(yardstick.read(path, "all")) <= have else None

    def prepare_and_train(self, kind):
        """Stages 1 and 2 of a one-run recipe: ``(data_dir, run_dir, training summary)``."""
        data_dir, run_dir = self.prepare(kind), self.work / "run"
        return data_dir, run_dir, self.train(2, self.config(), data_dir, run_dir)

    def train(self, n, cfg_path, data_dir, run_dir, overrides=None) -> dict:
        """``seqgen train`` of ``cfg_path`` into ``run_dir`` (resumed when it has a checkpoint)."""
        from seqgen.train import loop

        self.stage(n, f"train {cfg_path} -> {run_dir}")
        return loop.train(cfg_path, data_dir, run_dir, max_steps=self.max_steps, max_minutes=self.max_minutes,
                          overrides=self.overrides if overrides is None else overrides,
                          resume=_has_checkpoints(run_dir))

    def distill_student(self, n, cfg_path, teacher_dir, data_dir, run_dir, overrides) -> dict:
        """``seqgen distill`` of ``cfg_path`` from ``teacher_dir`` into ``run_dir`` (resumed likewise)."""
        from seqgen.train import distillation

        self.stage(n, f"distill the student {cfg_path} -> {run_dir}")
        return distillation.distill(cfg_path, teacher_dir, data_dir, run_dir, max_steps=self.max_steps,
                                    max_minutes=self.max_minutes, overrides=overrides,
                                    resume=_has_checkpoints(run_dir))

    def split_overrides(self):
        """``--set`` items of a two-stage recipe: ``teacher.KEY=V`` / ``student.KEY=V`` go to one
        stage, ``distill.*`` to the student, anything else to both."""
        teacher, student = [], []
        for item in self.overrides:
            key = item.split("=", 1)[0].strip()
            if key.startswith("teacher."):
                teacher.append(item[len("teacher."):].lstrip())
            elif key.startswith("student."):
                student.append(item[len("student."):].lstrip())
            elif key.startswith("distill."):
                student.append(item)
            else:
                teacher.append(item)
                student.append(item)
        return teacher, student

    def finish(self, metrics: dict, lines: list[tuple[str, str]]) -> None:
        """Write ``W/metrics.json`` (with the minutes taken) and print what the recipe made."""
        metrics["minutes"] = self.minutes()
        (self.work / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        width = max(len(k) for k, _ in lines)
        body = "\n".join(f"  {k:<{width}}  {v}" for k, v in lines)
        print(f"\nrecipe {self.name} ({self.preset}) done in {self.minutes():.1f} min:\n{body}", file=sys.stderr)


def _has_checkpoints(run_dir):
    """A recipe stage run again resumes its run when that run has a checkpoint."""
    from seqgen.runs import Run

    run = Run(run_dir)
    return run.exists() and bool(run.checkpoints())


def run_recipe(name, preset=None, data=None, workdir=None, max_minutes=None, max_steps=None, overrides=()):
    spec = load_recipe(name)
    preset = preset or spec.get("default_preset", "tiny")
    presets = spec.get("presets") or []
    if preset not in presets:
        raise SeqgenError(f"recipe {name}: no preset '{preset}'; presets: {', '.join(presets)}")
    stems = ["teacher_", "student_"] if spec.get("distill") else [""]
    for stem in stems:
        if not (spec["folder"] / f"{stem}{preset}.yaml").is_file():
            raise SeqgenError(f"recipe {name}: preset file {spec['folder'] / f'{stem}{preset}.yaml'} is missing")
    from seqgen.tasks.base import task_for_recipe

    task = task_for_recipe(spec)
    src = check_input(spec, data)
    work = pathlib.Path(workdir or pathlib.Path("runs") / f"{name}-{preset}")
    work.mkdir(parents=True, exist_ok=True)
    return task.run_recipe(Recipe(spec, preset, work, src, max_minutes, max_steps, overrides))
