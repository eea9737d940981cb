#!/usr/bin/env bash
# bench/study_3d.sh: the point-cloud part of the README "Evidence" study (issue #20): the
# Point Transformer on the real mOSD Kinect scenes of ../shared/data/mosd with
# configs/mosd/semseg-pt-ewa.yaml (35 training / 10 validation frames, 15 epochs), every run
# evaluated on every labelled point of the 10 whole validation frames (bounded fragment voting,
# eval.fragments 4). `ewa sweep --metric val.miou`.
#
# Cells (same recipe, same deployed network):
#   vanilla, ewa (RUP MoE in the stage-2/3 bottlenecks, b=0.3, linear warm-up over 500 steps),
#   naive-moe (RUP, no EWA, collapsed), b0.3-constant (b=0.3 from the first step: the recipe
#   of the configs before this study), ema (dense + model EMA, decay 0.99, BatchNorm statistics
#   recomputed from 32 training batches: train.ema.bn_batches); with --more also ewa+ema,
#   stage-3-only (MoE layers in stage 3 only) and ema-avg-bn (the EMA with its averaged
#   BatchNorm statistics, train.ema.bn_batches=0: what train.ema did before the recomputation)
# The metrics.jsonl of every MoE run records expert_spread per layer (the distance of the
# experts to their mean) over training. Split over --jobs (default 3) 1-thread sweep processes
# as bench/study_2d.sh; rerunning continues a stopped study.
#
# A run is ~3 min alone on 2 threads, ~6.5 min with 1 thread beside other jobs: the 5 cells x 3
# seeds took 34 min on 2 cores (3 jobs keep both cores busy to the end); with --more (8 cells)
# 66 min while bench/study_2d.sh --small shared the cores.
#
# Usage: bench/study_3d.sh [--out DIR] [--seeds N] [--jobs J] [--more] [--ewa BIN] [--shared DIR] [--dry-run]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
script=study_3d.sh
source "$here/bench/results_common.sh"
seeds=3
jobs=3
more=0
dry=()
while [ $# -gt 0 ]; do
  results_common_option "$@"
  [ "$consumed" = 0 ] && study_option "$@"
  if [ "$consumed" = 0 ]; then
    case $1 in
      --more) more=1; consumed=1 ;;
      *) echo "$script: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
  fi
  shift "$consumed"
done
results_find_ewa
[ -n "$out" ] || out=$here/runs/study_3d
mosd=$shared/mosd/learn
[ -d "$mosd" ] || { echo "$script: $mosd not found (see ../shared/data/README.md)" >&2; exit 1; }

ema="train.ema.enabled=true train.ema.decay=0.99"
variants=(
  "vanilla: model.pt.moe.enabled=false model.ewa.enabled=false"
  "ewa: model.ewa.enabled=true"
  "naive-moe: model.ewa.enabled=false"
  "b0.3-constant: model.ewa.schedule=constant"
  "ema: model.pt.moe.enabled=false model.ewa.enabled=false $ema"
)
if [ "$more" = 1 ]; then
  variants+=("ewa+ema: $ema" "stage-3-only: model.pt.moe.stages=[3]"
             "ema-avg-bn: model.pt.moe.enabled=false model.ewa.enabled=false $ema train.ema.bn_batches=0")
fi
study_args=("$here/configs/mosd/semseg-pt-ewa.yaml" --set "data.root=$(cd "$mosd" && pwd)"
            --set run.threads=1 --metric val.miou --seeds "$seeds" --out "$out")
study_sweep
