#!/usr/bin/env bash
# The README's 3D results: Point Transformer vanilla vs EWA (same recipe, same deployed dense
# network) on the mOSD table-top scenes of ../shared/data (45 real Kinect scenes; classes table /
# object, invalid points ignored; the train/val split is in configs/mosd/*.yaml): val mIoU /
# mAcc / OA over every point of the whole scenes, training time, time per epoch, parameters.
#
# Usage: bench/results_3d.sh [--quick] [--out DIR] [--ewa PATH] [--shared DIR] [--threads N]
#                            [--seed S]
#   --quick    a minutes-long smoke version (1 epoch, 1 loop, 4 val scenes): proves the script
#              works; its numbers mean nothing.
#   --out      results folder (default runs/results_3d, or runs/results_3d_quick); a finished
#              variant (eval_val.json present) is kept, an interrupted one resumes.
#   --ewa      the ewa binary (default: $EWA, build/apps/ewa, build-*/apps/ewa).
# Writes OUT/results.md (the table + recipe) and prints it. Budget: < 2 h on 2 CPU cores.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
script=results_3d.sh
# shellcheck source=bench/results_common.sh
source "$here/bench/results_common.sh"
seed=0
while [ $# -gt 0 ]; do
  results_common_option "$@"
  if [ "$consumed" = 0 ]; then
    case $1 in
      --seed) [ $# -ge 2 ] || { echo "$script: --seed needs a value" >&2; exit 2; }; seed=$2; consumed=2 ;;
      *) echo "$script: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
  fi
  shift "$consumed"
done
results_find_ewa
mosd=$shared/mosd/learn
if [ ! -f "$mosd/learn0.pcd" ]; then
  echo "results_3d.sh: mOSD scenes not found in $mosd (pass --shared DIR holding mosd/learn/learn*.pcd)" >&2
  exit 2
fi
results_out_dir results_3d

sets=(--set "data.root=$mosd" --set "run.seed=$seed" --set "run.threads=$threads")
if [ $quick = 1 ]; then
  sets+=(--set train.epochs=1 --set data.loop=1 --set eval.max_scenes_during_training=2
         --set "data.val_files=[learn3.pcd,learn19.pcd,learn28.pcd,learn40.pcd]")
fi

now() { date +%s.%N; }
for variant in vanilla ewa; do
  dir=$out/$variant
  if [ -f "$dir/eval_val.json" ]; then
    echo "== $variant: done earlier ($dir/eval_val.json)"
    continue
  fi
  resume=()
  [ -f "$dir/checkpoints/last.ckpt" ] && resume=(--resume "$dir")
  echo "== $variant: ewa train configs/mosd/semseg-pt-$variant.yaml -> $dir"
  t0=$(now)
  "$ewa_bin" train "$here/configs/mosd/semseg-pt-$variant.yaml" "${sets[@]}" --run-dir "$dir" -q "${resume[@]}" \
    | tee "$dir.log"
  t1=$(now)
  echo "$t0 $t1" > "$dir/wall_seconds.txt"
done

# ---------------------------------------------------------------- the table
num() {  # num FILE KEY: first "KEY": value in a JSON file
  sed -n "s/.*\"$2\": *\([-0-9.eE+]*\).*/\1/p" "$1" | head -n 1
}
epoch_time() {  # mean seconds per epoch (training + evaluation) from metrics.jsonl epoch records
  local f=$1/metrics.jsonl
  [ -f "$f" ] || { echo "-"; return; }
  sed -n 's/.*"epoch_time_s": *\([0-9.eE+]*\).*/\1/p' "$f" |
    awk '{s+=$1; n++} END {if (n) printf "%.0f", s/n; else print "-"}'
}
pct() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.2f", 100*v }'; }
{
  echo "# mOSD table/object segmentation: Point Transformer vanilla vs EWA"
  echo
  [ $quick = 1 ] && echo "**--quick smoke run: 1 epoch, numbers mean nothing.**" && echo
  echo "| variant | val mIoU | val mAcc | val OA | train wall time | s / epoch | deployed params |"
  echo "|---|---|---|---|---|---|---|"
  for variant in vanilla ewa; do
    dir=$out/$variant
    [ -f "$dir/eval_val.json" ] || { echo "| $variant | (not finished) | | | | | |"; continue; }
    miou=$(num "$dir/eval_val.json" miou)
    macc=$(num "$dir/eval_val.json" macc)
    oa=$(num "$dir/eval_val.json" oa)
    wall=$(awk '{printf "%.0f s", $2-$1}' "$dir/wall_seconds.txt" 2>/dev/null || echo "-")
    params=$("$ewa_bin" inspect "$dir/model.safetensors" 2>/dev/null |
             sed -n 's/^dense parameters: *\([0-9]*\).*/\1/p' | head -n 1 || true)
    echo "| $variant | $(pct "$miou") | $(pct "$macc") | $(pct "$oa") | $wall | $(epoch_time "$dir") | ${params:--} |"
  done
  echo
  echo "Recipe: configs/mosd/semseg-pt-{vanilla,ewa}.yaml (identical except model.pt.moe / model.ewa;"
  echo "after training the EWA model's MoE layers are collapsed, so both deploy the same dense network)."
  mode=$(sed -n 's/.*"mode": *"\([a-z]*\)".*/\1/p' "$out/ewa/eval_val.json" 2>/dev/null | head -n 1)
  echo "Evaluation: every point of the 10 whole validation scenes (eval.mode: ${mode:-unknown}, as in the configs)."
  echo "Machine: $(nproc) cores, ewa: $("$ewa_bin" --version 2>/dev/null | head -n 1)"
} > "$out/results.md"
cat "$out/results.md"
