"""`seqgen bench`: sampling speed against the machine's ceilings (see :mod:`seqgen.bench.runner`)."""
from __future__ import annotations

import json
import pathlib

from seqgen.bench.presets import PRESETS
from seqgen.bench.report import markdown_table, merge, plot
from seqgen.bench.runner import run_bench


def _cmd_bench(a):
    from seqgen.utils.threads import configure_threads

    # Must come before TensorFlow runs any op: the setting is fixed for the process.
    if a.merge:
        res = merge(a.merge)
        training = bool(res["records"]) and all("loop_steps_per_sec" in r for r in res["records"])
        if a.json:
            pathlib.Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
        if training:
            from seqgen.bench.training import markdown_train_table, plot_train

            if a.plot:
                plot_train(res["records"], a.plot)
            print(markdown_train_table(res["records"]))
            return 0
        if a.plot:
            plot(res["records"], a.plot)
        print(markdown_table(res["records"]))
        return 0
    if a.train:
        from seqgen.bench.training import markdown_train_table, run_train_bench

        threads = 0 if a.threads is None else a.threads
        configure_threads(threads)
        res = run_train_bench(a.presets, steps=a.steps, warmup=a.warmup, json_path=a.json, plot_path=a.plot,
                              threads=threads, log=lambda line: print(line, flush=True), overrides=a.set)
        print()
        print(markdown_train_table(res["records"]))
        if a.json:
            print(f"wrote {a.json} ({len(res['records'])} records)")
        return 0
    a.threads = 1 if a.threads is None else a.threads
    a.presets = a.presets or ",".join(p.name for p in PRESETS.values() if not p.hidden)
    configure_threads(a.threads)
    res = run_bench(a.presets, a.methods, a.batches, seconds=a.seconds, tokens=a.tokens, repeats=a.repeats,
                    json_path=a.json, plot_path=a.plot, run=a.run, naive_steps=a.naive_steps,
                    threads=a.threads, log=lambda line: print(line, flush=True))
    print()
    print(markdown_table(res["records"]))
    if a.json:
        print(f"wrote {a.json} ({len(res['records'])} records)")
    return 0


def add(sub):
    """argparse adder of `seqgen bench`."""
    from seqgen.cli.types import positive_float as pos_float
    from seqgen.cli.types import positive_int as pos_int
    from seqgen.cli.types import positive_int_list as int_list

    visible = [p.name for p in PRESETS.values() if not p.hidden]
    p = sub.add_parser("bench", help="sampling-speed benchmark with roofline (JSON, chart)",
                       description="Time cached and naive generation of preset models (random weights) "
                                   "and relate the speed to the matrix-vector and matrix-matrix GFLOP/s "
                                   "ceilings measured in the same run. Presets: " + ", ".join(visible) +
                                   ". See bench/README.md.")
    from seqgen.bench.training import DEFAULT_PRESETS

    p.add_argument("--presets", default=None,
                   help="comma-separated presets (default: all; with --train: " + ", ".join(DEFAULT_PRESETS) + ")")
    p.add_argument("--methods", default="cached,naive,parallel",
                   help="comma-separated: cached, naive (WaveNet, text), parallel (student), native, "
                        "native-bf16, native-int8 (the cached loops in C with float32, bfloat16 or int8 "
                        "weights); a preset runs the ones it has")
    p.add_argument("--batches", type=int_list, default=[1], help="comma-separated batch sizes (default 1)")
    p.add_argument("--seconds", type=pos_float, default=None,
                   help="audio per timed cached run, at 16 kHz (default 1)")
    p.add_argument("--tokens", type=pos_int, default=None, help="text tokens per timed cached run (default 1024)")
    p.add_argument("--naive-steps", type=pos_int, default=None,
                   help="samples/tokens per timed naive run (default per preset: 4-32)")
    p.add_argument("--repeats", type=pos_int, default=3, help="timed runs after the warm-up; median (default 3)")
    p.add_argument("--run", default=None, metavar="RUN", help="also benchmark the model of a trained run")
    p.add_argument("--json", default=None, metavar="FILE.json", help="write all records as JSON")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="bar chart of samples/s (log scale)")
    p.add_argument("--threads", type=int, default=None,
                   help="TensorFlow intra-op threads, set before TensorFlow starts and kept for the whole "
                        "run (default 1 for sampling: fastest for batch 1 on a CPU; 0 for --train; "
                        "0 = TensorFlow's default, all cores)")
    p.add_argument("--train", action="store_true",
                   help="time training instead: each training preset (a recipe's config on the embedded corpus "
                        "of its kind) in seqgen's training loop and as the compiled step alone, with GFLOP/s "
                        "against the matrix-matrix ceiling measured in the same run")
    p.add_argument("--steps", type=pos_int, default=None,
                   help="--train: timed steps per preset (default 20; vocoder-full on a CPU: 3 at batch 1)")
    p.add_argument("--warmup", type=pos_int, default=None,
                   help="--train: steps per log window; the first window (compilation) is not timed (default 5)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="--train: a config override for every preset, e.g. --set data.batch_size=8 (repeatable)")
    p.add_argument("--merge", nargs="+", default=None, metavar="FILE.json",
                   help="run nothing: combine the records of earlier --json files into one --json/--plot/table "
                        "(e.g. runs with different --threads)")
    p.set_defaults(func=_cmd_bench)
