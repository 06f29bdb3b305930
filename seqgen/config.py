"""Training configurations: YAML files with four sections.

``model``
    ``type`` (``wavenet``; more model types register in
    :mod:`seqgen.models.registry`) and that model's constructor arguments.
``data``
    How batches are cut from a prepared corpus (window, batch size).
``train``
    Steps, optimizer, schedule, clipping, EMA, checkpointing, logging.
``sample``
    Defaults for ``seqgen sample`` and for the audio written during training.

Unknown keys and values of the wrong type are errors that name the key,
e.g. ``config tiny.yaml: unknown key 'train.lerning_rate' (did you mean
'train.learning_rate'?)``.  ``--set train.learning_rate=3e-4`` overrides any
key; the value is parsed as YAML.
"""
from __future__ import annotations

import copy
import difflib
import pathlib

from seqgen.errors import ConfigError

PRECISIONS = ("float32", "mixed_bfloat16")  # train.precision: the Keras dtype policy the model is built under

DEFAULTS = {
    "model": {"type": "wavenet"},
    "data": {
        "window": 8192,          # samples (audio; a multiple of the hop) or tokens (text) per example
        "batch_size": 8,
        "valid_window": 16384,   # window for validation / evaluation
        "valid_batch_size": 4,
        "max_valid_windows": 64,  # cap on validation windows per check (0 = the whole split)
        "input_noise": 0.0,      # vocoders: max std (in classes) of noise on the training inputs (0 = off)
        "batch_bytes": 0,        # translation: batches of about this many padded bytes a side, not batch_size pairs
    },
    "train": {
        "steps": 20000,          # planned total steps (the schedule's length); --max-steps caps a run
        "fit_schedule": False,   # with --max-minutes: plan `steps` so the schedule ends then (the step timed first)
        "learning_rate": 1e-3,
        "schedule": "cosine",    # cosine | exponential | constant
        "warmup_steps": 200,
        "final_lr_fraction": 0.05,
        "decay_rate": 0.5,       # exponential: factor per decay_steps
        "decay_steps": 10000,
        "clip_norm": 1.0,        # global gradient-norm clipping (0 = off)
        "grad_accumulation": 1,  # batches whose mean gradient makes one step (1 = off); a step sees N x batch_size
        "ema": 0.0,              # EMA momentum of the weights (0 = off, e.g. 0.9999)
        "weight_decay": 0.0,
        "adam_beta2": 0.999,     # Adam's second-moment decay (nanoGPT uses 0.99 for small batches)
        "seed": 0,
        "jit_compile": True,
        "precision": "float32",  # float32 | mixed_bfloat16 (bf16 compute, float32 weights and loss)
        "log_every": 10,
        "checkpoint_every": 200,
        "keep_checkpoints": 3,
        "keep_checkpoint_every": 0,  # also keep every checkpoint at a multiple of N steps (a curve's points; 0 = off)
        "backup_every": 0,       # --strategy mirrored|multi-worker: backup every N steps (0 = checkpoint_every)
        "valid_every": 500,
        "audio_seconds": 0.5,    # audio sample written to TensorBoard at each validation (0 = off)
        "on_nan": "skip",        # skip | stop: what a non-finite loss does
    },
    "sample": {
        "method": "cached",
        "temperature": 1.0,
        "top_p": 1.0,            # vocoders with a categorical head: sample from this nucleus of each step (1 = off)
        "seconds": 2.0,
        "seed": 0,
        "chunk_size": 4096,
        "quality_utterances": 24,  # vocoder recipes' quality stage: utterances scored when there is no yardstick
    },
}

# The `distill` section: only in the configs of a student (model.type parallel_wavenet), see seqgen.train.distillation.
DISTILL_DEFAULTS = {
    "kl": "mc",                  # mc: cross-entropy by Monte Carlo draws scored by the teacher (any continuous
                                 #     teacher) | closed_form: ClariNet's per-step Gaussian KL (Gaussian student+teacher)
    "mc_samples": 4,             # draws per step from the student's per-step distribution (kl: mc)
    "power_weight": 1.0,         # weight of the power (STFT magnitude) loss against the real audio (0 = off)
    "power_n_fft": 0,            # STFT size of the power loss (0 = the data's n_fft); hop = n_fft / 4
    "contrastive_weight": 0.0,   # gamma of the contrastive term -gamma * KL(student(c1) || teacher(c2)) (0 = off)
    "log_scale_weight": 4.0,     # ClariNet's regularizer weight on (log sigma_teacher - log sigma_student)^2
}

_TYPES = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}


def _suggest(key: str, options) -> str:
    close = difflib.get_close_matches(str(key), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_section(name: str, given: dict, defaults: dict, where: str) -> dict:
    if not isinstance(given, dict):
        raise ConfigError(f"{where}: '{name}' must be a mapping, got {type(given).__name__}")
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        full = f"{name}.{key}"
        if key not in defaults:
            raise ConfigError(f"{where}: unknown key '{full}'{_suggest(key, defaults)}; "
                              f"valid keys: {', '.join(sorted(defaults))}")
        default = defaults[key]
        want = type(default)
        if want is float and isinstance(value, str):
            # YAML 1.1 reads "3e-4" (no dot) as a string; accept it as the number it is
            try:
                value = float(value)
            except ValueError:
                pass
        if default is not None:
            ok = isinstance(value, _TYPES.get(want, (want,)))
            if want is not bool and isinstance(value, bool):
                ok = False
            if not ok:
                raise ConfigError(f"{where}: '{full}' must be {want.__name__}, got {value!r}")
        out[key] = float(value) if want is float else value
    return out


def validate(raw: dict, where: str = "config") -> dict:
    """Fill defaults and check every key; the model section is checked by its model type."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with sections {', '.join(DEFAULTS)}")
    sections = {**DEFAULTS, "distill": DISTILL_DEFAULTS}
    for section in raw:
        if section not in sections:
            raise ConfigError(f"{where}: unknown section '{section}'{_suggest(section, sections)}; "
                              f"valid sections: {', '.join(sections)}")
    cfg = {}
    for section, defaults in DEFAULTS.items():
        if section == "model":
            continue
        cfg[section] = _check_section(section, raw.get(section) or {}, defaults, where)
    model = raw.get("model") or {}
    if not isinstance(model, dict):
        raise ConfigError(f"{where}: 'model' must be a mapping")
    for key in model:  # the model registry looks keys and the type up by name
        if not isinstance(key, str):
            raise ConfigError(f"{where}: unknown key 'model.{key}' (keys are names)")
    if not isinstance(model.get("type", "wavenet"), str):
        raise ConfigError(f"{where}: 'model.type' must be str, got {model['type']!r}")
    from seqgen.models.registry import check_model_config

    cfg["model"] = check_model_config(dict(model), where)
    from seqgen.models.registry import STUDENT_TYPES

    if cfg["model"]["type"] in STUDENT_TYPES:
        dc = cfg["distill"] = _check_section("distill", raw.get("distill") or {}, DISTILL_DEFAULTS, where)
        if dc["kl"] not in ("mc", "closed_form"):
            raise ConfigError(f"{where}: 'distill.kl' must be mc or closed_form, got {dc['kl']!r}")
        if dc["mc_samples"] < 1:
            raise ConfigError(f"{where}: 'distill.mc_samples' must be >= 1, got {dc['mc_samples']}")
        for key in ("power_weight", "contrastive_weight", "log_scale_weight", "power_n_fft"):
            if dc[key] < 0:
                raise ConfigError(f"{where}: 'distill.{key}' must be >= 0, got {dc[key]}")
    elif "distill" in raw:
        raise ConfigError(f"{where}: the 'distill' section is for a student (model.type: parallel_wavenet), "
                          f"not for model.type {cfg['model']['type']}")
    t = cfg["train"]
    if t["schedule"] not in ("cosine", "exponential", "constant"):
        raise ConfigError(f"{where}: 'train.schedule' must be cosine, exponential or constant, got {t['schedule']!r}")
    if t["on_nan"] not in ("skip", "stop"):
        raise ConfigError(f"{where}: 'train.on_nan' must be skip or stop, got {t['on_nan']!r}")
    if cfg["data"]["batch_bytes"] < 0:
        raise ConfigError(f"{where}: 'data.batch_bytes' must be >= 0 (0 = batches of data.batch_size pairs), "
                          f"got {cfg['data']['batch_bytes']}")
    if cfg["data"]["input_noise"] < 0:
        raise ConfigError(f"{where}: 'data.input_noise' must be >= 0 (0 = off), got {cfg['data']['input_noise']}")
    for key in ("window", "batch_size", "valid_window", "valid_batch_size"):
        if cfg["data"][key] <= 0:
            raise ConfigError(f"{where}: 'data.{key}' must be positive, got {cfg['data'][key]}")
    for key in ("steps", "log_every", "checkpoint_every", "keep_checkpoints"):  # divisors / counts
        if t[key] <= 0:
            raise ConfigError(f"{where}: 'train.{key}' must be positive, got {t[key]}")
    if not 0.0 < t["adam_beta2"] < 1.0:
        raise ConfigError(f"{where}: 'train.adam_beta2' must be in (0, 1), got {t['adam_beta2']}")
    if t["precision"] not in PRECISIONS:
        raise ConfigError(f"{where}: 'train.precision' must be one of {', '.join(PRECISIONS)}, got {t['precision']!r}")
    if t["grad_accumulation"] < 1:
        raise ConfigError(f"{where}: 'train.grad_accumulation' must be >= 1 (1 = off), got {t['grad_accumulation']}")
    if t["keep_checkpoint_every"] < 0:
        raise ConfigError(f"{where}: 'train.keep_checkpoint_every' must be >= 0 (0 = off), "
                          f"got {t['keep_checkpoint_every']}")
    if t["keep_checkpoint_every"] and t["keep_checkpoint_every"] % t["checkpoint_every"]:
        raise ConfigError(f"{where}: 'train.keep_checkpoint_every' ({t['keep_checkpoint_every']}) must be a "
                          f"multiple of 'train.checkpoint_every' ({t['checkpoint_every']}), or no checkpoint "
                          f"would be kept")
    if t["backup_every"] < 0:
        raise ConfigError(f"{where}: 'train.backup_every' must be >= 0 (0 = train.checkpoint_every), "
                          f"got {t['backup_every']}")
    if t["valid_every"] < 0:
        raise ConfigError(f"{where}: 'train.valid_every' must be >= 0 (0 = off), got {t['valid_every']}")
    from seqgen.core.methods import CACHED, NAIVE, PARALLEL

    if cfg["sample"]["method"] not in (CACHED, NAIVE, PARALLEL):
        raise ConfigError(f"{where}: 'sample.method' must be {CACHED}, {NAIVE} or {PARALLEL}")
    return cfg


def parse_override(item: str) -> tuple[list[str], object]:
    import yaml

    if "=" not in item:
        raise ConfigError(f"--set {item}: expected key=value, e.g. train.learning_rate=3e-4")
    key, value = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if len(path) < 2:
        raise ConfigError(f"--set {item}: the key needs a section, e.g. train.{key.strip() or 'steps'}")
    try:
        parsed = yaml.safe_load(value)
    except (yaml.YAMLError, RecursionError):
        parsed = value
    return path, parsed


def apply_overrides(raw: dict, overrides) -> dict:
    if overrides and raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping with sections {', '.join(DEFAULTS)}, got {type(raw).__name__}")
    raw = copy.deepcopy(raw or {})
    for item in overrides or ():
        path, value = parse_override(item)
        node = raw
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: '{p}' is not a section")
        node[path[-1]] = value
    return raw


def load(path, overrides=()) -> dict:
    """Read, override and validate a YAML config file."""
    import yaml

    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {path}: not UTF-8 text (byte {e.start})") from None
    except RecursionError:
        raise ConfigError(f"config {path}: not valid YAML (nested too deeply)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config {path}: not valid YAML{at}") from None
    if overrides and raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"config {path}: expected a mapping with sections {', '.join(DEFAULTS)}")
    raw = apply_overrides(raw, overrides)
    return validate(raw, where=f"config {path}")


def dump(cfg: dict, path) -> None:
    import yaml

    pathlib.Path(path).write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
