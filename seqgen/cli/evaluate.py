"""`seqgen evaluate`: held-out figures of a run as JSON."""
from __future__ import annotations

import json
import pathlib

from seqgen.cli.types import positive_int as _positive_int


def _cmd_evaluate(a):
    from seqgen.tasks.base import load

    task = load(a.run)
    data = task.data_dir(a.data)
    res = task.evaluate(data, a.split, beam=a.beam, max_pairs=a.max_pairs, max_windows=a.max_windows)
    res.update({"step": task.step, "checkpoint": task.checkpoint, "split": a.split, "data": str(data),
                "run": str(a.run)})
    text = json.dumps(res, indent=2) + "\n"
    if a.json:
        pathlib.Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(a.json).write_text(text)
    print(text, end="")


def add(sub):
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
