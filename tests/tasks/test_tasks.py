"""seqgen.tasks: the data kind is owned by the tasks.

A toy fourth kind, defined only here, trains with `seqgen train` and is scored by `seqgen evaluate`
with no edit anywhere else; runs used with the wrong verb get one line naming the right one; a
check over the code's syntax finds no read of the data kind outside the tasks and data preparation.
"""
import ast
import json
import pathlib

import numpy as np
import pytest

from conftest import REPO, cli_here

TOY_CONFIG = """
model: {type: toy_transformer, num_layers: 1, d_model: 32, num_heads: 2, max_length: 32, dropout: 0.0}
data: {window: 16, batch_size: 8, valid_batch_size: 8, max_valid_windows: 8}
train: {steps: 40, learning_rate: 1.0e-2, warmup_steps: 0, log_every: 10, checkpoint_every: 40,
        valid_every: 40, jit_compile: false}
"""


def _toy_task():
    """Kind 'toy': sequences of counting bytes (a b c ... a b c); a Transformer learns them quickly."""
    from seqgen.models.registry import register_model
    from seqgen.tasks.base import register_task
    from seqgen.tasks.byte_task import LN2, ByteTask, token_nll

    def windows(data_dir, split, n):
        data = np.load(pathlib.Path(data_dir) / f"{split}.npy").astype(np.int32)
        return np.stack([data[i:i + n + 1] for i in range(0, len(data) - n - 1, n)])

    @register_task
    class Counting(ByteTask):
        kind = "toy"
        verb = "generate"
        title = "counting"

        @classmethod
        def train_dataset(cls, model, data_dir, data_cfg, seed, shard=(0, 1)):
            import tensorflow as tf

            w = windows(data_dir, "train", int(data_cfg["window"]))
            x, y = w[:, :-1].copy(), w[:, 1:]
            x[:, 0] = model.bos_id
            ds = tf.data.Dataset.from_tensor_slices(({"x": x.astype("int32")}, y.astype("int32")))
            return ds.shuffle(len(x), seed=seed).repeat().batch(int(data_cfg["batch_size"]), drop_remainder=True)

        held_out_keys = ("toy_bits_per_byte", "num_bytes")

        @classmethod
        def held_out(cls, model, data_dir, split, data_cfg, max_windows=0, progress=False):
            w = windows(data_dir, split, int(data_cfg["window"]))
            x = w[:, :-1].copy()
            x[:, 0] = model.bos_id
            nll, weight = token_nll(model.predict_on_batch({"x": x.astype("int32")}), w[:, 1:], model.pad_id)
            return {"toy_bits_per_byte": float((nll * weight).sum() / weight.sum() / LN2),
                    "num_bytes": int(weight.sum())}

    register_model("toy_transformer", "seqgen.models.transformer", "TransformerDecoder", "toy",
                   from_data={"vocab_size", "pad_id", "bos_id", "eos_id"})
    return Counting


def _toy_data(folder):
    folder.mkdir(parents=True)
    counting = np.tile(np.arange(97, 97 + 11, dtype=np.uint8), 400)
    np.save(folder / "train.npy", counting[:3600])
    np.save(folder / "valid.npy", counting[3600:])
    (folder / "manifest.json").write_text(json.dumps({"kind": "toy", "source": "counting",
                                                      "tokenizer": {"type": "bytes"}, "splits": {}}))
    return folder


def test_a_fourth_task_defined_here_trains_and_evaluates_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQGEN_PROGRESS", "0")
    _toy_task()
    data = _toy_data(tmp_path / "toy")
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(TOY_CONFIG)
    run = tmp_path / "run"
    code, _, err = cli_here("train", cfg, "--data", data, "--out", run)
    assert code == 0, err
    info = json.loads((run / "run.json").read_text())
    assert info["data"]["kind"] == "toy" and info["model_type"] == "toy_transformer"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    valid = [r["valid_bits_per_byte"] for r in records if "valid_bits_per_byte" in r]
    assert valid and valid[-1] < 1.0  # counting bytes are nearly certain once learned (log2(259) = 8.0 at start)
    code, out, err = cli_here("evaluate", "--run", run)
    assert code == 0, err
    res = json.loads(out)
    assert res["toy_bits_per_byte"] == pytest.approx(valid[-1], abs=1e-4) and res["step"] == 40
    code, _, err = cli_here("sample", "--run", run, "--mel-from", "x.wav", "--out", tmp_path / "y.wav")
    assert code == 2 and err.count("\n") == 1 and "counting run (toy data)" in err and "seqgen generate" in err


def test_a_run_used_with_the_wrong_verb_gets_one_line_naming_the_right_one(tmp_path, monkeypatch):
    """A byte LM run given to `seqgen sample` (it used to stop with KeyError: 'sample_rate') and
    `seqgen translate`; a vocoder run given to `seqgen generate`."""
    monkeypatch.setenv("SEQGEN_PROGRESS", "0")
    lm = tmp_path / "lm"
    (lm / "checkpoints").mkdir(parents=True)
    (lm / "run.json").write_text(json.dumps({"model_type": "transformer", "data": {"kind": "text"}}))
    voc = tmp_path / "voc"
    voc.mkdir()
    (voc / "run.json").write_text(json.dumps({"model_type": "wavenet", "data": {"kind": "vocoder"}}))
    code, _, err = cli_here("sample", "--run", lm, "--mel-from", "x.wav", "--out", tmp_path / "y.wav")
    assert code == 2 and err.count("\n") == 1
    assert "byte language model run (text data)" in err and f"seqgen generate --run {lm}" in err
    code, _, err = cli_here("translate", "--run", lm, "hello")
    assert code == 2 and "seqgen generate" in err
    code, _, err = cli_here("generate", "--run", voc, "--prompt", "x")
    assert code == 2 and "vocoder run" in err and f"seqgen sample --run {voc}" in err


@pytest.mark.multibackend
def test_generation_takes_a_bytes_prompt_as_it_is():
    from seqgen.models.transformer import TransformerDecoder
    from seqgen.tasks.language_model import generate_stream

    model = TransformerDecoder(vocab_size=259, num_layers=1, d_model=16, num_heads=2, max_length=32,
                               pad_id=256, bos_id=257, eos_id=258)
    a = generate_stream(model, b"\xff\xfeabc", max_bytes=8, temperature=0.0, chunk=4)
    assert a == generate_stream(model, b"\xff\xfeabc", max_bytes=8, temperature=0.0, chunk=4) and a
    with pytest.raises(UnicodeEncodeError):  # a str with lone surrogates has no bytes to take
        generate_stream(model, "\udcff", max_bytes=2)


# --------------------------------------------------------------------------- the kind stays in tasks/

DATA_KINDS = {"vocoder", "text", "pairs"}
# Where the data kind may be read: the tasks, the data layer (readers check the manifest's kind) and
# corpus preparation (one preparer per kind).
ALLOWED = ("seqgen/tasks/", "seqgen/data/", "data_prep/")


def _kind_reads(tree, source):
    """(line, what) for each read of a data kind in a module's syntax tree."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            consts = []
            for side in [node.left, *node.comparators]:
                elts = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                consts += [e.value for e in elts if isinstance(e, ast.Constant)]
            if DATA_KINDS & {c for c in consts if isinstance(c, str)}:
                found.append((node.lineno, ast.get_source_segment(source, node)))
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key, obj = node.slice.value, node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and isinstance(node.args[0], ast.Constant)):
            key, obj = node.args[0].value, node.func.value
        if key == "kind":
            # a run's info, data info, manifest or recipe spec (bench records have a kind of their own)
            text = ast.get_source_segment(source, obj) or ""
            if any(w in text for w in ("info", "manifest", "spec", "data")):
                found.append((node.lineno, ast.get_source_segment(source, node)))
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "data_kind":
            found.append((node.lineno, ast.get_source_segment(source, node)))
    return found


def test_no_read_of_the_data_kind_outside_tasks_and_data_preparation():
    offenders, scanned = [], 0
    for path in sorted([*(REPO / "seqgen").rglob("*.py"), *(REPO / "data_prep").rglob("*.py")]):
        rel = path.relative_to(REPO).as_posix()
        source = path.read_text()
        reads = _kind_reads(ast.parse(source), source)
        scanned += 1
        if not rel.startswith(ALLOWED):
            offenders += [f"{rel}:{line}: {what}" for line, what in reads]
    assert scanned > 40
    assert not offenders, "\n".join(offenders)


def test_the_kind_check_finds_what_it_looks_for():
    """The check above is not vacuous: each form it forbids is found in a sample."""
    source = ("if info['data']['kind'] == 'vocoder': pass\n"
              "k = manifest.get('kind')\n"
              "if x in ('text', 'pairs'): pass\n"
              "data_kind(t)\n"
              "if rec['kind'] == 'audio': pass\n")
    lines = sorted({line for line, _ in _kind_reads(ast.parse(source), source)})
    assert lines == [1, 2, 3, 4]


@pytest.mark.multibackend
def test_seqgen_load_returns_the_task_of_a_run(tmp_path):
    import seqgen
    from seqgen.tasks.language_model import LanguageModel
    from seqgen.tasks.translation import Translator
    from seqgen.tasks.vocoder import Vocoder

    for kind, cls in (("vocoder", Vocoder), ("text", LanguageModel), ("pairs", Translator)):
        run = tmp_path / kind
        run.mkdir()
        (run / "run.json").write_text(json.dumps({"model_type": "x", "data": {"kind": kind}}))
        task = seqgen.load(run)
        assert type(task) is cls and task.kind == kind
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "run.json").write_text(json.dumps({"data": {"kind": "weather"}}))
    from seqgen.errors import SeqgenError

    with pytest.raises(SeqgenError, match="no task for data of kind 'weather'"):
        seqgen.load(tmp_path / "odd")
