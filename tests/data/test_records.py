"""ArrayRecord shards of numpy records: round trips, corrupt records, old corpora and their migration,
and a vocoder data path with no TensorFlow in it."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from seqgen.data import pipeline as D
from seqgen.data import records
from seqgen.errors import DataError

from conftest import REPO, cli_here, read_manifest_json

pytestmark = pytest.mark.usefixtures("quiet_cli")


@pytest.mark.parametrize("bits", [8, 10])
def test_a_record_round_trips_every_field(bits):
    rng = np.random.default_rng(bits)
    wav = rng.uniform(-1, 1, 1024).astype(np.float32)
    mulaw = rng.integers(0, 2 ** bits, 1024)
    mel = rng.standard_normal((4, 80)).astype(np.float32)
    raw = records.encode("dir/ütt", "Grüß Gott.", 3, wav, mulaw, mel, bits)
    r = records.decode(raw)
    assert (r["id"], r["text"], r["speaker"], r["num_samples"], r["num_frames"]) == ("dir/ütt", "Grüß Gott.", 3,
                                                                                      1024, 4)
    np.testing.assert_array_equal(r["audio"], wav)
    np.testing.assert_array_equal(r["mulaw"], mulaw)
    assert r["mulaw"].dtype == (np.uint8 if bits == 8 else np.dtype("<u2"))
    np.testing.assert_array_equal(r["mel"], mel)
    with pytest.raises(DataError, match="corrupt"):
        records.decode(b"JUNK" + raw[4:])
    with pytest.raises(DataError, match="corrupt"):
        records.decode(b"SQ")


def _prepared(tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    rng = np.random.default_rng(0)
    for k, n in enumerate((3000, 4100, 2600, 5000, 3300)):
        sf.write(src / f"c{k}.wav", (0.2 * rng.standard_normal(n)).astype(np.float32), 22050, subtype="FLOAT")
    out = tmp_path / "data"
    code, _, err = cli_here("prepare", "vocoder", "--input", src, "--out", out, "--workers", "1",
                            "--valid-fraction", "0.3")
    assert code == 0, err
    return out


def _to_format1(data_dir):
    """Rewrite a corpus as seqgen wrote it before ArrayRecord: tf.train.Example records in TFRecord files."""
    tf = pytest.importorskip("tensorflow")
    m = read_manifest_json(data_dir)
    for split, info in m["splits"].items():
        utts = list(D.VocoderData(data_dir).utterances(split)) if info["shards"] else []
        names = []
        if utts:
            names = [f"{split}-00000.tfrecord"]
            with tf.io.TFRecordWriter(str(data_dir / names[0])) as w:
                for u in utts:
                    def b(v):
                        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

                    def i(v):
                        return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))

                    feats = {"id": b(u["id"].encode()), "text": b(u["text"].encode()), "speaker": i(u["speaker"]),
                             "num_samples": i(u["num_samples"]), "num_frames": i(u["num_frames"]),
                             "audio": b(u["audio"].tobytes()), "mulaw": b(u["mulaw"].tobytes()),
                             "mel": b(u["mel"].tobytes())}
                    w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
        for name in info["shards"]:
            (data_dir / name).unlink()
        info["shards"] = names
        info.pop("ids", None)
    m.pop("format_version")
    (data_dir / "manifest.json").write_text(json.dumps(m))


def test_an_old_corpus_fails_in_one_line_and_migrates_record_for_record(tmp_path, capsys):
    data = _prepared(tmp_path)
    before = {s: [dict(u) for u in D.VocoderData(data).utterances(s)] for s in ("train", "valid")}
    _to_format1(data)
    with pytest.raises(DataError, match=r"older seqgen \(shard format 1, TFRecord\).*seqgen prepare migrate"):
        D.VocoderData(data)
    code, _, err = cli_here("train", REPO / "recipes" / "ljspeech_vocoder" / "tiny.yaml", "--data", data,
                            "--out", tmp_path / "run", "--max-steps", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and f"seqgen prepare migrate {data}" in err
    code, _, err = cli_here("prepare", "migrate", data)
    assert code == 0, err
    m = read_manifest_json(data)
    assert m["format_version"] == records.FORMAT_VERSION and not list(data.glob("*.tfrecord"))
    for split, utts in before.items():
        after = list(D.VocoderData(data).utterances(split))
        assert [u["id"] for u in after] == [u["id"] for u in utts] == m["splits"][split]["ids"]
        for u, v in zip(utts, after):
            for key in ("audio", "mulaw", "mel"):
                np.testing.assert_array_equal(u[key], v[key])
    code, _, err = cli_here("prepare", "migrate", data)
    assert code == 0 and "nothing to do" in err


def test_batch_k_is_the_same_however_it_is_reached(tmp_path):
    data = _prepared(tmp_path)
    ds = D.vocoder_dataset(data, "train", window=1024, batch_size=3, seed=4)
    it = iter(D.batches_for_fit(ds))
    streamed = [next(it) for _ in range(4)]
    for k in (0, 3):
        for a, b in zip(np.asarray(ds[k][1]), np.asarray(streamed[k][1])):
            np.testing.assert_array_equal(a, b)


def test_vocoder_data_path_imports_no_tensorflow(tmp_path):
    data = _prepared(tmp_path)
    code = (
        "import sys\n"
        "from seqgen.data import pipeline as D\n"
        f"ds = D.vocoder_dataset({str(data)!r}, 'train', window=1024, batch_size=2, seed=1)\n"
        "x = next(iter(D.batches_for_fit(ds)))\n"
        f"n = sum(int(w.sum()) for _, _, w in D.vocoder_eval_dataset({str(data)!r}, 'valid', window=1024))\n"
        f"u = list(D.vocoder_utterances({str(data)!r}))\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print(n, len(u))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO),
                          env={**__import__("os").environ, "KERAS_BACKEND": "jax"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    n, count = map(int, proc.stdout.split())
    assert n == read_manifest_json(data)["splits"]["valid"]["num_samples"] and count == 5
