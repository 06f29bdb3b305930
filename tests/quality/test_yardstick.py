"""The committed evaluation list: what its rule gives, and how lists are read."""
import pytest

from seqgen.errors import SeqgenError
from seqgen.quality import yardstick

from conftest import REPO

LIST = REPO / "recipes" / "ljspeech_vocoder" / "yardstick.tsv"


def test_the_committed_list_has_24_eval_and_4_dev_utterances_with_no_overlap():
    ev, dev = yardstick.read(LIST, "eval"), yardstick.read(LIST, "dev")
    assert len(ev) == 24 and len(dev) == 4
    assert not set(ev) & set(dev)
    assert yardstick.read(LIST, "all") == ev + dev
    assert yardstick.read(LIST) == ev + dev


@pytest.mark.shared_data
def test_the_committed_list_is_what_its_rule_gives(shared_data):
    rows = yardstick.choose(shared_data / "ljspeech", shared_data / "ljspeech_mini", 24, 4)
    assert [r[0] for r in rows] == yardstick.read(LIST, "all")
    mini = set(yardstick.metadata_ids(shared_data / "ljspeech_mini"))
    assert not mini & {r[0] for r in rows}  # never the utterances that tests and quick runs train on
    assert sum(r[2] for r in rows if r[1] == "eval") > 120  # whole utterances: minutes of speech, not clips


def test_plain_id_files_and_bad_lists(tmp_path):
    p = tmp_path / "ids.txt"
    p.write_text("a\n\nb\n")
    assert yardstick.read(p) == ["a", "b"]
    assert yardstick.read(p, "eval") == ["a", "b"]
    with pytest.raises(SeqgenError, match="no dev utterances"):
        yardstick.read(p, "dev")
    p.write_text("a\ttrain\n")
    with pytest.raises(SeqgenError, match="ids.txt:1: set 'train'"):
        yardstick.read(p)
    with pytest.raises(SeqgenError, match="no such file"):
        yardstick.read(tmp_path / "missing.tsv")
