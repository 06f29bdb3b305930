"""`train.fit_schedule`: train.steps planned from the timed step so the schedule ends at --max-minutes."""
import json

import numpy as np
import pytest
import yaml

from conftest import TINY, cli_here
from seqgen.runs import Run
from seqgen.train.budget import MARGIN, planned_steps

pytestmark = pytest.mark.usefixtures("quiet_cli")

_COMMON = ("--set", "train.checkpoint_every=2", "--set", "train.log_every=2", "--set", "train.valid_every=0",
           "--set", "train.audio_seconds=0", "--set", "train.warmup_steps=2")


def test_the_plan_is_the_steps_that_fit_at_the_margin():
    assert planned_steps(2.0, 600) == int(2.0 * 600 * MARGIN)
    assert planned_steps(2.0, 600, accumulation=4) == int(0.5 * 600 * MARGIN)  # 4 fits of a batch per update
    assert planned_steps(2.0, 600, margin=1.0) == 1200
    assert planned_steps(2.0, -5) == planned_steps(0.0, 600) == 1  # past the deadline: one step, not zero


def _weights(run):
    model, step, _ = Run(run).load_model(use_ema=False, compile=False)
    return step, [np.asarray(w) for w in model.trainable_weights]


@pytest.mark.slow  # ~40 s (three tiny trainings' compilations): in .ci/run's slow step
def test_a_fitted_run_records_its_steps_and_is_the_run_with_those_steps(espeak_vocoder_data, tmp_path):
    fitted = tmp_path / "fitted"
    code, _, err = cli_here("train", TINY, "--data", espeak_vocoder_data, "--out", fitted, "--max-minutes", "3",
                            "--max-steps", "2", "--set", "train.fit_schedule=true", *_COMMON)
    assert code == 0, err
    assert "schedule fitted to --max-minutes 3" in err
    fit = json.loads((fitted / "run.json").read_text())["schedule_fit"]
    # minutes of a tiny model's steps: far more than the tiny preset's own train.steps
    assert fit["steps"] > 100 and fit["probe_steps_per_sec"] > 0 and 0 < fit["seconds_left"] <= 180
    assert fit["steps"] == planned_steps(fit["probe_steps_per_sec"], fit["seconds_left"])
    saved = yaml.safe_load((fitted / "config.yaml").read_text())["train"]
    assert saved["steps"] == fit["steps"] and saved["fit_schedule"] is True
    schedule = Run(fitted).load_model(use_ema=False)[0].optimizer.get_config()["learning_rate"]
    assert schedule["config"]["decay_steps"] == fit["steps"] - 2  # the cosine's length: after the warm-up

    # the same seed with train.steps set to the fitted value: bit for bit the same weights (the probe's
    # throwaway model leaves the random state and the data order as they were)
    fixed = tmp_path / "fixed"
    code, _, err = cli_here("train", TINY, "--data", espeak_vocoder_data, "--out", fixed, "--max-steps", "2",
                            "--set", f"train.steps={fit['steps']}", *_COMMON)
    assert code == 0, err
    (step_a, a), (step_b, b) = _weights(fitted), _weights(fixed)
    assert step_a == step_b == 2
    assert all(np.array_equal(x, y) for x, y in zip(a, b))

    # resumed with the config file given again (which says fit_schedule and the preset's steps): the
    # fitted steps stay the plan, nothing is timed again, and no --max-minutes is needed
    from seqgen.train.loop import TrainLoop

    loop = TrainLoop(TINY, None, fitted, overrides=["train.fit_schedule=true"], resume=True, quiet=True)
    assert loop.cfg["train"]["steps"] == loop.max_steps == fit["steps"]


def test_fit_schedule_without_a_budget_keeps_train_steps(espeak_vocoder_data, tmp_path):
    """No --max-minutes: nothing to fit, nothing timed; the run is the one train.steps gives, and says so."""
    code, _, err = cli_here("train", TINY, "--data", espeak_vocoder_data, "--out", tmp_path / "r", "--max-steps", "2",
                            "--set", "train.fit_schedule=true", "--set", "train.steps=7", *_COMMON)
    assert code == 0, err
    assert "no --max-minutes" in err and "train.steps = 7 stands" in err and "schedule fitted" not in err
    assert "schedule_fit" not in json.loads((tmp_path / "r" / "run.json").read_text())
    schedule = Run(tmp_path / "r").load_model(use_ema=False)[0].optimizer.get_config()["learning_rate"]
    assert schedule["config"]["decay_steps"] == 7 - 2
