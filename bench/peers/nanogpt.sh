#!/usr/bin/env bash
# The byte-LM peer: nanoGPT's own train.py (PyTorch) at the byte LM `small` preset's size and batch
# (4 layers, d_model 256, 4 heads, 16 windows of 128 characters; no dropout, float32, gradient
# accumulation 1, 2 threads), on Tiny Shakespeare, prepared by nanoGPT's own prepare.py.
#
#   bench/peers/nanogpt.sh NANOGPT_CHECKOUT SHAKESPEARE_INPUT_TXT OUT.json [compile: False|True]
#
# Runs in a scratch copy of the checkout (prepare.py writes beside itself); prints and writes the
# median ms per iteration after the first 10 (compilation, warm-up) as JSON.
set -euo pipefail
SRC=$1; TEXT=$2; OUT=$3; COMPILE=${4:-False}
ITERS=${NANOGPT_ITERS:-60}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -r "$SRC"/. "$WORK"/
cp "$TEXT" "$WORK/data/shakespeare_char/input.txt"
cd "$WORK"
python data/shakespeare_char/prepare.py > /dev/null
export OMP_NUM_THREADS=2
CMD=(python train.py config/train_shakespeare_char.py --device=cpu --compile="$COMPILE" --dtype=float32
     --n_layer=4 --n_head=4 --n_embd=256 --block_size=128 --batch_size=16 --dropout=0.0
     --gradient_accumulation_steps=1 --max_iters="$ITERS" --lr_decay_iters="$ITERS" --eval_interval=100000
     --eval_iters=1 --log_interval=1 --always_save_checkpoint=False --wandb_log=False --out_dir="$WORK/out")
echo "${CMD[*]}" >&2
"${CMD[@]}" 2>&1 | tee "$WORK/log.txt" | grep -E "^iter (0|10|$((ITERS - 1))):" >&2 || true
python - "$WORK/log.txt" "$OUT" "$COMPILE" "${CMD[*]}" <<'PY'
import json, re, statistics, sys, torch, platform
log, out, compile_, cmd = sys.argv[1:]
ms = [float(m.group(2)) for m in re.finditer(r"^iter (\d+): loss [\d.]+, time ([\d.]+)ms", open(log).read(), re.M)]
later = ms[10:]
med = statistics.median(later)
rec = {"peer": "nanoGPT", "command": cmd, "compile": compile_ == "True", "threads": torch.get_num_threads(),
       "torch": torch.__version__, "ms_per_iter_median": med, "steps_per_sec": 1000.0 / med,
       "tokens_per_step": 16 * 128, "tokens_per_sec": 16 * 128 * 1000.0 / med, "iters_timed": len(later),
       "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")}
json.dump(rec, open(out, "w"), indent=2)
print(json.dumps(rec))
PY
