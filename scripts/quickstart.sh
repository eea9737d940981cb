#!/usr/bin/env bash
# The quickstart run by ./run.sh: the whole product end to end on embedded defaults, then a
# summary of what it produced. Usage: scripts/quickstart.sh PATH/TO/ewa [--view] [--fast]
#   images: EWA ViT on real Fashion-MNIST -> eval -> collapsed dense model.safetensors ->
#           classify test images -> report.html
#   points: synthetic S3DIS-layout rooms -> prepare -> EWA Point Transformer -> eval mIoU ->
#           segment a held-out room -> viewer screenshots (prediction, ground truth)
# Re-running reuses the prepared data; trainings start afresh (their run dirs are replaced).
set -euo pipefail
EWA="$1"; shift || true
VIEW=0
FAST=0
for a in "$@"; do
  case "$a" in
    --view) VIEW=1 ;;
    --fast) FAST=1 ;;  # a few steps only (used by the smoke test)
    *) echo "quickstart: unknown option $a" >&2; exit 2 ;;
  esac
done
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${EWA_QUICKSTART_OUT:-$ROOT/out/quickstart}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s]"; }

extra_2d=()
extra_3d=()
if [[ "$FAST" == "1" ]]; then
  extra_2d=(--set train.epochs=1 --set data.train_limit=512 --set data.eval_limit=256)
  extra_3d=(--set train.epochs=1 --set data.loop=1)
fi

# train.precision defaults to auto: bf16 autocast on CPUs with native bf16 matmuls (AVX512-BF16
# or AMX), fp32 elsewhere, for the ViT and the Point Transformer (the ViT step is about 2x faster
# in bf16 on the reference machine, same top-1). EWA_QUICKSTART_PRECISION=fp32|bf16|auto overrides.
precision="${EWA_QUICKSTART_PRECISION:-auto}"
extra_2d+=(--set train.precision="$precision")
extra_3d+=(--set train.precision="$precision")

echo "== ewa quickstart (output: $OUT)"
"$EWA" --version

# ---------------------------------------------------------------- images
echo
echo "== 1/2 images: EWA ViT on Fashion-MNIST, $precision $(stamp)"
FM_ROOT=/usr/share/datasets/fashion-mnist
if [[ ! -d "$FM_ROOT" ]]; then
  echo "quickstart: $FM_ROOT missing: install the Debian package dataset-fashion-mnist" >&2
  exit 77
fi
RUN2D="$OUT/fmnist-vit-ewa"
rm -rf "$RUN2D"
"$EWA" train configs/fashion_mnist/quickstart-ewa.yaml --run-dir "$RUN2D" "${extra_2d[@]}"
"$EWA" eval "$RUN2D" --checkpoint model -q
mkdir -p "$OUT/samples"
"$EWA" data export-images fashion_mnist "$FM_ROOT" "$OUT/samples" --split test --count 6
"$EWA" classify "$RUN2D/model.safetensors" "$OUT"/samples/*.png --top 3 | tee "$OUT/classify.txt"

# ---------------------------------------------------------------- point clouds
echo
echo "== 2/2 point clouds: EWA Point Transformer on synthetic rooms $(stamp)"
ROOMS="$OUT/rooms"
CACHE="$OUT/rooms-cache"
if [[ ! -d "$ROOMS/Area_2" ]]; then
  "$EWA" data synth-rooms "$ROOMS" --rooms 6 --areas 2 --density 200
fi
"$EWA" data prepare s3dis "$ROOMS" "$CACHE" -q
RUN3D="$OUT/rooms-pt-ewa"
rm -rf "$RUN3D"
"$EWA" train configs/synth_rooms/quickstart-ewa.yaml --run-dir "$RUN3D" \
  --set data.root="$CACHE" "${extra_3d[@]}"
HELD_OUT="$(ls -d "$ROOMS"/Area_2/*/ | head -n 1)"
HELD_OUT="${HELD_OUT%/}"
SCENE="$(basename "$HELD_OUT")"
"$EWA" segment "$RUN3D/model.safetensors" "$HELD_OUT" --out "$OUT/$SCENE-pred.ply" \
  --npy "$OUT/$SCENE-pred.npy" | tee "$OUT/segment.txt"

shot() {  # mode file
  local args=("$OUT/$SCENE-pred.ply" --classes s3dis --mode "$1" --width 960 --height 640 --quiet --screenshot "$2")
  if [[ -n "${DISPLAY:-}" ]]; then "$EWA" view "${args[@]}"; else xvfb-run -a -s "-screen 0 1280x1024x24" "$EWA" view "${args[@]}"; fi
}
shot pred "$OUT/$SCENE-pred.png"
shot gt "$OUT/$SCENE-gt.png"
if [[ "$VIEW" == "1" ]]; then
  if [[ -n "${DISPLAY:-}" ]]; then "$EWA" view "$OUT/$SCENE-pred.ply" --classes s3dis; else echo "quickstart: --view needs a display (DISPLAY is not set)"; fi
fi

# ---------------------------------------------------------------- summary
last_eval() {  # run_dir key -> value of the last record holding key in metrics.jsonl
  grep "\"$2\"" "$1/metrics.jsonl" | tail -n 1 | sed -E "s/.*\"$2\":([-0-9.eE+]+).*/\\1/"
}
echo
echo "== summary ($(( $(date +%s) - start )) s)"
echo "images (Fashion-MNIST, EWA ViT collapsed to dense):"
echo "  test top-1 (metrics.jsonl): $(last_eval "$RUN2D" val.top1)"
echo "  model:       $RUN2D/model.safetensors"
echo "  eval:        $(ls "$RUN2D"/eval_*.json | head -n 1)"
echo "  report:      $RUN2D/report.html"
echo "  classified:  $OUT/classify.txt"
echo "point clouds (synthetic rooms, EWA Point Transformer collapsed to dense):"
echo "  val mIoU, last eval in training (metrics.jsonl): $(last_eval "$RUN3D" val.miou)"
echo "  val mIoU, final whole-scene eval: $(grep -o '"miou": [-0-9.eE+]*' "$RUN3D"/eval_val.json | head -n 1 | cut -d' ' -f2) ($RUN3D/eval_val.json)"
echo "  model:       $RUN3D/model.safetensors"
echo "  prediction:  $OUT/$SCENE-pred.ply ($OUT/$SCENE-pred.npy)"
echo "  screenshots: $OUT/$SCENE-pred.png $OUT/$SCENE-gt.png"
echo "  open it:     ./run.sh view $OUT/$SCENE-pred.ply --classes s3dis"
