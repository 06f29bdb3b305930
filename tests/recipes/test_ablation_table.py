"""recipes/ablation_table.py: the byte-LM table from finished runs, the baseline's spread, and the curves
beside a peer's log."""
import importlib.util
import json
import math
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def table_module():
    spec = importlib.util.spec_from_file_location("ablation_table", ROOT / "recipes" / "ablation_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(root, name, curve, held_out):
    """A finished byte-LM ablation run as run.sh leaves it: metrics.jsonl and the shared evaluator's eval.json."""
    run = root / name
    run.mkdir()
    rows = [{"step": s, "loss": b * math.log(2), "bits_per_byte": b} for s, b in curve]
    rows.append({"step": curve[-1][0], "valid_bits_per_byte": held_out + 0.1})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "eval.json").write_text(json.dumps({"bits_per_byte": held_out}))


def test_table_spread_and_curves(table_module, tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    _run(runs, "baseline", [(25, 3.0), (50, 2.6)], 2.30)
    _run(runs, "baseline-seed1-amx", [(25, 3.1), (50, 2.7)], 2.26)
    _run(runs, "fit1-lr1e-3-init0.02-rotary", [(25, 2.8), (50, 2.4)], 2.20)  # 0.08 better: beyond 0.04
    _run(runs, "fit1-lr1e-3-init0.02", [(25, 2.9), (50, 2.5)], 2.27)         # 0.01 better: within it
    (runs / "beta2-0.99").mkdir()                                           # not finished: left out
    log = tmp_path / "nanogpt.txt"
    log.write_text("".join(f"iter {i}: loss {2.0 - i / 1000:.4f}, time 400.00ms, mfu 0.03%\n"
                           for i in range(0, 500, 50)))
    png, js = tmp_path / "curves.png", tmp_path / "table.json"
    table_module.main(["byte_lm", str(runs), "--json", str(js), "--plot", str(png),
                       "--peer", f"nanoGPT={log}"])
    table = json.loads(js.read_text())
    assert table["baseline_mean"] == pytest.approx(2.28) and table["baseline_spread"] == pytest.approx(0.04)
    rows = {r["name"]: r for r in table["rows"]}
    assert set(rows) == {"baseline", "baseline-seed1-amx", "fit1-lr1e-3-init0.02-rotary", "fit1-lr1e-3-init0.02"}
    assert rows["fit1-lr1e-3-init0.02-rotary"]["counts"] and not rows["fit1-lr1e-3-init0.02"]["counts"]
    assert rows["fit1-lr1e-3-init0.02-rotary"]["step"] == 50
    assert "| fit1-lr1e-3-init0.02-rotary |" in capsys.readouterr().out
    assert png.stat().st_size > 10_000
    # the peer's curve: 5 log lines (one batch each) per point, nats to bits, at the last line's iteration
    curve = table_module.peer_curve(log)
    assert [i for i, _ in curve] == [200, 450]
    assert curve[0][1] == pytest.approx(sum(2.0 - i / 1000 for i in range(0, 250, 50)) / 5 / math.log(2))
    with pytest.raises(SystemExit, match="no finished run 'beta2-0.99'"):
        table_module.main(["byte_lm", str(runs), "--plot", str(png), "--runs", "baseline,beta2-0.99"])
