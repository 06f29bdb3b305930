"""`seqgen sample`: audio from a trained run.

Conditioning comes from ``--mel-from FILE`` (any audio file soundfile reads:
its log-mel is computed with the run's feature parameters and normalized
with the run's statistics, i.e. resynthesis), ``--mel FILE.npy`` (raw log-mel
frames ``[frames, n_mels]`` as made by :func:`seqgen.data.audio.log_mel`, or
``[n_mels, frames]``), or nothing with ``--seconds S`` for an unconditional
model.  ``--method parallel`` samples a Parallel WaveNet student run (made by
``seqgen distill``) in one parallel pass per flow; cached and naive are the
WaveNet methods.
"""
from __future__ import annotations

import pathlib
import sys
import time

import math

import numpy as np

from seqgen.errors import SeqgenError
from seqgen.runs import Run
from seqgen.utils.threads import configure_threads

LN2 = math.log(2.0)


def _speaker_id(spec, speakers, run_path):
    if spec is None:
        return 0
    if str(spec).isdigit() and int(spec) < len(speakers):
        return int(spec)
    if spec in speakers:
        return speakers.index(spec)
    raise SeqgenError(f"--speaker {spec}: not a speaker of {run_path}; known: {', '.join(speakers) or 'none'}")


def conditioning_from(run_info: dict, mel_from=None, mel_npy=None):
    """Normalized mel frames [frames, n_mels] for a run, and the reference audio if any."""
    from seqgen.data import audio as A

    data = run_info["data"]
    params = A.FeatureParams.from_dict(data["features"])
    mean = np.asarray(data["stats"]["mel_mean"], np.float32)
    std = np.asarray(data["stats"]["mel_std"], np.float32)
    reference = None
    if mel_from is not None:
        reference = A.load(mel_from, params.sample_rate)
        if len(reference) < params.hop_length:
            raise SeqgenError(f"--mel-from {mel_from}: shorter than one hop ({params.hop_length} samples)")
        mel = A.log_mel(reference, params)
        reference = reference[: mel.shape[0] * params.hop_length]
    else:
        p = pathlib.Path(mel_npy)
        try:
            mel = np.load(p)
        except (OSError, ValueError) as e:
            raise SeqgenError(f"--mel {mel_npy}: cannot read a numpy array ({e})") from None
        if mel.ndim != 2 or params.n_mels not in mel.shape:
            raise SeqgenError(f"--mel {mel_npy}: expected [frames, {params.n_mels}] log-mel frames, "
                              f"got shape {mel.shape}")
        if mel.shape[1] != params.n_mels:
            mel = mel.T
        if not np.all(np.isfinite(mel)):
            raise SeqgenError(f"--mel {mel_npy}: contains NaN or Inf")
    return ((mel - mean) / std).astype(np.float32), reference


def _check_method(run_dir, model_type, method):
    """One-line errors for a method the run's model cannot sample with."""
    from seqgen.models.registry import STUDENT_TYPES

    student = model_type in STUDENT_TYPES
    if method == "parallel" and not student:
        raise SeqgenError(f"--method parallel needs a Parallel WaveNet student run (made by `seqgen distill`); "
                          f"{run_dir} is a {model_type} run: use --method cached or naive")
    if student and method != "parallel":
        raise SeqgenError(f"{run_dir} is a Parallel WaveNet student: it samples with --method parallel, "
                          f"not {method}")


def sample(run_dir, out, mel_from=None, mel=None, seconds=None, method=None, temperature=None, seed=None,
           speaker=None, plot=False, chunk_size=None, quiet=False, threads=None) -> dict:
    """Generate ``out`` from a run.  ``threads``: TensorFlow intra-op threads (None: leave
    as is; ``"auto"``: 1 for cached/naive, all cores for parallel)."""
    from seqgen.utils.progress import progress
    from seqgen.data import audio as A
    from seqgen.models.registry import STUDENT_TYPES

    run = Run(run_dir)
    info = run.info()
    cfg = run.config()
    scfg = cfg.get("sample", {})
    model_type = info.get("model_type", "wavenet")
    default_method = "parallel" if model_type in STUDENT_TYPES else "cached"
    method = method or scfg.get("method", default_method)
    _check_method(run_dir, model_type, method)
    if threads == "auto":  # one sequence: one thread for the sequential loop, all cores for convolutions
        threads = 0 if method == "parallel" else 1
    configure_threads(threads)
    temperature = float(scfg.get("temperature", 1.0) if temperature is None else temperature)
    seed = int(scfg.get("seed", 0) if seed is None else seed)
    chunk_size = int(chunk_size or scfg.get("chunk_size", 4096))
    model, step, ckpt = run.load_model(use_ema=True, compile=False)
    sr = int(info["data"]["sample_rate"])
    kwargs = {}
    reference = None
    if mel_from is not None or mel is not None:
        if not getattr(model, "cond_channels", 0):
            raise SeqgenError(f"{run_dir}: this model is not mel-conditioned; use --seconds instead")
        m, reference = conditioning_from(info, mel_from, mel)
        kwargs["mel"] = m[None]
        n = m.shape[0] * model.hop_length
    else:
        if getattr(model, "cond_channels", 0):
            raise SeqgenError(f"{run_dir}: this model is mel-conditioned; give --mel-from FILE or --mel FILE.npy")
        secs = float(seconds if seconds is not None else scfg.get("seconds", 2.0))
        n = max(1, int(round(secs * sr)))
        kwargs["num_samples"] = n
    if getattr(model, "num_speakers", 0):
        kwargs["speaker"] = np.asarray([_speaker_id(speaker, info["data"].get("speakers", []), run_dir)], np.int32)
    elif speaker is not None:
        raise SeqgenError(f"--speaker {speaker}: {run_dir} has no speaker conditioning")

    bar = progress(total=n, desc=f"sample ({method})", unit="sample", disable=quiet or None)
    done = [0]

    def on_progress(d, total):
        bar.update(int(d) - done[0])
        done[0] = int(d)

    t0 = time.time()
    wav = model.generate(method=method, temperature=temperature, seed=seed, chunk_size=chunk_size,
                         progress=on_progress, **kwargs)[0]
    secs_taken = time.time() - t0
    bar.close()
    out = pathlib.Path(out)
    A.save(out, wav, sr)
    result = {"out": str(out), "num_samples": int(len(wav)), "seconds": len(wav) / sr, "sample_rate": sr,
              "method": method, "seed": seed, "temperature": temperature, "step": step,
              "checkpoint": ckpt.name, "samples_per_sec": len(wav) / max(secs_taken, 1e-9),
              "wall_seconds": secs_taken}
    if plot:
        from seqgen.utils import plots

        tracks = ([("reference", reference)] if reference is not None else []) + [("generated", wav)]
        png = plots.audio_png(out.with_suffix(".png"), tracks, sr,
                              title=f"{pathlib.Path(run_dir).name} step {step}, {method}, T={temperature}")
        result["plot"] = str(png)
    if not quiet:
        print(f"wrote {out} ({len(wav) / sr:.2f} s, {result['samples_per_sec']:.0f} samples/s, "
              f"{method}, seed {seed})" + (f" and {result['plot']}" if plot else ""), file=sys.stderr)
    return result


def vocoder_nll(model, data_dir, split="valid", window=16384, batch_size=4, max_windows=0, progress=False):
    """Negative log-likelihood of every sample of ``split`` (or its first ``max_windows`` windows).

    Returns ``{"nll_bits_per_sample", "nll_nats_per_sample", "num_samples"}``.
    The split is cut into consecutive windows (each window's first input is the
    true previous sample), so the figure is the model's NLL of the split with
    at most ``window`` samples of context, over every real sample exactly once.
    """
    from seqgen.data import pipeline as D

    info = D.VocoderData(data_dir)
    dist = model.distribution
    window = max(info.hop, (int(window) // info.hop) * info.hop)
    ds = D.vocoder_eval_dataset(data_dir, split, window, batch_size, discrete=dist.input_is_discrete,
                                silence_class=D.silence_input(dist))
    total, count, seen = 0.0, 0.0, 0
    bar = None
    if progress:
        from seqgen.utils.progress import progress as pbar

        bar = pbar(total=info.num_samples(split), desc=f"evaluate {split}", unit="sample")
    for inputs, target, weight in ds:
        feed = {"x": inputs["x"].numpy()}
        if getattr(model, "cond_channels", 0):
            feed["mel"] = inputs["mel"].numpy()
        if getattr(model, "num_speakers", 0):
            feed["speaker"] = inputs["speaker"].numpy()
        params = model.predict_on_batch(feed)
        nll = np.asarray(dist.nll(params, target.numpy()), np.float64)
        w = weight.numpy().astype(np.float64)
        total += float((nll * w).sum())
        count += float(w.sum())
        seen += nll.shape[0]
        if bar is not None:
            bar.update(int(w.sum()))
        if max_windows and seen >= max_windows:
            break
    if bar is not None:
        bar.close()
    nats = total / max(count, 1.0)
    return {"nll_bits_per_sample": nats / LN2, "nll_nats_per_sample": nats, "num_samples": int(count)}


# --------------------------------------------------------------------------- text
