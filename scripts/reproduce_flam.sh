#!/usr/bin/env bash
# FLAM (paper 003) beside the paper's methods, on the runs of scripts/reproduce_table2.sh (which
# calls it last): FLAM and its Table 3 rows, and its two baselines, each trained on the frozen
# features of the Proposed run (OUT_DIR/partnet), FLAM also on Classic's (OUT_DIR/classic); then
# both protocols.
#
#   scripts/reproduce_flam.sh synthetic runs/table2           flags/demo_{flam,cls_concat,emb_concat}.flags
#   scripts/reproduce_flam.sh /data/Shopping100k runs/table2  flags/{flam,cls_concat,emb_concat}.flags
#
# Trains in OUT_DIR (rerunning resumes; finished runs are skipped by train.py itself):
#   flam             M/OS/Adv, FLAM's full model (Table 3's last row), on partnet's features
#   flam_m_adv       M/-/Adv (no online sampling)
#   flam_m           M/-/-   (no online sampling, no adversarial loss)
#   flam_s_adv       S/-/Adv (feature matching on the target attribute only, no online sampling)
#   flam_classic     M/OS/Adv on classic's features (fc7)
#   cls_concat, emb_concat  FLAM's baselines (§4.2), on partnet's features
# Scores: FLAM's protocol (T@k on shape, color, pattern: results_flam.json, flam.txt) for all of
# them beside amnet and the two bases, and the paper's (results_paper_flam.json, paper_flam.txt).
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 DATA_DIR|synthetic OUT_DIR" >&2
  exit 2
fi
OUT_DIR=$(cd "$2" && pwd)
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
prefix=
[ "$1" = synthetic ] && prefix=demo_
for base in partnet classic; do
  [ -f "$OUT_DIR/$base/model.weights.h5" ] || { echo "$OUT_DIR/$base is not a finished run" >&2; exit 1; }
done

train() {  # name flagfile base [flags...]
  local name=$1 flagfile=$2 base=$3
  shift 3
  local log=$OUT_DIR/$name.train.log start
  start=$(date +%s)
  echo "== $name: $PYTHON train.py --flagfile=$flagfile --features_from=$OUT_DIR/$base $* --workdir=$OUT_DIR/$name (log: $log)"
  "$PYTHON" train.py --flagfile="$flagfile" --features_from="$OUT_DIR/$base" "$@" \
      --workdir="$OUT_DIR/$name" > "$log" 2>&1 || { tail -20 "$log"; exit 1; }
  echo "   trained in $(( $(date +%s) - start )) s"
}

flam=flags/${prefix}flam.flags
train flam "$flam" partnet
train flam_m_adv "$flam" partnet --noflam_online_sampling
train flam_m "$flam" partnet --noflam_online_sampling --noflam_adversarial
train flam_s_adv "$flam" partnet --noflam_remaining --noflam_online_sampling
train flam_classic "$flam" classic
train cls_concat "flags/${prefix}cls_concat.flags" partnet
train emb_concat "flags/${prefix}emb_concat.flags" partnet

runs() { local IFS=,; echo "$*"; }
feature_runs=(flam flam_m_adv flam_m flam_s_adv flam_classic cls_concat emb_concat)
flam_list=$(runs "$OUT_DIR"/{partnet,classic} "$OUT_DIR"/amnet "${feature_runs[@]/#/$OUT_DIR/}")
[ -f "$OUT_DIR/amnet/model.weights.h5" ] || flam_list=${flam_list/$OUT_DIR\/amnet,/}
start=$(date +%s)
"$PYTHON" evaluate.py --workdirs="$flam_list" --protocol=flam \
    --output_json="$OUT_DIR/results_flam.json" 2> "$OUT_DIR/evaluate_flam.log" | tee "$OUT_DIR/flam.txt"
echo "FLAM protocol in $(( $(date +%s) - start )) s"
start=$(date +%s)
"$PYTHON" evaluate.py --workdirs="$(runs "$OUT_DIR"/{partnet,flam,flam_classic,classic,cls_concat,emb_concat})" \
    --output_json="$OUT_DIR/results_paper_flam.json" 2>> "$OUT_DIR/evaluate_flam.log" \
    > "$OUT_DIR/paper_flam.txt"
echo "paper protocol in $(( $(date +%s) - start )) s: $OUT_DIR/paper_flam.txt"
