"""`seqgen sample`: audio from a trained vocoder or student run."""
from __future__ import annotations

import json
import pathlib

from seqgen.core.methods import CACHED, NAIVE, NATIVE, PARALLEL
from seqgen.cli.types import nonneg_float as _nonneg_float
from seqgen.cli.types import positive_int as _positive_int

def _cmd_sample(a):
    from seqgen.tasks import vocoder
    from seqgen.errors import SeqgenError

    many = len(a.mel_from or []) + len(a.mel or []) > 1 or any(
        pathlib.Path(p).is_dir() for p in (a.mel_from or []) + (a.mel or []))
    if many:
        if a.seconds is not None:
            raise SeqgenError("--seconds is for unconditional models; several --mel-from/--mel inputs are resynthesized")
        for flag, on in (("--stream", a.stream), ("--plot", a.plot)):
            if on:
                raise SeqgenError(f"{flag} works on one input; several inputs are written to the --out folder")
        if pathlib.Path(a.out).suffix.lower() == ".wav":
            raise SeqgenError(f"--out {a.out}: several inputs are written to a folder (one STEM.wav each), not a .wav")
        res = vocoder.sample_many(a.run, a.out, mel_from=a.mel_from or (), mel=a.mel or (), method=a.method,
                                  temperature=a.temperature, seed=a.seed, speaker=a.speaker,
                                  batch_size=a.batch_size, chunk_size=a.chunk_size,
                                  threads=0 if a.threads is None else a.threads, top_p=a.top_p,  # batches: all cores
                                  weight_dtype=a.weight_dtype)
        if a.json:
            pathlib.Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
        return
    given = sum(x is not None for x in (a.mel_from, a.mel, a.seconds))
    if given > 1:
        raise SeqgenError("give only one of --mel-from, --mel and --seconds")
    res = vocoder.sample(a.run, a.out, mel_from=a.mel_from[0] if a.mel_from else None,
                         mel=a.mel[0] if a.mel else None, seconds=a.seconds, method=a.method,
                         temperature=a.temperature, seed=a.seed, speaker=a.speaker, plot=a.plot,
                         chunk_size=a.chunk_size, threads="auto" if a.threads is None else a.threads,
                         stream=a.stream, top_p=a.top_p, weight_dtype=a.weight_dtype)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(res, indent=2) + "\n")


def add(sub):
    p = sub.add_parser("sample", help="generate audio from a trained run",
                       description="Generate audio: resynthesize a file (--mel-from), from mel frames (--mel), "
                                   "or unconditionally (--seconds).  Several files or folders are resynthesized "
                                   "in batched loops into the --out folder (input k seeded SEED + k).")
    p.add_argument("--run", required=True, metavar="RUN")
    p.add_argument("--out", required=True, metavar="OUT.wav|DIR", help="the wav; with several inputs, a folder")
    p.add_argument("--mel-from", nargs="+", action="extend", metavar="FILE|DIR",
                   help="audio file(s) whose mel conditions the model (resynthesis); a folder: its audio files")
    p.add_argument("--mel", nargs="+", action="extend", metavar="FILE.npy|DIR",
                   help="raw log-mel frames [frames, n_mels] (seqgen.data.audio.log_mel); a folder: its .npy files")
    p.add_argument("--batch-size", type=_positive_int, default=8,
                   help="several inputs: how many share one sampling loop (default 8)")
    p.add_argument("--seconds", type=_nonneg_float, default=None, help="length for unconditional models")
    p.add_argument("--method", choices=[CACHED, NAIVE, NATIVE, PARALLEL], default=None,
                   help="cached: O(layers) per sample in one compiled loop (default); naive: recompute the "
                        "receptive field per sample (reference); native: the cached loop in C (compiled on "
                        "first use; categorical heads), faster; parallel: a Parallel WaveNet student run "
                        "(`seqgen distill`), all samples at once")
    p.add_argument("--weight-dtype", choices=["float32", "bfloat16", "int8"], default=None,
                   help="--method native: how the loop stores the weights it multiplies by (default float32; "
                        "bfloat16 reads half the bytes, int8 a quarter; the arithmetic stays float32; see "
                        "seqgen/native/README.md for what each costs in NLL)")
    p.add_argument("--temperature", type=_nonneg_float, default=None)
    p.add_argument("--top-p", type=float, default=None, metavar="P",
                   help="categorical heads: sample each step from the smallest set of classes holding P of its "
                        "probability (1 = off; default: the run's sample.top_p); the unlikely tail, where a wrong "
                        "draw is a click, is never drawn")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--speaker", default=None, help="speaker name or index (multi-speaker runs)")
    p.add_argument("--chunk-size", type=_positive_int, default=None, help="samples per compiled chunk")
    p.add_argument("--stream", action="store_true",
                   help="write OUT chunk by chunk as it is made, in constant memory (cached or native; the "
                        "same file as without --stream)")
    p.add_argument("--plot", action="store_true", help="also write OUT.png: waveform + spectrogram")
    p.add_argument("--json", metavar="FILE", help="write the result (speed, step, ...) as JSON")
    p.add_argument("--threads", type=int, default=None,
                   help="TensorFlow intra-op threads (default 1 for cached/naive: fastest for one sequence on a "
                        "CPU; all cores for parallel and for several inputs; 0 = TensorFlow's default, all cores)")
    p.set_defaults(func=_cmd_sample)
