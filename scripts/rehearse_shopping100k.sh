#!/usr/bin/env bash
# A full-size Shopping100k rehearsal: a synthetic dataset of Shopping100k's 101,021 images in its
# real layout and at its real image size (762 x 1100), through the chain a user with the real data
# runs: the 12 attribute files validated, the paper split (19,000 gallery / 2,000 query images),
# part extraction with workers, a short training of flags/shopping100k.flags (--steps batches in
# all, half per stage), the test index of the 21,000 gallery and query images, evaluation on the
# paper protocol (with the prototypes over the training images), and a search, exact and compact.
#
#   scripts/rehearse_shopping100k.sh OUT_DIR [--images=101021] [--steps=200] [--workers=2]
#
# Each stage's wall time and peak memory (of its largest process) are appended to
# OUT_DIR/stages.tsv, with the time this invocation started, and its output kept in
# OUT_DIR/<stage>.log. Rerunning resumes: generation,
# part extraction, training, indexing and the prototypes all continue where they stopped, and a
# finished stage costs only its check.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 OUT_DIR [--images=N] [--steps=N] [--workers=N]" >&2
  exit 2
fi
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
shift
IMAGES=101021
STEPS=200
WORKERS=2
for arg in "$@"; do
  case $arg in
    --images=*) IMAGES=${arg#--images=} ;;
    --steps=*) STEPS=${arg#--steps=} ;;
    --workers=*) WORKERS=${arg#--workers=} ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done
if ! [ -x /usr/bin/time ]; then
  echo "$0 measures each stage with /usr/bin/time (Debian: apt-get install time)" >&2
  exit 2
fi
PYTHON=${PYTHON:-python}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
cd "$(dirname "$0")/.."  # flagfiles name each other relative to the repository root
DATA=$OUT/data
RUN=$OUT/run

STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
stage() {  # stage NAME COMMAND...: runs it, appends "started name seconds peak_GB" to stages.tsv
  local name=$1
  shift
  echo "== $name: $*"
  /usr/bin/time -f '%e %M' -o "$OUT/$name.time" "$@" > "$OUT/$name.log" 2>&1 || {
    echo "stage $name failed; the end of $OUT/$name.log:" >&2
    tail -20 "$OUT/$name.log" >&2
    exit 1
  }
  read -r seconds kilobytes < "$OUT/$name.time"
  printf '%s\t%s\t%s\t%s\n' "$STARTED" "$name" "$seconds" \
    "$("$PYTHON" -c "print(f'{$kilobytes / 2**20:.2f}')")" | tee -a "$OUT/stages.tsv"
}

[ -f "$OUT/stages.tsv" ] || printf 'started\tstage\tseconds\tpeak_GB\n' > "$OUT/stages.tsv"
stage generate "$PYTHON" -m tf_partfash.synthetic.dataset --out="$DATA" --num_images="$IMAGES" \
  --width=762 --height=1100 --workers="$WORKERS"
stage validate "$PYTHON" -c "
from tf_partfash.data import shopping100k, splits
table = shopping100k.read_attributes('$DATA')
split, file = splits.ensure_split('$DATA', table, 0)
print(len(table), 'images; 12 attribute files valid; split', file,
      split['subset'].value_counts().to_dict())"
stage parts "$PYTHON" -m tf_partfash.parts --data_dir="$DATA" --output="$DATA/parts_v1.csv" \
  --workers="$WORKERS"
half=$(( (STEPS + 1) / 2 ))
# No ImageNet weights here: the LRN backbone from scratch, on purpose (a rehearsal of the chain).
stage train "$PYTHON" train.py --flagfile=flags/shopping100k.flags --data_dir="$DATA" \
  --alexnet_weights=none --workdir="$RUN" --stage1_epochs=1 --stage2_epochs=1 --steps_per_epoch="$half" \
  --workers="$WORKERS"
stage evaluate "$PYTHON" evaluate.py --workdir="$RUN" --workers="$WORKERS"
query=$("$PYTHON" -c "
from tf_partfash.data import shopping100k, splits
split, _ = splits.ensure_split('$DATA', shopping100k.read_attributes('$DATA'), 0)
print(split[split.subset == 'query'].path.iloc[0])")
stage search_exact "$PYTHON" search.py --workdir="$RUN" --query="$query" --set=color=navy \
  --output_json="$OUT/search_exact.json"
stage search_compact "$PYTHON" search.py --workdir="$RUN" --query="$query" --set=color=navy \
  --backend=compact --output_json="$OUT/search_compact.json"
echo "stages (seconds, peak GB): $OUT/stages.tsv"
column -t "$OUT/stages.tsv"
