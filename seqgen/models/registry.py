"""Model types known to configs (``model.type``) and how to build them from data.

Each entry names the model class, the data kind it trains on, and the
config keys that are filled in from the prepared corpus rather than written
by hand (mel bands, hop length, number of speakers, classes).
"""
from __future__ import annotations

import importlib
import inspect

from seqgen.errors import ConfigError

# type -> (module, class, data kind, extra config keys understood by the builder)
MODELS = {
    "wavenet": ("seqgen.models.wavenet", "WaveNet", "vocoder",
                {"local_conditioning": True, "speaker_conditioning": False}),
    "transformer": ("seqgen.models.transformer", "TransformerDecoder", "text", {}),
    "bytenet_lm": ("seqgen.models.bytenet", "ByteNet", "text", {}),
    "bytenet": ("seqgen.models.bytenet", "ByteNet", "pairs", {}),
    "parallel_wavenet": ("seqgen.models.parallel_wavenet", "ParallelWaveNet", "vocoder",
                         {"speaker_conditioning": False}),
}

# Students are trained by distillation from a teacher run (`seqgen distill`), not by `seqgen train`.
STUDENT_TYPES = {"parallel_wavenet"}

# The vocabulary comes from the data's tokenizer (bytes: 259 ids, PAD/BOS/EOS = 256/257/258).
_TOKEN_IDS = {"vocab_size", "pad_id", "bos_id", "eos_id"}

# Constructor arguments that come from the data (or the model type), never from the config.
_FROM_DATA = {"wavenet": {"cond_channels", "hop_length", "num_speakers", "mel_stats"},
              "transformer": _TOKEN_IDS,
              "bytenet_lm": _TOKEN_IDS | {"encoder"},
              "bytenet": _TOKEN_IDS | {"encoder"},
              "parallel_wavenet": {"cond_channels", "hop_length", "num_speakers"}}


def import_all() -> None:
    """Import every model module (registers their classes for `.keras` loading)."""
    import seqgen.core.distributions  # noqa: F401

    for module in sorted({entry[0] for entry in MODELS.values()}):
        importlib.import_module(module)


def model_class(model_type: str):
    module, cls, _, _ = MODELS[model_type]
    return getattr(importlib.import_module(module), cls)


def data_kind(model_type: str) -> str:
    return MODELS[model_type][2]


def register_model(model_type: str, module: str, cls: str, kind: str, extras: dict | None = None,
                   from_data=()) -> None:
    """Make ``model.type: model_type`` build ``module.cls`` for data of ``kind`` (``from_data``: constructor
    arguments its task fills in from the data)."""
    MODELS[model_type] = (module, cls, kind, dict(extras or {}))
    _FROM_DATA[model_type] = set(from_data)


def check_model_config(model: dict, where: str = "config") -> dict:
    model_type = model.get("type", "wavenet")
    if model_type not in MODELS:
        close = [m for m in MODELS if m.startswith(str(model_type)[:3])]
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"{where}: unknown 'model.type' {model_type!r}{hint}; known: {', '.join(MODELS)}")
    _, _, _, extras = MODELS[model_type]
    cls = model_class(model_type)
    params = inspect.signature(cls.__init__).parameters
    allowed = {n for n, p in params.items() if n not in ("self", "kwargs") and p.kind != p.VAR_KEYWORD}
    allowed -= _FROM_DATA.get(model_type, set())
    out = {"type": model_type}
    for k, v in extras.items():
        out[k] = v
    for key, value in model.items():
        if key == "type":
            continue
        if key not in allowed and key not in extras:
            import difflib

            options = sorted(allowed | set(extras))
            close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
            hint = f" (did you mean 'model.{close[0]}'?)" if close else ""
            fixed = " (it is taken from the prepared data)" if key in _FROM_DATA.get(model_type, ()) else ""
            raise ConfigError(f"{where}: unknown key 'model.{key}'{fixed}{hint}; valid keys: {', '.join(options)}")
        default = extras[key] if key in extras else params[key].default
        _check_type(key, value, default, where)
        out[key] = value
    if "distribution" in out:
        from seqgen.core.distributions import get_distribution

        try:
            get_distribution(out["distribution"])
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return out


def build_model(model_cfg: dict, from_data: dict):
    """Instantiate the model of a validated config; ``from_data``: the constructor arguments the
    prepared data dictates (its task's :meth:`~seqgen.tasks.base.Task.model_kwargs`)."""
    model_type = model_cfg["type"]
    cls = model_class(model_type)
    kwargs = {k: v for k, v in model_cfg.items() if k != "type" and k not in MODELS[model_type][3]}
    kwargs.update(from_data)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model: {e}") from None


# integer sizes that may be 0 (all other integers with a positive default are sizes: >= 1)
_MAY_BE_ZERO = {"unfold_b"}


def _check_type(key, value, default, where):
    """``model.key`` has the type of the constructor's default (lists and None defaults are left to the model)."""
    def bad(what):
        raise ConfigError(f"{where}: 'model.{key}' must be {what}, got {value!r}")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            bad("true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            bad("an integer")
        if default >= 1 and key not in _MAY_BE_ZERO and value < 1:
            bad("an integer >= 1")
        if value < 0:
            bad("an integer >= 0")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("a number")
        if key in ("dropout", "label_smoothing") and not 0.0 <= value < 1.0:
            bad("a number in [0, 1)")
    elif isinstance(default, str) and not isinstance(value, str):
        bad("a string")
