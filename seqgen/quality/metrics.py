"""The scores of one utterance: intrusive (against its recording) and non-intrusive.

Definitions (frozen: a report is only comparable with another made with the same ones):

* ``pesq_wb``: ITU-T P.862.2 wide-band MOS-LQO (``pesq``, mode ``wb``) of both signals resampled to
  16 kHz (soxr); 1.0 to 4.64.  NaN (with the reason in ``errors``) when PESQ finds no speech.
* ``stoi``: short-time objective intelligibility (``pystoi``, not extended) at 16 kHz; 0 to 1.
* ``dnsmos_ovrl``, ``dnsmos_sig``, ``dnsmos_bak``: DNSMOS P.835 (``speechmos``' bundled ONNX models
  run with ``onnxruntime``) at 16 kHz; 1 to 5.  Non-intrusive: the recording gets them too.
* ``f0_rmse_cents``: RMS difference of ``librosa.pyin`` F0 (50 to 550 Hz, 10 ms hop, 64 ms frames, at
  16 kHz) over the frames voiced in both, in cents; ``vuv_error``: the fraction of frames whose
  voiced/unvoiced decision differs.
* ``mcd_db``: mel-cepstral distortion ``10/ln10 * sqrt(2 * sum_{d=1..24} (c_d - c'_d)^2)``, averaged
  over the recording's speech frames (those within 40 dB of its loudest frame, by mel magnitude), with
  ``c`` the orthonormal DCT-II of the natural-log magnitude mel spectrum of the run's own features (a
  mel-cepstrum of the run's mel bands, not SPTK's all-pass cepstrum: compare it only with itself).
  Noise in the pauses is what ``log_mel_l1`` sees.
* ``log_mel_l1``: mean absolute difference of the run's natural-log magnitude mel features
  (floor 1e-5), every frame and band; sees the harmonics up to the run's fmax.

Signals are compared sample-aligned and cut to the shorter length: a resynthesis from an utterance's
own mel is as long as the recording (``frames * hop`` samples).
"""
from __future__ import annotations

import math

import numpy as np

#: the rate PESQ wide-band, STOI and DNSMOS work at
SCORING_RATE = 16000
F0_RANGE = (50.0, 550.0)
MCD_COEFFS = 24
MCD_SPEECH_DB = 40.0
_MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)

INTRUSIVE = ("pesq_wb", "stoi", "f0_rmse_cents", "vuv_error", "mcd_db", "log_mel_l1")
NON_INTRUSIVE = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak")
#: every score, and whether higher is better
HIGHER_IS_BETTER = {"pesq_wb": True, "stoi": True, "dnsmos_ovrl": True, "dnsmos_sig": True, "dnsmos_bak": True,
                    "f0_rmse_cents": False, "vuv_error": False, "mcd_db": False, "log_mel_l1": False}


def to_scoring_rate(audio, sample_rate: int) -> np.ndarray:
    from seqgen.data.audio import resample

    return np.clip(resample(np.asarray(audio, np.float32), sample_rate, SCORING_RATE), -1.0, 1.0)


def _aligned(ref, deg):
    n = min(len(ref), len(deg))
    return np.asarray(ref[:n], np.float64), np.asarray(deg[:n], np.float64)


def pesq_wb(ref16, deg16) -> float:
    """PESQ wide-band of two 16 kHz signals (raises ``pesq``'s errors, e.g. no utterance detected)."""
    from pesq import pesq

    ref, deg = _aligned(ref16, deg16)
    return float(pesq(SCORING_RATE, ref, deg, "wb"))


def stoi(ref16, deg16) -> float:
    from pystoi import stoi as _stoi

    ref, deg = _aligned(ref16, deg16)
    return float(_stoi(ref, deg, SCORING_RATE, extended=False))


def dnsmos(audio16) -> dict:
    """``{"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"}`` of a 16 kHz signal."""
    from speechmos import dnsmos as _dnsmos

    out = _dnsmos.run(np.clip(np.asarray(audio16, np.float32), -1.0, 1.0), SCORING_RATE)
    return {"dnsmos_ovrl": float(out["ovrl_mos"]), "dnsmos_sig": float(out["sig_mos"]),
            "dnsmos_bak": float(out["bak_mos"])}


def f0_track(audio16) -> tuple[np.ndarray, np.ndarray]:
    """``(f0 Hz with NaN where unvoiced, voiced flags)`` by ``librosa.pyin`` at 16 kHz."""
    import librosa

    f0, voiced, _ = librosa.pyin(np.asarray(audio16, np.float32), fmin=F0_RANGE[0], fmax=F0_RANGE[1],
                                 sr=SCORING_RATE, frame_length=1024, hop_length=160)
    return f0, np.asarray(voiced, bool)


def f0_errors(ref_track, deg_track) -> dict:
    """F0 RMSE in cents over frames voiced in both, and the voiced/unvoiced decision error rate."""
    (f_ref, v_ref), (f_deg, v_deg) = ref_track, deg_track
    n = min(len(v_ref), len(v_deg))
    f_ref, v_ref, f_deg, v_deg = f_ref[:n], v_ref[:n], f_deg[:n], v_deg[:n]
    both = v_ref & v_deg & np.isfinite(f_ref) & np.isfinite(f_deg)
    rmse = float(np.sqrt(np.mean(np.square(1200.0 * np.log2(f_deg[both] / f_ref[both]))))) if both.any() \
        else float("nan")
    return {"f0_rmse_cents": rmse, "vuv_error": float(np.mean(v_ref != v_deg)) if n else float("nan")}


def mel_cepstrum(log_mel: np.ndarray) -> np.ndarray:
    """Coefficients 1..24 of the orthonormal DCT-II of the log magnitude mel spectrum ``[frames, 24]``."""
    from scipy.fft import dct

    return dct(np.asarray(log_mel, np.float64), type=2, norm="ortho", axis=-1)[:, 1:MCD_COEFFS + 1]


def speech_frames(log_mel) -> np.ndarray:
    """Frames within 40 dB of the loudest one (by the sum of mel magnitudes)."""
    db = 20.0 * np.log10(np.maximum(np.exp(np.asarray(log_mel, np.float64)).sum(axis=-1), 1e-12))
    return db >= db.max() - MCD_SPEECH_DB if db.size else np.zeros(0, bool)


def mcd_db(ref_log_mel, deg_log_mel) -> float:
    n = min(len(ref_log_mel), len(deg_log_mel))
    keep = speech_frames(ref_log_mel[:n])
    diff = mel_cepstrum(ref_log_mel[:n][keep]) - mel_cepstrum(deg_log_mel[:n][keep])
    return float(np.mean(_MCD_SCALE * np.sqrt(np.sum(np.square(diff), axis=-1)))) if keep.any() else float("nan")


def log_mel_l1(ref_log_mel, deg_log_mel) -> float:
    n = min(len(ref_log_mel), len(deg_log_mel))
    return float(np.mean(np.abs(np.asarray(ref_log_mel[:n], np.float64) - np.asarray(deg_log_mel[:n], np.float64))))


class Reference:
    """A recording, with what every comparison against it reuses (16 kHz copy, F0 track, log-mel)."""

    def __init__(self, audio, sample_rate: int, params):
        from seqgen.data.audio import log_mel

        self.audio = np.asarray(audio, np.float32)
        self.sample_rate = int(sample_rate)
        self.params = params
        self.audio16 = to_scoring_rate(self.audio, self.sample_rate)
        self.log_mel = log_mel(self.audio, params)
        self.f0 = f0_track(self.audio16)

    def own_scores(self) -> dict:
        """The recording's non-intrusive figures (the ceiling): DNSMOS and its voiced fraction."""
        out = dnsmos(self.audio16)
        out["voiced_fraction"] = float(np.mean(self.f0[1])) if len(self.f0[1]) else float("nan")
        return out

    def score(self, audio) -> tuple[dict, dict]:
        """``(scores, errors)`` of a signal against this recording; a score that cannot be computed is NaN
        and its reason is in ``errors``."""
        from seqgen.data.audio import log_mel

        audio = np.nan_to_num(np.asarray(audio, np.float32)[: len(self.audio)])
        deg16 = to_scoring_rate(audio, self.sample_rate)
        scores, errors = {}, {}

        def put(names, fn):
            try:
                got = fn()
            except Exception as e:  # a scorer's refusal (silence, too short) is a row's NaN, not a crash
                got = {n: float("nan") for n in names}
                errors[names[0]] = f"{type(e).__name__}: {str(e)[:160]}"
            scores.update(got if isinstance(got, dict) else {names[0]: got})

        put(("pesq_wb",), lambda: pesq_wb(self.audio16, deg16))
        put(("stoi",), lambda: stoi(self.audio16, deg16))
        put(NON_INTRUSIVE, lambda: dnsmos(deg16))
        put(("f0_rmse_cents", "vuv_error"), lambda: f0_errors(self.f0, f0_track(deg16)))
        deg_mel = log_mel(audio, self.params)
        put(("mcd_db",), lambda: mcd_db(self.log_mel, deg_mel))
        put(("log_mel_l1",), lambda: log_mel_l1(self.log_mel, deg_mel))
        return scores, errors
