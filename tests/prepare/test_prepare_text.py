"""Tests for `seqgen prepare text` and `seqgen prepare pairs` (data_prep.text)."""
import pathlib

import pytest

from data_prep import sources as embedded_sources
from seqgen import cli

from conftest import read_manifest_json


_main = cli.main
pytestmark = pytest.mark.usefixtures("quiet_cli")




def _split_bytes(d, split):
    m = read_manifest_json(d)
    return b"".join((pathlib.Path(d) / n).read_bytes() for n in m["splits"][split]["shards"])


def _read_tsv_pairs(d, split):
    m = read_manifest_json(d)
    pairs = []
    for n in m["splits"][split]["shards"]:
        for line in (pathlib.Path(d) / n).read_text(encoding="utf-8").splitlines():
            s, t = line.split("\t")
            pairs.append((s, t))
    return pairs


def _error_lines(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return [line for line in err if line.startswith("seqgen: error:")], err


# --------------------------------------------------------------------------- text


def test_prepare_text_two_files(tmp_path):
    a = "First file.\nIt has two lines and ünïcödé — ok.\n".encode("utf-8")
    b = ("Second file without a trailing newline. " * 20).encode("utf-8")
    (tmp_path / "a.txt").write_bytes(a)
    (tmp_path / "b.txt").write_bytes(b)
    out = tmp_path / "data"
    rc = _main(["prepare", "text", "--input", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"),
                "--out", str(out), "--valid-fraction", "0.25"])
    assert rc == 0
    m = read_manifest_json(out)
    expected = a + b"\n" + b  # files joined by a newline
    train, valid = _split_bytes(out, "train"), _split_bytes(out, "valid")
    assert train + valid == expected
    assert len(valid) == round(0.25 * len(expected))
    assert valid == expected[len(expected) - len(valid):]
    assert m["kind"] == "text" and m["num_items"] == 2 and m["num_bytes"] == len(expected)
    assert m["splits"]["train"]["num_bytes"] == len(train)
    assert m["splits"]["valid"]["num_bytes"] == len(valid)
    assert m["skipped"] == [] and m["tokenizer"] == {"type": "bytes"}
    assert [pathlib.Path(p).name for p in m["files"]] == ["a.txt", "b.txt"]


def test_prepare_text_stdlib(tmp_path):
    out = tmp_path / "data"
    assert _main(["prepare", "text", "--input", "stdlib", "--out", str(out)]) == 0
    prose = embedded_sources.stdlib_prose().encode("utf-8")
    assert len(prose) > 100_000
    train, valid = _split_bytes(out, "train"), _split_bytes(out, "valid")
    assert train + valid == prose
    assert len(valid) == round(0.1 * len(prose))
    assert read_manifest_json(out)["num_bytes"] == len(prose)


def test_prepare_text_zero_valid_fraction_and_stale_shards(tmp_path):
    (tmp_path / "t.txt").write_text("hello world\n" * 10)
    out = tmp_path / "data"
    out.mkdir()
    (out / "train-00007.bin").write_bytes(b"stale")
    assert _main(["prepare", "text", "--input", str(tmp_path / "t.txt"), "--out", str(out),
                  "--valid-fraction", "0"]) == 0
    assert not (out / "train-00007.bin").exists()
    assert _split_bytes(out, "train") == b"hello world\n" * 10
    assert _split_bytes(out, "valid") == b""


def test_prepare_text_skips_bad_files(tmp_path, capsys):
    good = "Plain UTF-8 text, café.\n".encode("utf-8") * 5
    (tmp_path / "good.txt").write_bytes(good)
    (tmp_path / "latin1.txt").write_bytes("Un café très cher.\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(b"abc\x00\x01\x02def")
    inputs = [str(tmp_path / n) for n in ("latin1.txt", "good.txt", "empty.txt", "binary.txt")]
    out = tmp_path / "data"
    assert _main(["prepare", "text", "--input", *inputs, "--out", str(out)]) == 0
    assert "skipped 3 files" in capsys.readouterr().err
    m = read_manifest_json(out)
    reasons = {pathlib.Path(s["path"]).name: s["reason"] for s in m["skipped"]}
    assert set(reasons) == {"latin1.txt", "empty.txt", "binary.txt"}
    assert "not UTF-8" in reasons["latin1.txt"]
    assert reasons["empty.txt"] == "empty file"
    assert "binary" in reasons["binary.txt"]
    assert m["num_items"] == 1
    assert _split_bytes(out, "train") + _split_bytes(out, "valid") == good


def test_prepare_text_truncated_utf8_at_end(tmp_path):
    (tmp_path / "cut.txt").write_bytes("abc é".encode("utf-8")[:-1])
    (tmp_path / "ok.txt").write_text("fine\n")
    out = tmp_path / "data"
    assert _main(["prepare", "text", "--input", str(tmp_path / "cut.txt"), str(tmp_path / "ok.txt"),
                  "--out", str(out)]) == 0
    m = read_manifest_json(out)
    assert [pathlib.Path(s["path"]).name for s in m["skipped"]] == ["cut.txt"]
    assert "UTF-8" in m["skipped"][0]["reason"]


def test_prepare_text_nothing_usable(tmp_path, capsys):
    (tmp_path / "e.txt").write_bytes(b"")
    (tmp_path / "l.txt").write_bytes(b"\xff\xfe\xfa")
    out = tmp_path / "data"
    rc = _main(["prepare", "text", "--input", str(tmp_path / "e.txt"), str(tmp_path / "l.txt"), "--out", str(out)])
    assert rc == 2
    errors, err = _error_lines(capsys)
    assert len(errors) == 1 and "nothing usable" in errors[0]
    assert not any("Traceback" in line for line in err)
    assert not (out / "manifest.json").exists()

    rc = _main(["prepare", "text", "--input", str(tmp_path / "missing.txt"), "--out", str(out)])
    assert rc == 2
    errors, err = _error_lines(capsys)
    assert len(err) == 1 and "missing.txt" in errors[0]


def test_prepare_text_sentencepiece(tmp_path):
    from seqgen.data.tokenizers import SentencePieceTokenizer

    out = tmp_path / "data"
    assert _main(["prepare", "text", "--input", "stdlib", "--out", str(out), "--tokenizer", "sentencepiece",
                  "--vocab-size", "300"]) == 0
    m = read_manifest_json(out)
    assert m["tokenizer"]["type"] == "sentencepiece" and m["tokenizer"]["vocab_size"] == 300
    tok = SentencePieceTokenizer.load(out / m["tokenizer"]["model"])
    assert tok.vocab_size == 300
    text = "The function returns the value of the argument."
    assert tok.decode(tok.encode(text)) == text


# --------------------------------------------------------------------------- pairs

GOOD = [
    ("Go.", "Geh."),
    ("Hi.", "Hallo!"),
    ("Hi.", "Grüß Gott!"),
    ("Run!", "Lauf!"),
    ("Who?", "Wer?"),
    ("Wow!", "Potzdonner!"),
    ("Wow!", "Donnerwetter!"),
    ("Fire!", "Feuer!"),
    ("Help!", "Hilfe!"),
    ("Stop!", "Stopp!"),
    ("Wait!", "Warte!"),
    ("Hello!", "Hallo!"),
    ("I ran.", "Ich rannte."),
    ("I see.", "Aha."),
    ("I try.", "Ich versuche es."),
    ("I won!", "Ich habe gewonnen!"),
    ("Relax.", "Entspann dich."),
    ("Smile.", "Lächeln!"),
    ("Cheers!", "Zum Wohl!"),
    ("Got it?", "Verstanden?"),
]


def _write_tsv(path):
    """GOOD pairs mixed with malformed lines; returns {line number: reason fragment}."""
    lines, bad = [], {}
    malformed = [
        (b"no tab on this line", "no TAB"),
        (b"\tonly a target", "empty side"),
        (b"only a source\t   ", "empty side"),
        ("bad \xff bytes".encode("latin-1") + b"\tx", "not UTF-8"),
        ("ctrl\x07char\tKontrolle".encode("utf-8"), "control characters"),
    ]
    for k, (s, t) in enumerate(GOOD):
        lines.append(f"{s}\t{t}".encode("utf-8") + (b"\r\n" if k % 3 == 0 else b"\n"))
        if k % 4 == 1 and malformed:
            raw, why = malformed.pop(0)
            lines.append(raw + b"\n")
            bad[len(lines)] = why
        if k == 10:
            lines.append(b"\n")  # blank lines are ignored, not reported
    path.write_bytes(b"".join(lines))
    return bad


def test_prepare_pairs_small_tsv(tmp_path, capsys):
    tsv = tmp_path / "pairs.tsv"
    bad = _write_tsv(tsv)
    assert len(bad) == 5
    out = tmp_path / "data"
    assert _main(["prepare", "pairs", "--input", str(tsv), "--out", str(out), "--valid-fraction", "0.2"]) == 0
    assert "skipped 5 lines" in capsys.readouterr().err
    m = read_manifest_json(out)
    assert m["kind"] == "pairs" and m["num_items"] == len(GOOD)
    got = {int(s["path"].rsplit(":", 1)[1]): s["reason"] for s in m["skipped"]}
    assert set(got) == set(bad)
    for lineno, why in bad.items():
        assert why in got[lineno]
        assert m["skipped"][0]["path"].startswith(str(tsv) + ":")

    train, valid = _read_tsv_pairs(out, "train"), _read_tsv_pairs(out, "valid")
    assert m["splits"]["train"]["num_items"] == len(train)
    assert m["splits"]["valid"]["num_items"] == len(valid)
    assert sorted(train + valid) == sorted(GOOD)
    # file order is kept inside each split
    assert train == [p for p in GOOD if p in train] and valid == [p for p in GOOD if p in valid]
    # grouped by source: a source sentence never appears on both sides
    assert not {s for s, _ in train} & {s for s, _ in valid}
    assert len(valid) >= 1
    assert m["source_bytes"]["max"] == max(len(s.encode()) for s, _ in GOOD)
    assert m["target_bytes"]["max"] == max(len(t.encode()) for _, t in GOOD)




def test_prepare_pairs_num_sources_counts_prepared_pairs_only(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_bytes("Hi.\tHallo!\nHi.\tServus!\nctrl\x07\tbad\nempty target\t \nGo.\tGeh.\n".encode())
    out = tmp_path / "data"
    assert _main(["prepare", "pairs", "--input", str(tsv), "--out", str(out)]) == 0
    m = read_manifest_json(out)
    assert m["num_items"] == 3
    assert m["num_sources"] == 2


def test_prepare_pairs_valid_fraction_ignores_malformed_lines(tmp_path):
    # Two good sources and 30 malformed lines (control character in the target).
    lines = ["Hi.\tHallo!", "Go.\tGeh."] + [f"junk {i}\tbad\x01target" for i in range(30)]
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "data"
    assert _main(["prepare", "pairs", "--input", str(tsv), "--out", str(out)]) == 0
    m = read_manifest_json(out)
    assert m["num_items"] == 2 and len(m["skipped"]) == 30
    # split_keys promises at least one validation key when there are two keys or more.
    assert m["splits"]["valid"]["num_items"] == 1


def test_prepare_pairs_valid_fraction_of_clean_file(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in GOOD), encoding="utf-8")
    out = tmp_path / "data"
    assert _main(["prepare", "pairs", "--input", str(tsv), "--out", str(out), "--valid-fraction", "0.2"]) == 0
    valid = _read_tsv_pairs(out, "valid")
    n_sources = len({s for s, _ in GOOD})
    assert len({s for s, _ in valid}) == round(0.2 * n_sources)
    assert read_manifest_json(out)["num_sources"] == n_sources


def test_prepare_pairs_split_is_deterministic_and_order_independent(tmp_path):
    pairs = [(f"Sentence number {i}.", f"Satz Nummer {i}.") for i in range(200)]
    (tmp_path / "a.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    (tmp_path / "b.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in reversed(pairs)), encoding="utf-8")
    valid_sets = []
    for name in ("a", "b", "a"):
        out = tmp_path / f"out_{name}_{len(valid_sets)}"
        assert _main(["prepare", "pairs", "--input", str(tmp_path / f"{name}.tsv"), "--out", str(out)]) == 0
        valid_sets.append(set(_read_tsv_pairs(out, "valid")))
    assert valid_sets[0] == valid_sets[1] == valid_sets[2]
    assert len(valid_sets[0]) == 10  # 5 % of 200 sources


def test_prepare_pairs_nothing_usable(tmp_path, capsys):
    tsv = tmp_path / "junk.tsv"
    tsv.write_bytes(b"no tabs here\nnor here\n\t\n")
    rc = _main(["prepare", "pairs", "--input", str(tsv), "--out", str(tmp_path / "d")])
    assert rc == 2
    errors, err = _error_lines(capsys)
    assert len(errors) == 1 and "nothing usable" in errors[0]
    rc = _main(["prepare", "pairs", "--input", str(tmp_path / "absent.tsv"), "--out", str(tmp_path / "d")])
    assert rc == 2
    errors, err = _error_lines(capsys)
    assert len(err) == 1 and "absent.tsv" in errors[0]


@pytest.mark.shared_data
def test_prepare_pairs_tatoeba(shared_data, tmp_path):
    tsv = shared_data / "tatoeba_en_de" / "en_de.tsv"
    out = tmp_path / "data"
    assert _main(["prepare", "pairs", "--input", str(tsv), "--out", str(out)]) == 0
    m = read_manifest_json(out)
    n_lines = sum(1 for line in tsv.read_bytes().splitlines() if line.strip())
    assert m["num_items"] + len(m["skipped"]) == n_lines
    assert m["num_items"] > 0.99 * n_lines
    assert m["splits"]["train"]["num_items"] + m["splits"]["valid"]["num_items"] == m["num_items"]
    train, valid = _read_tsv_pairs(out, "train"), _read_tsv_pairs(out, "valid")
    assert len(train) == m["splits"]["train"]["num_items"] and len(valid) == m["splits"]["valid"]["num_items"]
    train_src, valid_src = {s for s, _ in train}, {s for s, _ in valid}
    assert not train_src & valid_src
    frac = len(valid_src) / (len(train_src) + len(valid_src))
    assert 0.04 < frac < 0.06
    assert 0.03 < len(valid) / m["num_items"] < 0.08
    assert 0 < m["source_bytes"]["mean"] <= m["source_bytes"]["p99"] <= m["source_bytes"]["max"]
    assert 0 < m["target_bytes"]["mean"] <= m["target_bytes"]["p99"] <= m["target_bytes"]["max"]


def test_prepare_pairs_espeak_g2p(tmp_path):
    out = tmp_path / "data"
    assert _main(["prepare", "pairs", "--input", "espeak-g2p:20", "--out", str(out)]) == 0
    m = read_manifest_json(out)
    assert m["num_items"] == 20 and m["skipped"] == []
    pairs = _read_tsv_pairs(out, "train") + _read_tsv_pairs(out, "valid")
    assert len(pairs) == 20 and len({s for s, _ in pairs}) == 20
    assert m["splits"]["valid"]["num_items"] == 1
    for text, ipa in pairs:
        assert 10 <= len(text) <= 80 and any(c.isalpha() for c in text)
        assert ipa != text and any(ord(c) > 127 for c in ipa)  # IPA symbols, not the spelling


def test_prepare_pairs_bad_g2p_spec(tmp_path, capsys):
    assert _main(["prepare", "pairs", "--input", "espeak-g2p:-3", "--out", str(tmp_path / "d")]) == 2
    errors, err = _error_lines(capsys)
    assert len(err) == 1 and "espeak-g2p:N" in errors[0]


def test_prepare_pairs_utf8_bom(tmp_path):
    tsv = tmp_path / "bom.tsv"
    tsv.write_bytes(b"\xef\xbb\xbf" + "Hi.\tHallo!\nGo.\tGeh.\nHi.\tServus!\n".encode("utf-8"))
    out = tmp_path / "data"
    assert _main(["prepare", "pairs", "--input", str(tsv), "--out", str(out), "--valid-fraction", "0"]) == 0
    pairs = _read_tsv_pairs(out, "train")
    assert pairs[0] == ("Hi.", "Hallo!")
    assert read_manifest_json(out)["num_sources"] == 2


def test_prepare_pairs_test_split_is_apart_and_leaves_valid_as_it_was(tmp_path):
    pairs = [(f"Sentence number {i}.", f"Satz Nummer {i}{tag}.") for i in range(400) for tag in ("", "!")[: 1 + i % 2]]
    tsv = tmp_path / "p.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    splits = {}
    for name, extra in (("plain", []), ("with_test", ["--test-fraction", "0.1"])):
        out = tmp_path / name
        assert _main(["prepare", "pairs", "--input", str(tsv), "--out", str(out), *extra]) == 0
        splits[name] = {s: _read_tsv_pairs(out, s) for s in read_manifest_json(out)["splits"]}
    assert set(splits["plain"]) == {"train", "valid"} and set(splits["with_test"]) == {"train", "valid", "test"}
    assert splits["with_test"]["valid"] == splits["plain"]["valid"]      # the dev split does not move
    sources = {s: {src for src, _ in p} for s, p in splits["with_test"].items()}
    assert len(sources["test"]) == 40 and len(sources["valid"]) == 20    # 10 % and 5 % of 400 sources
    assert not (sources["test"] & sources["train"]) and not (sources["test"] & sources["valid"])
    assert sum(len(p) for p in splits["with_test"].values()) == len(pairs)   # every pair somewhere, once
    m = read_manifest_json(tmp_path / "with_test")
    assert m["test_fraction"] == 0.1 and m["splits"]["test"]["num_items"] == len(splits["with_test"]["test"])
