"""`seqgen recipe run NAME`: a recipe's stages end to end.

A recipe is a folder ``recipes/NAME/`` with ``recipe.yaml`` (what it
prepares and how it samples), one YAML config per preset and a README.
Stages for audio recipes: prepare -> train -> sample -> evaluate, in the
working folder ``W`` (default ``runs/NAME-PRESET``)::

    W/data/           the prepared corpus (reused when the source is the same)
    W/run/            the training run (resumed when it already has checkpoints)
    W/reference.wav   a held-out utterance (its mel conditions the sample)
    W/sample.wav      the resynthesis, W/sample.png its waveform + spectrogram
    W/metrics.json    seqgen evaluate's output on the valid split

Text recipes (``kind: text``) write ``W/sample.txt`` (a generated
continuation of ``sample.prompt``) and ``W/metrics.json`` (bits/byte on the
valid split); translation recipes (``kind: pairs``) write ``W/sample.txt``
(``source / reference / output`` for a few valid pairs) and
``W/metrics.json`` (BLEU and chrF with their sacrebleu signatures).

Distillation recipes (``kind: parallel_wavenet``) have two configs per preset,
``teacher_PRESET.yaml`` and ``student_PRESET.yaml``: prepare -> train the
teacher into ``W/teacher`` -> distill the student into ``W/student`` -> sample
a held-out utterance with both (``W/sample.wav`` from the student in parallel,
``W/teacher_sample.wav`` from the teacher's cached loop) -> ``W/metrics.json``.

Re-running a recipe picks up where it stopped.  The recipes folder is found
at ``$SEQGEN_RECIPES`` or next to the installed ``seqgen`` package.
"""
from __future__ import annotations

import json
import os
import pathlib
import sys
import time

from seqgen.errors import ConfigError, SeqgenError

RECIPE_KEYS = {"name", "description", "kind", "default_input", "default_preset", "presets", "prepare",
               "sample", "shared_input", "data_hint"}


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


def _stage(n, total, what):
    print(f"\n[{n}/{total}] {what}", file=sys.stderr)


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


PREPARE_KIND = {"vocoder": "vocoder", "parallel_wavenet": "vocoder", "text": "text", "pairs": "pairs"}


def check_input(spec, data=None) -> str:
    """The recipe's source (``data`` or its default), checked cheaply; a one-line error when unusable."""
    from data_prep.sources import check_source

    kind = spec.get("kind", "vocoder")
    if kind not in PREPARE_KIND:
        raise SeqgenError(f"recipe {spec['name']}: kind '{kind}' is not supported; "
                          f"expected one of {', '.join(PREPARE_KIND)}")
    src = _resolve_input(spec, data)
    check_source(PREPARE_KIND[kind], src)
    return src


def run_recipe(name, preset=None, data=None, workdir=None, max_minutes=None, max_steps=None, overrides=()):
    spec = load_recipe(name)
    kind = spec.get("kind", "vocoder")
    preset = preset or spec.get("default_preset", "tiny")
    presets = spec.get("presets") or []
    if preset not in presets:
        raise SeqgenError(f"recipe {name}: no preset '{preset}'; presets: {', '.join(presets)}")
    stems = ["teacher_" + preset, "student_" + preset] if kind == "parallel_wavenet" else [preset]
    for stem in stems:
        if not (spec["folder"] / f"{stem}.yaml").is_file():
            raise SeqgenError(f"recipe {name}: preset file {spec['folder'] / f'{stem}.yaml'} is missing")
    cfg_path = spec["folder"] / f"{stems[0]}.yaml"
    work = pathlib.Path(workdir or pathlib.Path("runs") / f"{name}-{preset}")
    work.mkdir(parents=True, exist_ok=True)
    src = check_input(spec, data)
    if kind == "parallel_wavenet":
        return _run_parallel_wavenet(spec, preset, work, src, max_minutes, max_steps, overrides)
    if kind == "vocoder":
        return _run_vocoder(spec, preset, cfg_path, work, src, max_minutes, max_steps, overrides)
    if kind == "text":
        return _run_text(spec, preset, cfg_path, work, src, max_minutes, max_steps, overrides)
    if kind == "pairs":
        return _run_pairs(spec, preset, cfg_path, work, src, max_minutes, max_steps, overrides)
    raise SeqgenError(f"recipe {name}: kind '{kind}' is not supported yet")


def _run_vocoder(spec, preset, cfg_path, work, src, max_minutes, max_steps, overrides):
    from data_prep import vocoder
    from seqgen.tasks import vocoder as vocoder_task
    from seqgen.runs import Run

    t0 = time.time()
    total = 4
    data_dir, run_dir, summary = _prepare_and_train(
        spec, lambda src, out, **kw: vocoder.prepare(str(src), out, **kw), cfg_path, work, src,
        max_minutes, max_steps, overrides, total)

    _stage(3, total, "sample: resynthesize a held-out utterance")
    sconf = spec.get("sample") or {}
    ref_path, split = _reference_clip(data_dir, work / "reference.wav", float(sconf.get("reference_seconds", 2.0)))
    speaker = sconf.get("speaker")
    res = vocoder_task.sample(run_dir, work / "sample.wav", mel_from=ref_path, plot=True, speaker=speaker)

    _stage(4, total, "evaluate on the valid split")
    model, step, _ = Run(run_dir).load_model(use_ema=True, compile=False)
    cfg = Run(run_dir).config()
    metrics = vocoder_task.vocoder_nll(model, data_dir, split, cfg["data"]["valid_window"],
                                     cfg["data"]["valid_batch_size"], progress=True)
    metrics.update({"step": int(step), "split": split, "samples_per_sec": res["samples_per_sec"],
                    "minutes": (time.time() - t0) / 60})
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"\nrecipe {spec['name']} ({preset}) done in {(time.time() - t0) / 60:.1f} min:\n"
          f"  resynthesis  {work / 'sample.wav'}\n"
          f"  plot         {work / 'sample.png'}\n"
          f"  metrics      {work / 'metrics.json'}  "
          f"(valid NLL {metrics['nll_bits_per_sample']:.3f} bits/sample at step {step})\n"
          f"  run          {run_dir}  (tensorboard --logdir {run_dir / 'tb'})", file=sys.stderr)
    return {"metrics": metrics, "sample": res, "train": summary}


def _reference_clip(data_dir, out_wav, seconds):
    """The first ``seconds`` of the first held-out utterance (train if there is no valid split),
    written to ``out_wav``; returns ``(path, split)``."""
    import numpy as np

    from seqgen.data import audio as A
    from seqgen.data import pipeline as D

    info = D.VocoderData(data_dir)
    split = "valid" if info.manifest["splits"]["valid"]["num_items"] else "train"
    ds = D.vocoder_eval_dataset(data_dir, split, window=max(info.hop, int(seconds * info.sample_rate)
                                                             // info.hop * info.hop), batch_size=1,
                                discrete=False)
    _, target, weight = next(iter(ds))
    ref = target.numpy()[0][: int(weight.numpy()[0].sum())]
    return A.save(out_wav, np.asarray(ref), info.sample_rate), split


def _prepare(spec, prep_fn, work, src, total):
    data_dir = work / "data"
    _stage(1, total, f"prepare {src} -> {data_dir}")
    manifest_path = data_dir / "manifest.json"
    if manifest_path.is_file() and json.loads(manifest_path.read_text()).get("source") == str(src):
        print(f"reusing prepared data in {data_dir}", file=sys.stderr)
    else:
        prep_fn(src, data_dir, **dict(spec.get("prepare") or {}))
    return data_dir


def _has_checkpoints(run_dir):
    """A recipe stage run again resumes its run when that run has a checkpoint."""
    from seqgen.runs import Run

    run = Run(run_dir)
    return run.exists() and bool(run.checkpoints())


def _prepare_and_train(spec, prep_fn, cfg_path, work, src, max_minutes, max_steps, overrides, total):
    from seqgen.train import loop as training

    data_dir, run_dir = _prepare(spec, prep_fn, work, src, total), work / "run"
    _stage(2, total, f"train {cfg_path} -> {run_dir}")
    resume = _has_checkpoints(run_dir)
    summary = training.train(cfg_path, data_dir, run_dir, max_steps=max_steps, max_minutes=max_minutes,
                             overrides=overrides, resume=resume)
    return data_dir, run_dir, summary


def _run_text(spec, preset, cfg_path, work, src, max_minutes, max_steps, overrides):
    from data_prep import text
    from seqgen.runs import Run
    from seqgen.tasks.language_model import generate_stream, lm_nll, load_text_run

    t0 = time.time()
    data_dir, run_dir, summary = _prepare_and_train(
        spec, lambda s, out, **kw: text.prepare_text([s], out, **kw), cfg_path, work, src, max_minutes, max_steps,
        overrides, 4)

    _stage(3, 4, "generate a sample")
    sconf = spec.get("sample") or {}
    model, step, info = load_text_run(run_dir, kinds=("text",))
    prompt = str(sconf.get("prompt", ""))
    t1 = time.time()
    gen = generate_stream(model, prompt, int(sconf.get("max_bytes", 256)),
                          temperature=float(sconf.get("temperature", 1.0)), seed=int(sconf.get("seed", 0)),
                          trained_window=info["trained_window"])
    gen_seconds = time.time() - t1
    (work / "sample.txt").write_text(prompt + gen + "\n", encoding="utf-8")

    _stage(4, 4, "evaluate on the valid split")
    cfg = Run(run_dir).config()
    metrics = lm_nll(model, data_dir, "valid", cfg["data"]["window"], cfg["data"]["valid_batch_size"],
                                progress=True)
    metrics.update({"step": int(step), "split": "valid", "model_type": cfg["model"]["type"],
                    "bytes_per_sec": len(gen.encode()) / max(gen_seconds, 1e-9),
                    "minutes": (time.time() - t0) / 60})
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"\nrecipe {spec['name']} ({preset}) done in {(time.time() - t0) / 60:.1f} min:\n"
          f"  sample   {work / 'sample.txt'}\n"
          f"  metrics  {work / 'metrics.json'}  "
          f"(valid {metrics['bits_per_byte']:.3f} bits/byte at step {step})\n"
          f"  run      {run_dir}  (seqgen generate --run {run_dir} --prompt TEXT)", file=sys.stderr)
    return {"metrics": metrics, "sample": prompt + gen, "train": summary}


def _run_pairs(spec, preset, cfg_path, work, src, max_minutes, max_steps, overrides):
    from data_prep import text
    from seqgen.data import pipeline as D
    from seqgen.tasks import translation
    from seqgen.tasks.language_model import load_text_run

    t0 = time.time()
    data_dir, run_dir, summary = _prepare_and_train(
        spec, text.prepare_pairs, cfg_path, work, src, max_minutes, max_steps, overrides, 4)

    _stage(3, 4, "translate a few valid sources")
    sconf = spec.get("sample") or {}
    beam = int(sconf.get("beam", 0)) or None
    model, step, _ = load_text_run(run_dir, kinds=("pairs",))
    pairs = D.read_pairs(data_dir, "valid")[: int(sconf.get("num_examples", 5))]
    hyps = translation.translate_texts(model, [s for s, _ in pairs], beam_size=beam)
    lines = []
    for (s, t), h in zip(pairs, hyps):
        lines += [f"source     {s}", f"reference  {t}", f"output     {h}", ""]
    (work / "sample.txt").write_text("\n".join(lines), encoding="utf-8")

    _stage(4, 4, "evaluate (BLEU, chrF) on the valid split")
    metrics = translation.translation_scores(model, data_dir, "valid", beam_size=beam,
                                            max_pairs=int(sconf.get("max_pairs", 0)))
    metrics.pop("hypotheses", None)
    metrics.update({"step": int(step), "split": "valid", "minutes": (time.time() - t0) / 60})
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"\nrecipe {spec['name']} ({preset}) done in {(time.time() - t0) / 60:.1f} min:\n"
          f"  examples {work / 'sample.txt'}\n"
          f"  metrics  {work / 'metrics.json'}  "
          f"(BLEU {metrics['bleu']:.1f}, chrF {metrics['chrf']:.1f} on {metrics['num_pairs']} pairs at step {step})\n"
          f"  run      {run_dir}  (seqgen translate --run {run_dir} TEXT)", file=sys.stderr)
    return {"metrics": metrics, "examples": list(zip(pairs, hyps)), "train": summary}


def _split_overrides(overrides):
    """``--set`` items of a two-stage recipe: ``teacher.KEY=V`` / ``student.KEY=V`` go to one
    stage, ``distill.*`` to the student, anything else to both."""
    teacher, student = [], []
    for item in overrides or ():
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


def _run_parallel_wavenet(spec, preset, work, src, max_minutes, max_steps, overrides):
    """prepare -> teacher (seqgen train) -> student (seqgen distill) -> parallel vs cached sample -> metrics."""
    from data_prep import vocoder
    from seqgen.train import distillation
    from seqgen.tasks import vocoder as vocoder_task
    from seqgen.train import loop as training
    from seqgen.utils.plots import read_metrics
    from seqgen.runs import Run

    t0 = time.time()
    total = 5
    folder = spec["folder"]
    teacher_cfg, student_cfg = folder / f"teacher_{preset}.yaml", folder / f"student_{preset}.yaml"
    t_over, s_over = _split_overrides(overrides)
    data_dir = _prepare(spec, lambda s, out, **kw: vocoder.prepare(str(s), out, **kw), work, src, total)
    teacher_dir, student_dir = work / "teacher", work / "student"

    _stage(2, total, f"train the teacher {teacher_cfg} -> {teacher_dir}")
    resume = _has_checkpoints(teacher_dir)
    t_summary = training.train(teacher_cfg, data_dir, teacher_dir, max_steps=max_steps, max_minutes=max_minutes,
                               overrides=t_over, resume=resume)

    _stage(3, total, f"distill the student {student_cfg} -> {student_dir}")
    resume = _has_checkpoints(student_dir)
    s_summary = distillation.distill(student_cfg, teacher_dir, data_dir, student_dir, max_steps=max_steps,
                                     max_minutes=max_minutes, overrides=s_over, resume=resume)

    _stage(4, total, "sample a held-out utterance: student (parallel) and teacher (cached)")
    sconf = spec.get("sample") or {}
    ref_path, split = _reference_clip(data_dir, work / "reference.wav", float(sconf.get("reference_seconds", 2.0)))
    student_res = vocoder_task.sample(student_dir, work / "sample.wav", mel_from=ref_path, method="parallel", plot=True)
    teacher_res = vocoder_task.sample(teacher_dir, work / "teacher_sample.wav", mel_from=ref_path, method="cached")

    _stage(5, total, "evaluate: teacher NLL on the valid split; distillation health of the final student")
    teacher, t_step, _ = Run(teacher_dir).load_model(use_ema=True, compile=False)
    tcfg = Run(teacher_dir).config()
    teacher_nll = vocoder_task.vocoder_nll(teacher, data_dir, split, tcfg["data"]["valid_window"],
                                         tcfg["data"]["valid_batch_size"], max_windows=16)
    health = next((r for r in reversed(read_metrics(student_dir / "metrics.jsonl") or []) if "valid_kl" in r), {})
    metrics = {
        "teacher": {"step": int(t_step), "valid_nll_bits_per_sample": teacher_nll["nll_bits_per_sample"],
                    "num_samples": teacher_nll["num_samples"], "split": split,
                    "cached_samples_per_sec": teacher_res["samples_per_sec"]},
        "student": {"step": int(student_res["step"]), **{k: v for k, v in health.items() if k.startswith("valid_")},
                    "parallel_samples_per_sec": student_res["samples_per_sec"]},
        "speedup_parallel_vs_cached": student_res["samples_per_sec"] / max(teacher_res["samples_per_sec"], 1e-9),
        "minutes": (time.time() - t0) / 60,
    }
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    kl = health.get("valid_kl")
    print(f"\nrecipe {spec['name']} ({preset}) done in {(time.time() - t0) / 60:.1f} min:\n"
          f"  student sample  {work / 'sample.wav'} ({student_res['samples_per_sec']:.0f} samples/s, parallel)\n"
          f"  teacher sample  {work / 'teacher_sample.wav'} ({teacher_res['samples_per_sec']:.0f} samples/s, cached)\n"
          f"  plot            {work / 'sample.png'}\n"
          f"  metrics         {work / 'metrics.json'}"
          + (f"  (held-out KL {kl:.3f} nats/sample; teacher NLL of student "
             f"{health['valid_teacher_nll_student']:.3f} vs real {health['valid_teacher_nll_real']:.3f})"
             if kl is not None else "") + "\n"
          f"  runs            {teacher_dir}, {student_dir}  (tensorboard --logdir {work})", file=sys.stderr)
    return {"metrics": metrics, "teacher": t_summary, "student": s_summary}
