"""Tests for `seqgen prepare vocoder` (data_prep.vocoder) on real and synthetic corpora."""
import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from seqgen.data import audio as A
from seqgen import cli

from conftest import REPO, read_manifest_json

SHARED = pathlib.Path(os.environ.get("SEQGEN_SHARED_DATA", REPO.parent / "shared" / "data"))
LJ_IDS = [f"LJ001-{i:04d}" for i in range(1, 25)]


_main = cli.main
pytestmark = pytest.mark.usefixtures("quiet_cli")




def _records(data_dir, split, n_mels=80, mulaw_dtype=np.uint8):
    """The records of a split, read with array_record's own reader and decoded by seqgen.data.records
    (independently of seqgen.data.pipeline)."""
    from array_record.python.array_record_module import ArrayRecordReader

    from seqgen.data import records

    m = read_manifest_json(data_dir)
    out = []
    for name in m["splits"][split]["shards"]:
        assert name.endswith(".array_record")
        reader = ArrayRecordReader(str(pathlib.Path(data_dir) / name))
        for raw in reader.read_all():
            r = records.decode(raw)
            assert r["mulaw"].dtype == np.dtype(mulaw_dtype) and r["mel"].shape[1] == n_mels
            out.append(r)
        reader.close()
    return out


def _write_sine(path, sr, n, freq=440.0, amp=0.3, subtype="PCM_16"):
    t = np.arange(n) / sr
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, subtype=subtype)
    return x


# --------------------------------------------------------------------------- LJSpeech mini


@pytest.fixture(scope="module")
def lj_src():
    src = SHARED / "ljspeech_mini"
    if not src.is_dir():
        pytest.skip(f"shared data not found at {SHARED} (set SEQGEN_SHARED_DATA to run this test)")
    return src


@pytest.fixture(scope="module")
def lj_prepared(lj_src, tmp_path_factory):
    out = tmp_path_factory.mktemp("lj") / "data"
    old = os.environ.get("SEQGEN_PROGRESS")
    os.environ["SEQGEN_PROGRESS"] = "0"
    try:
        rc = _main(["prepare", "vocoder", "--input", str(lj_src), "--out", str(out), "--workers", "1"])
    finally:
        if old is None:
            os.environ.pop("SEQGEN_PROGRESS", None)
        else:
            os.environ["SEQGEN_PROGRESS"] = old
    assert rc == 0
    return out


@pytest.mark.shared_data
def test_ljspeech_manifest(lj_prepared, lj_src, shared_data):
    m = read_manifest_json(lj_prepared)
    assert m["kind"] == "vocoder" and m["source_kind"] == "ljspeech"
    assert m["num_items"] == 24
    assert m["sample_rate"] == 22050
    assert m["mu_law_bits"] == 8
    assert m["features"] == A.FeatureParams.for_rate(22050).to_dict()
    assert m["speakers"] == ["ljspeech_mini"]
    assert m["skipped"] == []

    hop = 256
    lengths = {p.stem: sf.info(p).frames for p in (lj_src / "wavs").glob("*.wav")}
    assert sorted(lengths) == LJ_IDS
    assert all(sf.info(p).samplerate == 22050 for p in (lj_src / "wavs").glob("*.wav"))
    raw_seconds = sum(lengths.values()) / 22050
    trimmed = sum(n // hop * hop for n in lengths.values())
    assert m["total_seconds"] == pytest.approx(raw_seconds, abs=24 * hop / 22050)
    assert m["total_seconds"] == pytest.approx(trimmed / 22050, abs=1e-3)

    tr, va = m["splits"]["train"], m["splits"]["valid"]
    assert tr["num_items"] + va["num_items"] == 24
    assert va["num_items"] == max(1, round(0.05 * 24))
    assert tr["num_samples"] + va["num_samples"] == trimmed
    for s in (tr, va):
        assert s["shards"] and all((lj_prepared / n).is_file() for n in s["shards"])
    assert (lj_prepared / m["stats"]).is_file()


@pytest.mark.shared_data
def test_ljspeech_records_and_stats(lj_prepared, lj_src, shared_data):
    m = read_manifest_json(lj_prepared)
    params = A.FeatureParams.from_dict(m["features"])
    hop = params.hop_length
    texts = {}
    for line in (lj_src / "metadata.csv").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        f = line.split("|")
        texts[f[0]] = f[2]
    recs = {s: _records(lj_prepared, s) for s in ("train", "valid")}
    assert len(recs["train"]) == m["splits"]["train"]["num_items"]
    assert len(recs["valid"]) == m["splits"]["valid"]["num_items"]
    ids = sorted(r["id"] for s in recs for r in recs[s])
    assert ids == LJ_IDS
    for split, rs in recs.items():
        assert sum(r["num_samples"] for r in rs) == m["splits"][split]["num_samples"]
    for r in recs["train"][:6] + recs["valid"]:
        assert r["speaker"] == 0
        assert r["text"] == texts[r["id"]]
        assert len(r["audio"]) == r["num_frames"] * hop == r["num_samples"]
        wav, sr = sf.read(lj_src / "wavs" / f"{r['id']}.wav", dtype="float32")
        assert sr == 22050 and len(wav) // hop == r["num_frames"]
        np.testing.assert_array_equal(r["audio"], wav[: r["num_samples"]])
        np.testing.assert_array_equal(r["mulaw"], A.mu_law_encode(r["audio"]))
        assert r["mel"].shape == (r["num_frames"], 80)
        np.testing.assert_allclose(r["mel"], A.log_mel(r["audio"], params), atol=1e-5)

    # stats.json = mean/std over the train split's frames.
    stats = A.NormStats.load(lj_prepared / "stats.json")
    frames = np.concatenate([r["mel"] for r in recs["train"]]).astype(np.float64)
    assert stats.count == len(frames)
    np.testing.assert_allclose(stats.mean, frames.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stats.std, frames.std(0), rtol=1e-3, atol=1e-4)


def _same_records(dir_a, dir_b, splits=("train", "valid")):
    for split in splits:
        ra, rb = _records(dir_a, split), _records(dir_b, split)
        assert [r["id"] for r in ra] == [r["id"] for r in rb], split
        for x, y in zip(ra, rb):
            for k in ("speaker", "num_samples", "text"):
                assert x[k] == y[k]
            for k in ("audio", "mulaw", "mel"):
                np.testing.assert_array_equal(x[k], y[k])


@pytest.mark.shared_data
def test_ljspeech_split_is_deterministic(lj_prepared, lj_src, tmp_path, shared_data):
    out = tmp_path / "again"
    assert _main(["prepare", "vocoder", "--input", str(lj_src), "--out", str(out), "--workers", "1"]) == 0
    a, b = read_manifest_json(lj_prepared), read_manifest_json(out)
    for key in ("num_items", "total_seconds", "sample_rate", "features", "speakers", "splits", "skipped"):
        assert a[key] == b[key], key
    valid_a = sorted(x["id"] for x in _records(lj_prepared, "valid"))
    valid_b = sorted(x["id"] for x in _records(out, "valid"))
    assert valid_a == valid_b and len(valid_a) >= 1
    _same_records(lj_prepared, out, ("valid",))
    assert json.loads((lj_prepared / "stats.json").read_text()) == json.loads((out / "stats.json").read_text())


def test_subprocess_with_worker_pool(tmp_path):
    """The CLI as a subprocess (spawned worker pool) exits 0, prints no traceback, and makes
    the same records as an in-process run without workers."""
    src = tmp_path / "clips"
    for i in range(6):
        _write_sine(src / f"u{i}.wav", 16000, 3000 + 500 * i, freq=200.0 + 150 * i)
    (src / "broken.wav").write_bytes(b"RIFF....not really")
    env = {k: v for k, v in os.environ.items() if k != "SEQGEN_DEBUG"}
    env["SEQGEN_PROGRESS"] = "0"
    out = tmp_path / "sub"
    r = subprocess.run([sys.executable, "-m", "seqgen.cli", "prepare", "vocoder", "--input", str(src),
                        "--out", str(out), "--workers", "2", "--valid-fraction", "0.3"],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "Error" not in r.stderr
    assert "prepared 6 utterances" in r.stderr
    assert "skipped 1 inputs" in r.stderr
    inproc = tmp_path / "inproc"
    assert _main(["prepare", "vocoder", "--input", str(src), "--out", str(inproc), "--workers", "1",
                  "--valid-fraction", "0.3"]) == 0
    a, b = read_manifest_json(out), read_manifest_json(inproc)
    for key in ("num_items", "total_seconds", "sample_rate", "features", "speakers", "splits", "skipped"):
        assert a[key] == b[key], key
    assert a["splits"]["valid"]["num_items"] == 2
    _same_records(out, inproc)


@pytest.mark.shared_data
def test_ljspeech_bad_copy_skips_exactly_the_bad_inputs(lj_src, tmp_path, capsys, shared_data):
    src = tmp_path / "lj_bad"
    shutil.copytree(lj_src, src)
    wavs = src / "wavs"
    (wavs / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(20000))
    (wavs / "empty.wav").write_bytes(b"")
    (wavs / "notes.wav").write_text("These are my notes, not audio.\n" * 10)
    with open(src / "metadata.csv", "a", encoding="utf-8") as f:
        f.write("LJ999-0001|A missing clip.|A missing clip.\n")
    out = tmp_path / "data"
    rc = _main(["prepare", "vocoder", "--input", str(src), "--out", str(out), "--workers", "1"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "skipped 4 inputs" in err
    m = read_manifest_json(out)
    assert m["num_items"] == 24
    skipped = {pathlib.Path(s["path"]): s["reason"] for s in m["skipped"]}
    expected = {wavs / "corrupt.wav", wavs / "empty.wav", wavs / "notes.wav", wavs / "LJ999-0001.wav"}
    assert set(skipped) == expected
    assert len(m["skipped"]) == 4
    assert "missing" in skipped[wavs / "LJ999-0001.wav"]
    assert skipped[wavs / "empty.wav"] == "empty file"
    assert skipped[wavs / "corrupt.wav"].startswith("corrupt or not audio")
    assert skipped[wavs / "notes.wav"].startswith("corrupt or not audio")
    ids = sorted(r["id"] for s in ("train", "valid") for r in _records(out, s))
    assert ids == LJ_IDS


# --------------------------------------------------------------------------- synthetic corpora


def test_nan_and_too_short_clips_are_skipped(tmp_path):
    src = tmp_path / "clips"
    good = {name: _write_sine(src / f"{name}.wav", 22050, n, freq=f)
            for name, n, f in (("a", 5000, 300.0), ("b", 3001, 600.0), ("sub/c", 2600, 900.0))}
    nan = np.full(4000, 0.1, np.float32)
    nan[100] = np.nan
    sf.write(src / "nan.wav", nan, 22050, subtype="FLOAT")
    _write_sine(src / "short.wav", 22050, 200)  # < one hop of 256
    out = tmp_path / "data"
    rc = _main(["prepare", "vocoder", "--input", str(src), "--out", str(out), "--workers", "1",
                "--valid-fraction", "0.3"])
    assert rc == 0
    m = read_manifest_json(out)
    assert m["source_kind"] == "folder"
    assert m["num_items"] == 3
    reasons = {pathlib.Path(s["path"]).name: s["reason"] for s in m["skipped"]}
    assert set(reasons) == {"nan.wav", "short.wav"}
    assert "NaN" in reasons["nan.wav"]
    assert reasons["short.wav"].startswith("shorter than one hop") and "200" in reasons["short.wav"]
    recs = [r for s in ("train", "valid") for r in _records(out, s)]
    assert sorted(r["id"] for r in recs) == ["a", "b", "sub/c"]
    for r in recs:
        x = good[r["id"]]
        assert r["num_samples"] == len(x) // 256 * 256
        np.testing.assert_allclose(r["audio"], x[: r["num_samples"]], atol=1 / 32768 + 1e-7)
    assert m["total_seconds"] == pytest.approx(sum(len(x) // 256 * 256 for x in good.values()) / 22050,
                                               abs=1e-3)


def test_one_good_file_among_corrupt_ones_is_trained_on(tmp_path, capsys):
    """The split is drawn before the corrupt files are known: when every usable file falls in valid,
    they become the train split (no 'train split is empty' for a corpus that has audio)."""
    from data_prep.common import split_keys

    names = next((g, b) for g in ("good", "good2", "good3", "good4") for b in ("bad", "bad2", "bad3")
                 if split_keys([g, b], 0.5) == {g})
    src = tmp_path / "clips"
    good = _write_sine(src / f"{names[0]}.wav", 22050, 6000)
    (src / f"{names[1]}.wav").write_bytes(os.urandom(3000))
    out = tmp_path / "data"
    rc = _main(["prepare", "vocoder", "--input", str(src), "--out", str(out), "--workers", "1",
                "--valid-fraction", "0.5"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "all 1 usable utterance(s) fell in the valid split" in err and "skipped 1 inputs" in err
    m = read_manifest_json(out)
    assert m["splits"]["train"]["num_items"] == 1 and m["splits"]["valid"]["num_items"] == 0
    assert m["splits"]["valid"]["shards"] == []
    (rec,) = _records(out, "train")
    assert rec["id"] == names[0] and rec["num_samples"] == len(good) // 256 * 256
    assert not list(out.glob("valid-*"))
    assert json.loads((out / "stats.json").read_text())  # statistics of the one utterance


def test_bits_10_and_resampling(tmp_path):
    src = tmp_path / "clips"
    for i in range(4):
        _write_sine(src / f"c{i}.wav", 16000, 4000 + 333 * i, freq=500.0 + 100 * i)
    out = tmp_path / "data"
    rc = _main(["prepare", "vocoder", "--input", str(src), "--out", str(out), "--workers", "1",
                "--bits", "10", "--sample-rate", "22050", "--n-mels", "40"])
    assert rc == 0
    m = read_manifest_json(out)
    assert m["sample_rate"] == 22050 and m["mu_law_bits"] == 10
    params = A.FeatureParams.from_dict(m["features"])
    assert params == A.FeatureParams.for_rate(22050, n_mels=40)
    recs = [r for s in ("train", "valid") for r in _records(out, s, n_mels=40, mulaw_dtype="<u2")]
    assert len(recs) == 4
    for r in recs:
        i = int(r["id"][1:])
        n_res = int(np.ceil((4000 + 333 * i) * 22050 / 16000))
        assert r["num_samples"] == n_res // 256 * 256
        np.testing.assert_array_equal(r["mulaw"], A.mu_law_encode(r["audio"], 10))
        assert r["mulaw"].max() > 255  # really 10-bit classes
        np.testing.assert_allclose(r["mel"], A.log_mel(r["audio"], params), atol=1e-5)


def test_nothing_usable_exits_2_with_one_line(tmp_path, capsys):
    src = tmp_path / "bad"
    src.mkdir()
    (src / "x.wav").write_bytes(np.random.default_rng(1).bytes(3000))
    (src / "y.wav").write_bytes(b"")
    out = tmp_path / "data"
    rc = _main(["prepare", "vocoder", "--input", str(src), "--out", str(out), "--workers", "1"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("seqgen: error:")]
    assert len(errors) == 1
    assert "nothing usable" in errors[0]
    assert "Traceback" not in "\n".join(err)
    assert not (out / "manifest.json").exists()

    empty = tmp_path / "empty_dir"
    empty.mkdir()
    rc = _main(["prepare", "vocoder", "--input", str(empty), "--out", str(tmp_path / "d2"), "--workers", "1"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seqgen: error:") and "no audio files" in err[0]


def test_csv_relative_paths_and_bad_speaker_column(tmp_path, capsys):
    root = tmp_path / "corpus"
    for name in ("a", "b", "c"):
        _write_sine(root / "clips" / f"{name}.wav", 8000, 2000, freq=300.0)
    with open(root / "list.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "who", "words"])
        w.writerow(["clips/a.wav", "ann", "alpha"])
        w.writerow(["clips/b.wav", "bob", "beta"])
        w.writerow(["clips/c.wav", "ann", "gamma"])
        w.writerow(["clips/gone.wav", "bob", "delta"])
    rc = _main(["prepare", "vocoder", "--input", str(root / "list.csv"), "--out", str(tmp_path / "bad"),
                "--audio-column", "file", "--speaker-column", "speaker"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seqgen: error:")
    assert "'speaker'" in err[0] and "--speaker-column" in err[0] and "who" in err[0]

    out = tmp_path / "data"
    rc = _main(["prepare", "vocoder", "--input", str(root / "list.csv"), "--out", str(out), "--workers", "1",
                "--audio-column", "file", "--speaker-column", "who", "--text-column", "words"])
    assert rc == 0
    m = read_manifest_json(out)
    assert m["source_kind"] == "csv" and m["num_items"] == 3 and m["sample_rate"] == 8000
    assert m["speakers"] == ["ann", "bob"]
    assert [pathlib.Path(s["path"]) for s in m["skipped"]] == [root / "clips" / "gone.wav"]
    recs = {r["id"]: r for s in ("train", "valid") for r in _records(out, s)}
    assert set(recs) == {"clips/a", "clips/b", "clips/c"}
    assert [recs[k]["speaker"] for k in ("clips/a", "clips/b", "clips/c")] == [0, 1, 0]
    assert [recs[k]["text"] for k in ("clips/a", "clips/b", "clips/c")] == ["alpha", "beta", "gamma"]


@pytest.mark.shared_data
def test_fsdd_csv_six_speakers(shared_data, tmp_path):
    fsdd = shared_data / "fsdd"
    rows, per = [], {}
    with open(fsdd / "metadata.csv", newline="") as f:
        for row in csv.DictReader(f):
            if per.get(row["speaker"], 0) < 5:
                per[row["speaker"]] = per.get(row["speaker"], 0) + 1
                rows.append({**row, "path": str((fsdd / row["path"]).resolve())})
    assert len(per) == 6
    small = tmp_path / "fsdd_small.csv"
    with open(small, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "data"
    rc = _main(["prepare", "vocoder", "--input", str(small), "--out", str(out), "--workers", "1",
                "--speaker-column", "speaker", "--text-column", "text", "--valid-fraction", "0.2"])
    assert rc == 0
    m = read_manifest_json(out)
    assert m["num_items"] == 30 and m["skipped"] == []
    assert m["sample_rate"] == 8000
    assert m["features"] == A.FeatureParams.for_rate(8000).to_dict()
    assert m["speakers"] == sorted(per)
    assert m["total_seconds"] == pytest.approx(sum(float(r["duration_s"]) for r in rows), abs=30 * 80 / 8000)
    by_path = {str(pathlib.Path(r["path"]).with_suffix("")): r for r in rows}
    recs = [r for s in ("train", "valid") for r in _records(out, s)]
    assert len(recs) == 30
    for r in recs:
        row = by_path[r["id"]]
        assert m["speakers"][r["speaker"]] == row["speaker"]
        assert r["text"] == row["text"]


def test_espeak_input_offline(tmp_path):
    out = tmp_path / "data"
    rc = _main(["prepare", "vocoder", "--input", "espeak:6", "--out", str(out), "--workers", "1"])
    assert rc == 0
    m = read_manifest_json(out)
    assert m["num_items"] == 6 and m["sample_rate"] == 22050 and m["skipped"] == []
    assert m["features"] == A.FeatureParams.for_rate(22050).to_dict()
    assert m["splits"]["train"]["num_items"] + m["splits"]["valid"]["num_items"] == 6
    assert m["total_seconds"] > 3.0  # six spoken sentences
    recs = [r for s in ("train", "valid") for r in _records(out, s)]
    assert sorted(r["id"] for r in recs) == [f"ESPK-{i:05d}" for i in range(1, 7)]
    assert all(r["text"] and np.abs(r["audio"]).max() > 0.05 for r in recs)


def test_bad_espeak_spec_exits_2(tmp_path, capsys):
    rc = _main(["prepare", "vocoder", "--input", "espeak:zero", "--out", str(tmp_path / "d")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "espeak:N" in err[0]


def test_rate_from_first_readable_file_duplicate_ids_and_stale_shards(tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    (src / "0_broken.wav").write_bytes(b"definitely not a wav file")
    x = _write_sine(src / "take.wav", 16000, 4000, freq=400.0)
    sf.write(src / "take.flac", x, 16000, subtype="PCM_16")
    _write_sine(src / "other.wav", 16000, 3500, freq=700.0)
    out = tmp_path / "data"
    out.mkdir()
    (out / "train-00042.tfrecord").write_bytes(b"stale shard from an earlier seqgen")
    (out / "train-00042.array_record").write_bytes(b"stale shard from an earlier run")
    assert _main(["prepare", "vocoder", "--input", str(src), "--out", str(out), "--workers", "1"]) == 0
    assert not (out / "train-00042.tfrecord").exists() and not (out / "train-00042.array_record").exists()
    m = read_manifest_json(out)
    assert m["sample_rate"] == 16000  # the unreadable first file does not decide the rate
    assert m["num_items"] == 3
    assert [pathlib.Path(s["path"]).name for s in m["skipped"]] == ["0_broken.wav"]
    recs = [r for s in ("train", "valid") for r in _records(out, s)]
    ids = sorted(r["id"] for r in recs)
    assert len(set(ids)) == 3 and "other" in ids and "take" in ids
    assert [i for i in ids if i.startswith("take") and i != "take"] == ["take#1"]
    listed = [n for s in m["splits"].values() for n in s["shards"]]
    assert sorted(p.name for p in out.glob("*.array_record")) == sorted(listed)
    assert m["format_version"] == 2


def test_valid_ids_make_exactly_the_valid_split_and_a_foreign_id_is_one_line(tmp_path, capsys):
    src = tmp_path / "clips"
    for k in range(6):
        _write_sine(src / f"u{k}.wav", 22050, 3000 + 256 * k, freq=200.0 + 50 * k)
    listed = tmp_path / "list.tsv"
    listed.write_text("# a yardstick list\nid\tset\tseconds\nu1\teval\t0.1\nu4\tdev\t0.2\n")
    out = tmp_path / "data"
    assert _main(["prepare", "vocoder", "--input", str(src), "--out", str(out), "--workers", "1",
                  "--valid-ids", str(listed)]) == 0
    m = read_manifest_json(out)
    assert m["splits"]["valid"]["ids"] == ["u1", "u4"]
    assert m["splits"]["train"]["ids"] == ["u0", "u2", "u3", "u5"]
    assert sorted(r["id"] for r in _records(out, "valid")) == ["u1", "u4"]
    # an id the corpus does not have: one line, nothing prepared
    listed.write_text("u1\nnot-here\n")
    capsys.readouterr()
    assert _main(["prepare", "vocoder", "--input", str(src), "--out", str(tmp_path / "d2"), "--workers", "1",
                  "--valid-ids", str(listed)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not-here" in err and "--valid-ids" in err
