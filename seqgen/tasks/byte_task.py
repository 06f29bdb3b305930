"""What the byte-level kinds (language model, translation) share: the tokenizer the data
dictates, the token ids it fixes in the model, and the model-input contract.

The input contract lives here once, for training and evaluation alike (numpy):

* a language model's window starts with BOS in place of its first byte
  (generation always starts from BOS): :func:`lm_inputs`;
* batches are PAD-extended to a power-of-two length, so only a handful of
  shapes are ever compiled: :func:`pad_to_bucket`, :func:`pad_to`.
"""
from __future__ import annotations

import math
import pathlib

import numpy as np

from seqgen.errors import ConfigError
from seqgen.tasks.base import Task

LN2 = math.log(2.0)


def lm_inputs(x, bos_id):
    """Language-model inputs of byte windows ``x [B, T]``: the first byte replaced by BOS."""
    x = np.array(x, np.int32, copy=True)
    x[:, 0] = bos_id
    return x


def pad_to_bucket(ids, pad_id, minimum=16):
    """``ids [B, T]`` PAD-extended to the next power-of-two length."""
    from seqgen.models.token_decoding import bucket_length

    ids = np.asarray(ids)
    return pad_to(ids, bucket_length(ids.shape[1], minimum), pad_id).astype(ids.dtype)


def pad_to(ids, size, pad_id):
    """``ids [B, T]`` PAD-extended to ``size`` columns."""
    out = np.full((ids.shape[0], int(size)), pad_id, np.int32)
    out[:, : ids.shape[1]] = ids
    return out


def token_nll(logits, y, pad_id):
    """Per-token cross-entropy (nats, float64) of targets ``y [B, T]`` under ``logits [B, T, V]``
    and the weights (0 at PAD targets)."""
    logits = np.asarray(logits, np.float64)
    m = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(-1)) + m[..., 0]
    picked = np.take_along_axis(logits, np.asarray(y, np.int64)[..., None], -1)[..., 0]
    return lse - picked, (np.asarray(y) != pad_id).astype(np.float64)


class ByteTask(Task):
    """Base of the byte-level tasks: byte-tokenized data, vocabulary and PAD/BOS/EOS from the tokenizer."""

    unit = "byte"

    @property
    def trained_window(self) -> int | None:
        """The longest context the model saw in training (``data.window``), or None."""
        try:
            return int(self.config()["data"]["window"])
        except (KeyError, TypeError, ValueError, OSError):
            return None

    @classmethod
    def data_info(cls, data_dir) -> dict:
        from seqgen.data.manifest import read_manifest
        from seqgen.data.tokenizers import ByteCodec

        manifest = read_manifest(data_dir, cls.kind)
        tok = dict(manifest.get("tokenizer") or {"type": "bytes"})
        if tok.get("type", "bytes") != "bytes":
            raise ConfigError(f"{data_dir}: tokenizer {tok.get('type')!r}: `seqgen train` supports byte-level "
                              f"data only (prepare it with the default --tokenizer bytes)")
        return {"kind": cls.kind, "data_dir": str(pathlib.Path(data_dir).resolve()), "tokenizer": tok,
                "vocab_size": ByteCodec.vocab_size, **cls._split_sizes(manifest.get("splits") or {})}

    @classmethod
    def _split_sizes(cls, splits: dict) -> dict:
        return {}

    @classmethod
    def model_kwargs(cls, model_type, model_cfg, data_info) -> dict:
        from seqgen.data.tokenizers import get_tokenizer

        tok = get_tokenizer(data_info.get("tokenizer"))
        return {"vocab_size": int(tok.vocab_size), "pad_id": int(tok.pad_id), "bos_id": int(tok.bos_id),
                "eos_id": int(tok.eos_id)}
