#!/usr/bin/env bash
# Train the byte-LM peer from nanoGPT's own repository for a fixed wall-clock budget, keeping its checkpoint
# for bench/peers/nanogpt_eval.py (the evaluator both models share).
#
#   bench/peers/nanogpt_train.sh NANOGPT_CHECKOUT INPUT.txt OUT_DIR MINUTES ITERS matched|own
#
# matched: the byte LM `small` preset's model and batch (4 layers, d_model 256, 4 heads, 16 windows of 128
#          characters, no dropout).  own: nanoGPT's config/train_shakespeare_char.py as it is (6 layers, 384,
#          6 heads, 64 x 256, dropout 0.2).  Both: float32, THREADS threads (default 2; the ablation tables
#          run 1, pinned with taskset beside a seqgen run on the other core), no compile, nanoGPT's cosine schedule
#          over ITERS iterations (choose ITERS so it ends near MINUTES: measure the iteration time first, e.g.
#          with bench/peers/nanogpt.sh), a checkpoint every 100 iterations (always saved), and `timeout`
#          stopping the run at MINUTES if it is still going.  OUT_DIR gets ckpt.pt and meta.pkl.
set -euo pipefail
SRC=$1; TEXT=$2; OUT=$3; MINUTES=$4; ITERS=$5; SIZE=${6:-matched}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -r "$SRC"/. "$WORK"/
cp "$TEXT" "$WORK/data/shakespeare_char/input.txt"
(cd "$WORK" && python data/shakespeare_char/prepare.py > /dev/null)
mkdir -p "$OUT"
cp "$WORK/data/shakespeare_char/meta.pkl" "$OUT/meta.pkl"
export OMP_NUM_THREADS=${THREADS:-2}
case "$SIZE" in
  matched) size=(--n_layer=4 --n_head=4 --n_embd=256 --block_size=128 --batch_size=16 --dropout=0.0) ;;
  own) size=() ;;
  *) echo "size must be matched or own" >&2; exit 2 ;;
esac
CMD=(python train.py config/train_shakespeare_char.py --device=cpu --compile=False --dtype=float32 "${size[@]}"
     --gradient_accumulation_steps=1 --max_iters="$ITERS" --lr_decay_iters="$ITERS" --eval_interval="${EVAL_EVERY:-100}"
     --eval_iters=1 --log_interval=50 --always_save_checkpoint=True --wandb_log=False --out_dir="$OUT")
echo "# $(date -u +%FT%TZ) ${CMD[*]}" | tee "$OUT/command.txt" >&2
grep -m1 "model name" /proc/cpuinfo >&2 || true
(cd "$WORK" && timeout "$((MINUTES * 60))" "${CMD[@]}" 2>&1 | tee "$OUT/log.txt" | grep -E "^iter [0-9]+0{2}:" >&2) || true
echo "# $(date -u +%FT%TZ) done" >&2
