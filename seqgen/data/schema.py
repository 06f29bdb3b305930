"""The fields of a prepared vocoder shard record, shared by the writer and the reader.

This names each field, its kind and the element type of its array fields; it
says nothing of the container, which is :mod:`seqgen.data.records` (ArrayRecord
files of self-describing numpy records: ``data_prep.vocoder`` writes them,
:mod:`seqgen.data.pipeline` reads them; shard format 1, before it, was
``tf.train.Example`` in TFRecord files).

Kinds: ``text`` (UTF-8 string), ``int`` (one integer), ``array`` (the raw
little-endian bytes of a numpy array of ``dtype``; ``mel`` is
``[num_frames, n_mels]`` row-major).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "text" | "int" | "array"
    dtype: str | None = None  # array fields: numpy dtype of the elements (None: depends on mu-law bits)
    doc: str = ""


VOCODER_FIELDS = (
    Field("id", "text", doc="utterance id (path relative to the corpus, no extension)"),
    Field("text", "text", doc="transcript, '' when unknown"),
    Field("speaker", "int", doc="index into the manifest's speakers"),
    Field("num_samples", "int", doc="samples, a whole number of hops"),
    Field("num_frames", "int", doc="mel frames: num_samples // hop"),
    Field("audio", "array", "<f4", doc="waveform in [-1, 1]"),
    Field("mulaw", "array", None, doc="mu-law classes: uint8 for <= 8 bits, else little-endian uint16"),
    Field("mel", "array", "<f4", doc="log-mel [num_frames, n_mels], not normalized"),
)
FIELDS_BY_NAME = {f.name: f for f in VOCODER_FIELDS}


def mulaw_dtype(bits: int) -> str:
    """Element type of the ``mulaw`` field for ``bits``-bit mu-law."""
    return "uint8" if int(bits) <= 8 else "<u2"
