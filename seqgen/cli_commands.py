"""Subcommands beyond `prepare`: train, sample, evaluate, recipe."""
from __future__ import annotations

import json
import pathlib

from seqgen.cli_types import nonneg_float as _nonneg_float
from seqgen.cli_types import positive_int as _positive_int


# --------------------------------------------------------------------------- train


def _cmd_train(a):
    from seqgen import training

    if a.config is None and not a.resume:
        from seqgen.errors import ConfigError

        raise ConfigError("give a CONFIG.yaml (or --resume with --out RUN to continue a run)")
    training.train(a.config, a.data, a.out, max_steps=a.max_steps, max_minutes=a.max_minutes,
                   overrides=a.set, resume=a.resume, strategy=a.strategy)


def _add_train(sub):
    p = sub.add_parser("train", help="train a model from a YAML config on prepared data",
                       description="Train with Keras fit on the tf.data pipeline. Checkpoints every "
                                   "train.checkpoint_every steps and on Ctrl-C/SIGTERM; --resume continues "
                                   "a run with its model, optimizer and step restored.")
    p.add_argument("config", nargs="?", metavar="CONFIG.yaml")
    p.add_argument("--data", metavar="DATA", help="folder made by `seqgen prepare` (kept from the run on --resume)")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory")
    _add_run_options(p, "train.learning_rate=3e-4")
    from seqgen.distribute import STRATEGIES  # light: TensorFlow is imported only when a strategy is made

    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="data-parallel training with tf.distribute: mirrored = this machine's GPUs; "
                        "multi-worker = several machines described by TF_CONFIG. data.batch_size is the "
                        "global batch. A job restarted with the same command resumes from RUN/backup "
                        "(see docs/scale_out.md)")
    p.set_defaults(func=_cmd_train)


def _add_run_options(p, set_example):
    """The options `seqgen train` and `seqgen distill` share: stop conditions, overrides, resume."""
    p.add_argument("--max-steps", type=_positive_int, default=None, help="stop at this global step")
    p.add_argument("--max-minutes", type=_nonneg_float, default=None, help="stop after this many minutes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config key, e.g. --set {set_example} (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")


# --------------------------------------------------------------------------- distill


def _cmd_distill(a):
    from seqgen import distillation

    if a.config is None and not a.resume:
        from seqgen.errors import ConfigError

        raise ConfigError("give a student CONFIG.yaml (or --resume with --out RUN to continue a distillation)")
    distillation.distill(a.config, a.teacher, a.data, a.out, max_steps=a.max_steps, max_minutes=a.max_minutes,
                         overrides=a.set, resume=a.resume)


def _add_distill(sub):
    p = sub.add_parser("distill", help="distill a Parallel WaveNet student from a trained WaveNet teacher",
                       description="Probability density distillation: train an IAF student (model.type "
                                   "parallel_wavenet) against a frozen teacher run with a continuous output "
                                   "(gaussian or mixture_logistic). Checkpoints, --resume, SIGTERM, TensorBoard, "
                                   "metrics.jsonl and loss.png as in `seqgen train`.")
    p.add_argument("config", nargs="?", metavar="CONFIG.yaml")
    p.add_argument("--teacher", metavar="RUN", help="teacher run directory (kept from the run on --resume)")
    p.add_argument("--data", metavar="DATA", help="folder made by `seqgen prepare vocoder` (kept on --resume)")
    p.add_argument("--out", required=True, metavar="RUN2", help="student run directory")
    _add_run_options(p, "distill.mc_samples=8")
    p.set_defaults(func=_cmd_distill)


# --------------------------------------------------------------------------- sample


def _cmd_sample(a):
    from seqgen import sampling
    from seqgen.errors import SeqgenError

    given = sum(x is not None for x in (a.mel_from, a.mel, a.seconds))
    if given > 1:
        raise SeqgenError("give only one of --mel-from, --mel and --seconds")
    res = sampling.sample(a.run, a.out, mel_from=a.mel_from, mel=a.mel, seconds=a.seconds, method=a.method,
                          temperature=a.temperature, seed=a.seed, speaker=a.speaker, plot=a.plot,
                          chunk_size=a.chunk_size, threads="auto" if a.threads is None else a.threads)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(res, indent=2) + "\n")


def _add_sample(sub):
    p = sub.add_parser("sample", help="generate audio from a trained run",
                       description="Generate audio: resynthesize a file (--mel-from), from mel frames (--mel), "
                                   "or unconditionally (--seconds).")
    p.add_argument("--run", required=True, metavar="RUN")
    p.add_argument("--out", required=True, metavar="OUT.wav")
    p.add_argument("--mel-from", metavar="FILE", help="audio file whose mel conditions the model (resynthesis)")
    p.add_argument("--mel", metavar="FILE.npy", help="raw log-mel frames [frames, n_mels] (seqgen.audio.log_mel)")
    p.add_argument("--seconds", type=_nonneg_float, default=None, help="length for unconditional models")
    p.add_argument("--method", choices=["cached", "naive", "parallel"], default=None,
                   help="cached: O(layers) per sample in one compiled loop (default); naive: recompute the "
                        "receptive field per sample (reference); parallel: a Parallel WaveNet student run "
                        "(`seqgen distill`), all samples at once")
    p.add_argument("--temperature", type=_nonneg_float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--speaker", default=None, help="speaker name or index (multi-speaker runs)")
    p.add_argument("--chunk-size", type=_positive_int, default=None, help="samples per compiled chunk")
    p.add_argument("--plot", action="store_true", help="also write OUT.png: waveform + spectrogram")
    p.add_argument("--json", metavar="FILE", help="write the result (speed, step, ...) as JSON")
    p.add_argument("--threads", type=int, default=None,
                   help="TensorFlow intra-op threads (default 1 for cached/naive: fastest for one sequence on a "
                        "CPU; all cores for parallel; 0 = TensorFlow's default, all cores)")
    p.set_defaults(func=_cmd_sample)


# --------------------------------------------------------------------------- evaluate


def _cmd_evaluate(a):
    from seqgen import evaluation
    from seqgen.runs import Run

    run = Run(a.run)
    info = run.info()
    data = a.data or info["data"]["data_dir"]
    model, step, ckpt = run.load_model(use_ema=True, compile=False)
    cfg = run.config()
    if info["data"]["kind"] == "vocoder":
        res = evaluation.vocoder_nll(model, data, a.split, window=cfg["data"]["valid_window"],
                                     batch_size=cfg["data"]["valid_batch_size"], max_windows=a.max_windows,
                                     progress=True)
    else:
        from seqgen.text_cli import evaluate_text

        res = evaluate_text(model, info, data, a.split, beam=a.beam, max_pairs=a.max_pairs,
                            max_windows=a.max_windows, cfg=cfg)
    res.update({"step": int(step), "checkpoint": ckpt.name, "split": a.split, "data": str(data),
                "run": str(a.run)})
    text = json.dumps(res, indent=2) + "\n"
    if a.json:
        pathlib.Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(a.json).write_text(text)
    print(text, end="")


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="held-out NLL of a run on prepared data (JSON)",
                       description="Writes {nll_bits_per_sample, num_samples, step, ...} for audio models, "
                                   "{bits_per_byte, num_bytes, step, ...} for byte LMs and {bleu, chrf, "
                                   "signature, num_pairs, step, ...} for translation (sacrebleu).")
    p.add_argument("--run", required=True, metavar="RUN")
    p.add_argument("--data", metavar="DATA", help="prepared data (default: the run's training data)")
    p.add_argument("--split", default="valid", choices=["train", "valid"])
    p.add_argument("--max-windows", type=int, default=0, help="evaluate only this many windows (0 = all)")
    p.add_argument("--beam", type=_positive_int, default=None, metavar="K",
                   help="translation: beam search with K beams (default: greedy)")
    p.add_argument("--max-pairs", type=int, default=0, help="translation: decode only the first N pairs (0 = all)")
    p.add_argument("--json", metavar="OUT.json")
    p.set_defaults(func=_cmd_evaluate)


# --------------------------------------------------------------------------- recipe


def _cmd_recipe(a):
    from seqgen import recipes

    if a.action == "list":
        for name, desc in recipes.list_recipes():
            print(f"{name:24s} {desc}")
        return
    recipes.run_recipe(a.name, preset=a.preset, data=a.data, workdir=a.workdir, max_minutes=a.max_minutes,
                       max_steps=a.max_steps, overrides=a.set)


def _add_recipe(sub):
    p = sub.add_parser("recipe", help="run a recipe end to end (prepare -> train -> sample -> evaluate)",
                       description="Recipes live in recipes/NAME/ (recipe.yaml, presets, README).")
    ps = p.add_subparsers(dest="action", required=True, metavar="{run,list}")
    ps.add_parser("list", help="list the recipes")
    r = ps.add_parser("run", help="run a recipe")
    r.add_argument("name", metavar="NAME")
    r.add_argument("--preset", default=None, help="preset (e.g. tiny, small, full)")
    r.add_argument("--data", default=None, metavar="SRC", help="input corpus (default: the embedded corpus)")
    r.add_argument("--workdir", default=None, metavar="W", help="working folder (default: runs/NAME-PRESET)")
    r.add_argument("--max-minutes", type=_nonneg_float, default=None, help="training time budget")
    r.add_argument("--max-steps", type=_positive_int, default=None)
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    r.set_defaults(func=_cmd_recipe)
    p.set_defaults(func=_cmd_recipe)


ADDERS = [_add_train, _add_distill, _add_sample, _add_evaluate, _add_recipe]
