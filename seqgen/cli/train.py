"""`seqgen train` and `seqgen distill`: a run directory from a config and prepared data."""
from __future__ import annotations

from seqgen.cli.types import nonneg_float as _nonneg_float
from seqgen.cli.types import positive_int as _positive_int

def _cmd_train(a):
    from seqgen.train import loop as training

    if a.config is None and not a.resume:
        from seqgen.errors import ConfigError

        raise ConfigError("give a CONFIG.yaml (or --resume with --out RUN to continue a run)")
    training.train(a.config, a.data, a.out, max_steps=a.max_steps, max_minutes=a.max_minutes,
                   overrides=a.set, resume=a.resume, strategy=a.strategy)


def _add_train(sub):
    p = sub.add_parser("train", help="train a model from a YAML config on prepared data",
                       description="Train with Keras fit on the input pipeline (grain and numpy). Checkpoints every "
                                   "train.checkpoint_every steps and on Ctrl-C/SIGTERM; --resume continues "
                                   "a run with its model, optimizer and step restored.")
    p.add_argument("config", nargs="?", metavar="CONFIG.yaml")
    p.add_argument("--data", metavar="DATA", help="folder made by `seqgen prepare` (kept from the run on --resume)")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory")
    _add_run_options(p, "train.learning_rate=3e-4")
    from seqgen.train.strategy import STRATEGIES  # light: TensorFlow is imported only when a strategy is made

    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="data-parallel training. data-parallel (JAX) = keras.distribution.DataParallel over "
                        "every device of the job (several processes: KERAS_DISTRIBUTION_* variables); "
                        "mirrored (TensorFlow) = this machine's GPUs; multi-worker (TensorFlow) = several "
                        "machines described by TF_CONFIG, restarted from RUN/backup. data.batch_size is the "
                        "global batch (see docs/scale_out.md)")
    p.set_defaults(func=_cmd_train)


def _add_run_options(p, set_example):
    """The options `seqgen train` and `seqgen distill` share: stop conditions, overrides, resume."""
    p.add_argument("--max-steps", type=_positive_int, default=None, help="stop at this global step")
    p.add_argument("--max-minutes", type=_nonneg_float, default=None, help="stop after this many minutes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config key, e.g. --set {set_example} (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")




def _cmd_distill(a):
    from seqgen.train import distillation

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






def add(sub):
    _add_train(sub)
    _add_distill(sub)
