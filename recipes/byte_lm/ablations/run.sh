#!/usr/bin/env bash
# One ablation of the byte-LM table: base.yaml plus one lever's overrides (levers.tsv), trained for MINUTES
# pinned to one core with one intra-op thread, then scored on every byte of the valid split (the last 10%)
# with the evaluator the peers share: windows of 128 bytes, each byte scored once with at least 96 bytes of
# context (seqgen evaluate --context 96; bench/peers/nanogpt_eval.py scores nanoGPT on the same windows).
#
#   bash recipes/byte_lm/ablations/run.sh NAME CORE DATA OUTROOT [MINUTES]
#
# DATA: seqgen prepare text --input ../shared/data/tinyshakespeare/input.txt --out DATA
# Two runs go side by side, one per core (CORE 0 and 1), on one host for the whole table.
set -euo pipefail
name=$1; core=$2; data=$3; root=$4; minutes=${5:-20}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../ablation_lever.sh"
ablation_lever "$here" "$name"
out=$root/$name
mkdir -p "$root"
ablation_pin "$core"
{
  ablation_header "$name" "$core"
  "${PIN[@]}" seqgen train "$here/base.yaml" --data "$data" --out "$out" --max-minutes "$minutes" "${LEVER_SETS[@]}" \
    || [ -f "$out/run.json" ]
  "${PIN[@]}" seqgen evaluate --run "$out" --window 128 --context 96 --json "$out/eval.json"
  echo "# $(date -u +%FT%TZ) done"
} > "$root/$name.log" 2>&1
