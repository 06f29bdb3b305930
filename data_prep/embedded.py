"""Default corpora that work on a fresh machine, with nothing to download.

Two sources ship with every install of seqgen:

* English prose from the Python standard library itself: the help topics in
  :mod:`pydoc_data.topics` (about 450 kB of reference text).  It is cleaned
  into readable paragraphs (:func:`stdlib_prose`) and plain sentences
  (:func:`stdlib_sentences`), suitable for text models and for speech.
* Speech and phonemes from espeak-ng, through :mod:`ctypes` on the shared
  library bundled in the ``espeakng-loader`` wheel (:class:`EspeakSynth`).

With these, :func:`synthesize_corpus` writes a small LJSpeech-style speech
corpus and :func:`g2p_pairs` / :func:`write_g2p_tsv` build a
grapheme-to-phoneme data set, so every recipe can run end to end offline.

Command line::

    python -m data_prep.embedded speech 200 data/espeak      # LJSpeech layout
    python -m data_prep.embedded g2p all data/g2p.tsv        # text<TAB>ipa
    python -m data_prep.embedded prose data/prose.txt        # plain paragraphs
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import json
import multiprocessing
import os
import pathlib
import random
import re
import sys
import threading
from functools import lru_cache

import numpy as np

__all__ = [
    "stdlib_prose",
    "stdlib_sentences",
    "EspeakSynth",
    "synthesize_corpus",
    "g2p_pairs",
    "write_g2p_tsv",
    "VOICE_SETTINGS",
]

# ---------------------------------------------------------------------------
# Prose from pydoc_data.topics
# ---------------------------------------------------------------------------

_UNDERLINE = re.compile(r"^\s*([*=\-~^#\"'])\1{2,}\s*$")
_BULLET = re.compile(r"^(\s*)([*\-]|\d+\.|\(\d+\))\s+")
_FOOTNOTE_REF = re.compile(r"\s*\[\d+\]")
_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")
_CODE_SYMBOLS = set("=<>[]{}#@$%^&*|\\~`_+/")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _split_blocks(text: str) -> list[list[str]]:
    """Blank-line separated blocks, with headings and their underlines removed."""
    blocks, current = [], []
    lines = text.expandtabs(8).splitlines()
    skip = set()
    for i, line in enumerate(lines):
        if _UNDERLINE.match(line):
            skip.add(i)
            # the heading above an underline is not prose
            if i > 0 and lines[i - 1].strip():
                skip.add(i - 1)
        elif line.strip().startswith("-[") and line.strip().endswith("]-"):
            skip.add(i)  # "-[ Footnotes ]-" rubrics
    for i, line in enumerate(lines):
        if i in skip or not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        current.append(line.rstrip())
    if current:
        blocks.append(current)
    return blocks


def _looks_like_prose(text: str) -> bool:
    words = text.split()
    if len(words) < 5:
        return False
    if not text.endswith((".", ":", "?", "!", ".)")):
        return False
    if ">>>" in text or "::=" in text or text.startswith(("|", "+-", "=", "...")):
        return False
    stripped = text.replace(" ", "")
    symbols = sum(ch in _CODE_SYMBOLS for ch in stripped)
    letters = sum(ch.isalpha() for ch in stripped)
    return symbols <= 0.04 * len(stripped) and letters >= 0.7 * len(stripped)


def _join_lines(lines: list[str]) -> str:
    """Join wrapped lines; a word hyphenated at a line end ("left-", "hand") stays whole."""
    out = ""
    for line in lines:
        line = line.strip()
        if out and not (len(out) > 1 and out[-1] == "-" and out[-2].isalpha()):
            out += " "
        out += line
    return out


def _clean_inline(text: str) -> str:
    text = _FOOTNOTE_REF.sub("", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("\u2013", "-").replace("\u2014", " - ").replace("\u2026", "...")
    return re.sub(r"\s+", " ", text).strip()


def _topic_paragraphs(text: str) -> list[str]:
    paragraphs = []
    prev_indent, prev_text = 0, ""
    for block in _split_blocks(text):
        indent = _indent(block[0])
        is_code = any(line.lstrip().startswith((">>>", "...", "|", "+-")) for line in block)
        # A deeper-indented block right after "...:" is usually a code or
        # grammar example, unless it reads like sentences ("Note:" bodies).
        after_colon = indent > prev_indent and prev_text.endswith(":")
        lines = list(block)
        m = _BULLET.match(lines[0])
        if m:
            lines[0] = " " * m.end() + lines[0][m.end():]
        indents = [_indent(line) for line in lines]
        if len(set(indents)) > 1:
            if (len(lines) > 1 and len(set(indents[1:])) == 1 and indents[1] > indents[0]
                    and not lines[0].rstrip().endswith(":")):
                lines = lines[1:]  # definition list: drop the term line, keep its body
                indent = indents[1]
            else:
                is_code = True  # ragged indentation: code
        joined = _clean_inline(_join_lines(lines))
        if after_colon and not (joined[:1].isupper() and joined.endswith(".")):
            is_code = True
        if not is_code and _looks_like_prose(joined):
            paragraphs.append(joined)
            prev_indent, prev_text = indent, joined
        else:
            # keep the context of the last prose paragraph for nested examples
            prev_text = prev_text if is_code else joined
    return paragraphs


@lru_cache(maxsize=1)
def _paragraphs() -> tuple[str, ...]:
    from pydoc_data.topics import topics

    seen, out = set(), []
    for key in sorted(topics):
        for para in _topic_paragraphs(topics[key]):
            if para not in seen:
                seen.add(para)
                out.append(para)
    return tuple(out)


def stdlib_prose() -> str:
    """English prose from the standard library's help topics.

    Paragraphs are separated by one blank line; code examples, grammar rules,
    tables, headings and interactive sessions are removed.  The result is
    deterministic for a given Python version (several hundred kB).
    """
    return "\n\n".join(_paragraphs()) + "\n"


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_QUOTED_WORDS = re.compile(r"\"([A-Za-z][A-Za-z ]*[A-Za-z]|[A-Za-z])\"")
_PLAIN_SENTENCE = re.compile(r"^[A-Z][A-Za-z ,;:'\-]*[a-z][.?!]$")
_ABBREV = re.compile(r"\b[a-zA-Z]\.[a-zA-Z]\.|\betc\.|\bvs\.")


def _plain_sentence(sentence: str) -> str | None:
    """The sentence as plain speakable English, or None if it is not."""
    if _ABBREV.search(sentence):
        return None
    text = _QUOTED_WORDS.sub(r"\1", sentence)
    text = re.sub(r"\s+", " ", text).strip()
    if not _PLAIN_SENTENCE.match(text):
        return None
    words = re.findall(r"[A-Za-z']+", text)
    # single-letter variable names ("if x is true") are code, not English
    if any(len(w) == 1 and w not in ("a", "A", "I") for w in words):
        return None
    if any(len(w) > 20 for w in words):
        return None
    letters = sum(ch.isalpha() for ch in text)
    if letters < 0.75 * len(text):
        return None
    return text


@lru_cache(maxsize=8)
def _sentences(min_chars: int, max_chars: int) -> tuple[str, ...]:
    seen, out = set(), []
    for para in _paragraphs():
        for raw in _SENTENCE_SPLIT.split(para):
            text = _plain_sentence(raw.strip())
            if text is None or not (min_chars <= len(text) <= max_chars):
                continue
            if text.lower() not in seen:
                seen.add(text.lower())
                out.append(text)
    return tuple(out)


def stdlib_sentences(min_chars: int = 20, max_chars: int = 200) -> list[str]:
    """Plain English sentences from :func:`stdlib_prose`, suitable for TTS.

    Each sentence starts with a capital letter, ends with ``.``, ``?`` or
    ``!`` and holds only letters, spaces and ``,;:'-`` (no digits, code or
    symbols; quoted keywords lose their quotes).  Order is the order of the
    text; duplicates (case-insensitive) are dropped.
    """
    if min_chars > max_chars:
        raise ValueError(f"stdlib_sentences: min_chars={min_chars} > max_chars={max_chars}")
    return list(_sentences(int(min_chars), int(max_chars)))


# ---------------------------------------------------------------------------
# espeak-ng through ctypes
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Speech corpus in LJSpeech layout
# ---------------------------------------------------------------------------

#: (voice, pitch, rate) combinations rotated over the utterances.
VOICE_SETTINGS: tuple[tuple[str, int, int], ...] = (
    ("en-us", 50, 170),
    ("en-gb", 40, 160),
    ("en-us", 70, 180),
    ("en-gb", 60, 150),
)

_MARKER = ".espeak_corpus.json"
_SAMPLE_RATE = 22050


def _corpus_plan(n: int, seed: int) -> list[tuple[str, str, str, int, int]]:
    """(id, text, voice, pitch, rate) for each utterance, deterministic in (n, seed)."""
    sentences = list(stdlib_sentences(20, 200))
    random.Random(seed).shuffle(sentences)
    plan = []
    for i in range(n):
        # Beyond the number of distinct sentences the texts repeat, each time
        # with the next voice setting.
        text = sentences[i % len(sentences)]
        voice, pitch, rate = VOICE_SETTINGS[(i + seed + i // len(sentences)) % len(VOICE_SETTINGS)]
        plan.append((f"ESPK-{i + 1:05d}", text, voice, pitch, rate))
    return plan


def _synth_job(args) -> tuple[str, int]:
    import soundfile as sf

    utt_id, text, voice, pitch, rate, wav_dir = args
    engine = _engine()
    audio = engine.synthesize(text, voice, pitch, rate)
    if engine.sample_rate != _SAMPLE_RATE:  # pragma: no cover - espeak-ng is 22050 Hz
        raise RuntimeError(f"espeak-ng: unexpected sample rate {engine.sample_rate}")
    if audio.size == 0:
        raise RuntimeError(f"espeak-ng produced no audio for {utt_id}: {text!r}")
    path = pathlib.Path(wav_dir) / f"{utt_id}.wav"
    tmp = path.with_suffix(".tmp.wav")
    sf.write(str(tmp), np.clip(audio, -1.0, 1.0), _SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
    return utt_id, int(audio.size)


def _is_complete(out_dir: pathlib.Path, n: int, seed: int) -> bool:
    marker = out_dir / _MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if info.get("n") != n or info.get("seed") != seed or not info.get("complete"):
        return False
    if not (out_dir / "metadata.csv").is_file() or not (out_dir / "speakers.csv").is_file():
        return False
    ids = [f"ESPK-{i + 1:05d}" for i in range(n)]
    return all((out_dir / "wavs" / f"{i}.wav").is_file() for i in ids)


def _pool_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def synthesize_corpus(n: int, out_dir, seed: int = 0, processes: int | None = None, progress: bool = True) -> pathlib.Path:
    """Write ``n`` espeak-ng utterances to ``out_dir`` in LJSpeech layout.

    Layout::

        out_dir/metadata.csv   ID|text|normalized_text   (ids ESPK-00001, ...)
        out_dir/wavs/ID.wav    16-bit PCM, 22050 Hz, mono
        out_dir/speakers.csv   id,voice,pitch,rate       (one row per utterance)

    Sentences come from :func:`stdlib_sentences`, shuffled by ``seed``; the
    voice settings in :data:`VOICE_SETTINGS` are rotated over the utterances.
    If ``n`` exceeds the number of distinct sentences, texts repeat with
    another voice setting.  A complete corpus already in ``out_dir`` for the
    same ``(n, seed)`` is reused.  Returns ``out_dir`` as a path.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"synthesize_corpus: n must be >= 1, got {n}")
    out_dir = pathlib.Path(out_dir)
    if _is_complete(out_dir, n, seed):
        print(f"Reusing espeak corpus in {out_dir} ({n} utterances, seed {seed})")
        return out_dir

    wav_dir = out_dir / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / _MARKER).unlink(missing_ok=True)
    plan = _corpus_plan(n, seed)
    keep = {f"{utt_id}.wav" for utt_id, *_ in plan}
    for old in wav_dir.glob("ESPK-*.wav"):
        if old.name not in keep:
            old.unlink()

    jobs = [(utt_id, text, voice, pitch, rate, str(wav_dir)) for utt_id, text, voice, pitch, rate in plan]
    if processes is None:
        processes = min(2, os.cpu_count() or 1)
    processes = max(1, min(int(processes), n))

    from tqdm import tqdm

    bar = tqdm(total=n, desc="espeak-ng", unit="utt", file=sys.stderr, disable=not progress)
    try:
        if processes == 1:
            for job in jobs:
                _synth_job(job)
                bar.update(1)
        else:
            with _pool_context().Pool(processes) as pool:
                for _ in pool.imap_unordered(_synth_job, jobs, chunksize=max(1, min(16, n // (4 * processes)))):
                    bar.update(1)
    finally:
        bar.close()

    with open(out_dir / "metadata.csv", "w", encoding="utf-8", newline="\n") as f:
        for utt_id, text, *_ in plan:
            f.write(f"{utt_id}|{text}|{text}\n")
    with open(out_dir / "speakers.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "voice", "pitch", "rate"])
        for utt_id, _text, voice, pitch, rate in plan:
            writer.writerow([utt_id, voice, pitch, rate])
    info = {"n": n, "seed": seed, "complete": True, "sample_rate": _SAMPLE_RATE, "source": "espeak-ng"}
    (out_dir / _MARKER).write_text(json.dumps(info) + "\n", encoding="utf-8")
    return out_dir


# ---------------------------------------------------------------------------
# Grapheme-to-phoneme pairs
# ---------------------------------------------------------------------------

_CLAUSE_SPLIT = re.compile(r"(?<=[,;:])\s+")


@lru_cache(maxsize=1)
def _short_texts() -> tuple[str, ...]:
    """Sentences of 10..80 characters; longer ones are split into clauses."""
    seen, out = set(), []
    for sentence in _sentences(10, 400):
        if len(sentence) <= 80:
            pieces = [sentence]
        else:
            pieces = []
            for clause in _CLAUSE_SPLIT.split(sentence):
                clause = clause.strip().rstrip(",;:").strip()
                if clause.lower().startswith(("and ", "or ", "but ")):
                    clause = clause.split(" ", 1)[1]
                pieces.append(clause[:1].upper() + clause[1:])
        for piece in pieces:
            if 10 <= len(piece) <= 80 and len(piece.split()) >= 2 and piece.lower() not in seen:
                seen.add(piece.lower())
                out.append(piece)
    return tuple(out)


def g2p_available() -> int:
    """How many distinct short texts :func:`g2p_pairs` can draw from (about 1,100 on Python 3.11)."""
    return len(_short_texts())


def g2p_pairs(n: int | None = None, seed: int = 0, voice: str = "en-us") -> list[tuple[str, str]]:
    """``n`` (text, IPA) pairs, or one per distinct text when ``n`` is None.

    Texts are short English sentences and clauses (10..80 characters) from the
    standard library prose, drawn without repetition in an order fixed by
    ``seed``; the targets are espeak-ng's IPA transcriptions.  Asking for more
    pairs than :func:`g2p_available` raises :class:`seqgen.errors.DataError`.
    """
    texts = list(_short_texts())
    n = len(texts) if n is None else int(n)
    if n > len(texts):
        from seqgen.errors import DataError

        raise DataError(f"g2p_pairs: n={n} but only {len(texts)} distinct short sentences exist; use n <= {len(texts)}")
    random.Random(seed).shuffle(texts)
    synth = EspeakSynth()
    pairs = []
    for text in texts[:n]:
        pairs.append((text, synth.phonemize(text, voice=voice)))
    return pairs


def write_g2p_tsv(n: int | None, path, seed: int = 0) -> pathlib.Path:
    """Write :func:`g2p_pairs` (all of them when ``n`` is None) as ``text<TAB>ipa`` lines (UTF-8)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pairs = g2p_pairs(n, seed=seed)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for text, ipa in pairs:
            f.write(f"{text}\t{ipa}\n")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.embedded", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("speech", help="espeak-ng speech corpus in LJSpeech layout")
    p.add_argument("n", type=int)
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--processes", type=int, default=None)
    p = sub.add_parser("g2p", help="text<TAB>ipa pairs")
    p.add_argument("n", type=lambda v: None if v == "all" else int(v), help="number of pairs, or 'all'")
    p.add_argument("path")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("prose", help="standard-library prose as plain text")
    p.add_argument("path")
    args = parser.parse_args(argv)
    if args.cmd == "speech":
        print(synthesize_corpus(args.n, args.out_dir, seed=args.seed, processes=args.processes))
    elif args.cmd == "g2p":
        print(write_g2p_tsv(args.n, args.path, seed=args.seed))
    else:
        path = pathlib.Path(args.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(stdlib_prose(), encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
