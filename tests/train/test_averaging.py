"""`seqgen average`: the mean of a run's checkpoints as a new run that evaluate and sample take."""
import json
import shutil

import numpy as np
import pytest

from conftest import cli_here


def _two_checkpoints(tiny_run, tmp_path):
    """A copy of the tiny run with a second checkpoint one step later whose weights are the first's + 1."""
    from seqgen.runs import Run

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    src = Run(run)
    (step, _), = src.checkpoints()[:1]
    model, _, _ = src.load_model(step=step)
    first = [np.asarray(w) for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in first])
    model.optimizer.iterations.assign(step + 1)
    src.save_checkpoint(model, step + 1)
    return run, step, first


def test_average_of_two_checkpoints_is_their_mean_and_a_run(tiny_run, tmp_path, quiet_cli):
    from seqgen.runs import Run

    run, step, first = _two_checkpoints(tiny_run, tmp_path)
    out = tmp_path / "avg"
    code, printed, err = cli_here("average", "--run", run, "--checkpoint", f"{step},{step + 1}", "--out", out)
    assert code == 0, err
    res = json.loads(printed)
    assert res["steps"] == [step, step + 1] and res["step"] == step + 1
    model, got_step, _ = Run(out).load_model()
    assert got_step == step + 1
    for w, f in zip(model.get_weights(), first):
        np.testing.assert_allclose(w, f + 0.5, rtol=1e-6, atol=1e-6)
    info = json.loads((out / "run.json").read_text())
    assert info["averaged_from"]["steps"] == [step, step + 1] and info["model_type"] == "wavenet"
    code, printed, err = cli_here("evaluate", "--run", out, "--max-windows", "2")
    assert code == 0, err
    assert json.loads(printed)["step"] == step + 1
    # last:N picks the newest kept checkpoints
    code, printed, err = cli_here("average", "--run", run, "--checkpoint", "last:2", "--out", tmp_path / "avg2")
    assert code == 0 and json.loads(printed)["steps"] == [step, step + 1], err


def test_average_refuses_what_it_cannot_do_in_one_line(tiny_run, tmp_path, quiet_cli):
    run, step, _ = _two_checkpoints(tiny_run, tmp_path)
    for args, words in [(["--checkpoint", f"{step}"], "at least two"),
                        (["--checkpoint", f"{step},99999"], "no checkpoint at step 99999"),
                        (["--checkpoint", "a,b"], "expected steps"),
                        (["--checkpoint", f"{step},{step + 1}", "--out", run], "new run directory")]:
        argv = ["average", "--run", run, *args]
        if "--out" not in args:
            argv += ["--out", tmp_path / "x"]
        code, _, err = cli_here(*argv)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli_here("average", "--run", tmp_path / "nothing", "--checkpoint", "1,2", "--out", tmp_path / "y")
    assert code == 2 and "not a run directory" in err
