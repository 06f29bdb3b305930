"""`seqgen evaluate`: held-out figures of a run as JSON."""
from __future__ import annotations

import json
import pathlib
import sys

from seqgen.cli.types import positive_int as _positive_int
from seqgen.errors import SeqgenError


def _comma_list(text, convert, expected, valid, invalid):
    """The ``convert``-ed values of a comma-separated argument, each passing ``valid``; argparse errors name
    what was ``expected`` and, for a value out of range, the rule (``invalid``)."""
    import argparse

    try:
        values = [convert(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not values or not all(valid(v) for v in values):
        raise argparse.ArgumentTypeError(f"{invalid}, got {text!r}")
    return values


def _temperatures(text):
    values = _comma_list(text, float, "a temperature or a comma-separated list", lambda v: v >= 0,
                         "temperatures must be >= 0")
    return values if len(values) > 1 else values[0]


def _top_ps(text):
    import argparse

    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1] or a comma-separated list, got {text!r}") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"top-p values must be in (0, 1], got {text!r}")
    return values if len(values) > 1 else values[0]


def _checkpoints(text):
    """``all``, a step, or comma-separated steps."""
    if str(text).strip() == "all":
        return "all"
    return _comma_list(text, int, "'all', a step or comma-separated steps", lambda s: s >= 0, "steps must be >= 0")


def _one_step(a):
    """The single checkpoint step asked for (None: the newest), or None when several are."""
    return a.checkpoint[0] if isinstance(a.checkpoint, list) and len(a.checkpoint) == 1 else None


def _several(a) -> bool:
    return a.checkpoint == "all" or (isinstance(a.checkpoint, list) and len(a.checkpoint) > 1)


def _cmd_quality(a):
    from seqgen.tasks.base import load

    options = dict(data=a.data, utterances=a.utterances, subset=a.subset, max_utterances=a.max_utterances,
                   method=a.method, temperature=a.temperature, seed=a.seed, batch_size=a.batch_size, top_p=a.top_p)
    if _several(a):
        from seqgen.quality.curve import quality_curve

        if a.audio_dir:
            raise SeqgenError("--audio-dir writes one checkpoint's audio: give one --checkpoint STEP")
        res = quality_curve(a.run, a.checkpoint, json_out=a.json, plot=a.plot, **options)
        print(json.dumps({"run": res["run"], "griffin_lim": res["griffin_lim"], "points": [
            {k: p[k] for k in ("step", "minutes", "temperature", "model")} for p in res["points"]]}, indent=2))
        return
    res = load(a.run, step=_one_step(a)).quality(json_out=a.json, plot=a.plot, audio_dir=a.audio_dir, **options)
    print(json.dumps({k: res[k] for k in ("run", "step", "method", "utterances", "mean", "model_minus_griffin_lim")
                      if k in res}, indent=2))


def _held_out(a, step):
    from seqgen.tasks.base import load

    task = load(a.run, step=step)
    data = task.data_dir(a.data)
    res = task.evaluate(data, a.split, beam=a.beam, max_pairs=a.max_pairs, max_windows=a.max_windows,
                        references=a.references, length_penalty=a.length_penalty, context=a.context,
                        window=a.window)
    res.update({"step": task.step, "checkpoint": task.checkpoint, "split": a.split, "data": str(data),
                "run": str(a.run)})
    return res


def _cmd_evaluate(a):
    from seqgen.tasks.base import load

    if a.length_penalty is not None and not a.beam:
        raise SeqgenError("--length-penalty scores beam search: add --beam K")
    if a.quality:
        for flag, value, default in (("--split", a.split, "valid"), ("--references", a.references, "all"),
                                     ("--length-penalty", a.length_penalty, None), ("--beam", a.beam, None),
                                     ("--context", a.context, 0), ("--window", a.window, None)):
            if value != default:
                raise SeqgenError(f"{flag} does not go with --quality (which scores whole resyntheses of a vocoder)")
        return _cmd_quality(a)
    for flag, value in (("--utterances", a.utterances), ("--audio-dir", a.audio_dir), ("--top-p", a.top_p)):
        if value:
            raise SeqgenError(f"{flag} goes with --quality (speech-quality scoring of a vocoder run)")
    if a.plot and not _several(a):
        raise SeqgenError("--plot draws a curve: add --checkpoint all (or several steps), or --quality")

    if _several(a):
        from seqgen.quality.curve import checkpoint_steps, minutes_at
        from seqgen.runs import Run

        minutes = Run(a.run).training_minutes()
        steps = checkpoint_steps(a.run, a.checkpoint)
        points = []
        for k, step in enumerate(steps):
            print(f"checkpoint {k + 1}/{len(steps)}: step {step}", file=sys.stderr, flush=True)
            points.append({**_held_out(a, step), "minutes": minutes_at(minutes, step)})
        res = {"run": str(a.run), "points": points}
        if a.plot:
            from seqgen.utils.plots import held_out_curve_png

            res["plot"] = str(held_out_curve_png(a.plot, res))
    else:
        res = _held_out(a, _one_step(a))
    text = json.dumps(res, indent=2) + "\n"
    if a.json:
        pathlib.Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(a.json).write_text(text)
    print(text, end="")


def add(sub):
    p = sub.add_parser("evaluate", help="held-out NLL of a run on prepared data (JSON)",
                       description="Writes {nll_bits_per_sample, nll_bits_per_16bit_sample, num_samples, step, ...} for audio "
                                   "models (with --quality: speech-quality scores of whole resyntheses), "
                                   "{bits_per_byte, num_bytes, step, ...} for byte LMs and {bleu, chrf, "
                                   "signature, num_pairs, step, ...} for translation (sacrebleu).")
    p.add_argument("--run", required=True, metavar="RUN")
    p.add_argument("--data", metavar="DATA", help="prepared data (default: the run's training data)")
    p.add_argument("--split", default="valid", choices=["train", "valid", "test"],
                   help="valid (default; the dev split where settings are chosen), or test (translation data "
                        "prepared with --test-fraction: the final figure)")
    p.add_argument("--max-windows", type=int, default=0, help="evaluate only this many windows (0 = all)")
    p.add_argument("--beam", type=_positive_int, default=None, metavar="K",
                   help="translation: beam search with K beams (default: greedy)")
    p.add_argument("--max-pairs", type=int, default=0,
                   help="translation: decode only the first N sources (0 = all)")
    p.add_argument("--window", type=_positive_int, default=None,
                   help="byte LM: bytes per evaluation window (default: the run's data.window)")
    p.add_argument("--context", type=int, default=0, metavar="C",
                   help="byte LM: overlapping windows that score every byte once with at least C bytes of context "
                        "(0 = back-to-back windows; bench/peers/nanogpt_eval.py scores a peer the same way)")
    p.add_argument("--references", default="all", choices=["all", "first"],
                   help="translation: score each source once against all its targets in the split (default), or "
                        "every pair on its own with one reference")
    p.add_argument("--length-penalty", type=float, default=None, metavar="ALPHA",
                   help="translation with --beam: the GNMT length penalty alpha (default 0.6; 0 = raw log-prob)")
    p.add_argument("--json", metavar="OUT.json")
    p.add_argument("--checkpoint", type=_checkpoints, default=None, metavar="STEP[,STEP...]|all",
                   help="evaluate the checkpoint at STEP (default: the newest); several, or all the run kept, "
                        "give one result per checkpoint (with --quality: a curve against training minutes, and "
                        "--plot draws it; keep checkpoints with train.keep_checkpoint_every)")
    q = p.add_argument_group("speech quality of a vocoder run (--quality; needs pip install -e '.[quality]')")
    q.add_argument("--quality", action="store_true",
                   help="resynthesize whole utterances from their own mels and score them (PESQ-WB, STOI, DNSMOS, "
                        "F0 RMSE / voicing error, MCD, log-mel L1) beside Griffin-Lim and the recordings")
    q.add_argument("--utterances", metavar="LIST", help="the utterances to score: a yardstick list "
                   "(recipes/ljspeech_vocoder/yardstick.tsv) or one id per line (default: DATA's valid split)")
    q.add_argument("--subset", default="eval", choices=["eval", "dev", "all"], help="which rows of a yardstick list")
    q.add_argument("--max-utterances", type=int, default=24, help="without --utterances: at most this many")
    q.add_argument("--method", default=None, help="sampling method (default: the run's: cached, or parallel "
                                                     "for a student)")
    q.add_argument("--temperature", type=_temperatures, default=None, metavar="T[,T...]",
                   help="sampling temperature; several (e.g. 0.6,0.8,1.0) are tried on the yardstick's dev "
                        "utterances and the best by PESQ-WB is reported on --subset (needs --utterances)")
    q.add_argument("--top-p", type=_top_ps, default=None, metavar="P[,P...]",
                   help="sample each step from this nucleus of the head's classes (1 = off; default: the run's "
                        "sample.top_p); several, with several temperatures, form the grid chosen on dev")
    q.add_argument("--seed", type=int, default=None)
    q.add_argument("--batch-size", type=_positive_int, default=8, help="utterances per sampling loop")
    q.add_argument("--plot", metavar="OUT.png", help="per-utterance scores and one utterance's spectrograms; with "
                                                     "several --checkpoint steps, the curve against training minutes "
                                                     "(also without --quality: chrF and BLEU, bits per byte or per "
                                                     "sample)")
    q.add_argument("--audio-dir", metavar="DIR", help="write each resynthesis and its Griffin-Lim as wav")
    p.set_defaults(func=_cmd_evaluate)
