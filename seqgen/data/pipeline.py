"""Input pipelines over prepared shards.

Nothing here imports TensorFlow.  Vocoder and byte-LM training read with ``grain`` (random access by
index over ArrayRecord shards and memory-mapped byte files), translation pairs with a seeded,
length-bucketed numpy stream; Keras ``fit`` takes both on every backend.  Every pipeline is
deterministic given its seed (each element drawn from ``(seed, element index)``, seeded permutations and
shuffles), so a run that resumes at step ``s`` can rebuild its stream from ``(seed, s)``.

* :func:`vocoder_dataset` - random fixed-length audio windows starting on a frame boundary, with the
  matching normalized mel frames, speaker ids and a per-sample weight (0 on padding of clips shorter
  than the window); :func:`batches_for_fit` puts it in the form ``fit`` takes, prefetching in threads.
* :func:`vocoder_eval_dataset` - consecutive windows covering every sample of a split once (for
  validation NLL); :func:`vocoder_utterances` - whole utterances.
* :func:`byte_lm_dataset` - random byte windows of a text corpus.
* :func:`pairs_dataset` - (source, target) byte sequences, bucketed by length and padded.
* :func:`vocoder_arrays` / :func:`byte_arrays` - the same data as numpy arrays.
"""
from __future__ import annotations

import pathlib

import numpy as np

from seqgen.data.manifest import read_manifest
from seqgen.errors import ConfigError, DataError

SILENCE_MEL = float(np.log(1e-5))


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


class _WindowEncoder:
    """``(utt, start, length, rng) -> (inputs, target)`` through ``model.training_window``, with each
    utterance's predictor (linear prediction) computed once from its mel and kept; with ``noise`` (a
    level, ``data.input_noise``) and an ``rng``, the inputs carry the noise of ``model.input_noise``."""

    def __init__(self, model, noise=0.0):
        self.model = model
        self.lpc = {}
        self.fill = model.silence_input()
        self.noise = float(noise)

    def __call__(self, utt, start, length, rng=None):
        coefficients = None
        if getattr(self.model, "lpc_order", 0):
            key = str(utt["id"])
            if key not in self.lpc:
                self.lpc[key] = self.model.lpc_of_log_mel(utt["mel"])
            coefficients = self.lpc[key]
        noise = None
        if self.noise > 0 and rng is not None:
            noise = self.model.input_noise(rng, int(length) + 1 + getattr(self.model, "lpc_order", 0), self.noise)
        return self.model.training_window(utt["audio"], start, length, coefficients, noise=noise)


def sample_encoder(model, data_dir, noise=0.0):
    """The window maker of a WaveNet whose samples are not a prepared field as stored (see
    :func:`vocoder_dataset`'s ``encode``), or None when they are: a model with pre-emphasis or linear
    prediction, a mu-law categorical head of another bit depth than the corpus's ``mulaw`` field (a
    10-bit model on an 8-bit corpus re-quantizes the stored float audio), or training inputs with
    ``noise`` (``data.input_noise``; discrete inputs only)."""
    dist = model.distribution
    if not hasattr(model, "training_window"):
        if noise:
            raise ConfigError(f"data.input_noise: a {type(model).__name__} has no training inputs to add noise to "
                              f"(set it to 0)")
        return None
    if noise and not dist.input_is_discrete:
        raise ConfigError("data.input_noise moves input classes: it needs a categorical (mu-law) head; set it to 0")
    if noise:
        return _WindowEncoder(model, noise)
    if (getattr(model, "pre_emphasis", 0.0) or getattr(model, "lpc_order", 0)
            or dist.input_is_discrete and (not getattr(dist, "mu_law", False)
                                           or getattr(dist, "bits", None) != VocoderData(data_dir).bits)):
        return _WindowEncoder(model)
    return None


def silence_input(distribution) -> int | float:
    """The model input that stands for silence (before a clip's first sample, and padding).

    The mu-law class of 0.0 for discrete (categorical) models, 0.0 for continuous ones.
    """
    if not distribution.input_is_discrete:
        return 0.0
    return int(np.asarray(distribution.from_waveform(np.zeros((1,), np.float32)))[0])


class VocoderData:
    """What a model needs to know about a prepared vocoder corpus, and random access to its utterances."""

    def __init__(self, data_dir):
        from seqgen.data import records
        from seqgen.data.audio import FeatureParams, NormStats

        self.dir = pathlib.Path(data_dir)
        self.manifest = read_manifest(data_dir, "vocoder")
        records.check_format(data_dir, self.manifest)
        self.features = FeatureParams.from_dict(self.manifest["features"])
        self.stats = NormStats.load(self.dir / self.manifest.get("stats", "stats.json"))
        self.sample_rate = int(self.manifest["sample_rate"])
        self.hop = self.features.hop_length
        self.n_mels = self.features.n_mels
        self.bits = int(self.manifest.get("mu_law_bits", 8))
        self.speakers = list(self.manifest.get("speakers", []))
        self._sources = {}

    def shards(self, split):
        return _shards(self.dir, self.manifest, split)

    def num_samples(self, split) -> int:
        return int(self.manifest["splits"][split]["num_samples"])

    def source(self, split):
        """The split's records, random access (``len``, ``[i]`` -> bytes)."""
        if split not in self._sources:
            from seqgen.data import records

            self._sources[split] = records.data_source(self.shards(split))
        return self._sources[split]

    def utterance(self, split, index) -> dict:
        """The decoded fields of the split's ``index``-th utterance (numpy arrays)."""
        from seqgen.data import records

        try:
            return records.decode(self.source(split)[int(index)])
        except DataError as e:
            raise DataError(f"{self.dir}: record {index} of the '{split}' split: {e}") from None

    def utterances(self, split):
        for k in range(len(self.source(split))):
            yield self.utterance(split, k)


class _Cropper:
    """Cuts ``(inputs, target, weight)`` windows out of decoded utterances (numpy)."""

    def __init__(self, info: VocoderData, window: int, discrete: bool, silence_class, encode=None):
        if window % info.hop:
            raise DataError(f"window {window} must be a multiple of the hop length {info.hop} "
                            f"(e.g. {max(1, window // info.hop) * info.hop})")
        self.window, self.hop, self.wframes = int(window), info.hop, int(window) // info.hop
        self.discrete, self.encode = discrete, encode
        self.fill = np.int32(silence_class) if discrete else np.float32(0.0)
        fill = getattr(encode, "fill", None)
        self.input_fill = self.fill if fill is None else np.asarray(fill)
        self.mean, self.std = info.stats.mean, info.stats.std
        self.silence_norm = ((SILENCE_MEL - info.stats.mean) / info.stats.std).astype(np.float32)

    def sequence(self, utt):
        if self.encode is not None:
            return None
        return utt["mulaw"].astype(np.int32) if self.discrete else utt["audio"].astype(np.float32)

    def _encoded(self, utt, s0, rng=None):
        """The window of a model that encodes its own samples (see :func:`sample_encoder`)."""
        inputs, target = self.encode(utt, s0, self.window, rng)
        w, valid = self.window, len(target)
        dtype = np.int32 if self.discrete else np.float32
        x = np.empty((w,) + inputs.shape[1:], dtype)
        x[:] = self.input_fill
        x[:valid] = inputs
        tgt = np.full(w, self.fill, dtype)
        tgt[:valid] = target
        return x, tgt, valid

    def __call__(self, utt, start_frame: int, seq=None, rng=None):
        """The window starting at frame ``start_frame``: its first input is the real previous sample
        (silence at the start of an utterance); padding past the end is silence with weight 0.  ``rng``:
        the window's noise stream for an encoder that adds input noise (training windows only)."""
        s0, w = int(start_frame) * self.hop, self.window
        if self.encode is not None:
            x, tgt, valid = self._encoded(utt, s0, rng)
        else:
            seq = self.sequence(utt) if seq is None else seq
            target = seq[s0: s0 + w]
            valid = len(target)
            prev = seq[s0 - 1: s0] if s0 > 0 else np.asarray([self.fill], seq.dtype)
            x = np.full(w, self.fill, seq.dtype)
            x[:1] = prev
            x[1: valid] = target[: valid - 1]
            tgt = np.full(w, self.fill, seq.dtype)
            tgt[:valid] = target
        weight = np.zeros(w, np.float32)
        weight[:valid] = 1.0
        mel = np.empty((self.wframes, len(self.mean)), np.float32)
        part = utt["mel"][start_frame: start_frame + self.wframes]
        mel[: len(part)] = (part - self.mean) / self.std
        mel[len(part):] = self.silence_norm
        return {"x": x, "mel": mel, "speaker": np.int32(utt["speaker"])}, tgt, weight


def _stack(elements):
    inputs = {k: np.stack([e[0][k] for e in elements]) for k in elements[0][0]}
    return inputs, np.stack([e[1] for e in elements]), np.stack([e[2] for e in elements])


def vocoder_dataset(data_dir, split="train", window=8192, batch_size=8, seed=0, discrete=True,
                    silence_class=128, repeat=True, random=True, shard=(0, 1), encode=None):
    """Batches ``(inputs, target, weight)`` of random audio windows, as a ``grain.MapDataset`` (any backend).

    ``inputs`` = {"x": previous samples [B, W], "mel": normalized mel [B, W/hop, n_mels], "speaker": [B]};
    ``target`` = samples [B, W] (mu-law classes if ``discrete`` else floats); ``weight`` [B, W] is 0 on
    padding.  ``window`` must be a multiple of the hop length.  Element ``i`` of the stream is utterance
    ``perm_e[i mod N]`` of epoch ``e = i // N`` (a permutation seeded by ``(seed, e)``) cut at a start frame
    drawn from ``(seed, i)``: batch ``k`` is the same on every machine and backend, whatever came before it.
    ``shard = (index, count)``: input pipeline ``index`` of ``count`` (one per worker) takes every
    ``count``-th utterance when there are at least ``count`` of them (otherwise all; its seed alone sets it
    apart).  ``random=False``: every window starts at the utterance's first frame, in file order.
    ``encode``: ``(utterance, start, length) -> (inputs, target)``, the window as the model takes it instead
    of the stored ``mulaw`` / ``audio`` field (pre-emphasis, linear prediction, another bit depth; see
    :func:`sample_encoder`); its ``fill`` is the input on padding.
    """
    import grain

    info = VocoderData(data_dir)
    crop = _Cropper(info, window, discrete, silence_class, encode)
    n_all = len(info.source(split))
    index, count = shard
    ids = np.arange(n_all)
    if count > 1 and n_all >= count:
        ids = ids[index::count]
    n = len(ids)
    wframes = crop.wframes

    def element(i):
        i = int(i)
        if random:
            epoch, pos = divmod(i, n)
            k = ids[np.random.default_rng([seed, 0, epoch]).permutation(n)[pos]] if repeat else ids[pos]
        else:
            k = ids[i % n]
        utt = info.utterance(split, k)
        frames = utt["mel"].shape[0]
        start = 0
        if random:
            start = int(np.random.default_rng([seed, 1, i]).integers(0, max(frames - wframes, 0) + 1))
        return crop(utt, start, rng=np.random.default_rng([seed, 2, i]) if random else None)

    length = 2 ** 62 if repeat else n
    ds = grain.MapDataset.range(0, length).map(element)
    return ds.batch(int(batch_size), drop_remainder=repeat, batch_fn=_stack)


def batches_for_fit(dataset, prefetch: int = 2):
    """A dataset of :func:`vocoder_dataset` / :func:`byte_lm_dataset` as Keras ``fit`` takes it on every
    backend: a ``grain.IterDataset`` that makes ``prefetch`` batches ahead in threads."""
    import grain

    return dataset.to_iter_dataset(grain.ReadOptions(num_threads=max(1, prefetch),
                                                     prefetch_buffer_size=max(1, prefetch)))


def vocoder_eval_dataset(data_dir, split="valid", window=8192, batch_size=4, discrete=True, silence_class=128,
                         encode=None):
    """Consecutive windows covering every sample of ``split`` exactly once, in batches (a generator).

    Yields ``(inputs, target, weight)`` like :func:`vocoder_dataset`; weights mark the real samples, so
    the weighted mean NLL is the split's NLL.  Each window's first input is the true previous sample.
    """
    info = VocoderData(data_dir)
    crop = _Cropper(info, window, discrete, silence_class, encode)
    info.shards(split)  # a bad window, a missing split or shard: one line now, not at the first batch

    def windows():
        pending = []
        for utt in info.utterances(split):
            seq = crop.sequence(utt)
            for start in range(0, utt["mel"].shape[0], crop.wframes):
                pending.append(crop(utt, start, seq))
                if len(pending) == batch_size:
                    yield _stack(pending)
                    pending = []
        if pending:
            yield _stack(pending)

    return windows()


def vocoder_utterances(data_dir, splits=("valid", "train"), ids=None):
    """Whole utterances of a prepared corpus: ``{"id", "speaker", "audio", "mel", "split"}`` numpy dicts,
    split by split in shard order (only those whose id is in ``ids``, when given)."""
    info = VocoderData(data_dir)
    wanted = None if ids is None else set(ids)
    for split in splits:
        if not info.manifest["splits"].get(split, {}).get("shards"):
            continue
        for utt in info.utterances(split):
            if wanted is None or utt["id"] in wanted:
                yield {"id": utt["id"], "speaker": int(utt["speaker"]), "audio": utt["audio"], "mel": utt["mel"],
                       "split": split}


def vocoder_arrays(data_dir, split="train", window=8192, num_windows=64, seed=0, discrete=True,
                   silence_class=128):
    """``num_windows`` random windows as numpy arrays: (inputs dict, target, weight)."""
    ds = vocoder_dataset(data_dir, split, window, batch_size=num_windows, seed=seed, discrete=discrete,
                         silence_class=silence_class)
    return ds[0]


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
    """Batches ``(x, y)`` of random byte windows (int32; y is x shifted left by one) as a ``grain.MapDataset``:
    window ``i`` starts at an offset drawn from ``(seed, i)``, so batch ``k`` is the same on every backend."""
    import grain

    data = load_bytes(data_dir, split)
    if len(data) < window + 2:
        raise DataError(f"{data_dir}: the '{split}' split has {len(data)} bytes, fewer than window+2 = {window + 2}")
    hi = len(data) - window - 1

    def element(i):
        off = int(np.random.default_rng([seed, int(i)]).integers(0, hi + 1))
        chunk = np.asarray(data[off: off + window + 1], np.int32)
        return chunk[:-1], chunk[1:]

    return grain.MapDataset.range(0, 2 ** 62).map(element).batch(int(batch_size), drop_remainder=True)


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


class _PairBatches:
    """Length-bucketed, padded batches of byte pairs; iterating starts the stream from its beginning."""

    def __init__(self, examples, batch_size, bounds, seed, shuffle, repeat, batch_bytes=0, max_length=256):
        self.examples, self.bounds = examples, bounds
        self.seed, self.shuffle, self.repeat = seed, shuffle, repeat
        # rows per bucket: batch_size pairs each, or about batch_bytes padded bytes a side (the last bucket,
        # longer than every bound, is counted at max_length)
        widths = [*bounds, max_length]
        self.rows = ([max(1, int(batch_bytes) // w) for w in widths] if batch_bytes
                     else [int(batch_size)] * len(widths))

    def _bucket(self, n):
        for k, bound in enumerate(self.bounds):
            if n <= bound:
                return k
        return len(self.bounds)

    def _batch(self, rows):
        from seqgen.data.tokenizers import PAD_ID

        def pad(seqs):
            out = np.full((len(seqs), max(len(q) for q in seqs)), PAD_ID, np.int32)
            for r, q in enumerate(seqs):
                out[r, : len(q)] = q
            return out

        return ({"source": pad([self.examples[i][0] for i in rows]),
                 "target_in": pad([self.examples[i][1] for i in rows])}, pad([self.examples[i][2] for i in rows]))

    def __iter__(self):
        n = len(self.examples)
        epoch = 0
        while True:
            order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
            pending = [[] for _ in range(len(self.bounds) + 1)]
            for i in order:
                src, _, out = self.examples[i]
                k = self._bucket(max(len(src), len(out)))
                pending[k].append(i)
                if len(pending[k]) == self.rows[k]:
                    yield self._batch(pending[k])
                    pending[k] = []
            if not self.repeat:
                for rows in pending:
                    if rows:
                        yield self._batch(rows)
                return
            epoch += 1


def pairs_dataset(data_dir, split="train", batch_size=32, max_length=256, seed=0, shuffle=True, repeat=True,
                  buckets=(16, 32, 64, 128, 256), batch_bytes=0):
    """Batches of ({"source": [B, S], "target_in": [B, T]}, target_out [B, T]) (int32 byte ids, padded to the
    longest row of the batch), as a re-iterable of numpy batches (no TensorFlow).

    Sources end with EOS; the decoder input starts with BOS and the output ends with EOS; padding is PAD.
    Pairs longer than ``max_length`` bytes on either side are dropped.  Pairs go to the bucket of their
    longer side (up to each of ``buckets`` below ``max_length``, then the rest) and a bucket is a batch
    when it holds ``batch_size`` pairs, or with ``batch_bytes`` as many as fill that many bytes a side at the
    bucket's bound (``batch_bytes // bound``, at least 1: short pairs come in larger batches); with
    ``shuffle`` each pass takes a permutation seeded by ``(seed, pass)``; without ``repeat`` one pass, the
    partly filled buckets last.
    """
    from seqgen.data.tokenizers import BOS_ID, EOS_ID

    examples = []
    for src, tgt in _read_pair_bytes(data_dir, split):
        s = np.frombuffer(src, np.uint8).astype(np.int32)
        t = np.frombuffer(tgt, np.uint8).astype(np.int32)
        s = np.append(s, EOS_ID)
        out = np.append(t, EOS_ID)
        if len(s) <= max_length and len(out) <= max_length:
            examples.append((s, np.insert(t, 0, BOS_ID), out))
    bounds = [b for b in buckets if b < max_length]
    return _PairBatches(examples, batch_size, bounds, seed, shuffle, repeat, batch_bytes, max_length)


def _read_pair_bytes(data_dir, split):
    """The (source, target) UTF-8 bytes of each line of a split, in file order."""
    manifest = read_manifest(data_dir, "pairs")
    for path in _shards(data_dir, manifest, split):
        with open(path, "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                if line.endswith(b"\r"):
                    line = line[:-1]
                src, _, tgt = line.partition(b"\t")
                yield src, tgt


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
