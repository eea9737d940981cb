#!/usr/bin/env bash
# `ewa segment` at scale (issue 19 targets): wall time and peak RSS (/usr/bin/time -v) of
# whole-scene inference with a Point Transformer Seg50 (7.77M parameters) on a synthetic
# S3DIS-size room of ~1M points and a ~10M-point scene, and of kinect-office1.pcd (254k real
# Kinect points, ../shared/data) with the mOSD model and the quickstart room model.
# The models come from 1-step trainings (their weights do not matter for time and memory).
#
# Usage: bench/segment_scale.sh [--quick] [--out DIR] [--ewa PATH] [--shared DIR] [--threads N]
#                               [--skip-10m] [-- EXTRA SEGMENT FLAGS...]
#   --quick    a ~100k-point room instead of 1M and no 10M scene (proves the script works).
#   --out      work folder (default runs/segment_scale[_quick]); scenes and models are kept
#              and reused by the next run.
#   --threads  CPU threads of every `ewa` call (default 2, the target machine's cores).
#   --skip-10m skip the 10M-point scene (its text file alone is ~450 MB).
#   after --    extra flags for every `ewa segment` (e.g. --fragments 2 --chunk-points 100000).
# Prints a Markdown table (scene, points, model, fragments, forwards, inference s, wall s,
# peak RSS) and writes it to OUT/results.md; each run's JSON summary is OUT/<name>.summary.json.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
script=segment_scale.sh
# shellcheck source=bench/results_common.sh
source "$here/bench/results_common.sh"
threads=2
skip10m=0
extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  results_common_option "$@"
  if [ "$consumed" = 0 ]; then
    case $1 in
      --skip-10m) skip10m=1; consumed=1 ;;
      *) echo "$script: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
  fi
  shift "$consumed"
done
results_find_ewa
results_out_dir segment_scale
command -v /usr/bin/time >/dev/null || { echo "$script: /usr/bin/time (GNU time) is needed for peak RSS" >&2; exit 2; }
ewa() { "$ewa_bin" --threads "$threads" "$@"; }
cd "$out"

# --- models: Seg50 (the S3DIS recipe's network), mOSD and quickstart, one training step each
if [ ! -f rooms-small/done ]; then
  rm -rf rooms-small rooms-small-cache
  ewa data synth-rooms rooms-small --rooms 2 --areas 2 --density 300 --seed 1 -j 1 >/dev/null
  ewa data prepare s3dis rooms-small rooms-small-cache -q >/dev/null
  touch rooms-small/done
fi
one_step=(--set data.loop=1 --set train.epochs=1 --set train.batch_size=1 --set train.eval_every=0 -q)
if [ ! -f seg50/model.safetensors ]; then
  ewa --log-level error train "$here/configs/s3dis/semseg-pt-vanilla.yaml" --run-dir seg50 --set data.format=synth_rooms \
    --set data.root=rooms-small-cache --set 'data.train_areas=[1]' --set data.test_area=2 \
    --set data.max_points=2000 --set eval.mode=voxel "${one_step[@]}" >/dev/null
fi
if [ ! -f quickstart/model.safetensors ]; then
  ewa --log-level error train "$here/configs/synth_rooms/quickstart-ewa.yaml" --run-dir quickstart --set data.format=synth_rooms \
    --set data.root=rooms-small-cache --set 'data.train_areas=[1]' --set data.test_area=2 \
    --set eval.mode=voxel "${one_step[@]}" >/dev/null
fi
if [ -d "$shared/mosd/learn" ] && [ ! -f mosd/model.safetensors ]; then
  ewa --log-level error train "$here/configs/mosd/semseg-pt-vanilla.yaml" --run-dir mosd --set data.root="$shared/mosd/learn" \
    --set eval.mode=voxel --set eval.max_scenes_during_training=1 "${one_step[@]}" >/dev/null
fi

# --- scenes
if [ "$quick" = 1 ]; then room_density=470; else room_density=4700; fi
if [ ! -f room1m/done ]; then
  rm -rf room1m
  ewa data synth-rooms room1m --rooms 1 --areas 1 --density "$room_density" --seed 3 -j 1 >/dev/null
  touch room1m/done
fi
if [ "$quick" = 0 ] && [ "$skip10m" = 0 ] && [ ! -f room10m/done ]; then
  rm -rf room10m
  ewa data synth-rooms room10m --rooms 1 --areas 1 --density 47000 --seed 4 -j 1 >/dev/null
  touch room10m/done
fi

# --- runs: NAME MODEL SCENE
rows=()
run() {
  local name=$1 model=$2 scene=$3
  /usr/bin/time -v -o "$name.time" "$ewa_bin" --threads "$threads" segment "$model" "$scene" --out "$name.ply" \
    --summary "$name.summary.json" -q "${extra[@]}" > "$name.log" 2>&1 || {
    echo "$script: $name failed, see $out/$name.log" >&2; tail -3 "$name.log" >&2; return 1; }
  local rss wall
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$name.time")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$name.time")
  rows+=("$(python3 - "$name" "$wall" "$rss" <<'PY'
import json, sys
name, wall, rss = sys.argv[1], sys.argv[2], sys.argv[3]
s = json.load(open(name + ".summary.json"))
parts = [float(x) for x in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
print(f"| {name} | {s['points']:,} | {s['fragments']} | {s['forwards']} | {s['points_evaluated']:,} | "
      f"{s['seconds']:.1f} | {secs:.1f} | {int(rss):,} |")
PY
)")
  echo "${rows[-1]}"
}
echo "| run | points | fragments | forwards | points evaluated | inference s | wall s | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
run room1m-seg50 seg50/model.safetensors room1m/Area_1/room_1
if [ -f room10m/done ]; then run room10m-seg50 seg50/model.safetensors room10m/Area_1/room_1; fi
if [ -f "$shared/kinect-office1.pcd" ]; then
  [ -f mosd/model.safetensors ] && run kinect-mosd mosd/model.safetensors "$shared/kinect-office1.pcd"
  run kinect-quickstart quickstart/model.safetensors "$shared/kinect-office1.pcd"
fi
{
  echo "ewa segment, $(nproc) cores visible, --threads $threads, $(lscpu | awk -F': *' '/Model name/ {print $2; exit}')"
  echo "extra flags: ${extra[*]:-(none)}"
  echo
  echo "| run | points | fragments | forwards | points evaluated | inference s | wall s | peak RSS MiB |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
} > results.md
echo "wrote $out/results.md"
