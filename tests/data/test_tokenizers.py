"""Tests for seqgen.data.tokenizers: the byte codec, SentencePiece and the factory."""
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.sources import stdlib_prose
from seqgen.errors import ConfigError, SeqgenError
from seqgen.data.tokenizers import (
    BOS_ID,
    BYTE_VOCAB_SIZE,
    EOS_ID,
    PAD_ID,
    ByteCodec,
    SentencePieceTokenizer,
    get_tokenizer,
)

UNSEEN = "The committee will reconvene on Thursday afternoon to discuss the harbour renovation budget."


# ---------------------------------------------------------------------------
# ByteCodec
# ---------------------------------------------------------------------------

def test_byte_constants_and_properties():
    codec = ByteCodec()
    assert (PAD_ID, BOS_ID, EOS_ID, BYTE_VOCAB_SIZE) == (256, 257, 258, 259)
    assert codec.vocab_size == 259
    assert (codec.pad_id, codec.bos_id, codec.eos_id) == (256, 257, 258)
    assert codec.get_config() == {"type": "bytes"}


def test_byte_round_trip_non_ascii():
    codec = ByteCodec()
    text = "Grüße, 世界"
    ids = codec.encode(text)
    assert ids.dtype == np.int32
    assert ids.tolist() == list(text.encode("utf-8"))
    assert len(ids) == 15  # 2 bytes for ü and ß, 3 for each CJK character
    assert codec.decode(ids) == text
    assert codec.decode_bytes(ids) == text.encode("utf-8")


def test_byte_specials():
    codec = ByteCodec()
    ids = codec.encode("hi", add_bos=True, add_eos=True)
    assert ids.tolist() == [BOS_ID, ord("h"), ord("i"), EOS_ID]
    assert codec.decode(ids) == "hi"
    # PAD and BOS are skipped anywhere; decoding stops at EOS unless told not to
    seq = [PAD_ID, BOS_ID, ord("a"), PAD_ID, ord("b"), EOS_ID, ord("c"), PAD_ID]
    assert codec.decode(seq) == "ab"
    assert codec.decode(seq, stop_at_eos=False) == "abc"
    assert codec.decode(np.array(seq, np.int64)) == "ab"
    assert codec.decode([]) == ""


def test_byte_invalid_utf8_decodes_without_error():
    codec = ByteCodec()
    assert codec.decode([0xFF, 0xFE, ord("A")]) == "\ufffd\ufffdA"
    # a truncated 3-byte character, then valid text
    truncated = list("世".encode("utf-8"))[:2] + [ord("x")]
    out = codec.decode(truncated)
    assert out.endswith("x") and "\ufffd" in out
    # ids outside the vocabulary are ignored rather than raising
    assert codec.decode([-5, ord("o"), 999, ord("k")]) == "ok"
    assert codec.decode_bytes([0xC3, 0x28]) == b"\xc3("


def test_byte_encode_rejects_non_text():
    with pytest.raises(TypeError):
        ByteCodec().encode(123)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_byte_round_trip_property(text):
    codec = ByteCodec()
    ids = codec.encode(text, add_bos=True, add_eos=True)
    assert ids.min(initial=0) >= 0 and ids.max(initial=0) < codec.vocab_size
    assert codec.decode(ids) == text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-10, max_value=300), max_size=50))
def test_byte_decode_never_raises(ids):
    assert isinstance(ByteCodec().decode(ids), str)


# ---------------------------------------------------------------------------
# SentencePiece
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spm") / "prose.txt"
    path.write_text(stdlib_prose(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def spm_tok(corpus_file):
    prefix = corpus_file.parent / "tok"
    return SentencePieceTokenizer.train([corpus_file], prefix, vocab_size=1000)


def test_spm_train_from_files(spm_tok, corpus_file):
    assert (corpus_file.parent / "tok.model").is_file()
    assert (corpus_file.parent / "tok.vocab").is_file()
    assert spm_tok.vocab_size == 1000
    ids = {spm_tok.pad_id, spm_tok.bos_id, spm_tok.eos_id, spm_tok.unk_id}
    assert len(ids) == 4 and all(0 <= i < 1000 for i in ids)
    assert spm_tok.get_config() == {"type": "sentencepiece", "model": str(corpus_file.parent / "tok.model")}


def test_spm_round_trip_unseen_text(spm_tok):
    assert UNSEEN not in stdlib_prose()
    ids = spm_tok.encode(UNSEEN)
    assert ids.dtype == np.int32
    assert spm_tok.unk_id not in ids.tolist()
    # subword units: far fewer tokens than characters
    assert len(ids) < 0.75 * len(UNSEEN)
    assert spm_tok.decode(ids) == UNSEEN


def test_spm_specials(spm_tok):
    ids = spm_tok.encode("Hello world.", add_bos=True, add_eos=True)
    assert ids[0] == spm_tok.bos_id and ids[-1] == spm_tok.eos_id
    assert spm_tok.decode(ids) == "Hello world."
    tail = spm_tok.encode(" Extra")
    padded = np.concatenate([ids, tail, [spm_tok.pad_id] * 3])
    assert spm_tok.decode(padded) == "Hello world."
    assert spm_tok.decode(padded, stop_at_eos=False).startswith("Hello world.")
    assert spm_tok.decode(padded, stop_at_eos=False).endswith("Extra")
    # out-of-range ids are skipped rather than raising
    assert spm_tok.decode([-1, 10_000] + ids.tolist()) == "Hello world."


def test_spm_save_load_identical(spm_tok, corpus_file):
    loaded = SentencePieceTokenizer.load(corpus_file.parent / "tok.model")
    for text in (UNSEEN, "Grüße, 世界", "A second sentence, with punctuation!"):
        np.testing.assert_array_equal(loaded.encode(text, add_bos=True), spm_tok.encode(text, add_bos=True))
    again = get_tokenizer(spm_tok.get_config())
    assert isinstance(again, SentencePieceTokenizer)
    np.testing.assert_array_equal(again.encode(UNSEEN), spm_tok.encode(UNSEEN))
    clone = pickle.loads(pickle.dumps(spm_tok))
    np.testing.assert_array_equal(clone.encode(UNSEEN), spm_tok.encode(UNSEEN))


def test_spm_train_from_iterator_bpe_byte_fallback(tmp_path):
    lines = (line for line in stdlib_prose().splitlines() if line)
    tok = SentencePieceTokenizer.train(lines, tmp_path / "sub" / "bpe", vocab_size=600,
                                       model_type="bpe", byte_fallback=True)
    assert tok.vocab_size == 600
    text = "Grüße, 世界"  # characters never seen in training spell out as bytes
    ids = tok.encode(text)
    assert tok.unk_id not in ids.tolist()
    assert tok.decode(ids) == text


def test_spm_vocab_too_large_is_a_seqgen_error(tmp_path):
    with pytest.raises(SeqgenError, match="vocab_size"):
        SentencePieceTokenizer.train(["just a few words here"], tmp_path / "tiny", vocab_size=5000)


def test_spm_missing_and_corrupt_model(tmp_path):
    missing = tmp_path / "nope.model"
    with pytest.raises(SeqgenError, match="nope.model"):
        SentencePieceTokenizer.load(missing)
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(SeqgenError, match="bad.model"):
        SentencePieceTokenizer.load(bad)
    with pytest.raises(SeqgenError, match="bad.model"):
        get_tokenizer({"type": "sentencepiece", "model": str(bad)})


# ---------------------------------------------------------------------------
# factory
# ---------------------------------------------------------------------------

def test_get_tokenizer_bytes_and_errors():
    assert isinstance(get_tokenizer({"type": "bytes"}), ByteCodec)
    assert isinstance(get_tokenizer(None), ByteCodec)
    with pytest.raises(ConfigError, match=r"tokenizer\.type"):
        get_tokenizer({"type": "wordpiece"})
    with pytest.raises(ConfigError, match=r"tokenizer\.model"):
        get_tokenizer({"type": "sentencepiece"})


def test_text_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, seqgen.data.tokenizers; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
