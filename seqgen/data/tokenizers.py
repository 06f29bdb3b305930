"""Tokenizers for the text models: raw UTF-8 bytes or SentencePiece.

Both tokenizers share one interface: ``encode(text, add_bos, add_eos)`` gives
an int32 numpy array, ``decode(ids)`` gives a string, and ``vocab_size``,
``pad_id``, ``bos_id``, ``eos_id`` and ``get_config()`` describe the
vocabulary.  :func:`get_tokenizer` rebuilds a tokenizer from its config.

Byte vocabulary (:class:`ByteCodec`, ``vocab_size`` = 259):

=========  ==========  ===============================================
id         name        meaning
=========  ==========  ===============================================
0 .. 255   byte        one byte of the UTF-8 encoding of the text
256        ``PAD_ID``  padding; skipped by ``decode``
257        ``BOS_ID``  beginning of sequence; skipped by ``decode``
258        ``EOS_ID``  end of sequence; ``decode`` stops here by default
=========  ==========  ===============================================

A SentencePiece model trained with :meth:`SentencePieceTokenizer.train` has
``unk`` = 0, ``bos`` = 1, ``eos`` = 2 and ``pad`` = 3.

This module imports neither TensorFlow nor Keras.
"""
from __future__ import annotations

import os
import pathlib
from typing import Iterable

import numpy as np

from seqgen.errors import ConfigError, DataError

__all__ = [
    "PAD_ID",
    "BOS_ID",
    "EOS_ID",
    "BYTE_VOCAB_SIZE",
    "ByteCodec",
    "SentencePieceTokenizer",
    "get_tokenizer",
]

PAD_ID = 256
BOS_ID = 257
EOS_ID = 258
BYTE_VOCAB_SIZE = 259


def _as_id_list(ids) -> list[int]:
    """Flatten an array, list or tensor of ids into a list of Python ints."""
    if hasattr(ids, "numpy") and not isinstance(ids, np.ndarray):
        ids = ids.numpy()
    arr = np.asarray(ids)
    if arr.ndim > 1:
        raise ValueError(f"decode expects a 1-D sequence of ids, got shape {arr.shape}")
    return [int(i) for i in arr.reshape(-1)]


class ByteCodec:
    """Text as UTF-8 bytes (ids 0..255) plus PAD/BOS/EOS (256, 257, 258)."""

    vocab_size = BYTE_VOCAB_SIZE

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def bos_id(self) -> int:
        return BOS_ID

    @property
    def eos_id(self) -> int:
        return EOS_ID

    def encode(self, text, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        """UTF-8 bytes of ``text`` (``str``, or ``bytes`` taken as-is) as int32 ids.

        Raises TypeError for other types, and ValueError (UnicodeEncodeError) for a
        ``str`` with a lone surrogate, which has no UTF-8 encoding.
        """
        if isinstance(text, str):
            data = text.encode("utf-8")
        elif isinstance(text, (bytes, bytearray)):
            data = bytes(text)
        else:
            raise TypeError(f"ByteCodec.encode expects str or bytes, got {type(text).__name__}")
        ids = np.frombuffer(data, dtype=np.uint8).astype(np.int32)
        if add_bos:
            ids = np.concatenate([np.array([BOS_ID], np.int32), ids])
        if add_eos:
            ids = np.concatenate([ids, np.array([EOS_ID], np.int32)])
        return ids

    def decode_bytes(self, ids, stop_at_eos: bool = True) -> bytes:
        """The bytes behind ``ids``: PAD/BOS and ids outside 0..258 are skipped."""
        out = bytearray()
        for i in _as_id_list(ids):
            if i == EOS_ID:
                if stop_at_eos:
                    break
                continue
            if 0 <= i < 256:
                out.append(i)
        return bytes(out)

    def decode(self, ids, stop_at_eos: bool = True) -> str:
        """Text for ``ids``; invalid UTF-8 becomes U+FFFD (this never raises)."""
        return self.decode_bytes(ids, stop_at_eos=stop_at_eos).decode("utf-8", errors="replace")

    def get_config(self) -> dict:
        return {"type": "bytes"}

    def __repr__(self) -> str:
        return "ByteCodec(vocab_size=259)"


def _iter_training_lines(texts_or_files) -> Iterable[str]:
    """Lines of text from a file list, one file path, or an iterable of strings."""
    if isinstance(texts_or_files, (str, os.PathLike)):
        path = pathlib.Path(texts_or_files)
        if isinstance(texts_or_files, os.PathLike) or path.is_file():
            texts_or_files = [path]
        else:
            texts_or_files = [texts_or_files]
    if isinstance(texts_or_files, (list, tuple)):
        items = list(texts_or_files)
        all_paths = bool(items) and all(isinstance(x, os.PathLike) for x in items)
        all_files = bool(items) and all(
            isinstance(x, (str, os.PathLike)) and len(str(x)) < 4096 and "\n" not in str(x)
            and pathlib.Path(x).is_file()
            for x in items
        )
        if all_paths or all_files:
            return _file_lines([pathlib.Path(x) for x in items])
    return _text_lines(texts_or_files)


def _file_lines(paths):
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: training text file not found; check the path given to SentencePieceTokenizer.train")
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line:
                    yield line


def _text_lines(texts):
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"SentencePieceTokenizer.train expects strings or file paths, got {type(text).__name__}")
        for line in text.splitlines():
            line = line.strip()
            if line:
                yield line


class SentencePieceTokenizer:
    """A SentencePiece model with the same interface as :class:`ByteCodec`."""

    def __init__(self, processor, model_path: str | None = None):
        self._sp = processor
        self.model_path = None if model_path is None else str(model_path)
        where = self.model_path or "<in-memory model>"
        for name in ("pad", "bos", "eos"):
            if getattr(processor, f"{name}_id")() < 0:
                raise DataError(
                    f"{where}: SentencePiece model has no {name} id; "
                    "train it with SentencePieceTokenizer.train (which defines pad/bos/eos)"
                )

    # -- construction -----------------------------------------------------
    @classmethod
    def load(cls, model_path) -> "SentencePieceTokenizer":
        """Load a ``.model`` file; a missing or corrupt file raises :class:`DataError`."""
        import sentencepiece as spm

        path = pathlib.Path(model_path)
        if not path.is_file():
            raise DataError(f"{path}: SentencePiece model file not found; train one or fix tokenizer.model")
        processor = spm.SentencePieceProcessor()
        try:
            processor.Load(model_file=str(path))
        except (OSError, RuntimeError, ValueError) as exc:
            raise DataError(f"{path}: not a valid SentencePiece model ({exc}); retrain it or fix tokenizer.model") from exc
        return cls(processor, str(path))

    @classmethod
    def train(
        cls,
        texts_or_files,
        model_prefix,
        vocab_size: int = 1000,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        byte_fallback: bool = False,
    ) -> "SentencePieceTokenizer":
        """Train a model on texts and write ``<model_prefix>.model`` and ``.vocab``.

        ``texts_or_files`` is a list of text file paths (``pathlib.Path`` objects
        or strings naming existing files), or any iterable of strings (each
        split into lines).  The model gets ``unk`` = 0, ``bos`` = 1, ``eos`` = 2,
        ``pad`` = 3.  ``byte_fallback=True`` spells characters unseen in training
        as UTF-8 byte pieces instead of ``unk``, so every text round-trips.
        """
        import sentencepiece as spm

        if model_type not in ("unigram", "bpe", "char", "word"):
            raise ConfigError(f"tokenizer.model_type: {model_type!r} is not one of unigram, bpe, char, word")
        prefix = pathlib.Path(model_prefix)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        lines = _iter_training_lines(texts_or_files)
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines),
                model_prefix=str(prefix),
                vocab_size=int(vocab_size),
                model_type=model_type,
                character_coverage=float(character_coverage),
                unk_id=0,
                bos_id=1,
                eos_id=2,
                pad_id=3,
                byte_fallback=bool(byte_fallback),
                num_threads=min(4, os.cpu_count() or 1),
                minloglevel=2,
            )
        except RuntimeError as exc:
            msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
            raise DataError(
                f"{prefix}.model: SentencePiece training failed: {msg} "
                "(use more text or a smaller tokenizer.vocab_size)"
            ) from exc
        return cls.load(f"{prefix}.model")

    # -- vocabulary -------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return int(self._sp.GetPieceSize())

    @property
    def pad_id(self) -> int:
        return int(self._sp.pad_id())

    @property
    def bos_id(self) -> int:
        return int(self._sp.bos_id())

    @property
    def eos_id(self) -> int:
        return int(self._sp.eos_id())

    @property
    def unk_id(self) -> int:
        return int(self._sp.unk_id())

    # -- coding -----------------------------------------------------------
    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        if not isinstance(text, str):
            raise TypeError(f"SentencePieceTokenizer.encode expects str, got {type(text).__name__}")
        ids = self._sp.Encode(text, out_type=int, add_bos=bool(add_bos), add_eos=bool(add_eos))
        return np.asarray(ids, dtype=np.int32)

    def decode(self, ids, stop_at_eos: bool = True) -> str:
        """Text for ``ids``; PAD/BOS and out-of-range ids are skipped (never raises)."""
        keep = []
        size, eos, skip = self.vocab_size, self.eos_id, (self.pad_id, self.bos_id)
        for i in _as_id_list(ids):
            if i == eos:
                if stop_at_eos:
                    break
                continue
            if i in skip or not 0 <= i < size:
                continue
            keep.append(i)
        return self._sp.Decode(keep)

    def get_config(self) -> dict:
        return {"type": "sentencepiece", "model": self.model_path}

    # -- pickling (for worker processes) -----------------------------------
    def __getstate__(self):
        return {"model_path": self.model_path, "proto": self._sp.serialized_model_proto()}

    def __setstate__(self, state):
        import sentencepiece as spm

        processor = spm.SentencePieceProcessor()
        processor.LoadFromSerializedProto(state["proto"])
        self.__init__(processor, state["model_path"])

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer(model={self.model_path!r}, vocab_size={self.vocab_size})"


def get_tokenizer(config=None):
    """A tokenizer from its config (the ``tokenizer`` section of a run config).

    ``{"type": "bytes"}`` (also the default for ``None``) gives a
    :class:`ByteCodec`; ``{"type": "sentencepiece", "model": PATH}`` loads a
    :class:`SentencePieceTokenizer`.
    """
    if config is None:
        return ByteCodec()
    if isinstance(config, str):
        config = {"type": config}
    if not isinstance(config, dict):
        raise ConfigError(f"tokenizer: expected a mapping with a 'type' key, got {type(config).__name__}")
    kind = str(config.get("type", "bytes")).lower()
    if kind in ("bytes", "byte"):
        return ByteCodec()
    if kind in ("sentencepiece", "spm"):
        model = config.get("model")
        if not model:
            raise ConfigError("tokenizer.model: missing; set it to the path of a SentencePiece .model file")
        return SentencePieceTokenizer.load(model)
    raise ConfigError(f"tokenizer.type: unknown tokenizer {config.get('type')!r}; use 'bytes' or 'sentencepiece'")
