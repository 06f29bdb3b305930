"""espeak-ng through :mod:`ctypes` on the shared library bundled in the ``espeakng-loader`` wheel.

:class:`EspeakSynth` speaks text to a float32 waveform and transcribes it to
IPA; one engine per process, guarded by a lock.
"""
from __future__ import annotations

import ctypes
import os
import re
import threading

import numpy as np


_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_PHONEMES_IPA = 0x02  # phonememode bit 1: IPA (UTF-8) instead of ASCII names

# Voice names that espeak-ng spells differently.
_VOICE_ALIASES = {"en-gb": "en", "en-uk": "en", "en_gb": "en", "en_us": "en-us"}

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Engine:
    """Per-process espeak-ng state (the C library holds one global engine)."""

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - it is a dependency
            from seqgen.errors import ConfigError

            raise ConfigError(
                "espeak-ng: the package espeakng-loader is not installed; run `pip install espeakng-loader`"
            ) from exc
        lib_path = espeakng_loader.get_library_path()
        data_path = espeakng_loader.get_data_path()
        lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p

        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            from seqgen.errors import ConfigError

            raise ConfigError(
                f"espeak-ng: espeak_Initialize failed with data at {data_path}; reinstall espeakng-loader"
            )
        self.lib = lib
        self.sample_rate = int(rate)
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        # The CFUNCTYPE object must outlive every call into the library.
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self._voice = None

    def _collect(self, wav, numsamples, events):
        if wav and numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0

    def set_voice(self, voice: str) -> None:
        if voice == self._voice:
            return
        name = _VOICE_ALIASES.get(voice.lower(), voice)
        if self.lib.espeak_SetVoiceByName(name.encode("utf-8")) != 0:
            from seqgen.errors import ConfigError

            raise ConfigError(
                f"espeak-ng: unknown voice {voice!r}; use e.g. 'en-us', 'en-gb', 'en-us+f3' "
                "(a name from espeak-ng-data/voices or lang)"
            )
        self._voice = voice

    def synthesize(self, text: str, voice: str, pitch: int, rate: int) -> np.ndarray:
        with self.lock:
            self.set_voice(voice)
            self.lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
            self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            self._chunks = []
            data = text.encode("utf-8")
            err = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if err != 0:
            raise RuntimeError(f"espeak-ng: espeak_Synth failed with error {err} for text {text[:40]!r}")
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return (np.concatenate(chunks).astype(np.float32) / 32768.0).astype(np.float32)

    def phonemes(self, text: str, voice: str) -> str:
        with self.lock:
            self.set_voice(voice)
            buf = ctypes.create_string_buffer(text.encode("utf-8"))
            ptr = ctypes.c_void_p(ctypes.addressof(buf))
            clauses = []
            while ptr.value:
                out = self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, _PHONEMES_IPA)
                if out:
                    clauses.append(out.decode("utf-8", errors="replace"))
        ipa = " ".join(c.strip() for c in clauses if c.strip())
        ipa = re.sub(r"\([a-z]{2,3}(-[a-z]+)?\)", "", ipa)  # language-switch marks like "(fr)"
        return re.sub(r"\s+", " ", ipa).strip()


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _Engine:
    """The process's espeak-ng engine, created on first use.

    A forked worker inherits an engine created in its parent; espeak-ng in
    synchronous mode runs no threads of its own, so the copy is usable.
    """
    global _ENGINE
    if _ENGINE is None:
        with _ENGINE_LOCK:
            if _ENGINE is None:
                _ENGINE = _Engine()
    return _ENGINE


class EspeakSynth:
    """Text to speech with espeak-ng (the library bundled by ``espeakng-loader``).

    The engine is loaded lazily, once per process, so instances are cheap and
    can be created (or pickled) into worker processes.

    >>> synth = EspeakSynth()
    >>> audio = synth.synthesize("Hello there.", voice="en-gb", pitch=40)
    >>> audio.dtype, synth.sample_rate
    (dtype('float32'), 22050)
    """

    @property
    def sample_rate(self) -> int:
        """Native output rate in Hz, as returned by ``espeak_Initialize`` (22050)."""
        return _engine().sample_rate

    def synthesize(self, text: str, voice: str = "en-us", pitch: int = 50, rate: int = 170) -> np.ndarray:
        """Speech for ``text`` as float32 samples in [-1, 1] at :attr:`sample_rate`.

        ``pitch`` is espeak's base pitch (0..100, 50 normal); ``rate`` is the
        speaking rate in words per minute (80..450).  An unknown ``voice``
        raises :class:`seqgen.errors.ConfigError`.
        """
        if not isinstance(text, str):
            raise TypeError(f"EspeakSynth.synthesize: text must be str, got {type(text).__name__}")
        return _engine().synthesize(text, voice, int(pitch), int(rate))

    def phonemize(self, text: str, voice: str = "en-us") -> str:
        """IPA transcription of ``text`` (clauses joined by a space)."""
        return _engine().phonemes(text, voice)


#: (voice, pitch, rate) combinations rotated over the utterances.
