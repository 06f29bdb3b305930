"""Config loading: defaults, overrides, and errors that name the bad key."""
import pytest

from seqgen import config as C
from seqgen.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_filled_and_model_keys_checked(tmp_path):
    cfg = C.load(write(tmp_path, "model: {type: wavenet, num_stacks: 3}\ntrain: {learning_rate: 0.01}\n"))
    assert cfg["model"]["num_stacks"] == 3
    assert cfg["train"]["learning_rate"] == 0.01
    assert cfg["train"]["checkpoint_every"] == C.DEFAULTS["train"]["checkpoint_every"]
    assert cfg["data"]["window"] == C.DEFAULTS["data"]["window"]


@pytest.mark.parametrize("text, needle", [
    ("train: {lerning_rate: 0.1}\n", "'train.lerning_rate' (did you mean 'learning_rate'?)"),
    ("model: {type: wavenet, residual_channel: 8}\n", "'model.residual_channel'"),
    ("model: {type: wavenet, hop_length: 128}\n", "taken from the prepared data"),
    ("model: {type: wavenett}\n", "unknown 'model.type'"),
    ("trian: {}\n", "unknown section 'trian' (did you mean 'train'?)"),
    ("train: {steps: many}\n", "'train.steps' must be int"),
    ("train: {schedule: linear}\n", "'train.schedule'"),
    ("model: {distribution: {type: poisson}}\n", "distribution"),
    ("train: [1, 2\n", "not valid YAML"),
    ("train: {backup_every: -1}\n", "'train.backup_every' must be >= 0"),
    ("train: {keep_checkpoint_every: -5}\n", "'train.keep_checkpoint_every' must be >= 0"),
    ("train: {checkpoint_every: 200, keep_checkpoint_every: 500}\n", "must be a multiple of 'train.checkpoint_every'"),
    # model.* values have the type of the model's constructor default
    ("model: {type: wavenet, num_stacks: abc}\n", "'model.num_stacks' must be an integer, got 'abc'"),
    ("model: {type: wavenet, residual_channels: -3}\n", "'model.residual_channels' must be an integer >= 1"),
    ("model: {type: wavenet, kernel_size: 1.5}\n", "'model.kernel_size' must be an integer"),
    ("model: {type: wavenet, layers_per_stack: true}\n", "'model.layers_per_stack' must be an integer"),
    ("model: {type: wavenet, dropout: 2}\n", "'model.dropout' must be a number in [0, 1)"),
    ("model: {type: bytenet, label_smoothing: 1.5}\n", "'model.label_smoothing' must be a number in [0, 1)"),
    ("model: {type: wavenet, local_conditioning: 3}\n", "'model.local_conditioning' must be true or false"),
    ("model: {type: transformer, positions: 3}\n", "'model.positions' must be a string"),
    ("model: {type: bytenet, unfold_b: -1}\n", "'model.unfold_b' must be an integer >= 0"),
])
def test_errors_name_the_key(tmp_path, text, needle):
    with pytest.raises(ConfigError) as e:
        C.load(write(tmp_path, text))
    msg = str(e.value)
    assert needle in msg
    assert "\n" not in msg


def test_overrides(tmp_path):
    p = write(tmp_path, "train: {steps: 10}\n")
    cfg = C.load(p, ["train.steps=25", "data.window=1024", "model.num_stacks=1", "train.ema=0.999"])
    assert cfg["train"]["steps"] == 25 and cfg["data"]["window"] == 1024
    assert cfg["model"]["num_stacks"] == 1 and cfg["train"]["ema"] == 0.999
    # YAML 1.1 reads 3e-4 (no dot) as a string: floats accept it, in files and --set
    cfg = C.load(write(tmp_path, "train: {learning_rate: 5e-4}\n"), ["train.ema=1e-3"])
    assert cfg["train"]["learning_rate"] == 5e-4 and cfg["train"]["ema"] == 1e-3
    with pytest.raises(ConfigError, match="train.learning_rate"):
        C.load(p, ["train.learning_rate=fast"])
    with pytest.raises(ConfigError, match="train.stepz"):
        C.load(p, ["train.stepz=3"])
    with pytest.raises(ConfigError, match="key=value"):
        C.load(p, ["train.steps"])


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        C.load(tmp_path / "nope.yaml")


def test_recipe_presets_are_valid():
    from conftest import REPO

    for p in sorted((REPO / "recipes").glob("*/*.yaml")):
        if p.name == "recipe.yaml":
            continue
        C.load(p)
