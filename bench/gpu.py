"""The GPU figures in one call of at most 10 minutes, compilations included (bench/README.md, "GPU").

Three verbs, one concept:

    python bench/gpu.py pack  [--pack .gpu-pack]           here: what a bare JAX GPU machine lacks
    bash bench/gpu.sh OUT                                  there: `python bench/gpu.py run --out OUT`
    python bench/gpu.py merge DIR [--quality-run W]        here: DIR/gpu.json -> bench/results-gpu.json + README

``pack`` fills an ignored folder (``.gpu-pack/``, never committed) with the cp312 wheels of the packages seqgen
needs beyond JAX and a scientific stack (Keras, grain, ArrayRecord, librosa, soundfile, ...), a subset of
LJ Speech (``ljspeech_mini``'s utterances, the committed yardstick's, then others in metadata order, to a
byte budget) and the embedded text and translation corpora prepared, so the machine needs no network and no
TensorFlow.  ``run`` works through a fixed list under a wall-clock budget, writing ``OUT/gpu.json`` after
every part (what ran is kept if the call is cut short):

1. the prepare of the LJ Speech subset (the yardstick's utterances are its valid split, never trained on);
2. ceilings: dependent ``[n, n] @ [n, n]`` products, float32 and bfloat16;
3. training steps/s of vocoder ``small`` and ``full``, the student and the byte LM at batches sized for a
   GPU, float32 and ``mixed_bfloat16`` (:func:`seqgen.bench.training.bench_preset`: seqgen's own loop);
4. cached sampling (vocoder small, large) at batch 1 and 64; the student's parallel pass over 1 s and
   10 s at batch 1 and 16 (:func:`seqgen.bench.runner.run_bench`);
5. the vocoder's quality preset trained for the minutes left, its run directory brought back as
   ``OUT/quality-run.tar`` for ``seqgen evaluate --quality`` here (PESQ needs a compiler, DNSMOS its
   models: the scoring stays on the CPU side).

``--dry`` runs the same code at toy sizes on any machine (a CPU check of the script itself).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: what a JAX GPU image with a scientific stack lacks: pinned to this environment's versions by ``pack``
WHEELS = ["keras", "namex", "optree", "grain", "array-record", "portpicker", "librosa", "soundfile", "cffi",
          "pycparser", "soxr", "audioread", "pooch", "platformdirs", "decorator"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]

#: (preset, overrides on a GPU, step alone too) in the order they run; each in float32, then mixed_bfloat16
TRAIN = [
    ("vocoder-small", ["data.batch_size=64"], True),
    ("byte-lm-small", ["data.batch_size=256"], True),
    ("student-small", ["data.batch_size=16"], False),
    ("vocoder-full", [], False),  # the preset's own 8 x 10240
]
DRY_TRAIN = [("vocoder-small", ["data.batch_size=2", "data.window=1024"], True),
             ("byte-lm-small", ["data.batch_size=4"], False)]
PRECISIONS = ["float32", "mixed_bfloat16"]
QUALITY_CONFIG = "recipes/ljspeech_vocoder/long.yaml"  # linear prediction + pre-emphasis: the best so far
QUALITY_BATCH = 64


# --------------------------------------------------------------------------- pack (here)


def _version(dist):
    from importlib.metadata import version

    return version(dist)


def _ljspeech_subset(src: pathlib.Path, mini: pathlib.Path, yardstick: pathlib.Path, out: pathlib.Path,
                     budget_bytes: int) -> dict:
    """Copy into ``out`` (LJSpeech layout) the mini corpus's utterances, the yardstick's, then others of
    ``src/metadata.csv`` in file order while the wavs stay under ``budget_bytes``."""
    from seqgen.quality import yardstick as Y

    rows = [line.split("|", 1) for line in (src / "metadata.csv").read_text(encoding="utf-8").splitlines() if line]
    by_id = {r[0]: r for r in rows}
    mini_ids = [line.split("|", 1)[0] for line in (mini / "metadata.csv").read_text(encoding="utf-8").splitlines()
                if line]
    held = Y.read(yardstick, "all")
    order = list(dict.fromkeys([*mini_ids, *held, *by_id]))
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    kept, size = [], 0
    for uid in order:
        wav = src / "wavs" / f"{uid}.wav"
        if uid not in by_id or not wav.is_file():
            if uid in held:
                raise SystemExit(f"pack: yardstick utterance {uid} is not in {src}")
            continue
        n = wav.stat().st_size
        if size + n > budget_bytes and uid not in held and uid not in mini_ids:
            break
        shutil.copyfile(wav, out / "wavs" / wav.name)
        kept.append(by_id[uid])
        size += n
    (out / "metadata.csv").write_text("".join("|".join(r) + "\n" for r in kept), encoding="utf-8")
    return {"utterances": len(kept), "bytes": size, "mini": len(mini_ids), "yardstick": len(held)}


def cmd_pack(a) -> int:
    pack = pathlib.Path(a.pack)
    if pack.exists():
        shutil.rmtree(pack)
    (pack / "wheels").mkdir(parents=True)
    pins = [f"{w}=={_version(w)}" for w in WHEELS]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--python-version", a.python, "--implementation", "cp", "-d", str(pack / "wheels"),
           *[x for p in PLATFORMS for x in ("--platform", p)], *pins]
    print("wheels:", " ".join(pins), flush=True)
    subprocess.run(cmd, check=True)
    data = pathlib.Path(a.data)
    subset = _ljspeech_subset(data / "ljspeech", data / "ljspeech_mini", ROOT / "recipes/ljspeech_vocoder/yardstick.tsv",
                              pack / "ljspeech", int(a.audio_mb * 2 ** 20))
    print(f"LJ Speech subset: {subset['utterances']} utterances, {subset['bytes'] / 2 ** 20:.1f} MiB", flush=True)
    from seqgen.bench.training import prepared_data

    for kind in ("text", "pairs"):  # the embedded corpora (espeak-ng is not on the GPU machine)
        shutil.copytree(prepared_data(kind, print), pack / f"data-{kind}")
    total = sum(f.stat().st_size for f in pack.rglob("*") if f.is_file())
    tree = sum(f.stat().st_size for f in map(pathlib.Path, subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()) if f.is_file())
    (pack / "pack.json").write_text(json.dumps({"python": a.python, "wheels": pins, "ljspeech": subset,
                                                "bytes": total}, indent=2) + "\n")
    print(f"{pack}: {total / 2 ** 20:.1f} MiB (+ {tree / 2 ** 20:.1f} MiB of tracked files)")
    return 0


# --------------------------------------------------------------------------- run (on the GPU machine)


class Budget:
    def __init__(self, minutes):
        self.t0 = time.perf_counter()
        self.total = minutes * 60.0

    def left(self) -> float:
        return self.total - (time.perf_counter() - self.t0)


def cmd_run(a) -> int:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("SEQGEN_PROGRESS", "0")
    os.environ.setdefault("SEQGEN_CACHE", str(pathlib.Path(a.work) / "cache"))
    budget = Budget(a.minutes)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    pack = pathlib.Path(a.pack)
    res = {"kind": "gpu", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "minutes": a.minutes,
           "dry": bool(a.dry), "parts": {}, "skipped": []}

    def save():
        res["seconds"] = round(time.perf_counter() - budget.t0, 1)
        res["tensorflow_imported"] = "tensorflow" in sys.modules
        (out / "gpu.json").write_text(json.dumps(res, indent=2, default=str) + "\n")

    def log(line):
        print(f"[{time.perf_counter() - budget.t0:6.0f}s] {line}", flush=True)

    def part(name, fn):
        t = time.perf_counter()
        try:
            res[name] = fn()
            res["parts"][name] = {"seconds": round(time.perf_counter() - t, 1)}
        except Exception as e:  # noqa: BLE001 - a part that fails leaves the others their time
            import traceback

            traceback.print_exc()
            res["parts"][name] = {"seconds": round(time.perf_counter() - t, 1), "error": f"{type(e).__name__}: {e}"}
        save()

    from seqgen.bench.environment import environment

    res["environment"] = env = environment(0)
    log(f"{env['device']}, jax {env.get('jax')}, keras {env['keras']}")
    save()

    # 1. the vocoder corpus: the LJ Speech subset, the yardstick's utterances as its valid split
    lj = work / "data-vocoder"

    def prepare():
        from seqgen.cli.app import main

        code = main(["prepare", "vocoder", "--input", str(pack / "ljspeech"), "--out", str(lj),
                     "--valid-ids", str(ROOT / "recipes/ljspeech_vocoder/yardstick.tsv")])
        if code:
            raise RuntimeError(f"prepare exited {code}")
        return json.loads((lj / "manifest.json").read_text()).get("splits")

    part("prepare", prepare)
    data_dirs = {"vocoder": str(lj), "text": str(pack / "data-text"), "pairs": str(pack / "data-pairs")}

    # 2. ceilings
    def ceilings():
        from seqgen.bench import roofline

        n = 256 if a.dry else 8192
        return {dt: roofline.matmul_gflops(n, min_seconds=0.3, repeats=3, dtype=dt) for dt in ("float32", "bfloat16")}

    part("ceilings", ceilings)
    for dt, c in (res.get("ceilings") or {}).items():
        log(f"matmul ceiling {dt}: {c['gflops']:,.0f} GFLOP/s")

    # 3. training steps/s
    res["train"] = []

    def train():
        import gc

        import keras

        from seqgen.bench.training import bench_preset

        share = budget.total * 0.38
        for name, sets, alone in (DRY_TRAIN if a.dry else TRAIN):
            for precision in PRECISIONS:
                if budget.t0 + share < time.perf_counter() + 10:
                    res["skipped"].append(f"train {name} {precision}: the part's time was spent")
                    continue
                log(f"train {name} {precision} ({' '.join(sets) or 'preset batch'})")
                try:
                    rec = bench_preset(name, a.steps, a.warmup, log, work / "train", on_cpu=False,
                                       overrides=[*sets, f"train.precision={precision}"], data_dirs=data_dirs,
                                       step_alone=alone and precision == "float32")
                except Exception as e:  # noqa: BLE001
                    res["train"].append({"preset": name, "precision": precision, "error": f"{type(e).__name__}: {e}"})
                    log(f"train {name} {precision} failed: {e}")
                else:
                    ceiling = (res.get("ceilings") or {}).get("bfloat16" if precision != "float32" else "float32")
                    rec.update(precision=precision, backend=env["backend"], device=env["device"])
                    if ceiling:
                        rec["loop_fraction_of_matmul"] = rec["loop_gflops"] / ceiling["gflops"]
                    res["train"].append(rec)
                shutil.rmtree(work / "train", ignore_errors=True)
                keras.backend.clear_session()
                gc.collect()
                save()
        return res["train"]

    part("train", train)

    # 4. sampling
    res["sampling"] = []

    def sampling():
        from seqgen.bench import roofline
        from seqgen.bench.runner import run_bench

        ceil = roofline.measure_ceilings(matmul_n=256 if a.dry else 8192, min_seconds=0.2, bandwidth=not a.dry)
        res["sampling_ceilings"] = ceil
        seconds = 0.05 if a.dry else 1.0
        jobs = [("vocoder-small", "cached", [1, 64], seconds), ("vocoder-large", "cached", [1, 64], seconds),
                ("student-paper", "parallel", [1, 16], seconds), ("student-paper", "parallel", [1, 16], 10 * seconds)]
        end = budget.t0 + budget.total * 0.55
        for preset, method, batches, secs in jobs:
            if time.perf_counter() > end:
                res["skipped"].append(f"sampling {preset} {method} {secs:g} s: the part's time was spent")
                continue
            r = run_bench([preset], [method], batches, seconds=secs, repeats=2, ceilings=ceil, threads=0, log=log)
            for rec in r["records"]:
                rec["seconds_of_audio"] = secs
            res["sampling"].extend(r["records"])
            save()
        return res["sampling"]

    part("sampling", sampling)

    # 5. the vocoder's quality preset, trained for what is left
    def quality():
        from seqgen.cli.app import main

        minutes = (budget.left() - (15 if a.dry else 45)) / 60.0
        if minutes < (0.2 if a.dry else 1.0):
            res["skipped"].append("quality: no time left")
            return None
        sets = [f"data.batch_size={2 if a.dry else QUALITY_BATCH}", "train.audio_seconds=0",
                "train.keep_checkpoint_every=0", *(["data.max_valid_windows=2"] if a.dry else [])]
        # the cosine should end inside the minutes: steps from the bench's vocoder-small rate at this batch
        rate = next((r["loop_steps_per_sec"] for r in res["train"] if r.get("preset") == "vocoder-small"
                     and r.get("precision") == "float32" and "loop_steps_per_sec" in r), None)
        if rate and not a.dry:
            sets.append(f"train.steps={max(100, int(0.7 * rate * minutes * 60))}")  # 0.7: LPC and validation
        run = work / "quality-run"
        log(f"quality: {QUALITY_CONFIG} for {minutes:.1f} min ({' '.join(sets)})")
        code = main(["train", str(ROOT / QUALITY_CONFIG), "--data", str(lj), "--out", str(run),
                     "--max-minutes", f"{minutes:.2f}", *[x for s in sets for x in ("--set", s)]])
        with tarfile.open(out / "quality-run.tar", "w") as tar:
            tar.add(run, arcname="quality-run", filter=lambda t: None if "/tb" in t.name else t)
        last = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x][-3:]
        return {"config": QUALITY_CONFIG, "overrides": sets, "minutes": minutes, "exit": code, "last": last,
                "tar": "quality-run.tar"}

    part("quality", quality)
    log(f"done in {time.perf_counter() - budget.t0:.0f} s; tensorflow imported: {'tensorflow' in sys.modules}")
    save()
    return 0


# --------------------------------------------------------------------------- merge (here)


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def gpu_tables(res) -> str:
    env = res.get("environment", {})
    lines = [f"{env.get('device', '?')}, JAX {env.get('jax', '?')}, Keras {env.get('keras', '?')}, "
             f"{res.get('date', '?')}" + (" (DRY RUN)" if res.get("dry") else "")]
    ceil = res.get("ceilings") or {}
    if ceil:
        lines.append("matmul ceilings: " + ", ".join(f"{dt} {c['gflops'] / 1000:,.1f} TFLOP/s (n={c['n']})"
                                                       for dt, c in ceil.items()))
    lines += ["", "| training preset | precision | batch | loop steps/s | step alone | units/s | TFLOP/s (loop) | "
              "of ceiling |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in res.get("train", []):
        if "error" in r:
            lines.append(f"| {r['preset']} | {r['precision']} | failed: {r['error'][:80]} | | | | | |")
            continue
        lines.append(f"| {r['preset']} | {r['precision']} | {r['rows']} x {r['positions_per_row']} | "
                     f"{r['loop_steps_per_sec']:.2f} | {_fmt(r.get('step_steps_per_sec'), '.2f')} | "
                     f"{r['loop_units_per_sec']:,.0f} {r['unit']} | {r['loop_gflops'] / 1000:.2f} | "
                     f"{_fmt(100 * r['loop_fraction_of_matmul'] if 'loop_fraction_of_matmul' in r else None, '.1f')}% |")
    lines += ["", "| sampling preset | method | batch | audio at 16 kHz | samples/s (all rows) | per row | "
                  "x real time at 22.05 kHz (all rows) | compile s |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in res.get("sampling", []):
        lines.append(f"| {r['preset']} | {r['method']} | {r['batch']} | {r.get('seconds_of_audio', '')} s | "
                     f"{r['samples_per_sec']:,.0f} | {r['samples_per_sec_per_sequence']:,.0f} | "
                     f"{r['samples_per_sec'] / 22050:.2f} | {r['compile_seconds']:.1f} |")
    q = res.get("quality")
    if q:
        lines += ["", f"quality run: {q['config']} ({', '.join(q['overrides'])}) for {q['minutes']:.1f} min; "
                      f"last record {json.dumps(q['last'][-1]) if q['last'] else '-'}"]
    if res.get("skipped"):
        lines += ["", "skipped: " + "; ".join(res["skipped"])]
    return "\n".join(lines)


def cmd_merge(a) -> int:
    src = pathlib.Path(a.dir)
    res = json.loads((src / "gpu.json").read_text())
    dest = ROOT / "bench/results-gpu.json"
    runs = json.loads(dest.read_text())["runs"] if dest.is_file() else []
    runs.append(res)
    dest.write_text(json.dumps({"runs": runs}, indent=2, default=str) + "\n")
    table = gpu_tables(res)
    readme = ROOT / "bench/README.md"
    start, end = "<!-- gpu-table -->", "<!-- /gpu-table -->"
    text = readme.read_text()
    if start in text:
        head, rest = text.split(start, 1)
        readme.write_text(head + start + "\n" + table + "\n" + end + rest.split(end, 1)[1])
    print(table)
    tar = src / "quality-run.tar"
    if tar.is_file() and a.quality_run:
        dest_run = pathlib.Path(a.quality_run)
        dest_run.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tar) as t:
            t.extractall(dest_run, filter="data")
        print(f"\nthe GPU-trained vocoder is in {dest_run / 'quality-run'}; score it here with\n  seqgen evaluate "
              f"--run {dest_run / 'quality-run'} --data ../shared/data/ljspeech --quality --utterances "
              f"recipes/ljspeech_vocoder/yardstick.tsv --json Q.json --plot Q.png")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("pack", help="here: wheels and data for a bare JAX GPU machine")
    s.add_argument("--pack", default=str(ROOT / ".gpu-pack"))
    s.add_argument("--data", default=str(ROOT.parent / "shared/data"), help="the shared data folder")
    s.add_argument("--python", default="3.12", help="the GPU machine's Python (wheels' tag)")
    s.add_argument("--audio-mb", type=float, default=36.0, help="LJ Speech wavs to carry, MiB")
    s = sub.add_parser("run", help="on the GPU machine (bench/gpu.sh)")
    s.add_argument("--out", required=True)
    s.add_argument("--pack", default=str(ROOT / ".gpu-pack"))
    s.add_argument("--work", default="/tmp/seqgen-gpu")
    s.add_argument("--minutes", type=float, default=8.5, help="wall-clock budget of the whole run")
    s.add_argument("--steps", type=int, default=20, help="timed training steps per preset")
    s.add_argument("--warmup", type=int, default=5, help="steps per log window (the first is not timed)")
    s.add_argument("--dry", action="store_true", help="toy sizes: check the script on any machine")
    s = sub.add_parser("merge", help="here: DIR/gpu.json into bench/results-gpu.json and bench/README.md")
    s.add_argument("dir")
    s.add_argument("--quality-run", default=None, help="unpack the GPU-trained vocoder run here")
    a = p.parse_args(argv)
    return {"pack": cmd_pack, "run": cmd_run, "merge": cmd_merge}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
