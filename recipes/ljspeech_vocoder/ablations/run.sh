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
line=$(awk -F'\t' -v n="$name" '$1 == n {print $2}' "$here/levers.tsv")
[ -n "$line" ] || { echo "run.sh: no lever '$name' in $here/levers.tsv" >&2; exit 2; }
sets=(--set train.valid_every=100000000 --set train.audio_seconds=0)
if [ "$line" != "-" ]; then
  # split on spaces that start a new KEY=VALUE (values such as {type: x, n: 1} keep theirs)
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
  if [ "${QUALITY:-1}" != 0 ]; then
    "${pin[@]}" seqgen evaluate --run "$out" --quality --utterances "$recipe/yardstick.tsv" \
      --json "$out/quality.json" --plot "$out/quality.png"
  fi
  echo "# $(date -u +%FT%TZ) done"
} > "$root/$name.log" 2>&1
