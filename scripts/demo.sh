#!/usr/bin/env bash
# Set up (if needed) and run the main job end to end on the MuJoCo twin: record scripted
# demonstrations, train the diffusion-forcing policy, deploy it on seeded episodes and print
# the success rate. Every step is a command a user would type. Sizes can be changed:
#   EPISODES=100 STEPS=6000 EVAL_EPISODES=50 bash scripts/demo.sh
# 200 demos by default: with 100, fruit set down off their marks scored 83% against 92% (6,000 steps)
# (BENCHMARKS.md); 100 records and encodes in half the time. STEPS unset: the config's
# train.steps (10,000); STEPS=6000 saves 4-5 minutes where bf16 is native, about 12 in fp32 (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
PATH="$PWD/.venv/bin:$PATH"
EPISODES=${EPISODES:-200}
STEPS=${STEPS:-}
EVAL_EPISODES=${EVAL_EPISODES:-20}
STORE=datasets/fruit_swap_demo_${EPISODES}.zarr
RUN=runs/demo/$(date +%Y%m%d-%H%M%S)

step() { echo; echo "== $1"; shift; echo "\$ $*"; "$@"; }

if [ -e "$STORE" ]; then
  echo "== 1/4 $STORE exists: reusing its demonstrations"
else
  step "1/4 record $EPISODES scripted demonstrations on the twin (one worker per core)" \
    df-teleop record --robot sim --device scripted --task fruit_swap --episodes "$EPISODES" --out "$STORE"
fi
step "2/4 what was recorded" df-robot data info "$STORE"
step "3/4 train (stage 1: image autoencoders; stage 2: diffusion forcing${STEPS:+, $STEPS steps})" \
  df-robot train task=fruit_swap policy=df "data.path=$STORE" "run_dir=$RUN" ${STEPS:+"train.steps=$STEPS"}
step "4/4 deploy on $EVAL_EPISODES seeded twin episodes and score them" \
  df-robot eval task=fruit_swap "checkpoint=$RUN/checkpoints/latest.pt" "episodes=$EVAL_EPISODES" "out=$RUN/eval"
echo; echo "videos, per-episode results and the plot: $RUN/eval"
echo "the main job took $((SECONDS / 60)) min $((SECONDS % 60)) s (setup included)"
