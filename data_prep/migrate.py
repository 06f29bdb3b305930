"""`seqgen prepare migrate DATA`: rewrite a corpus prepared by an older seqgen in today's shard format.

Format 1 (vocoder corpora before :mod:`seqgen.data.records`): ``tf.train.Example`` records in TFRecord
files, read here with TensorFlow (the only place that still needs it) and written again as ArrayRecord
shards, record for record, in the same order and split; the manifest gets ``format_version`` 2 and the
new shard names; the old files are removed only once the new ones and the manifest are written.  Text
and pairs corpora did not change format: their manifest gets the version only.
"""
from __future__ import annotations

import pathlib
import sys

import numpy as np

from data_prep import common
from seqgen.data import records
from seqgen.errors import DataError


def _read_format1(files, n_mels, bits):
    from seqgen.data.schema import mulaw_dtype
    from seqgen.utils.tf_import import tensorflow

    tf = tensorflow()
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("id", "text", "audio", "mulaw", "mel")}
    spec.update({k: tf.io.FixedLenFeature([], tf.int64) for k in ("speaker", "num_samples", "num_frames")})
    for raw in tf.data.TFRecordDataset([str(f) for f in files]):
        f = tf.io.parse_single_example(raw, spec)
        yield (f["id"].numpy().decode("utf-8"), f["text"].numpy().decode("utf-8"), int(f["speaker"]),
               np.frombuffer(f["audio"].numpy(), "<f4"),
               np.frombuffer(f["mulaw"].numpy(), np.dtype(mulaw_dtype(bits)).newbyteorder("<")),
               np.frombuffer(f["mel"].numpy(), "<f4").reshape(-1, n_mels))


def migrate(data_dir) -> dict:
    """Bring ``data_dir`` to :data:`seqgen.data.records.FORMAT_VERSION`; returns the new manifest."""
    data_dir = pathlib.Path(data_dir)
    manifest = common.read_manifest(data_dir)
    version = int(manifest.get("format_version", 1))
    if version == records.FORMAT_VERSION:
        print(f"{data_dir}: already in shard format {version}; nothing to do", file=sys.stderr)
        return manifest
    if version > records.FORMAT_VERSION:
        raise DataError(f"{data_dir}: shard format {version} is newer than this seqgen ({records.FORMAT_VERSION})")
    if manifest.get("kind") == "vocoder":
        n_mels = int(manifest["features"]["n_mels"])
        bits = int(manifest.get("mu_law_bits", 8))
        old_files = []
        for split, info in manifest["splits"].items():
            files = [data_dir / name for name in info.get("shards", [])]
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise DataError(f"{missing[0]}: listed in the manifest but missing; prepare the data again")
            writer = records.ShardWriter(data_dir, split)
            ids = []
            for uid, text, speaker, audio, mulaw, mel in common.progress(
                    _read_format1(files, n_mels, bits), total=info.get("num_items"), desc=f"migrate {split}",
                    unit="utt"):
                writer.write(records.encode(uid, text, speaker, audio, mulaw, mel, bits))
                ids.append(uid)
            info["shards"] = writer.close()
            info.setdefault("ids", sorted(ids))
            old_files += files
    manifest["format_version"] = records.FORMAT_VERSION
    common.write_json_atomic(data_dir / common.MANIFEST, manifest)
    if manifest.get("kind") == "vocoder":
        for f in old_files:
            f.unlink()
    print(f"{data_dir}: migrated from shard format {version} to {records.FORMAT_VERSION}", file=sys.stderr)
    return manifest
