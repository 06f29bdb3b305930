#!/usr/bin/env bash
# Regenerate bench/results.json, bench/results.png and the results table of bench/README.md.
# Run from the repository root on a quiet machine: bash bench/run.sh
# (prefix KERAS_BACKEND=jax to time the JAX backend; the JSON files say which backend ran).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# 1 intra-op thread: fastest for the sequential (cached, naive) loops at batch 1.  The student
# runs with it too, so that its row and the cached rows use the same CPU budget.
# native, native-bf16, native-int8: the same cached loops run in C (seqgen/native), with float32,
# bfloat16 and int8 weights; the cached rows of the same run are the compiled Keras loops beside them
seqgen bench --presets vocoder-small,vocoder-large,student-paper \
    --methods cached,naive,parallel,native,native-bf16,native-int8 --batches 1,8 --threads 1 \
    --json "$tmp/audio.json"
seqgen bench --presets transformer-byte,bytenet-byte --methods cached,native,native-bf16,native-int8 \
    --batches 1,8 --threads 1 --json "$tmp/text_cached.json"
# text naive: the FULL recompute of all 1024 tokens, once (a few minutes), batch 1
seqgen bench --presets transformer-byte,bytenet-byte --methods naive --naive-steps 1024 --repeats 1 \
    --batches 1 --threads 1 --json "$tmp/text_naive.json"
# all cores: the student's convolutions over the whole signal are parallel work
seqgen bench --presets student-paper --methods parallel --batches 1,8 --threads 0 --json "$tmp/threads_all.json"
# all cores for batched cached sampling (seqgen sample with several inputs, the quality report): each
# step's matrix products are [batch, channels] x [channels, channels], work the cores can share
seqgen bench --presets vocoder-small,vocoder-large --methods cached --batches 8,32 --threads 0 \
    --json "$tmp/cached_all.json"
seqgen bench --merge "$tmp/audio.json" "$tmp/text_cached.json" "$tmp/text_naive.json" "$tmp/threads_all.json" \
    "$tmp/cached_all.json" \
    --json bench/results.json --plot bench/results.png > "$tmp/table.md"
python bench/readme_table.py results-table "$tmp/table.md"
echo "wrote bench/results.json, bench/results.png and the table in bench/README.md"
