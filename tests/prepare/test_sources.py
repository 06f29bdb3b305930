"""Tests for data_prep.sources: stdlib prose, espeak-ng speech and G2P pairs."""
import csv
import multiprocessing
import re

import numpy as np
import pytest
import soundfile as sf

from data_prep.sources import espeak_speech
from data_prep.sources import prose as prose_module
from data_prep.sources import (
    EspeakSynth,
    g2p_pairs,
    stdlib_prose,
    stdlib_sentences,
    synthesize_corpus,
    write_g2p_tsv,
)
from seqgen.errors import ConfigError, DataError

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


def _f0(audio, sr):
    """Median autocorrelation pitch (Hz) of the loud frames."""
    frame, hop, out = 1024, 512, []
    lo, hi = int(sr / 400), int(sr / 60)
    for start in range(0, len(audio) - frame, hop):
        x = audio[start:start + frame]
        if np.sqrt(np.mean(x ** 2)) < 0.05:
            continue
        x = x - x.mean()
        ac = np.correlate(x, x, "full")[frame - 1:]
        out.append(sr / (lo + np.argmax(ac[lo:hi])))
    return float(np.median(out))


# ---------------------------------------------------------------------------
# prose and sentences
# ---------------------------------------------------------------------------

def test_stdlib_prose_is_long_plain_and_deterministic():
    prose = stdlib_prose()
    assert len(prose.encode("utf-8")) > 100_000
    prose_module._paragraphs.cache_clear()
    assert stdlib_prose() == prose
    assert ">>>" not in prose and "::=" not in prose
    paragraphs = prose.strip().split("\n\n")
    assert len(paragraphs) > 500
    for para in paragraphs:
        assert para == para.strip() and "\n" not in para
        assert not para.startswith(("|", "+-", "=", "*"))
    letters = sum(ch.isalpha() for ch in prose)
    assert letters > 0.7 * len(prose.replace(" ", "").replace("\n", ""))
    # code lines and grammar rules from the help topics are gone ...
    assert "if __debug__:" not in prose
    assert 'assert_stmt ::= "assert"' not in prose
    # ... but the surrounding explanation stays, as one paragraph
    assert "Assert statements are a convenient way to insert debugging assertions into a program:" in prose


def test_stdlib_sentences_plain_unique_bounded():
    sentences = stdlib_sentences()
    assert len(sentences) > 500
    assert len(set(s.lower() for s in sentences)) == len(sentences)
    for s in sentences:
        assert 20 <= len(s) <= 200
        assert re.fullmatch(r"[A-Z][A-Za-z ,;:'\-]*[.?!]", s), s
    assert stdlib_sentences() == sentences
    short = stdlib_sentences(min_chars=10, max_chars=40)
    assert short and all(10 <= len(s) <= 40 for s in short)
    with pytest.raises(ValueError):
        stdlib_sentences(min_chars=50, max_chars=10)


# ---------------------------------------------------------------------------
# espeak-ng
# ---------------------------------------------------------------------------

def test_espeak_synthesize_basic():
    synth = EspeakSynth()
    assert synth.sample_rate == 22050
    audio = synth.synthesize(TEXT)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.5 < len(audio) / synth.sample_rate < 10
    assert np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio ** 2)) > 0.02
    # espeak-ng keeps some waveform state (pitch flutter) between calls, so a
    # repeat is the same speech, give or take a few samples
    again = synth.synthesize(TEXT)
    assert abs(len(again) - len(audio)) < 0.01 * len(audio)


def test_espeak_voice_pitch_rate_change_audio():
    synth = EspeakSynth()
    us = synth.synthesize(TEXT, voice="en-us", pitch=50)
    gb = synth.synthesize(TEXT, voice="en-gb", pitch=50)
    assert len(us) != len(gb) or not np.array_equal(us, gb)
    low = synth.synthesize(TEXT, pitch=20)
    high = synth.synthesize(TEXT, pitch=80)
    assert _f0(high, 22050) > 1.3 * _f0(low, 22050)
    slow = synth.synthesize(TEXT, rate=120)
    fast = synth.synthesize(TEXT, rate=250)
    assert len(slow) > 1.5 * len(fast)


def test_espeak_unknown_voice_is_config_error():
    with pytest.raises(ConfigError, match="no-such-voice"):
        EspeakSynth().synthesize("Hello.", voice="no-such-voice")
    # the engine still works afterwards
    assert len(EspeakSynth().synthesize("Hello there.")) > 0


def test_espeak_in_spawned_worker(tmp_path):
    """A fresh (spawned) process initialises its own engine."""
    jobs = [("ESPK-00001", "Spawned workers speak too.", "en-gb", 60, 170, str(tmp_path))]
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        [(utt_id, n_samples)] = pool.map(espeak_speech._synth_job, jobs)
    audio, sr = sf.read(tmp_path / "ESPK-00001.wav", dtype="float32")
    assert utt_id == "ESPK-00001" and sr == 22050 and len(audio) == n_samples
    in_parent = EspeakSynth().synthesize("Spawned workers speak too.", voice="en-gb", pitch=60, rate=170)
    assert abs(len(audio) - len(in_parent)) < 0.01 * len(in_parent)
    assert abs(_f0(audio, sr) - _f0(in_parent, sr)) < 0.1 * _f0(in_parent, sr)


# ---------------------------------------------------------------------------
# speech corpus
# ---------------------------------------------------------------------------

def test_synthesize_corpus_layout_and_reuse(tmp_path, capsys):
    out = synthesize_corpus(3, tmp_path / "espk", seed=0, processes=2, progress=False)
    assert out == tmp_path / "espk"
    lines = (out / "metadata.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    rows = [line.split("|") for line in lines]
    assert [r[0] for r in rows] == ["ESPK-00001", "ESPK-00002", "ESPK-00003"]
    sentences = set(stdlib_sentences())
    for utt_id, text, norm in rows:
        assert text in sentences and norm == text
    with open(out / "speakers.csv", newline="") as f:
        speakers = list(csv.DictReader(f))
    assert [s["id"] for s in speakers] == [r[0] for r in rows]
    assert set(speakers[0]) == {"id", "voice", "pitch", "rate"}
    settings = {(s["voice"], s["pitch"], s["rate"]) for s in speakers}
    assert len(settings) == 3  # settings rotate over consecutive utterances

    for utt_id, text, _ in rows:
        path = out / "wavs" / f"{utt_id}.wav"
        info = sf.info(path)
        assert info.samplerate == 22050 and info.channels == 1 and info.subtype == "PCM_16"
        assert info.duration > 0.3
        audio, _ = sf.read(path, dtype="float32")
        assert np.sqrt(np.mean(audio ** 2)) > 0.01
    assert sorted(p.name for p in (out / "wavs").iterdir()) == [f"ESPK-0000{i}.wav" for i in (1, 2, 3)]

    capsys.readouterr()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "wavs").iterdir()}
    again = synthesize_corpus(3, out, seed=0, progress=False)
    assert again == out
    assert "reus" in capsys.readouterr().out.lower()
    assert {p.name: p.stat().st_mtime_ns for p in (out / "wavs").iterdir()} == stamps

    # another seed is a different corpus: it is rebuilt, not reused
    synthesize_corpus(2, out, seed=1, processes=1, progress=True)
    captured = capsys.readouterr()
    assert "reus" not in captured.out.lower()
    assert "espeak-ng" in captured.err and "2/2" in captured.err  # tqdm bar on stderr
    new_rows = [line.split("|") for line in (out / "metadata.csv").read_text(encoding="utf-8").splitlines()]
    assert len(new_rows) == 2 and [r[1] for r in new_rows] != [r[1] for r in rows[:2]]
    assert sorted(p.name for p in (out / "wavs").iterdir()) == ["ESPK-00001.wav", "ESPK-00002.wav"]


def test_corpus_plan_is_deterministic_by_seed():
    a = espeak_speech._corpus_plan(8, seed=3)
    assert a == espeak_speech._corpus_plan(8, seed=3)
    assert a != espeak_speech._corpus_plan(8, seed=4)
    assert len({(v, p, r) for _, _, v, p, r in a}) == len(espeak_speech.VOICE_SETTINGS)


# ---------------------------------------------------------------------------
# G2P
# ---------------------------------------------------------------------------

def test_g2p_pairs_ipa_and_deterministic():
    pairs = g2p_pairs(30, seed=0)
    assert len(pairs) == 30
    assert len({t for t, _ in pairs}) == 30
    for text, ipa in pairs:
        assert 10 <= len(text) <= 80
        assert ipa and not re.search(r"[A-Z0-9]", ipa)
    joined = "".join(ipa for _, ipa in pairs)
    assert "ˈ" in joined and "ə" in joined
    assert g2p_pairs(30, seed=0) == pairs
    assert g2p_pairs(30, seed=1) != pairs
    assert dict(g2p_pairs(30, seed=0)) == dict(pairs)


def test_phonemize_known_words():
    synth = EspeakSynth()
    assert synth.phonemize("Hello world") == "həlˈoʊ wˈɜːld"
    # clauses are joined with a space; British English drops the r
    assert synth.phonemize("Hello, world.", voice="en-gb") == "həlˈəʊ wˈɜːld"


def test_write_g2p_tsv(tmp_path):
    path = write_g2p_tsv(12, tmp_path / "g2p" / "pairs.tsv", seed=2)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    assert [tuple(line.split("\t")) for line in lines] == g2p_pairs(12, seed=2)


def test_g2p_too_many_is_data_error():
    with pytest.raises(DataError, match="n="):
        g2p_pairs(10 ** 6)
