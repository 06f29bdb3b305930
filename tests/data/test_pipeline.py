"""Tests for seqgen.data.pipeline: grain pipelines over prepared vocoder and text data, numpy pair batches."""
import json
import pathlib

import numpy as np
import pytest
import soundfile as sf

from data_prep import text as text_prep
from data_prep import vocoder as voc_prep
from seqgen.data import audio as A
from seqgen.data import pipeline as D
from seqgen.errors import DataError
from seqgen.data.tokenizers import BOS_ID, EOS_ID, PAD_ID

SR = 22050
HOP = 256
WINDOW = 4 * HOP
# clip name -> number of samples; "short*" clips are shorter than WINDOW
CLIPS = {"a": 9000, "b": 7777, "c": 5200, "d": 12000, "e": 3000, "f": 6400, "short1": 700, "short2": 600}


def _write_corpus(root, lengths, seed=0):
    rng = np.random.default_rng(seed)
    for name, n in lengths.items():
        t = np.arange(n) / SR
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.15 * rng.standard_normal(n)
        sf.write(root / f"{name}.wav", np.clip(x, -1, 1).astype(np.float32), SR, subtype="FLOAT")


def _records(data_dir, split, mulaw_dtype=np.uint8):
    """Records read with array_record's own reader and decoded by seqgen.data.records, independently of
    seqgen.data.pipeline."""
    from array_record.python.array_record_module import ArrayRecordReader

    from seqgen.data import records

    m = json.loads((pathlib.Path(data_dir) / "manifest.json").read_text())
    out = []
    for name in m["splits"][split]["shards"]:
        reader = ArrayRecordReader(str(pathlib.Path(data_dir) / name))
        for raw in reader.read_all():
            r = records.decode(raw)
            assert r["mulaw"].dtype == np.dtype(mulaw_dtype)
            out.append({"id": r["id"], "speaker": r["speaker"], "audio": r["audio"],
                        "mulaw": r["mulaw"].astype(np.int64), "mel": r["mel"]})
        reader.close()
    return out


def _take(ds, n):
    """The first ``n`` batches of a grain dataset."""
    return [ds[k] for k in range(n)]


@pytest.fixture(scope="module")
def voc_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    src = root / "clips"
    src.mkdir()
    _write_corpus(src, CLIPS)
    out = root / "data"
    voc_prep.prepare(str(src), out, valid_fraction=0.25, workers=1)
    return out


@pytest.fixture(scope="module")
def voc(voc_dir):
    m = json.loads((voc_dir / "manifest.json").read_text())
    recs = {s: _records(voc_dir, s) for s in ("train", "valid")}
    stats = A.NormStats.load(voc_dir / "stats.json")
    return m, recs, stats


def _locate(target_row, valid, recs, key="mulaw"):
    """(record, s0) whose samples [s0, s0+valid) are this window's target (s0 on a frame boundary)."""
    hits = []
    for r in recs:
        seq = r[key]
        for s0 in range(0, len(seq), HOP):
            if len(seq) - s0 >= valid and (s0 + valid == len(seq) or valid == len(target_row)) \
                    and np.array_equal(seq[s0:s0 + valid], target_row[:valid]):
                hits.append((r, s0))
    assert len(hits) == 1, f"window matches {len(hits)} places"
    return hits[0]


def test_corpus_fixture(voc):
    m, recs, _ = voc
    assert m["num_items"] == len(CLIPS)
    ids = {r["id"] for s in recs for r in recs[s]}
    assert ids == set(CLIPS)
    assert any(r["id"].startswith("short") for r in recs["train"]), "the test needs a short clip in train"
    assert len(recs["valid"]) == 2


def test_vocoder_dataset_windows(voc_dir, voc):
    m, recs, stats = voc
    silence_norm = (np.log(1e-5) - stats.mean) / stats.std
    ds = D.vocoder_dataset(voc_dir, "train", window=WINDOW, batch_size=4, seed=3)
    padded_rows = 0
    for b, (inputs, target, weight) in enumerate(_take(ds, 8)):
        x, mel, spk = inputs["x"], inputs["mel"], inputs["speaker"]
        target, weight = target, weight
        assert x.shape == (4, WINDOW) and target.shape == (4, WINDOW) and weight.shape == (4, WINDOW)
        assert mel.shape == (4, WINDOW // HOP, 80) and spk.shape == (4,)
        assert x.dtype == np.int32 and target.dtype == np.int32 and mel.dtype == np.float32
        assert np.all((target >= 0) & (target < 256)) and np.all((x >= 0) & (x < 256))
        for i in range(4):
            w = weight[i]
            valid = int(w.sum())
            np.testing.assert_array_equal(w, np.r_[np.ones(valid), np.zeros(WINDOW - valid)])
            rec, s0 = _locate(target[i], valid, recs["train"])
            assert valid == min(WINDOW, len(rec["mulaw"]) - s0)
            # x is the target shifted right by one; x[0] is the sample before the window
            np.testing.assert_array_equal(x[i, 1:valid], target[i, :valid - 1])
            assert x[i, 0] == (rec["mulaw"][s0 - 1] if s0 else 128)
            # padding: silence class in target, weight 0
            assert np.all(target[i, valid:] == 128)
            # mel frames start at the window start, normalized with stats.json
            f0 = s0 // HOP
            want = (rec["mel"][f0:f0 + WINDOW // HOP] - stats.mean) / stats.std
            np.testing.assert_allclose(mel[i, :len(want)], want, rtol=1e-5, atol=1e-5)
            if len(want) < WINDOW // HOP:
                np.testing.assert_allclose(mel[i, len(want):], np.broadcast_to(
                    silence_norm, (WINDOW // HOP - len(want), 80)), rtol=1e-5, atol=1e-5)
            assert spk[i] == rec["speaker"] == 0
            if valid < WINDOW:
                padded_rows += 1
                assert rec["id"].startswith("short")
    assert padded_rows > 0


def test_vocoder_samples_through_an_encoder(voc_dir, voc):
    """A WaveNet with pre-emphasis, linear prediction, or a 10-bit head on an 8-bit corpus trains on its own
    encoding of the stored float audio (``training_window``); the stored mu-law field serves the model it
    fits as is."""
    from seqgen.core import emphasis
    from seqgen.core import mu_law
    from seqgen.models import WaveNet

    m, recs, stats = voc
    small = dict(num_stacks=1, layers_per_stack=2, residual_channels=4, gate_channels=8, skip_channels=8,
                 cond_channels=80, hop_length=HOP)
    assert D.sample_encoder(WaveNet(**small), voc_dir) is None
    mel_stats = {"features": m["features"], "mean": stats.mean.tolist(), "std": stats.std.tolist()}
    models = {"10-bit": WaveNet(distribution={"type": "categorical", "num_classes": 1024}, **small),
              "pre-emphasis": WaveNet(pre_emphasis=0.86, **small),
              "lpc": WaveNet(pre_emphasis=0.86, lpc_order=8, mel_stats=mel_stats, **small)}
    for name, model in models.items():
        encode = D.sample_encoder(model, voc_dir)
        assert encode is not None, name
        ds = D.vocoder_dataset(voc_dir, "train", window=WINDOW, batch_size=len(recs["train"]), seed=5,
                               encode=encode, random=False, repeat=False)
        inputs, target, weight = ds[0]
        for i, rec in enumerate(recs["train"]):      # random=False: utterance i from its first sample
            valid = int(weight[i].sum())
            assert valid == min(WINDOW, len(rec["audio"]))
            coef = model.lpc_of_log_mel(rec["mel"]) if model.lpc_order else None
            want_x, want_t = model.training_window(rec["audio"], 0, WINDOW, coef)
            np.testing.assert_array_equal(inputs["x"][i, :valid], want_x)
            np.testing.assert_array_equal(target[i, :valid], want_t)
            np.testing.assert_array_equal(inputs["x"][i, valid:], np.broadcast_to(
                model.silence_input(), inputs["x"][i, valid:].shape))
            if not model.lpc_order:  # the samples are the mu-law classes of the (pre-emphasized) audio
                bits = model.distribution.bits
                np.testing.assert_array_equal(want_t, np.asarray(mu_law.encode(
                    emphasis.pre_emphasize(rec["audio"][:valid], model.pre_emphasis), bits)))
        if name == "10-bit":  # finer than the stored 8-bit field could give
            assert target.max() < 1024 and len(np.unique(target)) > 256
        if name == "lpc":
            assert inputs["x"].shape == (len(recs["train"]), WINDOW, 3) and target.max() < 256


def test_input_noise_is_seeded_per_window_and_leaves_targets_and_evaluation_alone(voc_dir, voc):
    from seqgen.errors import ConfigError
    from seqgen.models import WaveNet

    small = dict(num_stacks=1, layers_per_stack=2, residual_channels=4, gate_channels=8, skip_channels=8,
                 cond_channels=80, hop_length=HOP)
    model = WaveNet(**small)
    noisy = D.sample_encoder(model, voc_dir, noise=3.0)

    def batch(encode, seed=5):
        return D.vocoder_dataset(voc_dir, "train", window=WINDOW, batch_size=2, seed=seed, encode=encode)[0]

    clean_x, clean_t, _ = batch(None)
    (x, t, _), (x2, _, _) = batch(noisy), batch(noisy)
    np.testing.assert_array_equal(x["x"], x2["x"])            # the same seed: the same noise
    np.testing.assert_array_equal(t, clean_t)                  # targets: the recording's classes
    assert not np.array_equal(x["x"], clean_x["x"])            # inputs: moved
    assert np.abs(x["x"].astype(int) - clean_x["x"]).max() <= 3 * 6   # by a few classes
    # held-out windows never carry noise: the evaluation encoder is built without it
    ev = next(D.vocoder_eval_dataset(voc_dir, "valid", window=WINDOW, batch_size=2))
    ev_noisy = next(D.vocoder_eval_dataset(voc_dir, "valid", window=WINDOW, batch_size=2, encode=noisy))
    np.testing.assert_array_equal(ev[0]["x"], ev_noisy[0]["x"])
    with pytest.raises(ConfigError, match="input_noise.*categorical"):
        D.sample_encoder(WaveNet(distribution={"type": "gaussian"}, **small), voc_dir, noise=1.0)


def test_vocoder_dataset_continuous_target(voc_dir, voc):
    _, recs, _ = voc
    ds = D.vocoder_dataset(voc_dir, "train", window=WINDOW, batch_size=3, seed=0, discrete=False)
    inputs, target, weight = next(iter(ds))
    x, target, weight = inputs["x"], target, weight
    assert target.dtype == np.float32 and np.abs(target).max() <= 1.0
    for i in range(3):
        valid = int(weight[i].sum())
        rec, s0 = _locate(target[i], valid, recs["train"], key="audio")
        np.testing.assert_array_equal(x[i, 1:valid], target[i, :valid - 1])
        assert x[i, 0] == (rec["audio"][s0 - 1] if s0 else 0.0)


def _first_batches(ds, n):
    out = []
    for inputs, target, weight in _take(ds, n):
        out.append((inputs["x"], inputs["mel"], target, weight))
    return out


def test_vocoder_dataset_deterministic_per_seed(voc_dir):
    a = _first_batches(D.vocoder_dataset(voc_dir, window=WINDOW, batch_size=4, seed=11), 3)
    b = _first_batches(D.vocoder_dataset(voc_dir, window=WINDOW, batch_size=4, seed=11), 3)
    c = _first_batches(D.vocoder_dataset(voc_dir, window=WINDOW, batch_size=4, seed=12), 3)
    for u, v in zip(a, b):
        for p, q in zip(u, v):
            np.testing.assert_array_equal(p, q)
    assert any(not np.array_equal(u[2], v[2]) for u, v in zip(a, c))


def test_vocoder_window_must_be_multiple_of_hop(voc_dir):
    with pytest.raises(DataError, match="multiple of the hop length 256"):
        D.vocoder_dataset(voc_dir, window=1000)
    with pytest.raises(DataError, match="multiple of the hop length"):
        D.vocoder_eval_dataset(voc_dir, window=WINDOW + 1)


def test_vocoder_bad_split_and_missing_dir(voc_dir, tmp_path):
    with pytest.raises(DataError, match="'test'"):
        D.vocoder_dataset(voc_dir, split="test", window=WINDOW)
    with pytest.raises(DataError, match="prepare the data first"):
        D.vocoder_dataset(tmp_path / "nothing", window=WINDOW)


@pytest.mark.parametrize("split", ["valid", "train"])
def test_vocoder_eval_dataset_covers_split_once(voc_dir, voc, split):
    m, recs, stats = voc
    targets, inputs_x, weights, mels = [], [], [], []
    for inputs, target, weight in D.vocoder_eval_dataset(voc_dir, split, window=WINDOW, batch_size=3):
        w = weight
        weights.append(w)
        targets.append(target[w > 0])
        inputs_x.append(inputs["x"][w > 0])
        mels.append(inputs["mel"])
    weights = np.concatenate(weights)
    assert weights.sum() == m["splits"][split]["num_samples"]
    seq = np.concatenate([r["mulaw"] for r in recs[split]])
    np.testing.assert_array_equal(np.concatenate(targets), seq)
    # inputs are the previous sample of the same clip (silence class at each clip start)
    prev = np.concatenate([np.r_[128, r["mulaw"][:-1]] for r in recs[split]])
    np.testing.assert_array_equal(np.concatenate(inputs_x), prev)
    n_windows = sum(-(-len(r["mulaw"]) // WINDOW) for r in recs[split])
    assert len(weights) == n_windows
    # mel of the first window of the first clip
    first = recs[split][0]["mel"][:WINDOW // HOP]
    np.testing.assert_allclose(mels[0][0, :len(first)], (first - stats.mean) / stats.std, rtol=1e-5, atol=1e-5)


def test_vocoder_arrays(voc_dir):
    inputs, target, weight = D.vocoder_arrays(voc_dir, window=WINDOW, num_windows=5, seed=1)
    assert isinstance(target, np.ndarray) and target.shape == (5, WINDOW)
    assert inputs["x"].shape == (5, WINDOW) and inputs["mel"].shape == (5, WINDOW // HOP, 80)
    assert weight.shape == (5, WINDOW)


def test_vocoder_data_info(voc_dir, voc):
    m, _, _ = voc
    info = D.VocoderData(voc_dir)
    assert info.hop == HOP and info.n_mels == 80 and info.sample_rate == SR and info.bits == 8
    assert info.num_samples("valid") == m["splits"]["valid"]["num_samples"]


def test_vocoder_eval_dataset_10_bit(tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    _write_corpus(src, {"p": 3000, "q": 2500, "r": 4000}, seed=5)
    out = tmp_path / "data"
    voc_prep.prepare(str(src), out, bits=10, valid_fraction=0.3, workers=1)
    recs = _records(out, "train", mulaw_dtype="<u2")
    assert max(r["mulaw"].max() for r in recs) > 255
    targets = []
    for _, target, weight in D.vocoder_eval_dataset(out, "train", window=WINDOW, batch_size=2,
                                                     silence_class=512):
        targets.append(target[weight > 0])
    np.testing.assert_array_equal(np.concatenate(targets), np.concatenate([r["mulaw"] for r in recs]))


# --------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "über", "ça"]
    body = " ".join(rng.choice(words, 6000)) + "\n"
    (root / "t.txt").write_text(body, encoding="utf-8")
    out = root / "data"
    text_prep.prepare_text([str(root / "t.txt")], out, valid_fraction=0.2)
    return out, body.encode("utf-8")


def test_load_bytes_splits(text_dir):
    out, raw = text_dir
    train, valid = D.load_bytes(out, "train"), D.load_bytes(out, "valid")
    assert bytes(train) + bytes(valid) == raw
    assert len(valid) == round(0.2 * len(raw))


def test_byte_lm_dataset_windows(text_dir):
    out, raw = text_dir
    train = bytes(D.load_bytes(out, "train"))
    ds = D.byte_lm_dataset(out, "train", window=64, batch_size=8, seed=5)
    starts = set()
    for x, y in _take(ds, 4):
        x, y = x, y
        assert x.shape == (8, 64) and y.shape == (8, 64) and x.dtype == np.int32
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
        for row_x, row_y in zip(x, y):
            chunk = bytes(row_x.astype(np.uint8)) + bytes([row_y[-1]])
            pos = train.find(chunk)
            assert pos >= 0
            starts.add(pos)
    assert len(starts) > 20  # random offsets, not one window repeated
    a = [b[0] for b in _take(D.byte_lm_dataset(out, "train", window=64, batch_size=8, seed=5), 2)]
    b = [b[0] for b in _take(D.byte_lm_dataset(out, "train", window=64, batch_size=8, seed=5), 2)]
    c = [b[0] for b in _take(D.byte_lm_dataset(out, "train", window=64, batch_size=8, seed=6), 2)]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_byte_lm_dataset_window_too_long(text_dir):
    out, raw = text_dir
    n_valid = len(D.load_bytes(out, "valid"))
    with pytest.raises(DataError, match="fewer than window"):
        D.byte_lm_dataset(out, "valid", window=n_valid)


def test_byte_arrays(text_dir):
    out, raw = text_dir
    valid = np.frombuffer(bytes(D.load_bytes(out, "valid")), np.uint8).astype(np.int32)
    x, y = D.byte_arrays(out, "valid", window=100)
    n = (len(valid) - 1) // 100
    assert x.shape == (n, 100) and y.shape == (n, 100)
    np.testing.assert_array_equal(x.reshape(-1), valid[: n * 100])
    np.testing.assert_array_equal(y.reshape(-1), valid[1: n * 100 + 1])
    x2, _ = D.byte_arrays(out, "valid", window=100, max_windows=3)
    np.testing.assert_array_equal(x2, x[:3])
    with pytest.raises(DataError, match="shorter than one window"):
        D.byte_arrays(out, "valid", window=len(valid))


def test_text_readers_reject_other_kinds(voc_dir, text_dir):
    with pytest.raises(DataError, match="'vocoder' data"):
        D.load_bytes(voc_dir, "train")
    with pytest.raises(DataError, match="'text' data"):
        D.vocoder_dataset(text_dir[0], window=WINDOW)


# --------------------------------------------------------------------------- pairs

PAIRS = [("Go.", "Geh."), ("Hi.", "Hallo!"), ("Hi.", "Grüß Gott!"), ("Run!", "Lauf!"),
         ("I see.", "Aha."), ("Relax.", "Entspann dich."), ("Smile.", "Lächeln!"),
         ("The train leaves at noon.", "Der Zug fährt mittags ab."),
         ("Where is the nearest station?", "Wo ist der nächste Bahnhof?"),
         ("x" * 40, "y" * 70), ("Tom.", "Tom."), ("Ok.", "In Ordnung.")]


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    (root / "p.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS), encoding="utf-8")
    out = root / "data"
    text_prep.prepare_pairs(str(root / "p.tsv"), out, valid_fraction=0.2)
    return out


def _decode_rows(arr, prefix=None, suffix=None):
    rows = []
    for row in arr:
        row = list(row)
        if prefix is not None:
            assert row[0] == prefix
            row = row[1:]
        n = len(row)
        while n and row[n - 1] == PAD_ID:
            n -= 1
        assert PAD_ID not in row[:n]
        body = row[:n]
        if suffix is not None:
            assert body[-1] == suffix
            body = body[:-1]
        assert all(0 <= v < 256 for v in body)
        rows.append(bytes(body).decode("utf-8"))
    return rows


@pytest.mark.parametrize("split", ["train", "valid"])
def test_pairs_dataset_decodes_to_tsv(pairs_dir, split):
    expected = D.read_pairs(pairs_dir, split)
    assert expected and set(expected) <= set(PAIRS)
    got = []
    ds = D.pairs_dataset(pairs_dir, split, batch_size=3, shuffle=False, repeat=False, buckets=(8, 16, 32))
    for inputs, target_out in ds:
        src, tin, tout = inputs["source"], inputs["target_in"], target_out
        assert src.shape[0] == tin.shape[0] == tout.shape[0] <= 3
        assert tin.shape == tout.shape
        # padded to the longest sequence of the batch, not beyond
        assert any(r[-1] != PAD_ID for r in src)
        assert any(r[-1] != PAD_ID for r in tout)
        sources = _decode_rows(src, suffix=EOS_ID)
        targets_in = _decode_rows(tin, prefix=BOS_ID)
        targets_out = _decode_rows(tout, suffix=EOS_ID)
        assert targets_in == targets_out
        # teacher forcing: target_in is target_out shifted right by one
        body = tout[:, :-1] < 256
        np.testing.assert_array_equal(tin[:, 1:][body], tout[:, :-1][body])
        got.extend(zip(sources, targets_out))
    assert sorted(got) == sorted(expected)


def test_pairs_dataset_batches_by_bytes(pairs_dir):
    """With batch_bytes a bucket is a batch when its rows fill that many bytes at the bucket's bound: short
    pairs come in more rows than long ones, and one pass still yields every pair once."""
    buckets, budget = (8, 16, 32), 64
    ds = D.pairs_dataset(pairs_dir, "train", batch_size=3, shuffle=False, repeat=False, buckets=buckets,
                         batch_bytes=budget)
    rows_at = {}
    got = []
    for inputs, target_out in ds:
        width = max(inputs["source"].shape[1], target_out.shape[1])
        bound = next(b for b in (*buckets, 256) if width <= b)
        rows_at.setdefault(bound, set()).add(inputs["source"].shape[0])
        assert inputs["source"].shape[0] <= max(1, budget // bound)
        got.extend(zip(_decode_rows(inputs["source"], suffix=EOS_ID), _decode_rows(target_out, suffix=EOS_ID)))
    assert sorted(got) == sorted(D.read_pairs(pairs_dir, "train"))
    full = {bound: max(sizes) for bound, sizes in rows_at.items()}
    assert len(full) >= 2, f"the fixture should fill at least two buckets: {full}"
    # a full batch of a shorter bucket holds more pairs than one of a longer bucket
    bounds = sorted(full)
    assert full[bounds[0]] > full[bounds[-1]]


def test_pairs_dataset_max_length_and_repeat(pairs_dir):
    ds = D.pairs_dataset(pairs_dir, "train", batch_size=4, max_length=30, shuffle=False, repeat=False)
    seen = []
    for inputs, target_out in ds:
        assert inputs["source"].shape[1] <= 30 and target_out.shape[1] <= 30
        seen.extend(_decode_rows(inputs["source"], suffix=EOS_ID))
    expected = [s for s, t in D.read_pairs(pairs_dir, "train")
                if len(s.encode()) + 1 <= 30 and len(t.encode()) + 1 <= 30]
    assert sorted(seen) == sorted(expected)
    assert "x" * 40 not in seen
    import itertools

    ds = D.pairs_dataset(pairs_dir, "train", batch_size=4, seed=1)
    first = list(itertools.islice(ds, 10))
    n = sum(int(x["source"].shape[0]) for x, _ in first)
    assert n > len(D.read_pairs(pairs_dir, "train"))  # repeats past one epoch
    # seeded: the same stream again from the start, another with another seed
    again = list(itertools.islice(ds, 10))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    other = list(itertools.islice(D.pairs_dataset(pairs_dir, "train", batch_size=4, seed=2), 10))
    assert not all(a[1].shape == b[1].shape and np.array_equal(a[1], b[1]) for a, b in zip(first, other))


def test_text_and_pair_pipelines_import_no_tensorflow(pairs_dir, text_dir):
    import os
    import subprocess
    import sys

    from conftest import REPO

    code = (
        "import itertools, sys\n"
        "from seqgen.data import pipeline as D\n"
        f"b = list(itertools.islice(D.pairs_dataset({str(pairs_dir)!r}, 'train', batch_size=2), 3))\n"
        f"x = D.byte_lm_dataset({str(text_dir[0])!r}, 'train', window=32, batch_size=2)[0]\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print(len(b), x[0].shape)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO),
                          env={**os.environ, "KERAS_BACKEND": "jax"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == "3"
