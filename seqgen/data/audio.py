"""Audio I/O, mu-law companding, log-mel features and normalization statistics.

Everything here is numpy + soundfile + librosa (no Keras, no TensorFlow).

Mel features
------------
``FeatureParams.for_rate(sr)`` gives the documented defaults per sample rate:

========  ======  =====  =====  ======  ====  =====
rate      n_fft   hop    win    n_mels  fmin  fmax
========  ======  =====  =====  ======  ====  =====
8000      512     80     400    80      0     4000
16000     1024    200    800    80      0     8000
22050     1024    256    1024   80      0     8000
24000     2048    300    1200   80      0     12000
44100     2048    512    2048   80      0     11025
48000     2048    600    2048   80      0     12000
========  ======  =====  =====  ======  ====  =====

Other rates use hop = sr/86 rounded to a multiple of 4 (about 11.6 ms),
win = 4 * hop, n_fft = the next power of two >= win, fmax = min(8000, sr/2).

Frame alignment: a clip of ``n`` samples has exactly ``n // hop`` frames and
is trimmed to ``frames * hop`` samples.  Frame ``i`` is the (reflect-padded)
STFT window centred on the middle of samples ``[i*hop, (i+1)*hop)``, so the
sample ``t`` is conditioned on frame ``t // hop``.  Values are natural-log
magnitudes (power 1) of the mel filterbank, floored at 1e-5.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import numpy as np

from seqgen.errors import AudioError, DataError

_DEFAULTS = {
    # rate: (n_fft, hop, win, fmin, fmax)
    8000: (512, 80, 400, 0.0, 4000.0),
    16000: (1024, 200, 800, 0.0, 8000.0),
    22050: (1024, 256, 1024, 0.0, 8000.0),
    24000: (2048, 300, 1200, 0.0, 12000.0),
    44100: (2048, 512, 2048, 0.0, 11025.0),
    48000: (2048, 600, 2048, 0.0, 12000.0),
}

LOG_FLOOR = 1e-5

# Sample rates a file header may claim before it is called corrupt when the audio
# must be resampled (a header saying 1 Hz would otherwise be upsampled 22050x).
MIN_FILE_RATE, MAX_FILE_RATE = 1000, 768000


@dataclasses.dataclass(frozen=True)
class FeatureParams:
    """Parameters of the log-mel features (see the module docstring)."""

    sample_rate: int
    n_fft: int
    hop_length: int
    win_length: int
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0

    @classmethod
    def for_rate(cls, sample_rate: int, n_mels: int = 80) -> "FeatureParams":
        try:
            sample_rate = int(sample_rate)
        except (TypeError, ValueError, OverflowError):
            raise AudioError(f"sample rate must be a positive integer, got {sample_rate!r}") from None
        if sample_rate <= 0:
            raise AudioError(f"sample rate must be positive, got {sample_rate}")
        if sample_rate in _DEFAULTS:
            n_fft, hop, win, fmin, fmax = _DEFAULTS[sample_rate]
        else:
            hop = max(4, int(round(sample_rate / 86 / 4)) * 4)
            win = 4 * hop
            n_fft = 1 << int(math.ceil(math.log2(win)))
            fmin, fmax = 0.0, float(min(8000.0, sample_rate / 2))
        return cls(sample_rate, n_fft, hop, win, n_mels, fmin, fmax)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureParams":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise DataError(f"unknown feature parameter(s) {sorted(unknown)}; expected {sorted(fields)}")
        missing = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING} - set(d)
        if missing:
            raise DataError(f"missing feature parameter(s) {sorted(missing)}")
        for f in dataclasses.fields(cls):
            want = (int,) if f.type in ("int", int) else (int, float)
            if f.name in d and (isinstance(d[f.name], bool) or not isinstance(d[f.name], want)
                                or not d[f.name] == d[f.name]):
                raise DataError(f"feature parameter '{f.name}' must be {f.type}, got {d[f.name]!r}")
        return cls(**d)


# --------------------------------------------------------------------------- I/O


def info(path) -> tuple[int, int, int]:
    """(sample_rate, channels, frames) of an audio file without decoding it."""
    import soundfile as sf

    try:
        i = sf.info(str(path))
    except Exception as e:  # soundfile raises several types for bad files
        raise AudioError(f"{path}: not a readable audio file ({_short(e)})") from None
    return int(i.samplerate), int(i.channels), int(i.frames)


def load(path, sample_rate: int | None = None) -> np.ndarray:
    """Read any file soundfile reads (WAV, FLAC, OGG, ...) as float32 mono.

    Multi-channel audio is downmixed by averaging; if ``sample_rate`` is given
    and differs from the file's rate, the audio is resampled with librosa.
    Raises :class:`AudioError` (with a short ``reason``) for unreadable,
    empty or non-finite audio.
    """
    import soundfile as sf

    path = pathlib.Path(path)
    if not path.exists():
        raise _audio_error(path, "file not found")
    if path.stat().st_size == 0:
        raise _audio_error(path, "empty file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise _audio_error(path, f"corrupt or not audio ({_short(e)})") from None
    if data.shape[0] == 0:
        raise _audio_error(path, "no audio samples")
    audio = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(audio)):
        raise _audio_error(path, "NaN or Inf samples")
    if sample_rate is not None and int(sample_rate) != int(sr):
        if not MIN_FILE_RATE <= sr <= MAX_FILE_RATE:
            raise _audio_error(path, f"implausible sample rate {sr} Hz in the header (corrupt?)")
        audio = resample(audio, sr, sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample with librosa (soxr high quality)."""
    import librosa

    if int(orig_sr) == int(target_sr):
        return np.asarray(audio, dtype=np.float32)
    return librosa.resample(np.asarray(audio, dtype=np.float32), orig_sr=int(orig_sr),
                            target_sr=int(target_sr), res_type="soxr_hq").astype(np.float32)


def save(path, audio, sample_rate: int, subtype: str = "PCM_16") -> pathlib.Path:
    """Write mono float audio (clipped to [-1, 1]); format from the extension."""
    import soundfile as sf

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1)), -1.0, 1.0)
    kwargs = {}
    if path.suffix.lower() in (".ogg", ".flac"):
        kwargs = {} if path.suffix.lower() == ".ogg" else {"subtype": subtype if subtype != "FLOAT" else "PCM_24"}
    else:
        kwargs = {"subtype": subtype}
    sf.write(str(path), audio, int(sample_rate), **kwargs)
    return path


class Writer:
    """A wav (or other soundfile format) written chunk by chunk, as :func:`save` writes it whole: the same
    clipping and sample format, so the file is the same bytes.  A context manager."""

    def __init__(self, path, sample_rate: int, subtype: str = "PCM_16"):
        import soundfile as sf

        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix.lower() == ".ogg":
            subtype = None
        elif self.path.suffix.lower() == ".flac" and subtype == "FLOAT":
            subtype = "PCM_24"
        self._file = sf.SoundFile(str(self.path), "w", int(sample_rate), 1, subtype=subtype)

    def write(self, audio) -> None:
        audio = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1)), -1.0, 1.0)
        self._file.write(audio)
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- mu-law


def mu_law_encode(x, bits: int = 8) -> np.ndarray:
    """Float audio in [-1, 1] -> int classes in [0, 2**bits).

    Exactly ``librosa.mu_compress(x, mu=2**bits - 1, quantize=True)`` shifted
    by ``2**(bits-1)`` to non-negative classes.  Values outside [-1, 1] are
    clipped first (so +-Inf gives the extreme classes) and NaN gives the
    class of silence (0.0), ``2**(bits-1)``, as :func:`seqgen.core.mu_law.encode`.
    """
    import librosa

    mu = 2 ** bits - 1
    x = np.clip(np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0), -1.0, 1.0)
    q = librosa.mu_compress(x, mu=mu, quantize=True)
    return (q + 2 ** (bits - 1)).astype(np.int32)


def mu_law_decode(q, bits: int = 8) -> np.ndarray:
    """Int classes in [0, 2**bits) -> float32 audio (librosa.mu_expand).

    Classes outside the range are clipped to it, as :func:`seqgen.core.mu_law.decode`.
    """
    import librosa

    mu = 2 ** bits - 1
    q = np.clip(np.asarray(q).astype(np.int64), 0, mu) - 2 ** (bits - 1)
    return librosa.mu_expand(q, mu=mu, quantize=True).astype(np.float32)


# --------------------------------------------------------------------------- mel


def num_frames(num_samples: int, params: FeatureParams) -> int:
    return int(num_samples) // params.hop_length


def log_mel(audio: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Log-mel frames [n // hop, n_mels] (float32), aligned as documented above.

    Raises :class:`AudioError` for NaN or Inf samples.
    """
    import librosa

    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"log_mel: {int(np.sum(~np.isfinite(audio)))} NaN or Inf sample(s) in the audio")
    frames = num_frames(len(audio), params)
    if frames == 0:
        return np.zeros((0, params.n_mels), np.float32)
    audio = audio[: frames * params.hop_length]
    pad = (params.n_fft - params.hop_length) // 2
    mode = "reflect" if len(audio) > pad else "constant"
    padded = np.pad(audio, (pad, params.n_fft - params.hop_length - pad), mode=mode)
    spec = librosa.feature.melspectrogram(
        y=padded, sr=params.sample_rate, n_fft=params.n_fft, hop_length=params.hop_length,
        win_length=params.win_length, n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax,
        center=False, power=1.0)
    mel = np.log(np.maximum(spec, LOG_FLOOR)).T.astype(np.float32)
    assert mel.shape[0] == frames, (mel.shape, frames)
    return mel


class NormStats:
    """Per-band mean / standard deviation of log-mel frames over a corpus.

    Accumulates in float64 so that it can stream over a corpus of any size.
    """

    def __init__(self, n_mels: int):
        self.n_mels = int(n_mels)
        self.count = 0
        self._sum = np.zeros(self.n_mels, np.float64)
        self._sumsq = np.zeros(self.n_mels, np.float64)

    def update(self, mel: np.ndarray) -> None:
        mel = np.asarray(mel, np.float64)
        self.count += mel.shape[0]
        self._sum += mel.sum(axis=0)
        self._sumsq += np.square(mel).sum(axis=0)

    def merge(self, other: "NormStats") -> None:
        self.count += other.count
        self._sum += other._sum
        self._sumsq += other._sumsq

    @property
    def mean(self) -> np.ndarray:
        return (self._sum / max(self.count, 1)).astype(np.float32)

    @property
    def std(self) -> np.ndarray:
        var = self._sumsq / max(self.count, 1) - np.square(self._sum / max(self.count, 1))
        return np.sqrt(np.maximum(var, 1e-8)).astype(np.float32)

    def normalize(self, mel: np.ndarray) -> np.ndarray:
        return ((np.asarray(mel, np.float32) - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {"n_mels": self.n_mels, "num_frames": int(self.count),
                "mel_mean": self.mean.tolist(), "mel_std": self.std.tolist(),
                "sum": self._sum.tolist(), "sumsq": self._sumsq.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "NormStats":
        s = cls(d["n_mels"])
        s.count = int(d["num_frames"])
        s._sum = np.asarray(d["sum"], np.float64)
        s._sumsq = np.asarray(d["sumsq"], np.float64)
        return s

    def save(self, path) -> None:
        pathlib.Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path) -> "NormStats":
        path = pathlib.Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{path}: cannot read normalization statistics ({_short(e)})") from None


# --------------------------------------------------------------------------- helpers


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()
    return (msg[0] if msg else type(e).__name__)[:160]


def _audio_error(path, reason: str) -> AudioError:
    err = AudioError(f"{path}: {reason}")
    err.reason = reason
    err.path = str(path)
    return err
