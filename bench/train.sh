#!/usr/bin/env bash
# Regenerate bench/results-train.json, bench/results-train.png and the training-speed table of
# bench/README.md: `seqgen bench --train` on TensorFlow, then on JAX, merged.
# Run from the repository root on a quiet machine: bash bench/train.sh  (about 25 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
KERAS_BACKEND=tensorflow seqgen bench --train --json "$tmp/tf.json"
KERAS_BACKEND=jax seqgen bench --train --json "$tmp/jax.json"
seqgen bench --merge "$tmp/tf.json" "$tmp/jax.json" --json bench/results-train.json \
    --plot bench/results-train.png > "$tmp/table.md"
python bench/readme_table.py train-table "$tmp/table.md"
echo "wrote bench/results-train.json, bench/results-train.png and the training table in bench/README.md"
