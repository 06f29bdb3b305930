"""tf.data input pipelines over prepared shards (TensorFlow side of seqgen).

This module imports TensorFlow; the backend-agnostic core never imports it.
Every pipeline is deterministic given its seed (stateless random ops keyed
on the element index, seeded shuffles), so a run that resumes at step ``s``
can rebuild its stream from ``(seed, s)``.

* :func:`vocoder_dataset` - random fixed-length audio windows starting on a
  frame boundary, with the matching normalized mel frames, speaker ids and a
  per-sample weight (0 on padding of clips shorter than the window).
* :func:`vocoder_eval_dataset` - consecutive windows covering every sample of
  a split once (for validation NLL).
* :func:`byte_lm_dataset` - random byte windows of a text corpus.
* :func:`pairs_dataset` - (source, target) byte sequences, bucketed by length
  and padded.
* :func:`vocoder_arrays` / :func:`byte_arrays` - the same data as numpy arrays,
  for training on any Keras backend (e.g. JAX) with ``model.fit(x, y)``.
"""
from __future__ import annotations

import pathlib

import numpy as np

from seqgen.data.manifest import read_manifest
from seqgen.errors import DataError
from seqgen.utils.tf_import import tensorflow

SILENCE_MEL = float(np.log(1e-5))


def _tf():
    return tensorflow()


def _shards(data_dir, manifest, split) -> list[str]:
    names = manifest.get("splits", {}).get(split, {}).get("shards")
    if names is None:
        raise DataError(f"{data_dir}: the manifest has no '{split}' split")
    paths = [str(pathlib.Path(data_dir) / n) for n in names]
    missing = [p for p in paths if not pathlib.Path(p).is_file()]
    if missing:
        raise DataError(f"{missing[0]}: shard listed in the manifest is missing; prepare the data again")
    if not paths:
        raise DataError(f"{data_dir}: the '{split}' split is empty")
    return paths


# --------------------------------------------------------------------------- vocoder


def _parse_vocoder(n_mels, bits=8):
    """A parser of one serialized record into the :mod:`seqgen.data.schema` fields training reads."""
    from seqgen.data.schema import FIELDS_BY_NAME, mulaw_dtype

    tf = _tf()
    wanted = ("id", "speaker", "num_samples", "num_frames", "audio", "mulaw", "mel")
    spec = {name: tf.io.FixedLenFeature([], tf.int64 if FIELDS_BY_NAME[name].kind == "int" else tf.string)
            for name in wanted}
    dtypes = {name: tf.dtypes.as_dtype(np.dtype(FIELDS_BY_NAME[name].dtype or mulaw_dtype(bits)).newbyteorder("="))
              for name in ("audio", "mulaw", "mel")}

    def parse(record):
        f = tf.io.parse_single_example(record, spec)
        return {
            "id": f["id"],
            "speaker": tf.cast(f["speaker"], tf.int32),
            "audio": tf.io.decode_raw(f["audio"], dtypes["audio"], little_endian=True),
            "mulaw": tf.cast(tf.io.decode_raw(f["mulaw"], dtypes["mulaw"], little_endian=True), tf.int32),
            "mel": tf.reshape(tf.io.decode_raw(f["mel"], dtypes["mel"], little_endian=True), [-1, n_mels]),
        }

    return parse


def silence_input(distribution) -> int | float:
    """The model input that stands for silence (before a clip's first sample, and padding).

    The mu-law class of 0.0 for discrete (categorical) models, 0.0 for continuous ones.
    """
    if not distribution.input_is_discrete:
        return 0.0
    return int(np.asarray(distribution.from_waveform(np.zeros((1,), np.float32)))[0])


class VocoderData:
    """What a model needs to know about a prepared vocoder corpus."""

    def __init__(self, data_dir):
        self.dir = pathlib.Path(data_dir)
        self.manifest = read_manifest(data_dir, "vocoder")
        from seqgen.data.audio import FeatureParams, NormStats

        self.features = FeatureParams.from_dict(self.manifest["features"])
        self.stats = NormStats.load(self.dir / self.manifest.get("stats", "stats.json"))
        self.sample_rate = int(self.manifest["sample_rate"])
        self.hop = self.features.hop_length
        self.n_mels = self.features.n_mels
        self.bits = int(self.manifest.get("mu_law_bits", 8))
        self.speakers = list(self.manifest.get("speakers", []))

    def shards(self, split):
        return _shards(self.dir, self.manifest, split)

    def num_samples(self, split) -> int:
        return int(self.manifest["splits"][split]["num_samples"])


def _window_fn(info: VocoderData, window: int, discrete: bool, silence_class: int, seed: int, random: bool):
    tf = _tf()
    hop = info.hop
    wframes = window // hop
    mean = tf.constant(info.stats.mean)
    std = tf.constant(info.stats.std)
    silence_norm = (SILENCE_MEL - info.stats.mean) / info.stats.std

    def crop(index, item):
        frames = tf.shape(item["mel"])[0]
        max_start = tf.maximum(frames - wframes, 0)
        if random:
            u = tf.random.stateless_uniform([], seed=tf.stack([tf.cast(seed, tf.int64), index]),
                                            minval=0, maxval=2 ** 31 - 1, dtype=tf.int64)
            start = tf.cast(u % tf.cast(max_start + 1, tf.int64), tf.int32)
        else:
            start = tf.constant(0, tf.int32)
        s0 = start * hop
        seq = item["mulaw"] if discrete else item["audio"]
        n = tf.shape(seq)[0]
        target = seq[s0: s0 + window]
        prev_silence = tf.constant([silence_class] if discrete else [0.0], dtype=seq.dtype)
        prev = tf.cond(s0 > 0, lambda: seq[s0 - 1: s0], lambda: prev_silence)
        x = tf.concat([prev, target[:-1]], axis=0)
        valid = tf.minimum(window, n - s0)
        pad = window - valid
        fill = tf.cast(silence_class if discrete else 0, seq.dtype)
        target = tf.concat([target, tf.fill([pad], fill)], 0)
        x = tf.concat([x, tf.fill([window - tf.shape(x)[0]], fill)], 0)
        weight = tf.concat([tf.ones([valid]), tf.zeros([pad])], 0)
        mel = (item["mel"][start: start + wframes] - mean) / std
        mel = tf.concat([mel, tf.tile(tf.constant(silence_norm[None], tf.float32),
                                      [wframes - tf.shape(mel)[0], 1])], 0)
        x.set_shape([window])
        target.set_shape([window])
        weight.set_shape([window])
        mel.set_shape([wframes, info.n_mels])
        inputs = {"x": x, "mel": mel, "speaker": item["speaker"]}
        return inputs, target, weight

    return crop


def vocoder_dataset(data_dir, split="train", window=8192, batch_size=8, seed=0, discrete=True,
                    silence_class=128, shuffle_buffer=256, repeat=True, random=True, shard=(0, 1)):
    """Batches ``(inputs, target, weight)`` of random audio windows.

    ``inputs`` = {"x": previous samples [B, W], "mel": normalized mel
    [B, W/hop, n_mels], "speaker": [B]}; ``target`` = samples [B, W]
    (mu-law classes if ``discrete`` else floats); ``weight`` [B, W] is 0 on
    padding.  ``window`` must be a multiple of the hop length.
    ``shard = (index, count)``: input pipeline ``index`` of ``count`` (one per
    worker) reads every ``count``-th shard file when there are at least
    ``count`` of them (otherwise all files; its seed alone sets it apart).
    """
    tf = _tf()
    info = VocoderData(data_dir)
    if window % info.hop:
        raise DataError(f"window {window} must be a multiple of the hop length {info.hop} "
                        f"(e.g. {max(1, window // info.hop) * info.hop})")
    files = info.shards(split)
    index, count = shard
    if count > 1 and len(files) >= count:
        files = files[index::count]
    ds = tf.data.Dataset.from_tensor_slices(files)
    if repeat:
        ds = ds.shuffle(len(files), seed=seed).repeat()
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)), num_parallel_calls=1,
                       deterministic=True)
    ds = ds.map(_parse_vocoder(info.n_mels, info.bits), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if repeat and shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    ds = ds.enumerate().map(lambda i, item: _window_fn(info, window, discrete, silence_class, seed, random)(i, item),
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=repeat).prefetch(2)


def vocoder_eval_dataset(data_dir, split="valid", window=8192, batch_size=4, discrete=True, silence_class=128):
    """Consecutive windows covering every sample of ``split`` exactly once.

    Yields ``(inputs, target, weight)`` like :func:`vocoder_dataset`; weights
    mark the real samples, so the weighted mean NLL is the split's NLL.
    """
    tf = _tf()
    info = VocoderData(data_dir)
    if window % info.hop:
        raise DataError(f"window {window} must be a multiple of the hop length {info.hop}")
    wframes = window // info.hop

    def split_item(item):
        frames = tf.shape(item["mel"])[0]
        n_win = (frames + wframes - 1) // wframes
        starts = tf.range(n_win) * wframes
        return tf.data.Dataset.from_tensor_slices(starts).map(lambda s: (s, item))

    crop_fn = _window_fn(info, window, discrete, silence_class, 0, False)

    def crop_at(start, item):
        # Window starting at frame ``start``: crop a shifted view of the item.
        s0 = start * info.hop
        shifted = {"speaker": item["speaker"], "mel": item["mel"][start:],
                   "mulaw": item["mulaw"][s0:], "audio": item["audio"][s0:]}
        inputs, target, weight = crop_fn(tf.constant(0, tf.int64), shifted)
        # The first input of a window is the real previous sample when s0 > 0.
        seq = item["mulaw"] if discrete else item["audio"]
        first = tf.cond(s0 > 0, lambda: seq[s0 - 1], lambda: inputs["x"][0])
        inputs["x"] = tf.concat([first[None], inputs["x"][1:]], 0)
        return inputs, target, weight

    ds = tf.data.TFRecordDataset(info.shards(split))
    ds = ds.map(_parse_vocoder(info.n_mels, info.bits)).flat_map(split_item).map(crop_at)
    return ds.batch(batch_size)


def vocoder_utterances(data_dir, splits=("valid", "train"), ids=None):
    """Whole utterances of a prepared corpus: ``{"id", "speaker", "audio", "mel", "split"}`` numpy dicts,
    split by split in shard order (only those whose id is in ``ids``, when given)."""
    info = VocoderData(data_dir)
    wanted = None if ids is None else set(ids)
    parse = _parse_vocoder(info.n_mels, info.bits)
    for split in splits:
        if not info.manifest["splits"].get(split, {}).get("shards"):
            continue
        for item in _tf().data.TFRecordDataset(info.shards(split)).map(parse):
            uid = item["id"].numpy().decode("utf-8")
            if wanted is None or uid in wanted:
                yield {"id": uid, "speaker": int(item["speaker"]), "audio": item["audio"].numpy(),
                       "mel": item["mel"].numpy(), "split": split}


def vocoder_arrays(data_dir, split="train", window=8192, num_windows=64, seed=0, discrete=True,
                   silence_class=128):
    """``num_windows`` random windows as numpy arrays: (inputs dict, target, weight)."""
    ds = vocoder_dataset(data_dir, split, window, batch_size=num_windows, seed=seed, discrete=discrete,
                         silence_class=silence_class)
    inputs, target, weight = next(iter(ds))
    return {k: v.numpy() for k, v in inputs.items()}, target.numpy(), weight.numpy()


# --------------------------------------------------------------------------- text


def _bin_paths(data_dir, split):
    manifest = read_manifest(data_dir, "text")
    return _shards(data_dir, manifest, split), manifest


def load_bytes(data_dir, split) -> np.ndarray:
    """All bytes of a split of a prepared text corpus (memory-mapped shards concatenated)."""
    paths, _ = _bin_paths(data_dir, split)
    parts = [np.memmap(p, dtype=np.uint8, mode="r") for p in paths if pathlib.Path(p).stat().st_size]
    if not parts:
        raise DataError(f"{data_dir}: the '{split}' split has no bytes")
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def byte_lm_dataset(data_dir, split="train", window=256, batch_size=32, seed=0):
    """Batches ``(x, y)`` of random byte windows: y is x shifted left by one."""
    tf = _tf()
    data = load_bytes(data_dir, split)
    if len(data) < window + 2:
        raise DataError(f"{data_dir}: the '{split}' split has {len(data)} bytes, fewer than window+2 = {window + 2}")
    data_t = tf.constant(np.asarray(data))
    hi = len(data) - window - 1

    def take(i):
        off = tf.random.stateless_uniform([], seed=tf.stack([tf.cast(seed, tf.int64), i]), minval=0,
                                          maxval=hi + 1, dtype=tf.int64)
        chunk = tf.cast(data_t[off: off + window + 1], tf.int32)
        chunk.set_shape([window + 1])
        return chunk[:-1], chunk[1:]

    ds = tf.data.Dataset.range(2 ** 62).map(take, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(2)


def byte_arrays(data_dir, split="valid", window=256, max_windows=None):
    """Consecutive non-overlapping windows (x, y) of a split as numpy arrays (for evaluation)."""
    data = np.asarray(load_bytes(data_dir, split)).astype(np.int32)
    n = (len(data) - 1) // window
    if max_windows:
        n = min(n, max_windows)
    if n == 0:
        raise DataError(f"{data_dir}: the '{split}' split is shorter than one window of {window} bytes")
    x = data[: n * window].reshape(n, window)
    y = data[1: n * window + 1].reshape(n, window)
    return x, y


def pairs_dataset(data_dir, split="train", batch_size=32, max_length=256, seed=0, shuffle=True, repeat=True,
                  buckets=(16, 32, 64, 128, 256)):
    """Batches of {"source": [B, S], "target_in": [B, T]} and target_out [B, T] (byte ids, padded).

    Sources end with EOS; the decoder input starts with BOS and the output
    ends with EOS; padding is PAD.  Pairs longer than ``max_length`` bytes
    on either side are dropped.  Batches are bucketed by length.
    """
    tf = _tf()
    from seqgen.data.tokenizers import BOS_ID, EOS_ID, PAD_ID

    manifest = read_manifest(data_dir, "pairs")
    files = _shards(data_dir, manifest, split)
    ds = tf.data.TextLineDataset(files)

    def parse(line):
        parts = tf.strings.split(line, "\t", maxsplit=1)
        src = tf.cast(tf.io.decode_raw(parts[0], tf.uint8), tf.int32)
        tgt = tf.cast(tf.io.decode_raw(parts[1], tf.uint8), tf.int32)
        src = tf.concat([src, [EOS_ID]], 0)
        return {"source": src, "target_in": tf.concat([[BOS_ID], tgt], 0)}, tf.concat([tgt, [EOS_ID]], 0)

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda x, y: tf.logical_and(tf.shape(x["source"])[0] <= max_length,
                                               tf.shape(y)[0] <= max_length))
    if shuffle:
        ds = ds.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    bounds = [b for b in buckets if b < max_length]
    ds = ds.bucket_by_sequence_length(
        lambda x, y: tf.maximum(tf.shape(x["source"])[0], tf.shape(y)[0]),
        bucket_boundaries=[b + 1 for b in bounds],
        bucket_batch_sizes=[batch_size] * (len(bounds) + 1),
        padding_values=({"source": PAD_ID, "target_in": PAD_ID}, PAD_ID),
        drop_remainder=False)
    return ds.prefetch(2)


def read_pairs(data_dir, split="valid") -> list[tuple[str, str]]:
    """The (source, target) text pairs of a split, in file order."""
    manifest = read_manifest(data_dir, "pairs")
    pairs = []
    for path in _shards(data_dir, manifest, split):
        with open(path, encoding="utf-8") as f:
            for line in f:
                src, _, tgt = line.rstrip("\n").partition("\t")
                pairs.append((src, tgt))
    return pairs
