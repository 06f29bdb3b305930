"""Probability density distillation: a Parallel WaveNet student from a frozen WaveNet teacher.

Objective (per audio sample, nats; ``P_S`` the student, ``P_T`` the teacher)::

    KL(P_S || P_T) = H(P_S, P_T) - H(P_S)

* ``H(P_S)``: analytic.  Given the past, step ``t`` of the student is a logistic
  (Gaussian) with scale ``S_t``, so ``H(P_S) = E[sum_t log S_t] + T * H(base)``;
  the expectation is taken over the one student sample of the batch row.
* ``H(P_S, P_T) = sum_t E_{x<t ~ P_S} E_{x_t ~ P_S(.|x<t)} [-log p_T(x_t | x<t)]``:
  the student draws ONE sample ``x``; the frozen teacher runs teacher-forced on
  it (one parallel pass, its input is ``x`` shifted by one) and gives its
  per-step distribution at every ``t`` given ``x<t``; the inner expectation is
  estimated with ``mc_samples`` fresh draws ``x'_t = M_t + S_t * eps`` per step
  from the student's own per-step distribution, each scored by the teacher's
  continuous log density.  The estimate is unbiased, and differentiable
  through the draws (reparameterization) and through the teacher's input.
* ``kl: closed_form`` (ClariNet, Gaussian student and Gaussian teacher): the
  inner expectation is the per-step Gaussian KL in closed form, plus
  ``log_scale_weight * (log sigma_T - log sigma_S)^2``.
* Power loss: ``mean over frames, sum over bins (|STFT(x)| - |STFT(real)|)^2`` of
  the student's sample against the real audio whose mel conditions it (the
  STFT normalized so white noise of variance v has ``E|X|^2 = v``).
* Contrastive term (optional, ``contrastive_weight`` gamma > 0):
  ``- gamma * KL(P_S(c1) || P_T(c2))`` with ``c2`` the mel of another batch row.

The teacher is frozen: ``trainable = False``, so its weights are not trainable
variables of anything and never reach the optimizer.  It is attached to the
student as a plain (untracked) attribute and is not saved with the student's
checkpoints; a distillation run records the teacher run in ``run.json``.
"""
from __future__ import annotations

import math
import pathlib
import time

import numpy as np

from seqgen.errors import ConfigError, SeqgenError
from seqgen.train.loop import TrainLoop

__all__ = ["Distillation", "attach", "power_loss", "health_check", "DistillLoop", "distill", "load_teacher",
           "METRIC_NAMES"]

#: per-batch values reported in the fit logs (and metrics.jsonl, TensorBoard train/*)
METRIC_NAMES = ("objective", "kl", "cross_entropy", "entropy", "power", "teacher_nll_student", "log_scale_reg",
                "contrastive_kl")


def power_loss(x, y, n_fft=1024, hop=None):
    """``mean_{batch, frames} sum_bins (|STFT x| - |STFT y|)^2`` for ``x, y [B, T]`` (Hann window)."""
    from keras import ops

    n_fft = int(n_fft)
    length = x.shape[1]
    if length is not None:  # an STFT longer than the clip: use the largest power of two that fits
        while n_fft > 16 and n_fft > length:
            n_fft //= 2
    hop = int(hop or max(1, n_fft // 4))
    norm = math.sqrt(3.0 * n_fft / 8.0)  # sqrt(sum of the squared periodic Hann window)

    def mag(v):
        re, im = ops.stft(v, n_fft, hop, n_fft, window="hann", center=True)
        return ops.sqrt(ops.square(re) + ops.square(im) + 1e-10) / norm

    d = mag(x) - mag(ops.cast(y, x.dtype))
    return ops.mean(ops.sum(ops.square(d), axis=-1))


class Distillation:
    """The distillation objective of a student against a frozen teacher (see the module docstring).

    Args:
        teacher: a :class:`~seqgen.models.wavenet.WaveNet` with a continuous output
            distribution (``gaussian`` or ``mixture_logistic``).
        kl: ``"mc"`` or ``"closed_form"`` (ClariNet; Gaussian student and teacher).
        mc_samples: draws per step for the cross-entropy (``mc``).
        power_weight, power_n_fft: the power loss (weight 0 = off).
        contrastive_weight: gamma of the contrastive term (0 = off).
        log_scale_weight: ClariNet's log-scale regularizer (``closed_form`` only).
    """

    def __init__(self, teacher, kl="mc", mc_samples=4, power_weight=1.0, power_n_fft=1024,
                 contrastive_weight=0.0, log_scale_weight=4.0):
        dist = getattr(teacher, "distribution", None)
        if dist is None or dist.input_is_discrete or not hasattr(dist, "log_density"):
            raise ConfigError(f"the teacher must be a WaveNet with a continuous output distribution (gaussian or "
                              f"mixture_logistic), not {dist!r}")
        if getattr(teacher, "pre_emphasis", 0.0):
            raise ConfigError(f"the teacher models pre-emphasized audio (model.pre_emphasis "
                              f"{teacher.pre_emphasis}); distillation needs a teacher without it: train one with "
                              f"model.pre_emphasis 0")
        if kl not in ("mc", "closed_form"):
            raise ConfigError(f"distill.kl must be mc or closed_form, got {kl!r}")
        if kl == "closed_form" and dist.type_name != "gaussian":
            raise ConfigError(f"distill.kl: closed_form needs a Gaussian teacher (ClariNet); this teacher is "
                              f"{dist.type_name}: use kl: mc")
        teacher.trainable = False
        self.teacher = teacher
        self.kl = kl
        self.mc_samples = int(mc_samples)
        self.power_weight = float(power_weight)
        self.power_n_fft = int(power_n_fft) or 1024
        self.contrastive_weight = float(contrastive_weight)
        self.log_scale_weight = float(log_scale_weight)
        import keras

        # per-batch values: the training callback resets the metrics after every batch
        self.metrics = [keras.metrics.Mean(name=n) for n in METRIC_NAMES]

    def check_student(self, student):
        t = self.teacher
        if self.kl == "closed_form" and student.family != "gaussian":
            raise ConfigError("distill.kl: closed_form needs a Gaussian student: set model.family: gaussian")
        if int(t.cond_channels) != int(student.cond_channels) or int(t.hop_length) != int(student.hop_length):
            raise ConfigError(f"teacher and student conditioning differ: teacher {t.cond_channels} mel bands, hop "
                              f"{t.hop_length}; student {student.cond_channels}, hop {student.hop_length}")
        if not t.cond_channels:
            raise ConfigError("the teacher is not mel-conditioned; distillation needs a mel-conditioned teacher")
        if int(t.num_speakers) != int(student.num_speakers):
            raise ConfigError(f"teacher has {t.num_speakers} speakers, the student {student.num_speakers}: set "
                              f"model.speaker_conditioning like the teacher's")

    # -------------------------------------------------------------- the terms
    def teacher_params(self, x_prev, mel, speaker=None):
        inputs = {"x": x_prev, "mel": mel}
        if self.teacher.num_speakers:
            inputs["speaker"] = speaker
        return self.teacher(inputs, training=False)

    def terms(self, student, inputs, real, weight, outputs, seed=None):
        """All loss terms (scalars, nats per sample) for a student forward ``outputs``.

        ``inputs``: the student's inputs (``mel``, ``speaker``); ``real [B, T]``: the
        audio the mel was computed from (for the power loss; None = no power loss);
        ``weight [B, T]``: 1 on real samples, 0 on padding (None = all ones);
        ``seed``: seed of the Monte Carlo draws (None: the student's generator).
        """
        from keras import ops

        x, loc, log_scale = outputs["x"], outputs["loc"], outputs["log_scale"]
        mel, spk = inputs.get("mel"), inputs.get("speaker")
        w = ops.ones_like(x) if weight is None else ops.cast(weight, x.dtype)
        total_w = ops.maximum(ops.sum(w), 1.0)

        def wmean(v):
            return ops.sum(ops.cast(v, x.dtype) * w) / total_w

        x_prev = ops.pad(x[:, :-1], [[0, 0], [1, 0]])          # teacher-forced on the student's sample
        params = self.teacher_params(x_prev, mel, spk)
        dist = self.teacher.distribution
        entropy = student.entropy(outputs)
        out = {"entropy": wmean(entropy)}
        if self.kl == "mc":
            shape = ops.shape(loc)
            eps = student.base_noise((shape[0], shape[1], self.mc_samples), seed=seed)
            draws = ops.expand_dims(loc, -1) + ops.expand_dims(ops.exp(log_scale), -1) * eps

            def cross_entropy(p):
                return -ops.mean(dist.log_density(ops.expand_dims(p, 2), draws), axis=-1)

            ce = cross_entropy(params)
            out["log_scale_reg"] = ops.zeros((), x.dtype)
        else:
            def cross_entropy(p):
                mu_p, ls_p = dist.split_params(p)
                return (ls_p + 0.5 * math.log(2.0 * math.pi)
                        + (ops.exp(2.0 * log_scale) + ops.square(mu_p - loc)) / (2.0 * ops.exp(2.0 * ls_p)))

            ce = cross_entropy(params)
            _, ls_p = dist.split_params(params)
            out["log_scale_reg"] = wmean(ops.square(ls_p - log_scale))
        out["cross_entropy"] = wmean(ce)
        out["kl"] = out["cross_entropy"] - out["entropy"]
        out["teacher_nll_student"] = wmean(-dist.log_density(params, x))
        objective = out["kl"]
        if self.kl == "closed_form":
            objective = objective + self.log_scale_weight * out["log_scale_reg"]
        if real is not None and self.power_weight > 0:
            out["power"] = power_loss(x * w, ops.cast(real, x.dtype) * w, self.power_n_fft)
            objective = objective + self.power_weight * out["power"]
        else:
            out["power"] = ops.zeros((), x.dtype)
        if self.contrastive_weight > 0:
            other = self.teacher_params(x_prev, ops.roll(mel, 1, axis=0),
                                        None if spk is None else ops.roll(spk, 1, axis=0))
            out["contrastive_kl"] = wmean(cross_entropy(other)) - out["entropy"]
            objective = objective - self.contrastive_weight * out["contrastive_kl"]
        else:
            out["contrastive_kl"] = ops.zeros((), x.dtype)
        out["objective"] = objective
        return out

    def loss(self, student, x, y, y_pred, sample_weight):
        """``compute_loss`` of an attached student: the objective; the terms go to the metrics."""
        terms = self.terms(student, x, y, sample_weight, y_pred)
        for metric in self.metrics:
            metric.update_state(terms[metric.name])
        return terms["objective"]


def attach(student, teacher, **kwargs):
    """Freeze ``teacher`` and make it the distillation target of ``student``
    (``student.compute_loss`` is then the objective; ``kwargs``: :class:`Distillation`'s).
    Returns the :class:`Distillation`."""
    d = teacher if isinstance(teacher, Distillation) else Distillation(teacher, **kwargs)
    d.check_student(student)
    student._distillation = d
    return d


# --------------------------------------------------------------------------- health checks


def health_check(student, distillation, inputs, real, weight=None, seed=0):
    """Distillation health on one batch, with fixed noise (numpy in, floats out).

    Returns ``{"kl", "cross_entropy", "entropy", "power", "teacher_nll_student",
    "teacher_nll_real"}`` (nats per sample) and the student's waveform
    ``"audio" [B, T]``.  ``teacher_nll_*`` use the teacher's continuous log
    density: the student's sample and the real audio, each teacher-forced.
    """
    from keras import ops

    mel = np.asarray(inputs["mel"], np.float32)
    feed = {"mel": mel}
    if student.num_speakers:
        feed["speaker"] = np.asarray(inputs["speaker"], np.int32)
    length = mel.shape[1] * student.hop_length
    feed["noise"] = student.base_noise((mel.shape[0], length), seed=int(seed))
    outputs = student(feed, training=False)
    terms = distillation.terms(student, feed, real, weight, outputs, seed=int(seed) + 1)
    res = {k: float(ops.convert_to_numpy(terms[k])) for k in
           ("kl", "cross_entropy", "entropy", "power", "teacher_nll_student")}
    real = np.asarray(real, np.float32)
    real_prev = np.concatenate([np.zeros_like(real[:, :1]), real[:, :-1]], axis=1)
    params = distillation.teacher_params(real_prev, mel, feed.get("speaker"))
    nll = np.asarray(ops.convert_to_numpy(-distillation.teacher.distribution.log_density(params, real)), np.float64)
    w = np.ones_like(nll) if weight is None else np.asarray(weight, np.float64)
    res["teacher_nll_real"] = float((nll * w).sum() / max(w.sum(), 1.0))
    res["audio"] = np.clip(np.asarray(ops.convert_to_numpy(outputs["x"]), np.float32), -1.0, 1.0)
    return res


# --------------------------------------------------------------------------- the run


def load_teacher(teacher_dir):
    """``(teacher model, step, run info)`` of a teacher run; a one-line error when it cannot be one."""
    from seqgen.runs import Run

    run = Run(teacher_dir)
    info = run.info()
    if info.get("model_type") != "wavenet":
        raise SeqgenError(f"--teacher {teacher_dir}: a {info.get('model_type')} run; the teacher must be a "
                          f"WaveNet run made by `seqgen train`")
    dist = (run.config().get("model") or {}).get("distribution") or {"type": "categorical"}
    if dist.get("type", "categorical") not in ("gaussian", "mixture_logistic"):
        raise SeqgenError(f"--teacher {teacher_dir}: its output distribution is {dist.get('type')}; distillation "
                          f"needs a continuous teacher (model.distribution.type gaussian or mixture_logistic)")
    model, step, _ = run.load_model(use_ema=True, compile=False)
    return model, step, info


class DistillLoop(TrainLoop):
    """`seqgen distill`: TrainLoop (checkpoints, resume, signals, NaN rollback,
    TensorBoard, metrics.jsonl, loss.png) with a student and a frozen teacher."""

    command = "distill"
    log_keys = METRIC_NAMES[1:]

    def __init__(self, config_path, teacher_dir, data_dir, out_dir, max_steps=None, max_minutes=None,
                 overrides=(), resume=False, quiet=False):
        super().__init__(config_path, data_dir, out_dir, max_steps, max_minutes, overrides, resume, quiet)
        if teacher_dir is None and resume and self.run.exists():
            teacher_dir = self.run.info().get("teacher", {}).get("run")
        if teacher_dir is None:
            raise ConfigError("--teacher RUN is needed (a WaveNet run with a continuous output, from `seqgen train`)")
        self.teacher_dir = pathlib.Path(teacher_dir)
        self.health = None

    def _check_model_type(self, model_type):
        from seqgen.models.registry import STUDENT_TYPES

        if model_type not in STUDENT_TYPES:
            raise ConfigError(f"model.type {model_type}: `seqgen distill` trains a student (model.type "
                              f"{', '.join(sorted(STUDENT_TYPES))}); train a {model_type} with `seqgen train`")

    def _build(self):
        self.teacher, self.teacher_step, tinfo = load_teacher(self.teacher_dir)
        from seqgen.tasks.base import task_for_model_type

        self.task = task_for_model_type(self.cfg["model"]["type"])
        data = self.task.data_info(self.data_dir)
        tdata = tinfo["data"]
        for key in ("sample_rate", "hop_length", "n_mels"):
            if data[key] != tdata[key]:
                raise ConfigError(f"--data {self.data_dir}: {key} {data[key]} differs from the teacher's data "
                                  f"({tdata[key]} in {self.teacher_dir}/run.json); prepare the data alike")
        if np.max(np.abs(np.asarray(data["stats"]["mel_mean"]) - np.asarray(tdata["stats"]["mel_mean"]))) > 1e-3:
            self._log("warning: the mel normalization of --data differs from the teacher's data; the teacher sees "
                      "the mels as normalized by this data's statistics")
        super()._build()
        self._log(f"teacher {self.teacher_dir} (step {self.teacher_step}): "
                  f"{self.teacher.count_params():,} parameters, {self.teacher.distribution!r}, frozen")

    def _extra_info(self):
        return {"teacher": {"run": str(self.teacher_dir.resolve()), "step": int(self.teacher_step)}}

    def _setup_model(self, model):
        dc = dict(self.cfg["distill"])
        n_fft = int(dc.pop("power_n_fft")) or int(self.data_info["features"].get("n_fft", 1024))
        self.distillation = attach(model, self.teacher, power_n_fft=n_fft, **dc)

    def _local_dataset(self, step, batch_size, pipeline):
        from seqgen.data import pipeline as D

        return D.batches_for_fit(D.vocoder_dataset(self.data_dir, "train", int(self.cfg["data"]["window"]),
                                                   int(batch_size), seed=self.data_seed(step, pipeline),
                                                   discrete=False, silence_class=0.0))

    # -- logging hooks
    def batch_loss(self, logs):
        return float(logs.get("objective", float("nan"))) if logs else float("nan")

    def loss_fields(self, loss):
        return {"objective": loss}

    def describe_loss(self, loss):
        return f"{loss:.4f} (objective, nats/sample)"

    def curves_png(self, metrics_path, png_path):
        from seqgen.utils.plots import distill_curves_png

        return distill_curves_png(metrics_path, png_path)

    def _health_batch(self):
        if self.health is None:
            from seqgen.data import pipeline as D

            info = D.VocoderData(self.data_dir)
            secs = max(float(self.cfg["train"]["audio_seconds"]), 0.25)
            frames = max(4, int(secs * info.sample_rate) // info.hop)
            split = "valid" if info.manifest["splits"].get("valid", {}).get("num_items") else "train"
            ds = D.vocoder_eval_dataset(self.data_dir, split, frames * info.hop, 2, discrete=False, silence_class=0.0)
            inputs, target, weight = next(iter(ds))
            self.health = (dict(inputs), target, weight, split)
        return self.health

    def validate(self, state, model):
        """Validation of a distillation: KL, teacher NLL of the student's sample vs of the real
        audio on a fixed held-out batch with fixed noise; the spectrograms side by side."""
        from seqgen.utils import plots

        inputs, real, weight, split = self._health_batch()
        res = health_check(model, self.distillation, inputs, real, weight, seed=0)
        audio = res.pop("audio")
        rec = {"step": state.step, **{f"valid_{k}": v for k, v in res.items()}, "time": time.time() - self.t0}
        state.write(rec)
        state.summary.update({k: v for k, v in rec.items() if k.startswith("valid_")})
        state.summary["valid_step"] = state.step
        sr = int(self.data_info["sample_rate"])
        n = int(weight[0].sum())
        png = None
        try:
            png = plots.compare_png(real[0, :n], audio[0, :n], sr,
                                    self.run.path / "samples" / f"step-{state.step:08d}.png",
                                    title=f"student step {state.step}: real (top) vs parallel sample ({split})")
            from seqgen.data import audio as A

            A.save(self.run.path / "samples" / f"step-{state.step:08d}.wav", audio[0, :n], sr)
        except Exception as e:  # never let a figure kill training
            self._log(f"sample figure skipped ({type(e).__name__}: {e})")
        for k, v in res.items():
            self.writer.scalar(f"valid/{k}", v, state.step)
        self.writer.audio("samples/student", audio[0, :n], sr, state.step)
        self.writer.audio("samples/real", real[0, :n], sr, state.step)
        if png is not None:
            self.writer.image("samples/spectrograms", png, state.step)
        state.note(f"step {state.step}: KL {res['kl']:.3f} nats/sample (H(S,T) {res['cross_entropy']:.3f}, "
                   f"H(S) {res['entropy']:.3f}); teacher NLL of student {res['teacher_nll_student']:.3f} vs real "
                   f"{res['teacher_nll_real']:.3f}; power {res['power']:.4f}")


def distill(config_path, teacher_dir, data_dir, out_dir, max_steps=None, max_minutes=None, overrides=(),
            resume=False, quiet=False) -> dict:
    loop = DistillLoop(config_path, teacher_dir, data_dir, out_dir, max_steps, max_minutes, overrides, resume, quiet)
    return loop.run_training()
