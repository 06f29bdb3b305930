"""Prepared vocoder shards without TensorFlow: ArrayRecord files of self-describing numpy records.

The container is ArrayRecord (``array_record``, random access by record index: what ``grain`` reads on
every backend); each record holds the :mod:`seqgen.data.schema` fields of one utterance:

``b"SQR1"`` | header length (uint32, little-endian) | UTF-8 JSON header | array payloads

The header has the text and int fields and, for each array field, ``[dtype, shape, offset, nbytes]``
into the payload, so a record is decoded with ``numpy.frombuffer`` (no copy) and nothing else.  Files
are written under a temporary name and renamed once closed: a crash never leaves a half shard.

Format versions (``format_version`` in ``manifest.json``): 1 = ``tf.train.Example`` in TFRecord files
(seqgen before this module; ``seqgen prepare migrate DATA`` rewrites such a corpus), 2 = this.
"""
from __future__ import annotations

import json
import os
import pathlib
import struct

import numpy as np

from seqgen.data.schema import VOCODER_FIELDS, mulaw_dtype
from seqgen.errors import DataError

FORMAT_VERSION = 2
MAGIC = b"SQR1"
SUFFIX = ".array_record"
_HEAD = struct.Struct("<4sI")


def encode(item_id: str, text: str, speaker: int, wav, mulaw, mel, bits: int) -> bytes:
    """One utterance as a record (the fields and element types of :mod:`seqgen.data.schema`)."""
    wav, mel = np.asarray(wav), np.asarray(mel)
    arrays = {"audio": wav.astype("<f4"), "mulaw": np.asarray(mulaw).astype(mulaw_dtype(bits)),
              "mel": mel.astype("<f4")}
    header = {"id": str(item_id), "text": str(text or ""), "speaker": int(speaker),
              "num_samples": int(len(wav)), "num_frames": int(mel.shape[0]), "arrays": {}}
    payload, offset = [], 0
    for field in VOCODER_FIELDS:
        if field.kind == "array":
            arr = np.ascontiguousarray(arrays[field.name])
            header["arrays"][field.name] = [arr.dtype.str, list(arr.shape), offset, arr.nbytes]
            payload.append(arr.tobytes())
            offset += arr.nbytes
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return _HEAD.pack(MAGIC, len(head)) + head + b"".join(payload)


def decode(record: bytes) -> dict:
    """``{field: value}`` of a record: text and int fields, and numpy arrays (read-only views)."""
    if len(record) < _HEAD.size:
        raise DataError("a record shorter than its header: the shard is corrupt")
    magic, size = _HEAD.unpack_from(record, 0)
    if magic != MAGIC:
        raise DataError("not a seqgen record (wrong magic bytes): the shard is corrupt or of another format")
    header = json.loads(bytes(record[_HEAD.size: _HEAD.size + size]).decode("utf-8"))
    base = _HEAD.size + size
    out = {k: v for k, v in header.items() if k != "arrays"}
    for name, (dtype, shape, offset, nbytes) in header["arrays"].items():
        dt = np.dtype(dtype)
        out[name] = np.frombuffer(record, dtype=dt, count=nbytes // dt.itemsize, offset=base + offset).reshape(shape)
    return out


class ShardWriter:
    """Writes ArrayRecord shards ``{prefix}-00000.array_record``, rotating at a size limit."""

    def __init__(self, out_dir, prefix: str, max_bytes: int = 64 << 20):
        self.out_dir = pathlib.Path(out_dir)
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.shards: list[str] = []
        self.num_records = 0
        self._writer = None
        self._bytes = 0
        self._tmp = None

    def _open(self):
        from array_record.python.array_record_module import ArrayRecordWriter

        name = f"{self.prefix}-{len(self.shards):05d}{SUFFIX}"
        self._tmp = self.out_dir / (name + ".tmp")
        self._writer = ArrayRecordWriter(str(self._tmp), "group_size:1")
        self.shards.append(name)
        self._bytes = 0

    def write(self, record: bytes) -> None:
        if self._writer is None or self._bytes >= self.max_bytes:
            self._close_current()
            self._open()
        self._writer.write(record)
        self._bytes += len(record)
        self.num_records += 1

    def _close_current(self):
        if self._writer is not None:
            self._writer.close()
            os.replace(self._tmp, self.out_dir / self.shards[-1])
            self._writer = None

    def close(self) -> list[str]:
        self._close_current()
        return list(self.shards)


def data_source(paths):
    """Random access to the records of ``paths`` in order (``len`` and ``[i]``): grain's ArrayRecord source."""
    from grain.sources import ArrayRecordDataSource

    return ArrayRecordDataSource([str(p) for p in paths])


def check_format(data_dir, manifest: dict) -> None:
    """One line naming the migration when a corpus was prepared in an older shard format."""
    version = int(manifest.get("format_version", 1))
    if version == FORMAT_VERSION:
        return
    if version < FORMAT_VERSION:
        raise DataError(f"{data_dir}: prepared by an older seqgen (shard format {version}, TFRecord); "
                        f"rewrite it once with `seqgen prepare migrate {data_dir}` (or prepare it again)")
    raise DataError(f"{data_dir}: shard format {version} is newer than this seqgen reads ({FORMAT_VERSION}); "
                    f"upgrade seqgen")
