#!/usr/bin/env bash
# One ablation of the translation table: base.yaml plus one lever's overrides (levers.tsv), trained for
# MINUTES pinned to one core with one intra-op thread, then its held-out teacher-forced NLL (the final
# validation) and greedy chrF / BLEU on every source of the dev (valid) split, all references.
#
#   bash recipes/bytenet_translation/ablations/run.sh NAME CORE DATA OUTROOT [MINUTES]
#
# DATA: pairs prepared with a test split, e.g.
#   seqgen prepare pairs --input ../shared/data/tatoeba_en_de/en_de.tsv --out DATA --test-fraction 0.03
# The test split is never looked at here: only the final preset is scored on it.
# Two runs go side by side, one per core (CORE 0 and 1), on one host for the whole table.
set -euo pipefail
name=$1; core=$2; data=$3; root=$4; minutes=${5:-20}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../ablation_lever.sh"
ablation_lever "$here" "$name"
LEVER_SETS+=(--set data.max_valid_windows=0)
out=$root/$name
mkdir -p "$root"
ablation_pin "$core"
{
  ablation_header "$name" "$core"
  "${PIN[@]}" seqgen train "$here/base.yaml" --data "$data" --out "$out" --max-minutes "$minutes" "${LEVER_SETS[@]}" \
    || [ -f "$out/run.json" ]
  "${PIN[@]}" seqgen evaluate --run "$out" --split valid --json "$out/dev.json"
  echo "# $(date -u +%FT%TZ) done"
} > "$root/$name.log" 2>&1
