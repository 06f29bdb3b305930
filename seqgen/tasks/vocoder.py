"""The vocoder task: audio from mel frames (WaveNet, and the Parallel WaveNet student).

:class:`Vocoder` is what ``seqgen.load(RUN)`` returns for a run trained on
prepared audio; `seqgen sample` is :func:`sample`.

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

import math
import pathlib
import sys
import time

import numpy as np

from seqgen.core import emphasis
from seqgen.core.methods import CACHED, NATIVE, PARALLEL
from seqgen.errors import ConfigError, SeqgenError
from seqgen.runs import Run
from seqgen.tasks.base import Task, load, register_task
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


def conditioning_from(run_info: dict, mel_from=None, mel_npy=None, lazy=False):
    """Normalized mel frames [frames, n_mels] for a run, and the reference audio if any.  ``lazy``: a
    ``--mel`` file comes back as a :class:`~seqgen.data.mel_view.MelView` ``[1, frames, n_mels]`` over the
    memory-mapped file (normalized per slice, for streaming a mel of any length in constant memory)."""
    from seqgen.data import audio as A
    from seqgen.data.mel_view import load_log_mel

    data = run_info["data"]
    params = A.FeatureParams.from_dict(data["features"])
    mean = np.asarray(data["stats"]["mel_mean"], np.float32)
    std = np.asarray(data["stats"]["mel_std"], np.float32)
    if mel_from is None:
        try:
            view = load_log_mel(pathlib.Path(mel_npy), params.n_mels, mean, std, flag="--mel")
        except ValueError as e:
            raise SeqgenError(str(e)) from None
        return (view if lazy else np.asarray(view)[0]), None
    reference = A.load(mel_from, params.sample_rate)
    if len(reference) < params.hop_length:
        raise SeqgenError(f"--mel-from {mel_from}: shorter than one hop ({params.hop_length} samples)")
    mel = A.log_mel(reference, params)
    reference = reference[: mel.shape[0] * params.hop_length]
    return ((mel - mean) / std).astype(np.float32), reference


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (``getrusage``; 0 where it is not available)."""
    try:
        import resource
    except ImportError:
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _check_method(run_dir, model_type, method):
    """One-line errors for a method the run's model cannot sample with."""
    from seqgen.models.registry import STUDENT_TYPES

    student = model_type in STUDENT_TYPES
    if method == PARALLEL and not student:
        raise SeqgenError(f"--method parallel needs a Parallel WaveNet student run (made by `seqgen distill`); "
                          f"{run_dir} is a {model_type} run: use --method cached or naive")
    if student and method != PARALLEL:
        raise SeqgenError(f"{run_dir} is a Parallel WaveNet student: it samples with --method parallel, "
                          f"not {method}")


def native_kwargs(st) -> dict:
    """``generate``'s ``weight_dtype`` for the native loop (none for the other methods, whose ``generate``
    may not take it)."""
    return {"weight_dtype": st["weight_dtype"]} if st["method"] == NATIVE else {}


def top_p_kwargs(top_p) -> dict:
    """``generate``'s nucleus argument: none when it is off (a student's ``generate`` has no such argument)."""
    return {} if top_p is None or float(top_p) >= 1.0 else {"top_p": float(top_p)}


def _setup(run_dir, mel_from=None, mel=None, seconds=None, method=None, temperature=None, seed=None,
           speaker=None, chunk_size=None, threads=None, conditioned=False, top_p=None, weight_dtype=None,
           lazy_mel=False) -> dict:
    """What a sampling call needs: the model, its generation arguments, the resolved options.
    ``conditioned``: the caller brings its own mels (checked to fit the model, not read here).  ``lazy_mel``:
    a ``--mel`` file is read per chunk (:class:`~seqgen.data.mel_view.MelView`), for streaming."""
    from seqgen.models.registry import STUDENT_TYPES

    load(run_dir, verb="sample")  # a text run gets one line naming the verb that fits it
    run = Run(run_dir)
    info = run.info()
    cfg = run.config()
    scfg = cfg.get("sample", {})
    model_type = info.get("model_type", "wavenet")
    default_method = PARALLEL if model_type in STUDENT_TYPES else CACHED
    method = method or scfg.get("method", default_method)
    _check_method(run_dir, model_type, method)
    weight_dtype = weight_dtype or scfg.get("weight_dtype", "float32")
    if weight_dtype != "float32" and method != NATIVE:
        raise SeqgenError(f"--weight-dtype {weight_dtype} is how the native loop stores the weights: add "
                          f"--method native (method {method} runs float32)")
    if threads == "auto":  # one sequence: one thread for the sequential loop, all cores for convolutions
        threads = 0 if method == PARALLEL else 1
    configure_threads(threads)
    temperature = float(scfg.get("temperature", 1.0) if temperature is None else temperature)
    top_p = float(scfg.get("top_p", 1.0) if top_p is None else top_p)
    if not 0.0 < top_p <= 1.0:
        raise SeqgenError(f"--top-p must be in (0, 1], got {top_p}")
    if top_p < 1.0 and model_type in STUDENT_TYPES:
        raise SeqgenError(f"--top-p samples a categorical head's nucleus; {run_dir} is a Parallel WaveNet student")
    seed = int(scfg.get("seed", 0) if seed is None else seed)
    chunk_size = int(chunk_size or scfg.get("chunk_size", 4096))
    model, step, ckpt = run.load_model(use_ema=True, compile=False)
    if top_p < 1.0 and not model.distribution.input_is_discrete:
        raise SeqgenError(f"--top-p samples a categorical head's nucleus; {run_dir}'s head is "
                          f"{type(model.distribution).__name__}")
    if method == NATIVE:
        from seqgen.native.wavenet import check_supported

        try:
            check_supported(model)
        except ValueError as e:
            raise SeqgenError(f"{run_dir}: {e}") from None
    sr = int(info["data"]["sample_rate"])
    kwargs = {}
    reference = None
    if conditioned:
        if not getattr(model, "cond_channels", 0):
            raise SeqgenError(f"{run_dir}: this model is not mel-conditioned; use --seconds instead")
        n = 0
    elif mel_from is not None or mel is not None:
        if not getattr(model, "cond_channels", 0):
            raise SeqgenError(f"{run_dir}: this model is not mel-conditioned; use --seconds instead")
        m, reference = conditioning_from(info, mel_from, mel, lazy=lazy_mel)
        kwargs["mel"] = m if m.ndim == 3 else m[None]
        n = m.shape[-2] * model.hop_length
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
    return {"model": model, "step": step, "ckpt": ckpt, "sr": sr, "n": n, "kwargs": kwargs, "method": method,
            "temperature": temperature, "top_p": top_p, "seed": seed, "chunk_size": chunk_size,
            "reference": reference, "weight_dtype": weight_dtype}


def stream(run_dir, mel_from=None, mel=None, seconds=None, temperature=None, seed=None, speaker=None,
           chunk_size=None, threads=None, progress=None, top_p=None, method=CACHED, weight_dtype=None):
    """Audio of a WaveNet run as it is made: yields float32 chunks ``[n_k]`` (cached or native generation,
    see :meth:`~seqgen.models.wavenet.WaveNet.generate_stream`); put together they are :func:`sample`'s
    audio."""
    st = _setup(run_dir, mel_from, mel, seconds, method or CACHED, temperature, seed, speaker, chunk_size, threads,
                top_p=top_p, weight_dtype=weight_dtype, lazy_mel=True)
    model = st["model"]
    if not hasattr(model, "generate_stream"):
        raise SeqgenError(f"{run_dir}: streaming needs a WaveNet run (cached generation)")
    for chunk in model.generate_stream(temperature=st["temperature"], seed=st["seed"], chunk_size=st["chunk_size"],
                                       progress=progress, method=st["method"], **native_kwargs(st), **st["kwargs"],
                                       **top_p_kwargs(st["top_p"])):
        yield chunk[0]


def sample(run_dir, out, mel_from=None, mel=None, seconds=None, method=None, temperature=None, seed=None,
           speaker=None, plot=False, chunk_size=None, quiet=False, threads=None, stream=False, top_p=None,
           weight_dtype=None) -> dict:
    """Generate ``out`` from a run.  ``threads``: TensorFlow intra-op threads (None: leave
    as is; ``"auto"``: 1 for cached/naive, all cores for parallel).  ``stream``: write the audio
    chunk by chunk as it is made (cached generation; the same file as without)."""
    from seqgen.utils.progress import progress
    from seqgen.data import audio as A

    if stream and method not in (None, CACHED, NATIVE):
        raise SeqgenError(f"--stream writes cached or native generation; --method {method} cannot stream")
    st = _setup(run_dir, mel_from, mel, seconds, (method or CACHED) if stream else method, temperature, seed,
                speaker, chunk_size, threads, top_p=top_p, weight_dtype=weight_dtype, lazy_mel=stream)
    model, method, n, sr = st["model"], st["method"], st["n"], st["sr"]
    temperature, seed, chunk_size, kwargs = st["temperature"], st["seed"], st["chunk_size"], st["kwargs"]
    if stream and not hasattr(model, "generate_stream"):
        raise SeqgenError(f"{run_dir}: --stream needs a WaveNet run (cached generation)")

    bar = progress(total=n, desc=f"sample ({method}{', stream' if stream else ''})", unit="sample",
                   disable=quiet or None)
    done = [0]

    def on_progress(d, total):
        bar.update(int(d) - done[0])
        done[0] = int(d)

    out = pathlib.Path(out)
    t0 = time.time()
    timing = {}
    if stream:
        length, rtf, last = 0, [], t0
        with A.Writer(out, sr) as writer:
            for chunk in model.generate_stream(temperature=temperature, seed=seed, chunk_size=chunk_size,
                                               progress=on_progress, method=method, **native_kwargs(st), **kwargs,
                                               **top_p_kwargs(st["top_p"])):
                now = time.time()
                if not rtf:
                    timing["first_chunk_seconds"] = now - t0   # includes compiling the loop
                rtf.append((now - last) / max(chunk.shape[1] / sr, 1e-12))
                writer.write(chunk[0])
                length += chunk.shape[1]
                last = time.time()
        secs_taken = time.time() - t0
        later = rtf[1:] or rtf                                  # the first chunk compiles
        timing.update(chunks=len(rtf), chunk_rtf_median=float(np.median(later)), chunk_rtf_max=float(max(later)))
        wav = A.load(out) if plot else None
    else:
        wav = model.generate(method=method, temperature=temperature, seed=seed, chunk_size=chunk_size,
                             progress=on_progress, **native_kwargs(st), **kwargs, **top_p_kwargs(st["top_p"]))[0]
        secs_taken = time.time() - t0
        A.save(out, wav, sr)
        length = len(wav)
    bar.close()
    result = {"out": str(out), "num_samples": int(length), "seconds": length / sr, "sample_rate": sr,
              "method": method, **native_kwargs(st), "stream": bool(stream), "seed": seed, "temperature": temperature, "top_p": st["top_p"],
              "step": st["step"], "checkpoint": st["ckpt"].name, "samples_per_sec": length / max(secs_taken, 1e-9),
              "wall_seconds": secs_taken, **timing, "peak_rss_mb": peak_rss_mb()}
    if plot:
        from seqgen.utils import plots

        reference = st["reference"]
        tracks = ([("reference", reference)] if reference is not None else []) + [("generated", wav)]
        png = plots.audio_png(out.with_suffix(".png"), tracks, sr,
                              title=f"{pathlib.Path(run_dir).name} step {st['step']}, {method}, T={temperature}")
        result["plot"] = str(png)
    if not quiet:
        print(f"wrote {out} ({length / sr:.2f} s, {result['samples_per_sec']:.0f} samples/s, "
              f"{method}{', streamed' if stream else ''}, seed {seed}"
              + (f"; first chunk after {timing['first_chunk_seconds']:.2f} s, real-time factor "
                 f"{timing['chunk_rtf_median']:.2f} per chunk" if timing else "") + ")"
              + (f" and {result['plot']}" if plot else ""),
              file=sys.stderr)
    return result


#: what ``seqgen sample`` takes from a folder given as --mel-from (audio) and --mel (log-mel frames)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


def _expand(paths, suffixes, flag):
    """Files and folders -> files (a folder: its files with ``suffixes``, sorted)."""
    out = []
    for p in map(pathlib.Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                raise SeqgenError(f"{flag} {p}: no {'/'.join(suffixes)} files in this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise SeqgenError(f"{flag} {p}: no such file or folder")
    return out


def sample_many(run_dir, out_dir, mel_from=(), mel=(), method=None, temperature=None, seed=None, speaker=None,
                batch_size=8, chunk_size=None, quiet=False, threads=None, top_p=None, weight_dtype=None) -> dict:
    """Resynthesize several inputs (audio files for ``mel_from``, log-mel ``.npy`` for ``mel``; folders
    allowed) in batched sampling loops (:func:`generate_many`): ``out_dir/STEM.wav`` for each.  Input ``k``
    (in the order given, folders sorted) is seeded ``seed + k``: from a WaveNet run it is the audio
    ``seqgen sample`` makes of it alone with that seed (a student's rows draw their noise at the batch's
    padded length, so theirs is another draw of the same distribution)."""
    from seqgen.data import audio as A
    from seqgen.utils.progress import progress

    audio_files = _expand(mel_from, AUDIO_SUFFIXES, "--mel-from")
    files = audio_files + _expand(mel, (".npy",), "--mel")
    if not files:
        raise SeqgenError("give the inputs: --mel-from FILE|DIR ... or --mel FILE.npy|DIR ...")
    stems = {}
    for f in files:
        if f.stem in stems:
            raise SeqgenError(f"{stems[f.stem]} and {f} would both write {pathlib.Path(out_dir) / (f.stem + '.wav')}; "
                              f"rename one")
        stems[f.stem] = f
    st = _setup(run_dir, method=method, temperature=temperature, seed=seed, speaker=speaker,
                chunk_size=chunk_size, threads=threads, conditioned=True, top_p=top_p, weight_dtype=weight_dtype)
    model, info = st["model"], Run(run_dir).info()
    mels = [conditioning_from(info, mel_from=f)[0] if k < len(audio_files) else conditioning_from(info, mel_npy=f)[0]
            for k, f in enumerate(files)]
    speakers = None
    if "speaker" in st["kwargs"]:
        speakers = [int(st["kwargs"]["speaker"][0])] * len(files)
    total = sum(len(m) for m in mels) * model.hop_length
    bar = progress(total=total, desc=f"sample {len(files)} inputs ({st['method']}, batches of {batch_size})",
                   unit="sample", disable=quiet or None)
    state = [0]

    def on_progress(d):
        d = min(int(d), total)
        bar.update(max(0, d - state[0]))
        state[0] = max(state[0], d)

    wavs, secs = generate_many(model, mels, speakers, st["method"], st["temperature"], st["seed"],
                               batch_size, st["chunk_size"], on_progress, top_p=st["top_p"], **native_kwargs(st))
    bar.close()
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for k, (f, wav) in enumerate(zip(files, wavs)):
        path = out_dir / f"{f.stem}.wav"
        A.save(path, wav, st["sr"])
        items.append({"input": str(f), "out": str(path), "seconds": len(wav) / st["sr"], "seed": st["seed"] + k})
    made = sum(len(w) for w in wavs)
    result = {"out_dir": str(out_dir), "count": len(items), "seconds": made / st["sr"], "sample_rate": st["sr"],
              "method": st["method"], **native_kwargs(st), "batch_size": int(batch_size), "temperature": st["temperature"],
              "top_p": st["top_p"],
              "seed": st["seed"], "step": st["step"], "checkpoint": st["ckpt"].name, "wall_seconds": secs,
              "samples_per_sec": made / max(secs, 1e-9), "real_time_factor": made / st["sr"] / max(secs, 1e-9),
              "items": items}
    if not quiet:
        print(f"wrote {len(items)} files to {out_dir} ({made / st['sr']:.1f} s of audio, "
              f"{result['samples_per_sec']:.0f} samples/s, {result['real_time_factor']:.2f}x real time, "
              f"{st['method']}, batches of {batch_size})", file=sys.stderr)
    return result


def generate_many(model, mels, speakers=None, method=CACHED, temperature=1.0, seeds=0, batch_size=8,
                  chunk_size=4096, progress=None, top_p=1.0, weight_dtype=None):
    """Audio for each normalized mel ``[frames, n_mels]`` of ``mels``, several per sampling loop: batches of
    ``batch_size`` mels of similar length, each padded at its end with zero frames and cut back to
    ``frames * hop``.  Zeros are what the upsampler pads a mel's end with itself (its frame convolution
    looks a few frames ahead), and generation is causal, so the padding changes no sample that is kept.

    ``seeds``: one int per mel (or an int ``s``: mel ``k`` gets ``s + k``).  Each row's noise is that of a
    batch of one with its seed, so a mel's audio does not depend on which others share its loop (up to the
    float rounding of another batch shape).  ``progress(done)``: samples made so far, over all mels.
    Returns ``(list of float32 waveforms, wall seconds)``."""
    hop = model.hop_length
    if isinstance(seeds, (int, np.integer)):
        seeds = [int(seeds) + k for k in range(len(mels))]
    if len(seeds) != len(mels):
        raise ValueError(f"{len(seeds)} seeds for {len(mels)} mels")
    size = max(1, int(batch_size))
    order = sorted(range(len(mels)), key=lambda k: -len(mels[k]))
    out = [None] * len(mels)
    t0 = time.time()
    done = 0
    for g in range(0, len(order), size):
        group = order[g: g + size]
        frames = max(len(mels[k]) for k in group)
        batch = np.zeros((len(group), frames, mels[group[0]].shape[1]), np.float32)
        for row, k in enumerate(group):
            batch[row, : len(mels[k])] = mels[k]
        kwargs = {"mel": batch}
        if getattr(model, "num_speakers", 0):
            kwargs["speaker"] = np.asarray([(speakers[k] if speakers is not None else 0) or 0 for k in group],
                                           np.int32)

        def on_progress(d, total, base=done, rows=len(group)):
            if progress is not None:
                progress(base + int(d) * rows)

        wav = model.generate(method=method, temperature=temperature, seed=[int(seeds[k]) for k in group],
                             chunk_size=chunk_size, progress=on_progress, **kwargs, **top_p_kwargs(top_p),
                             **({"weight_dtype": weight_dtype} if weight_dtype else {}))
        for row, k in enumerate(group):
            out[k] = np.asarray(wav[row][: len(mels[k]) * hop], np.float32)
        done += frames * hop * len(group)
    return out, time.time() - t0


def vocoder_nll(model, data_dir, split="valid", window=16384, batch_size=4, max_windows=0, progress=False):
    """Negative log-likelihood of every sample of ``split`` (or its first ``max_windows`` windows).

    Returns ``{"nll_bits_per_sample", "nll_nats_per_sample", "nll_bits_per_16bit_sample", "num_samples"}``:
    the last in one unit across output heads, bit depths and pre-emphasis (see
    :meth:`~seqgen.core.distributions.Distribution.bits_to_16bit` and
    :func:`seqgen.core.emphasis.log2_jacobian`).
    The split is cut into consecutive windows (each window's first input is the
    true previous sample), so the figure is the model's NLL of the split with
    at most ``window`` samples of context, over every real sample exactly once.
    """
    from seqgen.data import pipeline as D

    info = D.VocoderData(data_dir)
    dist = model.distribution
    window = max(info.hop, (int(window) // info.hop) * info.hop)
    ds = D.vocoder_eval_dataset(data_dir, split, window, batch_size, discrete=dist.input_is_discrete,
                                silence_class=D.silence_input(dist), encode=D.sample_encoder(model, data_dir))
    jacobian = emphasis.log2_jacobian(getattr(model, "pre_emphasis", 0.0))
    total, total16, count, seen = 0.0, 0.0, 0.0, 0
    bar = None
    if progress:
        from seqgen.utils.progress import progress as pbar

        bar = pbar(total=info.num_samples(split), desc=f"evaluate {split}", unit="sample")
    for inputs, target, weight in ds:
        feed = {"x": inputs["x"]}
        if getattr(model, "cond_channels", 0):
            feed["mel"] = inputs["mel"]
        if getattr(model, "num_speakers", 0):
            feed["speaker"] = inputs["speaker"]
        params = model.predict_on_batch(feed)
        nll = np.asarray(dist.nll(params, target), np.float64)
        w = weight.astype(np.float64)
        total += float((nll * w).sum())
        total16 += float(((dist.bits_to_16bit(target) + jacobian) * w).sum())
        count += float(w.sum())
        seen += nll.shape[0]
        if bar is not None:
            bar.update(int(w.sum()))
        if max_windows and seen >= max_windows:
            break
    if bar is not None:
        bar.close()
    nats = total / max(count, 1.0)
    return {"nll_bits_per_sample": nats / LN2, "nll_nats_per_sample": nats,
            "nll_bits_per_16bit_sample": nats / LN2 + total16 / max(count, 1.0), "num_samples": int(count)}


# --------------------------------------------------------------------------- text


@register_task
class Vocoder(Task):
    """A run trained on prepared audio: resynthesis from mels, held-out NLL in bits per sample."""

    kind = "vocoder"
    unit = "sample"
    verb = "sample"
    title = "vocoder"

    def sample(self, out, **options) -> dict:
        """Write audio to ``out`` (the options of :func:`sample`: ``mel_from``, ``mel``, ``seconds``,
        ``method``, ``temperature``, ``seed``, ``speaker``, ``plot``, ...)."""
        return sample(self.run.path, out, **options)

    def stream(self, **options):
        """Yield the audio chunk by chunk as it is made (:func:`stream`'s options: ``mel_from``, ``mel``,
        ``seconds``, ``temperature``, ``seed``, ``speaker``, ``chunk_size``, ...)."""
        return stream(self.run.path, **options)

    def resynthesize(self, audio_path, out, **options) -> dict:
        """Resynthesize an audio file from its own mel (computed with the run's features)."""
        return sample(self.run.path, out, mel_from=audio_path, **options)

    def sample_many(self, out_dir, **options) -> dict:
        """Resynthesize several files or folders in batched loops into ``out_dir`` (:func:`sample_many`'s
        options: ``mel_from``, ``mel``, ``batch_size``, ``method``, ``temperature``, ``seed``, ...)."""
        return sample_many(self.run.path, out_dir, **options)

    def quality(self, **options) -> dict:
        """The speech-quality report of this run (:func:`seqgen.quality.report.evaluate_quality`'s options:
        ``data``, ``utterances``, ``subset``, ``max_utterances``, ``method``, ``temperature``, ``seed``,
        ``json_out``, ``plot``, ``audio_dir``, ...)."""
        from seqgen.quality.report import evaluate_quality

        return evaluate_quality(self, **options)

    # ------------------------------------------------------------ training side
    @classmethod
    def data_info(cls, data_dir) -> dict:
        from seqgen.data import pipeline as D

        v = D.VocoderData(data_dir)
        return {"kind": cls.kind, "data_dir": str(pathlib.Path(data_dir).resolve()),
                "sample_rate": v.sample_rate, "hop_length": v.hop, "n_mels": v.n_mels,
                "mu_law_bits": v.bits, "speakers": v.speakers, "features": v.features.to_dict(),
                "stats": {"mel_mean": v.stats.mean.tolist(), "mel_std": v.stats.std.tolist()}}

    @classmethod
    def model_kwargs(cls, model_type, model_cfg, data_info) -> dict:
        # the Parallel WaveNet student is always mel-conditioned (a vocoder distilled from a vocoder)
        local = model_cfg.get("local_conditioning", True) or model_type == "parallel_wavenet"
        speakers = data_info.get("speakers") or []
        if model_cfg.get("speaker_conditioning") and len(speakers) < 2:
            raise ConfigError(f"model.speaker_conditioning is on, but the data has {len(speakers)} speaker(s)")
        kwargs = {"hop_length": int(data_info["hop_length"]),
                  "cond_channels": int(data_info["n_mels"]) if local else 0,
                  "num_speakers": len(speakers) if model_cfg.get("speaker_conditioning") else 0}
        if "distribution" in model_cfg or model_type == "wavenet":
            dist = dict(model_cfg.get("distribution") or {"type": "categorical"})
            if dist.get("type", "categorical") == "categorical":
                dist.setdefault("num_classes", 2 ** int(data_info.get("mu_law_bits", 8)))
            kwargs["distribution"] = dist
        needs_stats = [k for k in ("lpc_order", "pitch_features", "harmonic_source") if model_cfg.get(k)]
        if model_type == "wavenet" and needs_stats:
            key = needs_stats[0]
            if not local:
                raise ConfigError(f"model.{key} needs model.local_conditioning (it is computed from the mel)")
            stats = data_info.get("stats") or {}
            kwargs["mel_stats"] = {"features": data_info["features"], "mean": stats["mel_mean"],
                                   "std": stats["mel_std"]}
        return kwargs

    @classmethod
    def train_dataset(cls, model, data_dir, data_cfg, seed, shard=(0, 1)):
        from seqgen.data import pipeline as D

        dist = model.distribution
        return D.batches_for_fit(D.vocoder_dataset(data_dir, "train", int(data_cfg["window"]),
                                                   int(data_cfg["batch_size"]), seed=seed,
                                                   discrete=dist.input_is_discrete,
                                                   silence_class=D.silence_input(dist), shard=shard,
                                                   encode=D.sample_encoder(
                                                       model, data_dir, noise=float(data_cfg.get("input_noise", 0)))))

    held_out_keys = ("nll_bits_per_sample", "num_samples")
    held_out_extra = {"nll_bits_per_16bit_sample": "valid_bits_per_16bit_sample"}

    @classmethod
    def held_out(cls, model, data_dir, split, data_cfg, max_windows=0, progress=False):
        return vocoder_nll(model, data_dir, split, int(data_cfg["valid_window"]), int(data_cfg["valid_batch_size"]),
                           max_windows=int(max_windows), progress=progress)

    @classmethod
    def after_validation(cls, model, loop, step) -> None:
        """A generated clip of ``train.audio_seconds`` (from a held-out mel) beside the real one: wav and
        PNG in ``RUN/samples``, audio and spectrogram image in TensorBoard."""
        if float(loop.cfg["train"]["audio_seconds"]) <= 0:
            return
        from seqgen.data import pipeline as D
        from seqgen.utils import plots

        info = loop.data_info
        hop, sr = info["hop_length"], info["sample_rate"]
        frames = max(1, int(float(loop.cfg["train"]["audio_seconds"]) * sr) // hop)
        # the recording's own float samples: the reference, whatever the model's encoding of them
        ds = D.vocoder_dataset(loop.data_dir, "valid", frames * hop, 1, seed=0, random=False,
                               repeat=False, discrete=False, silence_class=0.0)
        inputs, target, _ = next(iter(ds))
        kwargs = {}
        if model.cond_channels:
            kwargs["mel"] = inputs["mel"]
        else:
            kwargs["num_samples"] = frames * hop
        if model.num_speakers:
            kwargs["speaker"] = inputs["speaker"]
        wav = model.generate(method=CACHED, seed=0, **kwargs)[0]
        if not loop.dist.worker.is_chief:  # it generated too (a job's collective computation); the chief writes
            return
        real = np.asarray(target[0], np.float32)
        png = plots.compare_png(real, wav, sr, loop.run.path / "samples" / f"step-{step:08d}.png")
        from seqgen.data import audio as A

        A.save(loop.run.path / "samples" / f"step-{step:08d}.wav", wav, sr)
        loop.writer.audio("samples/generated", wav, sr, step)
        loop.writer.audio("samples/real", real, sr, step)
        loop.writer.image("samples/spectrograms", png, step)

    # ------------------------------------------------------------ recipe
    @classmethod
    def run_recipe(cls, recipe) -> dict:
        """prepare -> train -> resynthesize a held-out utterance -> held-out NLL (see :mod:`seqgen.recipes.runner`);
        with ``distill: true``, a teacher and a Parallel WaveNet student distilled from it."""
        if recipe.distill:
            return cls._distill_recipe(recipe)
        data_dir, run_dir, summary = recipe.prepare_and_train(cls.kind)

        recipe.stage(3, "sample: resynthesize a held-out utterance")
        sconf = recipe.sample_conf
        ref_path, split = reference_clip(data_dir, recipe.work / "reference.wav",
                                         float(sconf.get("reference_seconds", 2.0)))
        res = sample(run_dir, recipe.work / "sample.wav", mel_from=ref_path, plot=True, speaker=sconf.get("speaker"))

        recipe.stage(4, "evaluate on the valid split: NLL, and speech quality of whole resyntheses")
        voc = cls(run_dir)
        metrics = voc.evaluate(data_dir, split)
        metrics.update({"step": voc.step, "split": split, "samples_per_sec": res["samples_per_sec"]})
        work = recipe.work
        lines = [("resynthesis", work / "sample.wav"), ("plot", work / "sample.png"),
                 ("metrics", f"{work / 'metrics.json'}  (valid NLL {metrics['nll_bits_per_sample']:.3f} bits/sample, "
                             f"{metrics['nll_bits_per_16bit_sample']:.3f} bits per 16-bit sample, at step {voc.step})")]
        rep = cls._recipe_quality(recipe, voc, data_dir, split)
        if rep:
            metrics["quality"] = {k: rep[k] for k in ("utterances", "mean", "model_minus_griffin_lim")}
            lines.append(("quality", f"{work / 'quality.json'}, {work / 'quality.png'}, {work / 'quality_audio'}"))
        lines.append(("run", f"{run_dir}  (tensorboard --logdir {run_dir / 'tb'})"))
        recipe.finish(metrics, lines)
        return {"metrics": metrics, "sample": res, "train": summary}

    @staticmethod
    def _recipe_quality(recipe, voc, data_dir, split, name="quality") -> dict | None:
        """The recipe's quality report (``seqgen evaluate --quality``): the yardstick's eval utterances when
        the recipe has one for this source, else the first ``sample.quality_utterances`` of the valid split,
        into ``W/NAME.json``, ``W/NAME.png`` and ``W/NAME_audio/``.
        Without the ``[quality]`` extra: one line, and the recipe goes on."""
        from seqgen import quality as Q

        if Q.missing():
            print(f"quality stage skipped: the scorers are not installed ({', '.join(Q.missing())}): "
                  f"pip install -e '.[quality]'", file=sys.stderr)
            return None
        if split != "valid":
            print("quality stage skipped: the data has no valid split (nothing held out to score)", file=sys.stderr)
            return None
        work = recipe.work
        count = int(voc.config().get("sample", {}).get("quality_utterances", 24))
        ys = recipe.yardstick
        return voc.quality(data=data_dir, utterances=ys, subset="eval", max_utterances=count,
                           json_out=work / f"{name}.json", plot=work / f"{name}.png", audio_dir=work / f"{name}_audio")

    @classmethod
    def _distill_quality(cls, recipe, teacher, student, data_dir, split) -> dict | None:
        """The quality stage of the distillation recipe: the teacher (cached) and the student (parallel) each
        resynthesize the same utterances (``W/quality_teacher.*``, ``W/quality_student.*``), and the paired
        student-minus-teacher difference of every score gets its bootstrap 95% interval."""
        from seqgen.quality.report import paired_differences

        reps = {}
        for who, voc in (("teacher", teacher), ("student", student)):
            rep = cls._recipe_quality(recipe, voc, data_dir, split, name=f"quality_{who}")
            if rep is None:
                return None
            reps[who] = rep
        t_rows = {r["id"]: r["model"] for r in reps["teacher"]["rows"]}
        pairs = [(r["model"], t_rows[r["id"]]) for r in reps["student"]["rows"] if r["id"] in t_rows]
        diff = paired_differences([s for s, _ in pairs], [t for _, t in pairs], reps["student"]["seed"])
        out = {who: {"utterances": rep["utterances"], "mean": rep["mean"]["model"],
                     "model_minus_griffin_lim": rep["model_minus_griffin_lim"]} for who, rep in reps.items()}
        out["griffin_lim"] = reps["teacher"]["mean"]["griffin_lim"]
        out["recording"] = reps["teacher"]["mean"]["recording"]
        out["student_minus_teacher"] = diff
        return out

    @classmethod
    def _distill_recipe(cls, recipe) -> dict:
        from seqgen.utils.plots import read_metrics

        work = recipe.work
        t_over, s_over = recipe.split_overrides()
        data_dir = recipe.prepare(cls.kind)
        teacher_dir, student_dir = work / "teacher", work / "student"
        t_summary = recipe.train(2, recipe.config("teacher_"), data_dir, teacher_dir, overrides=t_over)
        s_summary = recipe.distill_student(3, recipe.config("student_"), teacher_dir, data_dir, student_dir, s_over)

        recipe.stage(4, "sample a held-out utterance: student (parallel) and teacher (cached)")
        ref_path, split = reference_clip(data_dir, work / "reference.wav",
                                         float(recipe.sample_conf.get("reference_seconds", 2.0)))
        student_res = sample(student_dir, work / "sample.wav", mel_from=ref_path, method=PARALLEL, plot=True)
        teacher_res = sample(teacher_dir, work / "teacher_sample.wav", mel_from=ref_path, method=CACHED)

        recipe.stage(5, "evaluate: teacher NLL on the valid split; distillation health of the final student")
        teacher = cls(teacher_dir)
        teacher_nll = teacher.evaluate(data_dir, split, max_windows=16, progress=False)
        health = next((r for r in reversed(read_metrics(student_dir / "metrics.jsonl") or []) if "valid_kl" in r), {})
        metrics = {
            "teacher": {"step": teacher.step, "valid_nll_bits_per_sample": teacher_nll["nll_bits_per_sample"],
                        "num_samples": teacher_nll["num_samples"], "split": split,
                        "cached_samples_per_sec": teacher_res["samples_per_sec"]},
            "student": {"step": int(student_res["step"]), **{k: v for k, v in health.items() if k.startswith("valid_")},
                        "parallel_samples_per_sec": student_res["samples_per_sec"]},
            "speedup_parallel_vs_cached": student_res["samples_per_sec"] / max(teacher_res["samples_per_sec"], 1e-9),
        }
        kl = health.get("valid_kl")
        recipe.stage(6, "speech quality of whole resyntheses: the teacher (cached) and the student (parallel)")
        quality = cls._distill_quality(recipe, teacher, cls(student_dir), data_dir, split)
        extra = []
        if quality:
            metrics["quality"] = quality
            t, s = quality["teacher"]["mean"], quality["student"]["mean"]
            extra = [("quality", f"{work / 'quality_teacher.json'}, {work / 'quality_student.json'} (PESQ-WB "
                                 f"teacher {t.get('pesq_wb', float('nan')):.2f}, student "
                                 f"{s.get('pesq_wb', float('nan')):.2f}, Griffin-Lim "
                                 f"{quality['griffin_lim'].get('pesq_wb', float('nan')):.2f})")]
        recipe.finish(metrics, [
            ("student sample", f"{work / 'sample.wav'} ({student_res['samples_per_sec']:.0f} samples/s, parallel)"),
            ("teacher sample", f"{work / 'teacher_sample.wav'} ({teacher_res['samples_per_sec']:.0f} samples/s, cached)"),
            ("plot", work / "sample.png"),
            ("metrics", f"{work / 'metrics.json'}" + (
                f"  (held-out KL {kl:.3f} nats/sample; teacher NLL of student "
                f"{health['valid_teacher_nll_student']:.3f} vs real {health['valid_teacher_nll_real']:.3f})"
                if kl is not None else "")),
            *extra,
            ("runs", f"{teacher_dir}, {student_dir}  (tensorboard --logdir {work})")])
        return {"metrics": metrics, "teacher": t_summary, "student": s_summary}


def reference_clip(data_dir, out_wav, seconds):
    """The first ``seconds`` of the first held-out utterance (train if there is no valid split),
    written to ``out_wav``; returns ``(path, split)``."""
    from seqgen.data import audio as A
    from seqgen.data import pipeline as D

    info = D.VocoderData(data_dir)
    split = "valid" if info.manifest["splits"]["valid"]["num_items"] else "train"
    ds = D.vocoder_eval_dataset(data_dir, split, window=max(info.hop, int(seconds * info.sample_rate)
                                                             // info.hop * info.hop), batch_size=1,
                                discrete=False)
    _, target, weight = next(iter(ds))
    ref = target[0][: int(weight[0].sum())]
    return A.save(out_wav, np.asarray(ref), info.sample_rate), split
