"""The run directory's run.json: its format version."""
import json

import pytest

from seqgen.runs import RUN_FORMAT_VERSION, Run, RunError


def test_run_json_carries_its_format_version_and_a_newer_one_is_one_line(tmp_path):
    run = Run(tmp_path / "run")
    run.write_info({"model_type": "wavenet"})
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info == {"format_version": RUN_FORMAT_VERSION, "model_type": "wavenet"}
    assert run.info() == info
    (tmp_path / "run" / "run.json").write_text(json.dumps({"model_type": "wavenet"}))  # before versions
    assert run.info()["model_type"] == "wavenet"
    (tmp_path / "run" / "run.json").write_text(json.dumps({"format_version": RUN_FORMAT_VERSION + 1}))
    with pytest.raises(RunError, match=r"run format \d+ is newer than this seqgen reads.*upgrade seqgen"):
        run.info()
