"""Streaming in constant memory: the peak RSS of `seqgen sample --stream` against the mel's length.

For each length (default 10 s, 10 min, 60 min of audio) the log-mel of one utterance is tiled to that
many frames and saved as a `.npy` in a scratch folder; then `seqgen sample --run RUN --mel FILE.npy
--stream` runs as its own process, at one fixed chunk size, and its peak resident memory is read from the
kernel (`wait4`'s `ru_maxrss`). The record gives each length's peak RSS and its excess over the shortest,
the resident set sampled twice a second (its range once the first chunk is out, and a PNG with
`--plot`: a peak that comes from start-up and compiling is not growth), the time to the first chunk
(loading the run and compiling the loop included), the per-chunk real-time factor (wall time of a chunk
over its audio's duration; below 1 is faster than real time), and whether the shortest streamed file
equals the same command without `--stream`, byte for byte.

    python bench/stream_memory.py --run RUN --mel-from UTTERANCE.wav --json bench/results-stream-memory.json
    python bench/stream_memory.py --run RUN --mel-from U.wav --seconds 10,600 --method cached

The mel files (99 MB for 60 minutes) and wavs (159 MB) go to --scratch (default: a temporary folder,
removed at the end). One process at a time; run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def tiled_mel(run, mel_from, seconds, path):
    """The raw log-mel of ``mel_from`` (the run's features) tiled to ``seconds`` of audio, written to
    ``path`` block by block; returns its number of frames."""
    import numpy as np

    from seqgen.data import audio as A
    from seqgen.runs import Run

    params = A.FeatureParams.from_dict(Run(run).info()["data"]["features"])
    mel = A.log_mel(A.load(mel_from, params.sample_rate), params).astype(np.float32)
    frames = max(1, int(round(seconds * params.sample_rate / params.hop_length)))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(frames, mel.shape[1]))
    for lo in range(0, frames, len(mel)):
        out[lo:lo + len(mel)] = mel[: frames - lo]
    out.flush()
    del out
    return frames


def _resident_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def run_sample(args, mel, wav, js, stream, every=0.5):
    """One `seqgen sample` process: (its peak RSS in MB from the kernel, wall seconds, its JSON, its
    resident set sampled every ``every`` seconds as ``[(seconds, MB)]``, empty without /proc)."""
    cmd = [sys.executable, "-m", "seqgen.cli", "sample", "--run", args.run, "--mel", str(mel), "--out", str(wav),
           "--json", str(js), "--method", args.method, "--chunk-size", str(args.chunk_size),
           "--seed", "0", "--threads", "1"]
    if args.weight_dtype:
        cmd += ["--weight-dtype", args.weight_dtype]
    if stream:
        cmd.append("--stream")
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    trace = []
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        mb = _resident_mb(proc.pid)
        if mb is not None:
            trace.append((round(time.time() - t0, 2), round(mb, 1)))
        time.sleep(every)
    wall = time.time() - t0
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{''.join(err)[-2000:]}")
    return usage.ru_maxrss / 1024.0, wall, json.loads(pathlib.Path(js).read_text()), trace


def plot(record, path):
    """The resident set of each length's process against its share of the run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for row in record["rows"]:
        trace = row.get("rss_trace") or []
        trace = [(t, m) for t, m in trace if t > 0]
        if trace:
            ax.plot([t for t, _ in trace], [m for _, m in trace],
                    label=f"{row['audio_seconds'] / 60:.1f} min of audio, peak {row['peak_rss_mb']:.0f} MB")
    ax.set_xscale("log")
    ax.set_xlabel("seconds since the process started (it loads the run, compiles, then streams)")
    ax.set_ylabel("resident set (MB)")
    ax.set_title(f"seqgen sample --stream, method {record['method']}, chunk {record['chunk_size']} ({record['cpu']})")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a mel-conditioned WaveNet run")
    p.add_argument("--mel-from", required=True, help="an utterance whose log-mel is tiled to each length")
    p.add_argument("--seconds", default="10,600,3600", help="audio lengths, comma-separated (default 10,600,3600)")
    p.add_argument("--method", default="native", choices=["cached", "native"])
    p.add_argument("--weight-dtype", default=None, choices=["float32", "bfloat16", "int8"])
    p.add_argument("--chunk-size", type=int, default=4096)
    p.add_argument("--scratch", default=None, help="folder for the mels and wavs (default: a temporary one)")
    p.add_argument("--json", default=None, help="merge the record into this file (one entry per method)")
    p.add_argument("--plot", default=None, help="write the resident set over each run as a PNG")
    a = p.parse_args(argv)
    lengths = sorted(float(s) for s in a.seconds.split(","))
    scratch = pathlib.Path(a.scratch or tempfile.mkdtemp(prefix="seqgen-stream-"))
    scratch.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for k, secs in enumerate(lengths):
            mel = scratch / f"mel-{int(secs)}s.npy"
            frames = tiled_mel(a.run, a.mel_from, secs, mel)
            wav, js = scratch / f"out-{int(secs)}s.wav", scratch / f"out-{int(secs)}s.json"
            rss, wall, res, trace = run_sample(a, mel, wav, js, stream=True)
            # the first chunk came out this long after the process started (its generation ended about
            # when the process did); from a second after that on, the resident set is the steady state's
            first_at = wall - (res["wall_seconds"] - res["first_chunk_seconds"])
            settled = [m for t, m in trace if t >= first_at + 1.0]
            row = {"audio_seconds": res["seconds"], "frames": frames, "mel_mb": mel.stat().st_size / 1e6,
                   "peak_rss_mb": round(rss, 1), "peak_rss_mb_self": round(res["peak_rss_mb"], 1),
                   "first_chunk_seconds": round(res["first_chunk_seconds"], 3), "chunks": res["chunks"],
                   "chunk_rtf_median": round(res["chunk_rtf_median"], 4),
                   "chunk_rtf_max": round(res["chunk_rtf_max"], 4),
                   "samples_per_sec": round(res["samples_per_sec"], 1), "process_wall_seconds": round(wall, 1),
                   "rss_after_start_mb": [min(settled), max(settled)] if settled else None,
                   "rss_trace": trace[:: max(1, len(trace) // 300)]}
            if k == 0:   # the shortest: the same command without --stream writes the same file
                plain = scratch / "plain.wav"
                run_sample(a, mel, plain, scratch / "plain.json", stream=False)
                row["equals_non_streamed"] = plain.read_bytes() == wav.read_bytes()
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "rss_trace"}), flush=True)
            mel.unlink()
            wav.unlink()
    finally:
        if a.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    base = rows[0]["peak_rss_mb"]
    for r in rows:
        r["excess_over_shortest_mb"] = round(r["peak_rss_mb"] - base, 1)
    record = {"cpu": cpu_model(), "date": time.strftime("%Y-%m-%d"), "run": a.run, "method": a.method,
              "weight_dtype": a.weight_dtype or "float32", "chunk_size": a.chunk_size, "threads": 1,
              "command": "seqgen sample --run RUN --mel MEL.npy --stream --out OUT.wav --seed 0 --threads 1 "
                         f"--method {a.method} --chunk-size {a.chunk_size}"
                         + (f" --weight-dtype {a.weight_dtype}" if a.weight_dtype else ""),
              "rows": rows,
              "max_excess_mb": max(r["excess_over_shortest_mb"] for r in rows)}
    print(json.dumps({k: v for k, v in record.items() if k != "rows"}))
    if a.plot:
        plot(record, a.plot)
    if a.json:
        path = pathlib.Path(a.json)
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged[a.method + ("" if not a.weight_dtype or a.weight_dtype == "float32" else "-" + a.weight_dtype)] = record
        path.write_text(json.dumps(merged, indent=2) + "\n")


if __name__ == "__main__":
    main()
