#!/usr/bin/env bash
# The paper's comparison in one command (§7: Fig. 6, Table 2): trains every method, each with
# its flagfile, then scores them with evaluate.py on the same stored queries, printing the top-20
# table, NDCG@20 and Table 2 beside the paper's numbers and writing the top-k plots.
#
#   scripts/reproduce_table2.sh synthetic runs/table2
#       flags/demo*.flags on the built-in synthetic data (2 CPU cores: docs/results.md)
#   scripts/reproduce_table2.sh /data/Shopping100k runs/table2 --alexnet_weights=/data/bvlc_alexnet.npy
#       the paper's flagfiles (flags/shopping100k.flags and flags/<method>.flags), for a GPU
#
# --seeds=N (default 1) trains every method N times, with --seed=0..N-1 (workdirs <method> and
# <method>_seed<k>); the tables then show mean +- sd across seeds beside the interval over
# queries. Other arguments after OUT_DIR go to every train.py. Rerunning resumes: finished
# methods are skipped by train.py itself (their checkpoints are complete), an interrupted one
# continues. Scored three ways on the same runs: the paper's Eq. 4 and hit rule
# (results_paper.json), the squared distance (results_paper_squared.json) and the hit rule that
# keeps the general attributes too (results_paper_all.json). Then FLAM and its baselines on the
# Proposed and Classic runs' features (scripts/reproduce_flam.sh).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DATA_DIR|synthetic OUT_DIR [--seeds=N] [train.py flags...]" >&2
  exit 2
fi
DATA_DIR=$1
OUT_DIR=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
SEEDS=1
train_flags=()
for arg in "$@"; do
  case $arg in
    --seeds=*) SEEDS=${arg#--seeds=} ;;
    *) train_flags+=("$arg") ;;
  esac
done
if ! [[ $SEEDS =~ ^[1-9][0-9]*$ ]]; then
  echo "--seeds=$SEEDS: give a positive number of seeds" >&2
  exit 2
fi
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."  # flagfiles name each other relative to the repository root
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

if [ "$DATA_DIR" = synthetic ]; then
  prefix=demo_ proposed=flags/demo.flags data=()
else
  prefix= proposed=flags/shopping100k.flags data=(--data_dir="$DATA_DIR")
fi
# Every image method of the registry (tf_partfash/methods.py), in Table 2's column order; those
# trained on their features (FLAM, paper 003) follow, by scripts/reproduce_flam.sh.
read -r -a methods <<< "$("$PYTHON" -c 'from tf_partfash.methods import METHODS
print(*(m.name for m in METHODS.values() if not m.on_features))')"
PROPOSED=$("$PYTHON" -c 'from tf_partfash.methods import PROPOSED; print(PROPOSED)')
workdirs=()
total_start=$(date +%s)
for method in "${methods[@]}"; do
  flagfile=flags/${prefix}${method}.flags
  [ "$method" = "$PROPOSED" ] && flagfile=$proposed
  for (( seed = 0; seed < SEEDS; seed++ )); do
    name=$method
    [ "$seed" -gt 0 ] && name=${method}_seed$seed
    log=$OUT_DIR/$name.train.log
    start=$(date +%s)
    echo "== $name: $PYTHON train.py --flagfile=$flagfile ${data[*]} --seed=$seed --workdir=$OUT_DIR/$name ${train_flags[*]} (log: $log)"
    "$PYTHON" train.py --flagfile="$flagfile" "${data[@]}" --seed="$seed" \
        --workdir="$OUT_DIR/$name" "${train_flags[@]}" > "$log" 2>&1 || { tail -20 "$log"; exit 1; }
    grep -h "mean of the special" "$log" | tail -1
    echo "   trained in $(( $(date +%s) - start )) s"
    workdirs+=("$OUT_DIR/$name")
  done
done

list=$(IFS=,; echo "${workdirs[*]}")
start=$(date +%s)
"$PYTHON" evaluate.py --workdirs="$list" --output_json="$OUT_DIR/results_paper.json" \
    2> "$OUT_DIR/evaluate.log" | tee "$OUT_DIR/table2.txt"
echo "evaluated in $(( $(date +%s) - start )) s"
for variant in "squared --distance=squared" "all --hit_attributes=all"; do
  read -r suffix flag <<< "$variant"
  start=$(date +%s)
  "$PYTHON" evaluate.py --workdirs="$list" "$flag" --output_json="$OUT_DIR/results_paper_$suffix.json" \
      2>> "$OUT_DIR/evaluate.log" > "$OUT_DIR/table2_$suffix.txt"
  echo "evaluated with $flag in $(( $(date +%s) - start )) s: $OUT_DIR/table2_$suffix.txt"
done
scripts/reproduce_flam.sh "$DATA_DIR" "$OUT_DIR"
echo "all in $(( $(date +%s) - total_start )) s"
