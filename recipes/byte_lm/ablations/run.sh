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
line=$(awk -F'\t' -v n="$name" '$1 == n {print $2}' "$here/levers.tsv")
[ -n "$line" ] || { echo "run.sh: no lever '$name' in $here/levers.tsv" >&2; exit 2; }
sets=(--set train.valid_every=100000000)
if [ "$line" != "-" ]; then
  while IFS= read -r kv; do [ -n "$kv" ] && sets+=(--set "$kv"); done < <(
    python3 -c 'import re,sys; [print(p.strip()) for p in re.split(r" (?=[a-z_]+\.[a-z_.]+=)", sys.argv[1])]' "$line")
fi
out=$root/$name
mkdir -p "$root"
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 SEQGEN_PROGRESS=0
pin=(taskset -c "$core")
{
  echo "# $(date -u +%FT%TZ) lever $name on core $core: ${sets[*]}"
  lscpu | grep -m1 'Model name' || true
  "${pin[@]}" seqgen train "$here/base.yaml" --data "$data" --out "$out" --max-minutes "$minutes" "${sets[@]}" \
    || [ -f "$out/run.json" ]
  "${pin[@]}" seqgen evaluate --run "$out" --window 128 --context 96 --json "$out/eval.json"
  echo "# $(date -u +%FT%TZ) done"
} > "$root/$name.log" 2>&1
