"""`seqgen evaluate --quality`: resynthesize whole utterances and score them beside their floor and ceiling.

For each utterance: the recording (cut to ``frames * hop`` samples at the run's rate), its own log-mel
computed with the run's features and normalized with the run's statistics, then

* ``model``: the run's resynthesis from that mel with its method (cached WaveNet, parallel student),
  temperature and seed; utterances go through the loop in batches of similar length (``batch_size``),
  each padded at its end as the upsampler pads a lone mel (so padding changes no kept sample), the
  ``k``-th seeded ``seed + k``: its audio is that of the utterance alone
  (:func:`seqgen.tasks.vocoder.generate_many`);
* ``griffin_lim``: :func:`seqgen.quality.griffin_lim.griffin_lim` of the same features (the floor), its
  random initial phase from ``seed``;
* ``recording``: the recording's own DNSMOS and voiced fraction (the ceiling).

The floor and the ceiling do not depend on the model: they are computed once per (recording, features,
iterations, seed) and kept in ``$SEQGEN_CACHE/quality`` (default ``~/.cache/seqgen/quality``).

Scores are :mod:`seqgen.quality.metrics`'; the report has per-utterance rows, the means, and the paired
model-minus-Griffin-Lim difference of every score with a bootstrap 95% interval
(:mod:`seqgen.quality.bootstrap`).
"""
from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

from seqgen.errors import SeqgenError
from seqgen.quality import bootstrap, metrics, require
from seqgen.quality import griffin_lim as gl

SYSTEMS = ("model", "griffin_lim", "recording")


# --------------------------------------------------------------------------- utterances


def _is_prepared(data) -> bool:
    return (pathlib.Path(data) / "manifest.json").is_file()


def _raw_utterances(src, ids, sample_rate):
    from data_prep.vocoder import discover
    from seqgen.data import audio as A

    if not pathlib.Path(src).exists():
        raise SeqgenError(f"--data {src}: no such file or folder (give prepared data or an LJSpeech-layout folder)")
    if ids is None:
        raise SeqgenError(f"--data {src} is not prepared data: name the utterances with --utterances LIST")
    items, _ = discover(str(src), pathlib.Path("."))
    by_id = {it["id"]: it for it in items}
    out = []
    for uid in ids:
        if uid not in by_id:
            raise SeqgenError(f"--utterances: {uid} is not in --data {src}")
        out.append({"id": uid, "speaker": None, "audio": A.load(by_id[uid]["path"], sample_rate)})
    return out


def select_utterances(run_info, data, ids=None, max_utterances=24):
    """``[{"id", "speaker", "audio"}]`` in list order: the listed ids, else the first ``max_utterances`` of the
    prepared data's valid split.  Audio at the run's rate, not yet cut to whole hops."""
    from seqgen.data import pipeline as D

    params = run_info["data"]["features"]
    if not _is_prepared(data):
        return _raw_utterances(data, ids, int(params["sample_rate"]))
    v = D.VocoderData(data)
    if v.features.to_dict() != params:
        raise SeqgenError(f"--data {data}: its features {v.features.to_dict()} are not the run's {params}; "
                          f"use the run's prepared data or a raw corpus folder")
    if ids is None:
        listed = v.manifest["splits"]["valid"].get("ids")
        found = list(D.vocoder_utterances(data, ("valid",), ids=listed))
        if not found:
            raise SeqgenError(f"--data {data}: no valid split to score; name the utterances with --utterances LIST")
        return found[: int(max_utterances) or None]
    got = {u["id"]: u for u in D.vocoder_utterances(data, ids=ids)}
    absent = [i for i in ids if i not in got]
    if absent:
        raise SeqgenError(f"--utterances: {len(absent)} of {len(ids)} utterances are not in --data {data} "
                          f"(first: {absent[0]})")
    return [got[i] for i in ids]


def trained_on(run_info, ids) -> list[str] | None:
    """The ids the run's training split holds (None when its data does not record split ids)."""
    from seqgen.data.manifest import read_manifest

    try:
        manifest = read_manifest(run_info["data"]["data_dir"], "vocoder")
    except Exception:
        return None
    train = manifest.get("splits", {}).get("train", {}).get("ids")
    if train is None:
        return None
    train = set(train)
    return [i for i in ids if i in train]


# --------------------------------------------------------------------------- resynthesis


def resynthesize(model, utts, speakers, method, temperature, seed, batch_size=8, progress=None, chunk_size=4096,
                 top_p=1.0):
    """Audio for each utterance's normalized mel (``utts[k]["mel"]``): :func:`seqgen.tasks.vocoder.generate_many`,
    utterance ``k`` seeded ``seed + k`` whatever its batch.  Returns ``(list, seconds)``."""
    from seqgen.tasks.vocoder import generate_many

    return generate_many(model, [u["mel"] for u in utts], speakers, method, temperature, int(seed), batch_size,
                         chunk_size, progress, top_p=top_p)


# --------------------------------------------------------------------------- floor and ceiling

#: bump when a score's definition changes: cached floors and ceilings are recomputed
CACHE_VERSION = 1


def cache_dir() -> pathlib.Path:
    from seqgen.utils.cache import cache_dir as shared

    return shared("quality")


def _floor_and_ceiling(ref, log_mel, params, iterations, seed):
    """Griffin-Lim of the recording's features with its scores, and the recording's own scores. They depend
    on the recording, the features, the iterations and the seed only, never on the model, so they are kept
    in :func:`cache_dir` (keyed by a hash of all of these) and an ablation table pays for them once."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(ref.audio, np.float32).tobytes())
    h.update(json.dumps([params.to_dict(), int(iterations), int(seed), CACHE_VERSION], sort_keys=True).encode())
    path = cache_dir() / f"{h.hexdigest()}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                return np.asarray(z["audio"], np.float32), meta["scores"], meta["errors"], meta["own"]
        except Exception:  # a damaged cache entry is recomputed
            pass
    floor = gl.griffin_lim(log_mel, params, iterations, seed=seed)
    scores, errors = ref.score(floor)
    own = ref.own_scores()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, audio=floor, meta=json.dumps({"scores": scores, "errors": errors, "own": own}))
        tmp.replace(path)
    except OSError:  # a read-only home still gets its report
        pass
    return floor, scores, errors, own


# --------------------------------------------------------------------------- the report


def _means(rows, system):
    keys = sorted({k for r in rows for k in r[system]})
    out = {}
    for k in keys:
        vals = np.asarray([r[system].get(k, np.nan) for r in rows], np.float64)
        ok = np.isfinite(vals)
        out[k] = float(vals[ok].mean()) if ok.any() else float("nan")
    return out


def _clean(obj):
    """NaN -> None so the JSON is strict."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def evaluate_quality(run, data=None, utterances=None, subset="eval", max_utterances=24, method=None,
                     temperature=None, seed=None, batch_size=8, gl_iterations=gl.ITERATIONS, json_out=None,
                     plot=None, audio_dir=None, quiet=False, top_p=None) -> dict:
    """The quality report of a vocoder run (see the module docstring); writes ``json_out``, ``plot`` (PNG)
    and, with ``audio_dir``, each utterance's ``ID.model.wav`` and ``ID.griffin_lim.wav``.  ``run``: a run
    directory or its loaded :class:`~seqgen.tasks.vocoder.Vocoder` (``seqgen.load(RUN).quality(...)``)."""
    require()
    from seqgen.bench.environment import _cpu_model
    from seqgen.core.methods import CACHED, PARALLEL
    from seqgen.data import audio as A
    from seqgen.models.registry import STUDENT_TYPES
    from seqgen.quality import yardstick
    from seqgen.tasks.base import load
    from seqgen.tasks.vocoder import _check_method
    from seqgen.utils.progress import progress as pbar

    task = load(run) if isinstance(run, (str, pathlib.Path)) else run
    run_dir = task.run.path
    info = task.info
    cfg = task.run.config()
    scfg = cfg.get("sample", {})
    params = A.FeatureParams.from_dict(info["data"]["features"])
    sr, hop = params.sample_rate, params.hop_length
    mean = np.asarray(info["data"]["stats"]["mel_mean"], np.float32)
    std = np.asarray(info["data"]["stats"]["mel_std"], np.float32)
    model_type = info.get("model_type", "wavenet")
    method = method or scfg.get("method", PARALLEL if model_type in STUDENT_TYPES else CACHED)
    _check_method(run_dir, model_type, method)
    temps = [float(t) for t in (temperature if isinstance(temperature, (list, tuple))
                                else [scfg.get("temperature", 1.0) if temperature is None else temperature])]
    nuclei = [float(p) for p in (top_p if isinstance(top_p, (list, tuple))
                                 else [scfg.get("top_p", 1.0) if top_p is None else top_p])]
    if len(temps) * len(nuclei) > 1:
        return _choose_temperature_on_dev(task, [(t, p) for t in temps for p in nuclei], data, utterances, subset,
                                          max_utterances, method, seed, batch_size, gl_iterations, json_out, plot,
                                          audio_dir, quiet)
    temperature, top_p = temps[0], nuclei[0]
    if top_p < 1.0 and model_type in STUDENT_TYPES:
        raise SeqgenError("--top-p samples a categorical head's nucleus; a Parallel WaveNet student has none")
    seed = int(scfg.get("seed", 0) if seed is None else seed)
    data = task.data_dir(data)

    ids = yardstick.read(utterances, subset) if utterances else None
    utts = select_utterances(info, data, ids, max_utterances)
    for u in utts:
        frames = len(u["audio"]) // hop
        if frames == 0:
            raise SeqgenError(f"utterance {u['id']}: shorter than one hop ({hop} samples)")
        u["audio"] = np.asarray(u["audio"][: frames * hop], np.float32)
        u["log_mel"] = A.log_mel(u["audio"], params)
        u["mel"] = ((u["log_mel"] - mean) / std).astype(np.float32)
    seen = trained_on(info, [u["id"] for u in utts])
    if seen and not quiet:
        print(f"warning: {len(seen)} of the {len(utts)} utterances are in {run_dir}'s training split "
              f"(first: {seen[0]}); these figures are not held out", file=sys.stderr)

    model = task.model
    total = sum(len(u["audio"]) for u in utts)
    bar = pbar(total=total, desc=f"resynthesize ({method})", unit="sample", disable=quiet or None)
    state = [0]

    def on_progress(d):
        d = min(int(d), total)
        bar.update(max(0, d - state[0]))
        state[0] = max(state[0], d)

    wavs, secs = resynthesize(model, utts, [u.get("speaker") for u in utts], method, temperature, seed,
                              batch_size, on_progress, top_p=top_p)
    bar.close()

    rows = []
    bar = pbar(total=len(utts), desc="score (PESQ, STOI, DNSMOS, F0, MCD)", unit="utt", disable=quiet or None)
    for k, (u, wav) in enumerate(zip(utts, wavs)):
        ref = metrics.Reference(u["audio"], sr, params)
        floor, g_scores, g_err, own = _floor_and_ceiling(ref, u["log_mel"], params, gl_iterations, seed)
        m_scores, m_err = ref.score(wav)
        row = {"id": u["id"], "seconds": round(len(u["audio"]) / sr, 3), "model": m_scores, "griffin_lim": g_scores,
               "recording": own}
        if m_err or g_err:
            row["errors"] = {**{f"model.{k}": v for k, v in m_err.items()},
                             **{f"griffin_lim.{k}": v for k, v in g_err.items()}}
        rows.append(row)
        if audio_dir:
            A.save(pathlib.Path(audio_dir) / f"{u['id']}.model.wav", wav, sr)
            A.save(pathlib.Path(audio_dir) / f"{u['id']}.griffin_lim.wav", floor, sr)
        if k == 0:
            first = (u["id"], u["audio"], floor, wav)
        bar.update(1)
    bar.close()

    diffs = paired_differences([r["model"] for r in rows], [r["griffin_lim"] for r in rows], seed)
    report = {
        "run": str(run_dir), "step": task.step, "checkpoint": task.checkpoint, "model_type": model_type,
        "method": method, "temperature": temperature, "top_p": top_p, "seed": seed, "data": str(data),
        "utterances": {"list": str(utterances) if utterances else None, "subset": subset if utterances else "valid",
                       "count": len(rows), "seconds": round(sum(r["seconds"] for r in rows), 3),
                       "trained_on": seen},
        "resynthesis": {"batch_size": int(batch_size), "wall_seconds": round(secs, 3),
                        "samples_per_sec": total / max(secs, 1e-9)},
        "griffin_lim": {"iterations": int(gl_iterations), "seed": seed},
        "host": _cpu_model(),
        "definitions": "seqgen.quality.metrics",
        "higher_is_better": metrics.HIGHER_IS_BETTER,
        "mean": {s: _means(rows, s) for s in SYSTEMS},
        "model_minus_griffin_lim": diffs,
        "rows": rows,
    }
    report = _clean(report)
    if json_out:
        p = pathlib.Path(json_out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(report, indent=2) + "\n")
    if plot:
        from seqgen.utils.plots import quality_png

        report["plot"] = str(quality_png(plot, report, first, sr))
    if not quiet:
        print(summary_table(report), file=sys.stderr)
    return report


def paired_differences(a_scores, b_scores, seed) -> dict:
    """``a - b`` of every score over paired utterances (lists of per-utterance score dicts, same order), each
    with its bootstrap 95% interval (:func:`seqgen.quality.bootstrap.paired_difference`)."""
    return {key: bootstrap.paired_difference([a.get(key, np.nan) for a in a_scores],
                                             [b.get(key, np.nan) for b in b_scores], seed=seed)
            for key in metrics.HIGHER_IS_BETTER}


#: what picks the temperature among several on the dev utterances (higher is better; ties: the next key)
DEV_CRITERION = ("pesq_wb", "dnsmos_ovrl")


def _choose_temperature_on_dev(task, candidates, data, utterances, subset, max_utterances, method, seed,
                               batch_size, gl_iterations, json_out, plot, audio_dir, quiet):
    """Score the yardstick's ``dev`` rows at each ``(temperature, top_p)`` candidate, keep the best by
    :data:`DEV_CRITERION`, then report ``subset`` with it; the report's ``temperature_choice`` keeps the dev
    figures."""
    from seqgen.quality import yardstick

    if not utterances:
        raise SeqgenError("several temperatures are chosen on the dev utterances of a yardstick list: give "
                          "--utterances recipes/ljspeech_vocoder/yardstick.tsv")
    if subset == "dev":
        raise SeqgenError("the temperature is chosen on the dev utterances: report another subset (eval)")
    if not yardstick.read(utterances, "dev"):
        raise SeqgenError(f"{utterances}: no dev rows to choose the temperature on")
    dev = {}
    for t, p in candidates:
        r = evaluate_quality(task, data, utterances, "dev", max_utterances, method, t, seed, batch_size,
                             gl_iterations, quiet=True, top_p=p)
        dev[(t, p)] = {k: r["mean"]["model"].get(k) for k in ("pesq_wb", "stoi", "dnsmos_ovrl", "mcd_db",
                                                              "log_mel_l1")}
        if not quiet:
            print(f"dev T={t} top-p={p}: " + ", ".join(f"{k} {v:.3f}" for k, v in dev[(t, p)].items()
                                                     if v is not None), file=sys.stderr)

    def rank(t):
        return tuple(-np.inf if dev[t].get(k) is None or not np.isfinite(dev[t][k]) else dev[t][k]
                     for k in DEV_CRITERION)

    best = max(candidates, key=rank)
    if not quiet:
        print(f"temperature {best[0]}, top-p {best[1]} (best of {len(candidates)} on the dev utterances by "
              f"{DEV_CRITERION[0]})", file=sys.stderr)
    report = evaluate_quality(task, data, utterances, subset, max_utterances, method, best[0], seed, batch_size,
                              gl_iterations, None, plot, audio_dir, quiet, top_p=best[1])

    def name(c):  # "0.8" when top-p is off (as before), else "0.8,top_p=0.95"
        return f"{c[0]}" if c[1] >= 1.0 else f"{c[0]},top_p={c[1]}"

    temps = sorted({t for t, _ in candidates})
    report["temperature_choice"] = _clean({
        "candidates": temps if all(p >= 1.0 for _, p in candidates) else [list(c) for c in candidates],
        "chosen": best[0] if best[1] >= 1.0 else list(best), "temperature": best[0], "top_p": best[1],
        "criterion": f"dev mean {' then '.join(DEV_CRITERION)} (higher is better)",
        "dev": {name(c): v for c, v in dev.items()}})
    if json_out:
        p = pathlib.Path(json_out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(report, indent=2) + "\n")
    return report


def summary_table(report) -> str:
    """The means and paired differences as an aligned text table."""
    m = report["mean"]
    nucleus = "" if (report.get("top_p") or 1.0) >= 1.0 else f", top-p {report['top_p']}"
    lines = [f"{report['run']} step {report['step']} ({report['method']}, T={report['temperature']}{nucleus}) on "
             f"{report['utterances']['count']} utterances ({report['utterances']['seconds']:.1f} s)",
             f"{'score':<16}{'model':>9}{'Griffin-Lim':>13}{'recording':>11}   model - GL [95% CI]"]
    for key, higher in metrics.HIGHER_IS_BETTER.items():
        d = report["model_minus_griffin_lim"][key]

        def f(v):
            return f"{v:.3f}" if isinstance(v, (int, float)) else "-"

        ci = f"{f(d['mean'])} [{f(d['low'])}, {f(d['high'])}]"
        if d.get("n") is not None and d["n"] < report["utterances"]["count"]:
            ci += f"  (n={d['n']}: the others have no value for both)"
        lines.append(f"{key + (' ^' if higher else ' v'):<16}{f(m['model'].get(key)):>9}"
                     f"{f(m['griffin_lim'].get(key)):>13}{f(m['recording'].get(key)):>11}   {ci}")
    lines.append("(^ higher is better, v lower is better)")
    return "\n".join(lines)
