"""Hostile inputs (issue #7): codecs, features, loaders, config and corpus preparation.

Property-based (hypothesis, derandomized profile from conftest).  What the code
promises, and what is checked here:

* mu-law (``seqgen.core.mu_law`` and ``seqgen.data.audio``): any float input gives classes in
  ``[0, 2**bits)``; values outside [-1, 1] and +-Inf are clipped, NaN encodes as the
  silence class ``2**(bits-1)`` (both implementations agree); any int class decodes
  to [-1, 1] (out-of-range classes are clipped).
* ``log_mel``: finite audio gives finite features of the documented shape; NaN/Inf
  samples raise :class:`AudioError`.  ``FeatureParams`` rejects wrong types with
  :class:`AudioError` / :class:`DataError`, never another exception.
* ``audio.load``: garbage, empty, text, truncated and corrupt-header files raise
  :class:`AudioError` (one line, naming the file), promptly.
* ``ByteCodec``: arbitrary bytes round-trip; invalid UTF-8 decodes like Python's
  ``errors="replace"``; non-text raises TypeError, unencodable str ValueError.
* ``config.load`` / ``parse_override``: any file content and any ``--set`` item gives
  a config or a :class:`ConfigError`; unknown and mistyped keys are named.
* ``data_prep``: hostile files are skipped and listed in the manifest, the rest prepared.
"""
import io
import json
import math
import pathlib
import struct
import tempfile
import time

import numpy as np
import pytest
import soundfile as sf
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from seqgen.data import audio as A
from seqgen import config as C
from seqgen.core import mu_law as M
from seqgen.errors import AudioError, ConfigError, DataError, SeqgenError
from seqgen.data.tokenizers import ByteCodec

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOWER = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

any_float32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
bits_st = st.sampled_from([1, 2, 4, 8, 10, 16])


# --------------------------------------------------------------------------- mu-law


@FAST
@given(st.lists(any_float32, max_size=64), bits_st)
def test_mu_law_encode_any_float_in_range_and_implementations_agree(values, bits):
    x = np.asarray(values, np.float32)
    q_np = A.mu_law_encode(x, bits)
    q_ops = np.asarray(M.encode(x, bits))
    n = 2 ** bits
    assert q_np.shape == x.shape and q_ops.shape == x.shape
    assert q_np.min(initial=0) >= 0 and q_np.max(initial=0) < n
    np.testing.assert_array_equal(q_np, q_ops)
    # documented: NaN -> silence class, +-Inf -> the extreme classes
    np.testing.assert_array_equal(q_np[np.isnan(x)], n // 2)
    np.testing.assert_array_equal(q_np[x == np.inf], n - 1)
    np.testing.assert_array_equal(q_np[x == -np.inf], 0)


@FAST
@given(st.lists(st.floats(-1.0, 1.0, width=32), min_size=1, max_size=64), st.sampled_from([4, 8, 10, 16]))
def test_mu_law_round_trip_on_finite_input(values, bits):
    x = np.asarray(values, np.float32)
    y = A.mu_law_decode(A.mu_law_encode(x, bits), bits)
    y_ops = np.asarray(M.decode(M.encode(x, bits), bits))
    np.testing.assert_array_equal(y, y_ops)
    # the error is at most one quantization step of the compressed value
    mu = 2 ** bits - 1
    comp = lambda v: np.sign(v) * np.log1p(mu * np.abs(v.astype(np.float64))) / np.log1p(mu)  # noqa: E731
    assert np.max(np.abs(comp(y) - comp(x))) <= 2.0 / mu + 1e-6


@FAST
@given(st.lists(st.integers(-2 ** 40, 2 ** 40), max_size=32), bits_st)
def test_mu_law_decode_any_int_stays_in_range(classes, bits):
    q = np.asarray(classes, np.int64)
    y = A.mu_law_decode(q, bits)
    assert y.dtype == np.float32 and y.shape == q.shape
    assert np.all(np.isfinite(y)) and np.all(np.abs(y) <= 1.0)
    # out-of-range classes decode like the nearest valid class, in both implementations
    clipped = np.clip(q, 0, 2 ** bits - 1)
    np.testing.assert_array_equal(y, A.mu_law_decode(clipped, bits))
    np.testing.assert_array_equal(y, np.asarray(M.decode(clipped.astype(np.int32), bits)))


# --------------------------------------------------------------------------- features


@SLOWER
@given(st.sampled_from([8000, 16000, 22050, 11025]),
       st.integers(0, 3000),
       st.floats(0.0, 1e6),
       st.integers(0, 2 ** 31))
def test_log_mel_finite_input_gives_finite_features(rate, n, scale, seed):
    p = A.FeatureParams.for_rate(rate)
    x = (np.random.default_rng(seed).uniform(-1, 1, n) * scale).astype(np.float32)
    mel = A.log_mel(x, p)
    assert mel.shape == (n // p.hop_length, p.n_mels) and mel.dtype == np.float32
    assert np.all(np.isfinite(mel))
    assert np.all(mel >= np.float32(math.log(A.LOG_FLOOR)) - 1e-4)


@SLOWER
@given(st.integers(400, 3000), st.lists(st.sampled_from([np.nan, np.inf, -np.inf]), min_size=1, max_size=3),
       st.integers(0, 10 ** 6))
def test_log_mel_nan_inf_is_a_clear_audio_error(n, bad, seed):
    p = A.FeatureParams.for_rate(16000)
    x = np.zeros(n, np.float32)
    rng = np.random.default_rng(seed)
    x[rng.integers(0, n, len(bad))] = bad
    with pytest.raises(AudioError, match="NaN or Inf") as e:
        A.log_mel(x, p)
    assert "\n" not in str(e.value)


wrong_scalars = st.one_of(st.none(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
                          st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not math.isfinite(v)),
                          st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


@FAST
@given(wrong_scalars)
def test_feature_params_for_rate_wrong_types(value):
    with pytest.raises(AudioError, match="sample rate"):
        A.FeatureParams.for_rate(value)


@FAST
@given(st.data())
def test_feature_params_from_dict_hostile_dicts(data):
    good = A.FeatureParams.for_rate(16000).to_dict()
    d = dict(good)
    action = data.draw(st.sampled_from(["drop", "wrong_type", "unknown"]))
    key = data.draw(st.sampled_from(sorted(good)))
    if action == "drop":
        assume(key not in ("n_mels", "fmin", "fmax"))  # these have defaults
        del d[key]
    elif action == "wrong_type":
        d[key] = data.draw(st.one_of(st.none(), st.text(max_size=4), st.booleans(), st.just(float("nan")),
                                     st.lists(st.integers(), max_size=2)))
    else:
        key = data.draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
                        .filter(lambda k: k not in good))
        d[key] = 1
    with pytest.raises(DataError) as e:
        A.FeatureParams.from_dict(d)
    assert key in str(e.value)
    assert A.FeatureParams.from_dict(good) == A.FeatureParams.for_rate(16000)


# --------------------------------------------------------------------------- audio.load


def _wav_bytes(n=4000, rate=16000, subtype="PCM_16", value=0.1):
    buf = io.BytesIO()
    sf.write(buf, np.full(n, value, np.float32), rate, format="WAV", subtype=subtype)
    return buf.getvalue()


GOOD_WAV = _wav_bytes()


def _hostile_wav(kind: str, data) -> bytes:
    """A file that is not usable audio, of the given kind (``data``: hypothesis draws)."""
    if kind == "random":
        return data.draw(st.binary(min_size=1, max_size=3000))
    if kind == "riff_random":  # a plausible magic, garbage after it
        return b"RIFF" + data.draw(st.binary(max_size=200))
    if kind == "empty":
        return b""
    if kind == "text":
        return data.draw(st.text(min_size=1, max_size=300)).encode("utf-8")
    if kind == "truncated_header":
        return GOOD_WAV[: data.draw(st.integers(1, 44))]
    if kind == "huge_chunk":  # a JUNK chunk claiming ~4 GiB before the fmt chunk
        return GOOD_WAV[:12] + b"JUNK" + struct.pack("<I", data.draw(st.integers(2 ** 31, 2 ** 32 - 2))) \
            + b"\0" * 64 + GOOD_WAV[12:]
    if kind == "huge_fmt":
        b = bytearray(GOOD_WAV)
        struct.pack_into("<I", b, 16, data.draw(st.integers(2 ** 20, 2 ** 32 - 1)))
        return bytes(b)
    if kind == "channels":
        b = bytearray(GOOD_WAV)
        struct.pack_into("<H", b, 22, data.draw(st.sampled_from([0, 1025, 65535])))
        return bytes(b)
    if kind == "rate":  # a header claiming an absurd rate: resampling it would explode
        b = bytearray(GOOD_WAV)
        struct.pack_into("<I", b, 24, data.draw(st.sampled_from([0, 1, 7, 2 ** 31 - 1, 2 ** 32 - 1])))
        return bytes(b)
    if kind in ("nan", "inf"):
        x = np.full(data.draw(st.integers(300, 3000)), 0.1, np.float32)
        x[data.draw(st.integers(0, len(x) - 1))] = np.nan if kind == "nan" else -np.inf
        buf = io.BytesIO()
        sf.write(buf, x, 16000, format="WAV", subtype="FLOAT")
        return buf.getvalue()
    raise AssertionError(kind)


HOSTILE_KINDS = ["random", "riff_random", "empty", "text", "truncated_header", "huge_chunk", "huge_fmt",
                 "channels", "rate", "nan", "inf"]


@settings(max_examples=100, deadline=None)
@given(st.data(), st.sampled_from(HOSTILE_KINDS))
def test_load_hostile_file_is_a_clear_audio_error(data, kind):
    raw = _hostile_wav(kind, data)
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "x.wav"
        path.write_bytes(raw)
        t0 = time.monotonic()
        with pytest.raises(AudioError) as e:
            A.load(path, sample_rate=16000)
        assert time.monotonic() - t0 < 5, "load must fail fast, not hang"
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg and e.value.reason


def test_load_benign_huge_data_size_claim_reads_what_is_there(tmp_path):
    # A data chunk size of ~4 GiB on a short file (a streaming writer's header)
    # is not an error: the samples that are there are read, nothing more.
    b = bytearray(GOOD_WAV)
    assert b[36:40] == b"data"
    struct.pack_into("<I", b, 40, 0xFFFFFFF0)
    (tmp_path / "a.wav").write_bytes(bytes(b))
    x = A.load(tmp_path / "a.wav")
    assert x.shape == (4000,)
    np.testing.assert_allclose(x, 0.1, atol=1e-4)


# --------------------------------------------------------------------------- ByteCodec


@FAST
@given(st.binary(max_size=300), st.booleans(), st.booleans())
def test_byte_codec_arbitrary_bytes_round_trip(data, bos, eos):
    codec = ByteCodec()
    ids = codec.encode(data, add_bos=bos, add_eos=eos)
    assert ids.dtype == np.int32 and len(ids) == len(data) + bos + eos
    assert codec.decode_bytes(ids) == data
    assert codec.encode(bytearray(data)).tolist() == list(data)
    # invalid UTF-8 decodes exactly like Python's errors="replace", never raises
    assert codec.decode(ids) == data.decode("utf-8", errors="replace")


@FAST
@given(st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.integers(0, 255), max_size=3),
                 st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)))
def test_byte_codec_encode_wrong_types_is_type_error(value):
    with pytest.raises(TypeError, match="str or bytes"):
        ByteCodec().encode(value)


@FAST
@given(st.text(max_size=10), st.integers(0xD800, 0xDFFF), st.text(max_size=10))
def test_byte_codec_lone_surrogate_is_value_error(before, cp, after):
    # A str with a lone surrogate has no UTF-8 encoding: a ValueError, not garbage ids.
    with pytest.raises(ValueError):
        ByteCodec().encode(before + chr(cp) + after)


# --------------------------------------------------------------------------- config

SECTION_KEYS = [f"{s}.{k}" for s, d in C.DEFAULTS.items() if s != "model" for k in d]
name_st = st.one_of(st.sampled_from(list(C.DEFAULTS) + ["distill", "trian", "modle"]),
                    st.sampled_from([k.split(".")[1] for k in SECTION_KEYS]),
                    st.text(max_size=6), st.integers(), st.none(), st.booleans())
yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(name_st, children, max_size=3)),
    max_leaves=12)


def _check_load(tmp_path, raw_bytes, overrides=()):
    p = tmp_path / "c.yaml"
    p.write_bytes(raw_bytes)
    try:
        cfg = C.load(p, list(overrides))
    except ConfigError as e:
        assert str(e).strip()
        return None
    assert set(cfg) >= {"model", "data", "train", "sample"}
    return cfg


@FAST
@given(st.one_of(yaml_values, st.dictionaries(name_st, yaml_values, max_size=4)),
       st.lists(st.text(max_size=20), max_size=2))
def test_config_load_any_yaml_gives_config_or_config_error(tmp_path, obj, overrides):
    _check_load(tmp_path, yaml.safe_dump(obj).encode("utf-8"), overrides)


@FAST
@given(st.binary(max_size=200))
def test_config_load_any_bytes_gives_config_or_config_error(tmp_path, raw):
    _check_load(tmp_path, raw)


@pytest.mark.parametrize("raw, overrides, needle", [
    (b"train: {steps: \xff\xfe}\n", (), "not UTF-8"),
    (b"train: " + b"[" * 3000 + b"]" * 3000 + b"\n", (), "not valid YAML"),
    (b"null: 1\n", (), "unknown section 'None'"),
    (b"7: {}\n", (), "unknown section '7'"),
    (b"[1, 2]\n", ("train.steps=3",), "expected a mapping"),
    (b"just a string\n", ("train.steps=3",), "expected a mapping"),
    (b"model: {type: [wavenet]}\n", (), "'model.type' must be str"),
    (b"model: {null: 3}\n", (), "'model.None'"),
    (b"train: {log_every: 0}\n", (), "'train.log_every' must be positive"),
    (b"train: {checkpoint_every: -5}\n", (), "'train.checkpoint_every' must be positive"),
    (b"train: {keep_checkpoints: 0}\n", (), "'train.keep_checkpoints' must be positive"),
    (b"train: {valid_every: -1}\n", (), "'train.valid_every'"),
])
def test_config_hostile_files_that_used_to_crash(tmp_path, raw, overrides, needle):
    p = tmp_path / "c.yaml"
    p.write_bytes(raw)
    with pytest.raises(ConfigError) as e:
        C.load(p, list(overrides))
    assert needle in str(e.value) and "\n" not in str(e.value)


@FAST
@given(st.sampled_from(SECTION_KEYS), st.data())
def test_config_wrong_type_names_the_key(tmp_path, full, data):
    section, key = full.split(".")
    want = type(C.DEFAULTS[section][key])
    bad = {
        int: st.one_of(st.text(min_size=1, max_size=5).filter(lambda s: not _yaml_is(s, int)), st.booleans(),
                       st.floats(allow_nan=True).filter(lambda v: v != int(v) if math.isfinite(v) else True),
                       st.lists(st.integers(), max_size=2)),
        float: st.one_of(st.text(min_size=1, max_size=5).filter(lambda s: not _yaml_is(s, (int, float))),
                         st.booleans(), st.lists(st.floats(), max_size=2)),
        bool: st.one_of(st.integers(), st.text(min_size=1, max_size=5), st.floats()),
        str: st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(st.text(max_size=2), max_size=2)),
    }[want]
    value = data.draw(bad)
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({section: {key: value}}))
    with pytest.raises(ConfigError) as e:
        C.load(p)
    assert f"'{full}'" in str(e.value)


def _yaml_is(s, types):
    try:
        v = yaml.safe_load(s)
        if isinstance(v, str) and types != int:
            v = float(v)  # floats accept YAML 1.1's "3e-4" string
    except Exception:
        return False
    return isinstance(v, types) and not isinstance(v, bool)


@FAST
@given(st.sampled_from(["data", "train", "sample"]),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=16), st.booleans())
def test_config_unknown_key_is_named_in_file_and_override(tmp_path, section, key, via_override):
    assume(key not in C.DEFAULTS[section])
    p = tmp_path / "c.yaml"
    if via_override:
        p.write_text("train: {steps: 10}\n")
        call = lambda: C.load(p, [f"{section}.{key}=1"])  # noqa: E731
    else:
        p.write_text(yaml.safe_dump({section: {key: 1}}))
        call = lambda: C.load(p)  # noqa: E731
    with pytest.raises(ConfigError) as e:
        call()
    assert f"unknown key '{section}.{key}'" in str(e.value)


@FAST
@given(st.text(max_size=40))
def test_parse_override_any_text(item):
    try:
        path, value = C.parse_override(item)
    except ConfigError as e:
        assert "--set" in str(e)
        return
    assert "=" in item and len(path) >= 2 and all(path)


def test_parse_override_deeply_nested_value_does_not_crash():
    path, value = C.parse_override("train.steps=" + "[" * 3000 + "]" * 3000)
    assert path == ["train", "steps"]


# --------------------------------------------------------------------------- data_prep: text


@SLOWER
@given(st.lists(st.one_of(st.binary(max_size=200), st.text(max_size=100).map(lambda t: t.encode("utf-8"))),
                min_size=1, max_size=4))
def test_prepare_text_skips_exactly_the_unusable_files(tmp_path_factory, contents):
    from data_prep import text as T

    d = tmp_path_factory.mktemp("txt")
    src = d / "in"
    src.mkdir()
    good, bad = [], []
    for k, raw in enumerate(contents):
        p = src / f"f{k}.txt"
        p.write_bytes(raw)
        try:
            ok = len(raw) > 0 and b"\0" not in raw and raw.decode("utf-8") is not None
        except UnicodeDecodeError:
            ok = False
        (good if ok else bad).append(str(p))
    if not good:
        with pytest.raises(DataError, match="nothing usable"):
            T.prepare_text([str(src)], d / "out")
        return
    m = T.prepare_text([str(src)], d / "out")
    assert m["files"] == good
    assert sorted(s["path"] for s in m["skipped"]) == sorted(bad)
    written = b"".join((d / "out" / n).read_bytes() for s in ("train", "valid") for n in m["splits"][s]["shards"])
    assert written == b"\n".join(pathlib.Path(g).read_bytes() for g in good)
    assert json.loads((d / "out" / "manifest.json").read_text())["skipped"] == m["skipped"]


@SLOWER
@given(st.lists(st.one_of(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
                          st.tuples(st.text(max_size=8), st.text(max_size=8))
                          .map(lambda t: f"{t[0]}\t{t[1]}".replace("\n", "").encode("utf-8"))),
                min_size=1, max_size=12))
def test_prepare_pairs_every_line_prepared_or_skipped(tmp_path_factory, lines):
    from data_prep import text as T

    d = tmp_path_factory.mktemp("pairs")
    src = d / "p.tsv"
    src.write_bytes(b"\n".join(lines) + b"\n")
    nonblank = [ln for ln in lines if ln.strip()]
    try:
        m = T.prepare_pairs(src, d / "out")
    except DataError as e:
        assert "nothing usable" in str(e)
        return
    assert m["splits"]["train"]["num_items"] + m["splits"]["valid"]["num_items"] + len(m["skipped"]) \
        == len(nonblank)
    for s in m["skipped"]:
        assert s["path"].startswith(f"{src}:") and s["reason"]
    for split in ("train", "valid"):  # what was written is clean UTF-8 source<TAB>target
        for row in (d / "out" / f"{split}-00000.tsv").read_text(encoding="utf-8").splitlines():
            a, b = row.split("\t")
            assert a.strip() and b.strip()


# --------------------------------------------------------------------------- data_prep: vocoder


def _sine_wav(path, n, rate=16000, freq=440.0):
    t = np.arange(n) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, subtype="PCM_16")


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data(), st.lists(st.sampled_from(HOSTILE_KINDS), min_size=1, max_size=5), st.integers(0, 3),
       st.booleans())
def test_prepare_vocoder_hostile_folder(tmp_path_factory, monkeypatch, data, kinds, n_good, ljspeech):
    from data_prep import vocoder as V

    monkeypatch.setenv("SEQGEN_PROGRESS", "0")
    d = tmp_path_factory.mktemp("voc")
    src = d / "src"
    wavs = src / "wavs" if ljspeech else src
    wavs.mkdir(parents=True)
    bad = {}
    for k, kind in enumerate(kinds):
        p = wavs / f"bad{k}_{kind}.wav"
        p.write_bytes(_hostile_wav(kind, data))
        bad[p.name] = kind
    good = []
    for k in range(n_good):
        _sine_wav(wavs / f"good{k}.wav", data.draw(st.integers(1000, 5000)), freq=200.0 + 100 * k)
        good.append(f"good{k}")
    bad_rows = []
    if ljspeech:  # metadata.csv: listed good ids, plus rows that are not UTF-8
        rows = [f"{g}|some text|some text".encode() for g in good]
        for _ in range(data.draw(st.integers(1, 3))):
            rows.insert(data.draw(st.integers(0, len(rows))),
                        b"\xff" + data.draw(st.binary(max_size=20)).replace(b"\n", b"").replace(b"\r", b""))
        (src / "metadata.csv").write_bytes(b"\n".join(rows) + b"\n")
        bad_rows = [f"{src / 'metadata.csv'}:{i}" for i, r in enumerate(rows, 1) if r.startswith(b"\xff")]
    out = d / "out"
    if not good:
        with pytest.raises(DataError, match="nothing usable") as e:
            V.prepare(str(src), out, workers=1, valid_fraction=0.0)
        assert "\n" not in str(e.value)
        return
    m = V.prepare(str(src), out, workers=1, valid_fraction=0.0)
    skipped = {pathlib.Path(s["path"]).name: s["reason"] for s in m["skipped"] if ".csv:" not in s["path"]}
    assert set(skipped) == set(bad), (skipped, bad)
    assert sorted(s["path"] for s in m["skipped"] if ".csv:" in s["path"]) == sorted(bad_rows)
    assert m["num_items"] == len(good)
    assert m["sample_rate"] == 16000  # detected from a good file, never from a corrupt header's claim
    assert not list(out.glob("*.tmp"))
    assert json.loads((out / "manifest.json").read_text())["skipped"] == m["skipped"]
