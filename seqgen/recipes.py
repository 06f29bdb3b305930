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
               "sample", "shared_input"}


def recipes_root() -> pathlib.Path:
    env = os.environ.get("SEQGEN_RECIPES")
    if env:
        return pathlib.Path(env)
    here = pathlib.Path(__file__).resolve().parent
    for cand in (here.parent / "recipes", here / "recipes"):
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
            raise SeqgenError(f"recipe {spec['name']}: default data {p} not found; give --data SRC")
        return str(p)
    return src


def run_recipe(name, preset=None, data=None, workdir=None, max_minutes=None, max_steps=None, overrides=()):
    spec = load_recipe(name)
    kind = spec.get("kind", "vocoder")
    preset = preset or spec.get("default_preset", "tiny")
    presets = spec.get("presets") or []
    if preset not in presets:
        raise SeqgenError(f"recipe {name}: no preset '{preset}'; presets: {', '.join(presets)}")
    cfg_path = spec["folder"] / f"{preset}.yaml"
    if not cfg_path.is_file():
        raise SeqgenError(f"recipe {name}: preset file {cfg_path} is missing")
    work = pathlib.Path(workdir or pathlib.Path("runs") / f"{name}-{preset}")
    work.mkdir(parents=True, exist_ok=True)
    src = _resolve_input(spec, data)
    if kind == "vocoder":
        return _run_vocoder(spec, preset, cfg_path, work, src, max_minutes, max_steps, overrides)
    if kind == "text":
        return _run_text(spec, preset, cfg_path, work, src, max_minutes, max_steps, overrides)
    if kind == "pairs":
        return _run_pairs(spec, preset, cfg_path, work, src, max_minutes, max_steps, overrides)
    raise SeqgenError(f"recipe {name}: kind '{kind}' is not supported yet")


def _run_vocoder(spec, preset, cfg_path, work, src, max_minutes, max_steps, overrides):
    import numpy as np

    from data_prep import vocoder
    from seqgen import audio as A
    from seqgen import evaluation, sampling
    from seqgen.runs import Run

    t0 = time.time()
    total = 4
    data_dir, run_dir, summary = _prepare_and_train(
        spec, lambda src, out, **kw: vocoder.prepare(str(src), out, **kw), cfg_path, work, src,
        max_minutes, max_steps, overrides, total)

    _stage(3, total, "sample: resynthesize a held-out utterance")
    from seqgen import data as D

    sconf = spec.get("sample") or {}
    info = D.VocoderData(data_dir)
    seconds = float(sconf.get("reference_seconds", 2.0))
    split = "valid" if info.manifest["splits"]["valid"]["num_items"] else "train"
    ds = D.vocoder_eval_dataset(data_dir, split, window=max(info.hop, int(seconds * info.sample_rate)
                                                             // info.hop * info.hop), batch_size=1,
                                discrete=False)
    _, target, weight = next(iter(ds))
    ref = target.numpy()[0][: int(weight.numpy()[0].sum())]
    ref_path = A.save(work / "reference.wav", np.asarray(ref), info.sample_rate)
    speaker = sconf.get("speaker")
    res = sampling.sample(run_dir, work / "sample.wav", mel_from=ref_path, plot=True, speaker=speaker)

    _stage(4, total, "evaluate on the valid split")
    model, step, _ = Run(run_dir).load_model(use_ema=True, compile=False)
    cfg = Run(run_dir).config()
    metrics = evaluation.vocoder_nll(model, data_dir, split, cfg["data"]["valid_window"],
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


def _prepare_and_train(spec, prep_fn, cfg_path, work, src, max_minutes, max_steps, overrides, total):
    from seqgen import training
    from seqgen.runs import Run

    data_dir, run_dir = work / "data", work / "run"
    _stage(1, total, f"prepare {src} -> {data_dir}")
    manifest_path = data_dir / "manifest.json"
    if manifest_path.is_file() and json.loads(manifest_path.read_text()).get("source") == str(src):
        print(f"reusing prepared data in {data_dir}", file=sys.stderr)
    else:
        prep_fn(src, data_dir, **dict(spec.get("prepare") or {}))
    _stage(2, total, f"train {cfg_path} -> {run_dir}")
    resume = Run(run_dir).exists() and bool(Run(run_dir).checkpoints())
    summary = training.train(cfg_path, data_dir, run_dir, max_steps=max_steps, max_minutes=max_minutes,
                             overrides=overrides, resume=resume)
    return data_dir, run_dir, summary


def _run_text(spec, preset, cfg_path, work, src, max_minutes, max_steps, overrides):
    from data_prep import text
    from seqgen import evaluation
    from seqgen.runs import Run
    from seqgen.text_cli import generate_stream, load_text_run

    t0 = time.time()
    data_dir, run_dir, summary = _prepare_and_train(
        spec, lambda s, out, **kw: text.prepare_text([s], out, **kw), cfg_path, work, src, max_minutes, max_steps,
        overrides, 4)

    _stage(3, 4, "generate a sample")
    sconf = spec.get("sample") or {}
    model, step, _ = load_text_run(run_dir, kinds=("text",))
    prompt = str(sconf.get("prompt", ""))
    t1 = time.time()
    gen = generate_stream(model, prompt, int(sconf.get("max_bytes", 256)),
                          temperature=float(sconf.get("temperature", 1.0)), seed=int(sconf.get("seed", 0)))
    gen_seconds = time.time() - t1
    (work / "sample.txt").write_text(prompt + gen + "\n", encoding="utf-8")

    _stage(4, 4, "evaluate on the valid split")
    cfg = Run(run_dir).config()
    metrics = evaluation.lm_nll(model, data_dir, "valid", cfg["data"]["window"], cfg["data"]["valid_batch_size"],
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
    from seqgen import data as D
    from seqgen import evaluation
    from seqgen.text_cli import load_text_run

    t0 = time.time()
    data_dir, run_dir, summary = _prepare_and_train(
        spec, text.prepare_pairs, cfg_path, work, src, max_minutes, max_steps, overrides, 4)

    _stage(3, 4, "translate a few valid sources")
    sconf = spec.get("sample") or {}
    beam = int(sconf.get("beam", 0)) or None
    model, step, _ = load_text_run(run_dir, kinds=("pairs",))
    pairs = D.read_pairs(data_dir, "valid")[: int(sconf.get("num_examples", 5))]
    hyps = evaluation.translate_texts(model, [s for s, _ in pairs], beam_size=beam)
    lines = []
    for (s, t), h in zip(pairs, hyps):
        lines += [f"source     {s}", f"reference  {t}", f"output     {h}", ""]
    (work / "sample.txt").write_text("\n".join(lines), encoding="utf-8")

    _stage(4, 4, "evaluate (BLEU, chrF) on the valid split")
    metrics = evaluation.translation_scores(model, data_dir, "valid", beam_size=beam,
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
