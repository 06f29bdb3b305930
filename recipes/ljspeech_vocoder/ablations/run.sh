#!/usr/bin/env bash
# One ablation of the vocoder-quality table: base.yaml (small.yaml as the table began) plus one lever's overrides (levers.tsv), trained for
# MINUTES on the yardstick split pinned to one core with one intra-op thread, then its held-out NLL (the
# final validation) and its quality on the 24 eval utterances of yardstick.tsv.
#
#   bash recipes/ljspeech_vocoder/ablations/run.sh NAME CORE DATA OUTROOT [MINUTES]
#
# QUALITY=0 skips the quality step (runs that only measure the baseline's NLL spread over seeds).
#
# Two runs go side by side, one per core (CORE 0 and 1); every run of one table runs that way, on one host.
# Mid-run validation is off (train.valid_every past the end) so the whole budget trains; the run validates
# once when --max-minutes stops it.
set -euo pipefail
name=$1; core=$2; data=$3; root=$4; minutes=${5:-20}
here=$(cd "$(dirname "$0")" && pwd)
recipe=$(dirname "$here")
. "$here/../../ablation_lever.sh"
ablation_lever "$here" "$name"
LEVER_SETS+=(--set train.audio_seconds=0)
out=$root/$name
mkdir -p "$root"
ablation_pin "$core"
{
  ablation_header "$name" "$core"
  "${PIN[@]}" seqgen train "$here/base.yaml" --data "$data" --out "$out" --max-minutes "$minutes" "${LEVER_SETS[@]}" \
    || [ -f "$out/run.json" ]
  if [ "${QUALITY:-1}" != 0 ]; then
    "${PIN[@]}" seqgen evaluate --run "$out" --quality --utterances "$recipe/yardstick.tsv" \
      --json "$out/quality.json" --plot "$out/quality.png"
  fi
  echo "# $(date -u +%FT%TZ) done"
} > "$root/$name.log" 2>&1
