#!/usr/bin/env bash
# The paper's three experiments (docs/experiments.md, "How to rerun"): trains the networks each
# needs, then runs the discrepancy analysis and the ablation / structure-variant table on the
# reserved evaluation set.
#
#   SCALE=small scripts/experiments.sh    # the small nets, the bundled model's recipe (about a day of CPU)
#   SCALE=tiny  scripts/experiments.sh    # the same pipeline on tiny nets in minutes: checks the tooling only
#
# Every structure kind and the IR-SDE texture network get the same recipe, data and iterations.
# A finished run folder is not trained again (delete it to retrain); an interrupted one is resumed.
# Environment: DATA (training photos), VAL (diagnostics photos), EVAL (the reserved evaluation
# set, never trained on), OUT (where runs and reports go), REPORTS (where the experiments write
# their reports: default OUT; another folder keeps an earlier run's), KINDS (structure kinds to
# train and compare), IRSDE=0 (do not train the IR-SDE texture network), ONLY_TRAIN=1 (train, run
# nothing), FILL (what the texture mean holds in the hole: telea, the bundled recipe, or zero, the
# official one), EVAL_COUNT / ANALYZE_COUNT (eval / analysis pairs per hole bucket; small scale:
# 10 / 2), NETS (which of a kind's networks to train: default "structure texture discriminator";
# the three are independent).
# Two cores: two copies with disjoint KINDS (one with IRSDE=0) or disjoint NETS, and ONLY_TRAIN=1,
# then one plain run.
# The whole script is one brace group: bash parses it completely before running it, so editing this
# file while a copy runs (hours of training) does not change what that copy does.
{
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE=${SCALE:-small}
FILL=${FILL:-telea}   # the texture mean's hole fill (telea: the bundled recipe; zero: the official one)
DATA=${DATA:-/work/data/train}
VAL=${VAL:-/work/data/val}
EVAL=${EVAL:-/work/data/eval}
OUT=${OUT:-runs/experiments-$SCALE}
REPORTS=${REPORTS:-$OUT}
KINDS=${KINDS:-gray2edge gray2gray edge2edge edge2gray}
SD="node bin/strdiffusion.js"

case "$SCALE" in
  small)
    # models/default/model.json's recipe: small config, 64-px crops, batch 8, T 50, x0 prediction, Telea fill
    COMMON=(--config small --size 64 --batch 8 --T 50 --threads 1 -q --save-every 250 --diag-data "$VAL" --diag-every 500)
    UNET=(--prediction x0 --lr 5e-4 --milestones 8000,14000 --ema 0.999)
    ITER_UNET=${ITER_UNET:-8000}
    ITER_D=${ITER_D:-5000}
    # the bundled model's sampling: 128-px window, MR first-order ODE solver, 10 steps
    RUN=(--size 128 --solver mr-ode-1 --steps 10)
    ANALYZE=(--count "${ANALYZE_COUNT:-2}")
    EVALN=(--count "${EVAL_COUNT:-10}")
    ;;
  tiny)
    COMMON=(--config tiny --size 32 --batch 2 --T 10 --threads 1 -q --save-every 10 --diag-every 0)
    UNET=(--prediction x0 --lr 5e-4)
    ITER_UNET=${ITER_UNET:-20}
    ITER_D=${ITER_D:-20}
    RUN=(--size 32 --solver mr-ode-1 --steps 5)
    ANALYZE=(--count 1 --mask-ratios 0.2-0.4)
    EVALN=(--count 1 --mask-ratios 0.1-0.3,0.3-0.5)
    ;;
  *) echo "SCALE must be small or tiny (got $SCALE)" >&2; exit 1 ;;
esac

# train NET KIND SEED ITERATIONS [extra flags]: one network into $OUT/KIND/NET, resuming an
# interrupted run up to ITERATIONS (a finished one is left as it is)
train() {
  local net=$1 kind=$2 seed=$3 iters=$4
  shift 4
  local dir="$OUT/$kind/$net" done=0 resume=()
  if [[ -f "$dir/latest" ]]; then
    done=$(sed 's/^ckpt-0*//' "$dir/latest")
    done=${done:-0}
    resume=(--resume)
  fi
  if (( done >= iters )); then echo "have $dir ($done iterations)"; return; fi
  echo "training $net ($kind) -> $dir ($done of $iters iterations done)"
  $SD train "$net" --data "$DATA" "${COMMON[@]}" --structure-kind "$kind" --seed "$seed" --iterations "$((iters - done))" --out "$dir" "${resume[@]}" "$@"
}

NETS=${NETS:-structure texture discriminator}
wants() { [[ " $NETS " == *" $1 "* ]]; }
for kind in $KINDS; do
  if wants structure; then train structure "$kind" 13 "$ITER_UNET" "${UNET[@]}"; fi
  if wants texture; then train texture "$kind" 14 "$ITER_UNET" "${UNET[@]}" --fill "$FILL"; fi
  if wants discriminator; then train discriminator "$kind" 5 "$ITER_D" --lr 2e-4 --fill "$FILL"; fi
done
# the IR-SDE baseline: the same texture U-Net without SPADE, same recipe
[[ "${IRSDE:-1}" != 0 ]] && train texture none 14 "$ITER_UNET" "${UNET[@]}" --fill "$FILL"
[[ "${ONLY_TRAIN:-0}" == 1 ]] && { echo "trained (ONLY_TRAIN=1: no experiment run)"; exit 0; }

model() { echo "$OUT/$1/structure,$OUT/$1/texture,$OUT/$1/discriminator"; }
VARIANTS=()
for kind in $KINDS; do [[ "$kind" != gray2edge ]] && VARIANTS+=("$(model "$kind")"); done

# 1. the semantic-discrepancy analysis: IR-SDE against StrDiffusion (and its kinds)
# (and StrDiffusion guided by the ground truth's own structure: what a perfect structure network gives)
# (and StrDiffusion without the official sampler's quirks, not in the paper)
METHODS=("irsde=$OUT/none/texture" "strdiffusion=$(model gray2edge)@official" "oracle=$(model gray2edge)@official,oracle" "improved=$(model gray2edge)@improved")
for kind in $KINDS; do [[ "$kind" != gray2edge ]] && METHODS+=("$kind=$(model "$kind")@official"); done
# the two tools run side by side, one core each
export STRDIFFUSION_THREADS=${STRDIFFUSION_THREADS:-1}
$SD analyze --images "$EVAL" "${RUN[@]}" "${ANALYZE[@]}" --method "${METHODS[@]}" --out "$REPORTS/analysis" -q &
analysis=$!

# 2 + 3. the sampler ablation (A-D, IR-SDE) and the structure kinds, one table
$SD eval --ablation --images "$EVAL" "${RUN[@]}" "${EVALN[@]}" --checkpoints "$(model gray2edge)" --irsde "$OUT/none/texture" \
  ${VARIANTS[@]+--variants "${VARIANTS[@]}"} --out "$REPORTS/ablation" -q
wait "$analysis"

# how much each kind's texture network would gain from a perfect structure network: D's sampler
# with the oracle guide (the analytic structure posterior towards the ground truth's own structure)
for kind in $KINDS; do
  $SD eval --images "$EVAL" "${RUN[@]}" "${EVALN[@]}" --checkpoints "$(model "$kind")" --sampler official --structure oracle \
    --baselines none --out "$REPORTS/oracle/$kind" -q
done

echo "done: $REPORTS/analysis (analysis.json, discrepancy.png, strip.png), $REPORTS/ablation (report.md) and $REPORTS/oracle/KIND (report.md)"
exit
}
