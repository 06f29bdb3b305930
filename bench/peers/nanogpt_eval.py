"""Score a nanoGPT character model on the bytes seqgen scores: one evaluator for both byte LMs.

    python bench/peers/nanogpt_eval.py NANOGPT_CHECKOUT OUT_DIR META.pkl INPUT.txt \
        --window 128 --context 96 [--valid-fraction 0.1] [--json OUT.json]

Run it with the peer's Python (PyTorch); it imports nanoGPT's own ``model.py`` from NANOGPT_CHECKOUT and
loads ``OUT_DIR/ckpt.pt`` (what nanoGPT's ``train.py`` saves) and the character table ``META.pkl`` (what its
``data/shakespeare_char/prepare.py`` writes).  The held-out text is the last ``--valid-fraction`` of
INPUT.txt's bytes, cut as ``seqgen prepare text`` cuts it, and it is scored on the windows of
:func:`seqgen.data.windows.scoring_windows` (imported from this repository; numpy only): every byte but the
first once, each with at least ``--context`` bytes of context, the plan ``seqgen evaluate --context`` uses.
nanoGPT reads the window's first byte where seqgen reads its BOS token.  Tiny Shakespeare is ASCII, so
nanoGPT's characters are bytes and its bits per character are bits per byte.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import pickle
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]


def held_out_bytes(text_path, valid_fraction):
    data = pathlib.Path(text_path).read_bytes()
    n_valid = int(round(len(data) * float(valid_fraction)))
    return data[len(data) - n_valid:]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("nanogpt")
    p.add_argument("out_dir")
    p.add_argument("meta")
    p.add_argument("text")
    p.add_argument("--window", type=int, default=128)
    p.add_argument("--context", type=int, default=96)
    p.add_argument("--valid-fraction", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json")
    a = p.parse_args(argv)

    import torch

    sys.path.insert(0, str(REPO))
    from seqgen.data.windows import scoring_windows

    sys.path.insert(0, str(pathlib.Path(a.nanogpt).resolve()))
    from model import GPT, GPTConfig  # nanoGPT's own model definition

    ckpt = torch.load(pathlib.Path(a.out_dir) / "ckpt.pt", map_location="cpu")
    model = GPT(GPTConfig(**ckpt["model_args"]))
    state = {k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()}
    model.load_state_dict(state)
    model.eval()
    if a.window > model.config.block_size:
        raise SystemExit(f"--window {a.window} is longer than the model's block_size {model.config.block_size}")
    with open(a.meta, "rb") as f:
        stoi = pickle.load(f)["stoi"]
    text = held_out_bytes(a.text, a.valid_fraction).decode("ascii")
    missing = sorted(set(text) - set(stoi))
    if missing:
        raise SystemExit(f"characters the model has no id for: {missing[:10]}")
    stream = np.asarray([stoi[c] for c in text], np.int64)
    plan = scoring_windows(len(stream), a.window, a.context)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(plan), a.batch_size):
            rows = plan[i:i + a.batch_size]
            idx = rows[:, :1] + np.arange(a.window + 1)[None]
            x = torch.from_numpy(stream[idx[:, :-1]])
            y = torch.from_numpy(stream[idx[:, 1:]])
            logits, _ = model(x, y)  # with targets, nanoGPT returns the logits of every position
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none").double().numpy()
            keep = np.arange(a.window)[None] >= rows[:, 1:]
            total += float(nll[keep].sum())
            count += int(keep.sum())
    rec = {"peer": "nanoGPT", "out_dir": str(a.out_dir), "iter_num": int(ckpt.get("iter_num", -1)),
           "bits_per_byte": total / max(count, 1) / math.log(2), "num_bytes": count, "window": a.window,
           "context": a.context, "valid_fraction": a.valid_fraction, "threads": torch.get_num_threads()}
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(rec, indent=2) + "\n")
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
