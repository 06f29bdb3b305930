# Sourced by each recipe's ablations/run.sh: the parts every ablation driver shares.
#
#   ablation_lever HERE NAME    sets LEVER_SETS (an array of --set KEY=VALUE for seqgen train) from the
#                               lever's line of HERE/levers.tsv, after the mid-run validation switch-off
#                               that every table uses (so the whole budget trains)
#   ablation_pin CORE           one core, one intra-op thread, no progress bars
#   ablation_header NAME CORE   the log's first lines: time, lever, its overrides and the host's CPU
#
# A levers.tsv line is NAME<TAB>OVERRIDES, with "-" for none; overrides are space-separated KEY=VALUE, as
# seqgen train --set takes them, and a value may itself hold spaces ({type: x, n: 1}): a new pair starts
# only where a dotted key (lowercase, digits, underscores) and "=" follow the space.

ablation_lever() {
  local here=$1 name=$2 line kv
  line=$(awk -F'\t' -v n="$name" '$1 == n {print $2}' "$here/levers.tsv")
  [ -n "$line" ] || { echo "run.sh: no lever '$name' in $here/levers.tsv" >&2; return 2; }
  LEVER_SETS=(--set train.valid_every=100000000)
  if [ "$line" != "-" ]; then
    while IFS= read -r kv; do [ -n "$kv" ] && LEVER_SETS+=(--set "$kv"); done < <(
      python3 -c 'import re,sys; [print(p.strip()) for p in re.split(r" (?=[a-z_]+\.[a-z0-9_.]+=)", sys.argv[1])]' "$line")
  fi
}

ablation_pin() {
  export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 SEQGEN_PROGRESS=0
  PIN=(taskset -c "$1")
}

ablation_header() {
  echo "# $(date -u +%FT%TZ) lever $1 on core $2: ${LEVER_SETS[*]}"
  lscpu | grep -m1 'Model name' || true
}
