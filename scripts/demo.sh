#!/usr/bin/env bash
# The README's main job, end to end on one machine (about 14 minutes on 2 CPU cores, venv included):
#   1. search spaces/quick.yaml (Ray Tune + Optuna TPE + ASHA),
#   2. review it (leaderboard, importance, Lucic et al. study, plots; the winner against the space's
#      base point) and export the winner; with CONFIRM_SEEDS=3, first re-train its best trial other
#      than the base point, and the base point, on 3 further seeds to tell whether the search beat
#      the recipe it started from over seeds, not one run's luck (about 10 minutes more for the
#      quick space on 2 cores; the winner is then the best mean over those seeds),
#   3. retrain the winner locally for longer than the search could afford per trial,
#   4. draw pictures from it (a sample grid, morph, arithmetic, quiz, latent walk),
# and finally say where every output is. `make demo` runs it with the venv first on PATH.
#
# Environment: OUT (default out/demo), SPACE (default spaces/quick.yaml), DATASET (the space's data,
# for the classifier step: default mnist), RETRAIN_IMAGES (default 384000: the winner's training
# budget, continued from its trial's checkpoint), CONFIRM_SEEDS (default 0: none; further seeds for
# the winner and the base point), DEMO_FRESH=1 to start over instead of continuing an earlier
# demo, GANSEARCH_DATA for the dataset root (default: the MNIST embedded in the package),
# GANSEARCH_CACHE for the metrics' classifier cache, OMP_NUM_THREADS for the retrain (default: the
# machine's cores, at most 4).
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-out/demo}
SPACE=${SPACE:-spaces/quick.yaml}
DATASET=${DATASET:-mnist}
RETRAIN_IMAGES=${RETRAIN_IMAGES:-384000}
NAME=$(basename "$SPACE" .yaml)
EXP="$OUT/runs/$NAME"
START=$(date +%s)

if ! command -v gansearch >/dev/null; then
    echo "demo: the gansearch command is not on PATH; run \`make demo\` (it installs the venv first)" >&2
    exit 2
fi
if [[ "${DEMO_FRESH:-0}" == 1 ]]; then
    rm -rf "$OUT"
fi
mkdir -p "$OUT"

step() {
    local now=$(( $(date +%s) - START ))
    printf '\n== [%02d:%02d] %s\n' $((now / 60)) $((now % 60)) "$*"
}

step "1/5 the reference classifier the metrics use (trained once, then cached)"
gansearch classifier train --dataset "$DATASET" --quiet

step "2/5 search $SPACE (two trials at a time; ASHA stops the weak ones early)"
if [[ -f "$EXP/space.yaml" ]] && ! cmp -s "$EXP/space.yaml" "$SPACE"; then
    echo "demo: $EXP holds a search of another version of $SPACE (an earlier demo's); DEMO_FRESH=1 starts over" >&2
    exit 2
fi
if [[ -f "$EXP/gansearch.json" ]]; then
    echo "continuing the search already in $EXP (DEMO_FRESH=1 starts over)"
    gansearch resume "$EXP"
else
    gansearch search --space "$SPACE" --name "$NAME" --storage "$OUT/runs" --quiet
fi

CONFIRM_SEEDS=${CONFIRM_SEEDS:-0}
confirm=()
if [[ "$CONFIRM_SEEDS" != 0 ]]; then
    confirm=(--confirm 1 --seeds "$CONFIRM_SEEDS" --jobs 2)
fi
step "3/5 review: leaderboard, importance, plots, the winner against the base point${confirm:+ (and both on $CONFIRM_SEEDS further seeds)}; export"
gansearch review "$EXP" --plots "$OUT/plots" --export "$OUT/best.yaml" ${confirm[@]+"${confirm[@]}"} | tee "$OUT/review.txt"

# The machine's cores (up to 4) for the retrain: the search's trials ran one thread each, two at a
# time; one conv GAN on two threads trains ~1.3x faster than on one. On a machine busy with
# anything else, threads spinning against each other can be many times slower: OMP_NUM_THREADS=1.
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$((cores < 4 ? cores : 4))}

# --continue: from the winner's checkpoint in the search (bit for bit what training the same seeded
# config from scratch would give, without training its first images again).
step "4/5 train the winner on locally to $RETRAIN_IMAGES images (the search gave each trial at most its space's budget)"
gansearch retrain "$OUT/best.yaml" --out "$OUT/best" --images "$RETRAIN_IMAGES" --continue --quiet | tee "$OUT/retrain.json"
echo "scoring the retrained generator on 10,000 samples:"
gansearch score "$OUT/best" --n 10000 | tee "$OUT/final.json"

step "5/5 pictures from the retrained generator"
mkdir -p "$OUT/explore"
for what in morph arith quiz; do
    gansearch explore "$OUT/best" "$what" --out "$OUT/explore/$what.png" --seed 0
done
gansearch explore "$OUT/best" walk --out "$OUT/explore/walk.gif" --seed 0
gansearch explore "$OUT/best" samples --out "$OUT/samples.png" --seed 0

took=$(( $(date +%s) - START ))
cat <<EOF

== done in $((took / 60)) min $((took % 60)) s. Everything is under $OUT/:
  search         $EXP/
                   summary.json, best_config.yaml, optuna.db (optuna-dashboard sqlite:///$EXP/optuna.db),
                   trial_<id>/ (result.json, checkpoints, run/samples)
  review         $OUT/review.txt (leaderboard, importance, Lucic et al. table)
  plots          $OUT/plots/ (scores, best_vs_time, slice_*, learning_curves, top_samples, lucic)
  winner config  $OUT/best.yaml
  retrained run  $OUT/best/ (checkpoint.pt, metrics.jsonl, curves.png, learning.gif, samples/)
  final metrics  $OUT/final.json (10,000 samples; retrain.json: the retrain's own report)
  sample grid    $OUT/samples.png
  pictures       $OUT/explore/ (morph.png, arith.png, quiz.png + quiz-answers.png, walk.gif)

Next: gansearch explore $OUT/best morph --out morph.png --seed 1
      gansearch retrain $OUT/best.yaml --out runs/longer --images 2000000
EOF
# Whether the search earned its compute: the winner against the space's starting recipe (over the
# further seeds when CONFIRM_SEEDS > 0).
grep -m1 '^against the base point' "$OUT/review.txt" || true
