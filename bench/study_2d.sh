#!/usr/bin/env bash
# bench/study_2d.sh: the image part of the README "Evidence" study (issue #20), run with
# `ewa sweep` on the CIFAR-10 JPEGs of ../shared/data (configs/study/cifar10-5k-vit.yaml:
# 5,000 training images, the whole seeded 20% held-out part evaluated, 30 epochs).
#
# Cells (every one trains the same recipe and, except top1-router, deploys the same dense ViT):
#   methods:   vanilla, ewa (RUP, b=0.3, linear warm-up over 300 steps), naive-moe (RUP, no EWA,
#              collapsed by averaging), ema (dense + model EMA), ewa+ema
#   share rate x schedule: b in {0.1, 0.2, 0.3, 0.5} x {constant, linear, cosine}
#   experts 2 / 4 / 8; MoE in every 2nd block (blocks 1,3,5) vs the last 2 blocks
#   top1-router: softmax top-1 token choice at capacity factor 1 (no EWA; kept as an MoE)
# The cells are split over --jobs sweep processes of 1 thread each that share one output
# folder (on 2 cores two 1-thread runs train 1.85x the images per second of one 2-thread run);
# a last `ewa sweep` over all cells trains nothing more and writes OUT/sweep.md / sweep.json.
# Rerunning the script continues a stopped study.
#
# --small: the small-data recipe instead (configs/study/cifar10-1k-vit.yaml: 1,000 training
# images, crop + flip, 150 epochs, where the vanilla ViT overfits) with the five method cells
# (vanilla, ewa, naive-moe, ema, ewa+ema); default output runs/study_2d_1k. With
# `--dataset fmnist` the same on Fashion-MNIST (configs/study/fmnist-1k-vit.yaml, Debian's
# dataset-fashion-mnist, the official 10,000 test images; output runs/study_2d_fmnist_1k).
#
# --dataset tiny: the Tiny-ImageNet subset of ../shared/data at 64 px with the five method cells
# (configs/study/tiny10-4k-vit.yaml: 4,000 training images, a seeded 1,000 held out, 30 epochs;
# output runs/study_2d_tiny).
#
# --more (with --small or --dataset tiny): also the top1-router cell and b=0.5 with the linear
# warm-up (the best share-rate cell of the 5,000-image study), to see whether they replicate.
#
# Usage: bench/study_2d.sh [--small] [--dataset cifar10|fmnist|tiny] [--more] [--out DIR] [--seeds N] [--jobs J]
#                          [--ewa BIN] [--shared DIR] [--dry-run]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
script=study_2d.sh
source "$here/bench/results_common.sh"
seeds=3
jobs=2
small=0
more=0
dataset=cifar10
dry=()
while [ $# -gt 0 ]; do
  results_common_option "$@"
  [ "$consumed" = 0 ] && study_option "$@"
  if [ "$consumed" = 0 ]; then
    case $1 in
      --small) small=1; consumed=1 ;;
      --more) more=1; consumed=1 ;;
      --dataset)
        [ $# -ge 2 ] || { echo "$script: --dataset needs cifar10, fmnist or tiny" >&2; exit 2; }
        dataset=$2; consumed=2 ;;
      *) echo "$script: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
  fi
  shift "$consumed"
done
results_find_ewa
case $small/$dataset in
  0/cifar10) config=$here/configs/study/cifar10-5k-vit.yaml; [ -n "$out" ] || out=$here/runs/study_2d ;;
  1/cifar10) config=$here/configs/study/cifar10-1k-vit.yaml; [ -n "$out" ] || out=$here/runs/study_2d_1k ;;
  1/fmnist) config=$here/configs/study/fmnist-1k-vit.yaml; [ -n "$out" ] || out=$here/runs/study_2d_fmnist_1k ;;
  0/tiny) config=$here/configs/study/tiny10-4k-vit.yaml; [ -n "$out" ] || out=$here/runs/study_2d_tiny ;;
  *) echo "$script: --dataset $dataset: use cifar10, fmnist with --small, or tiny without it" >&2; exit 2 ;;
esac
methods_only=$small   # the five method cells only (the small recipes and Tiny-ImageNet)
[ "$dataset" = tiny ] && methods_only=1
data_args=()
# extract_once ARCHIVE DIR MARKER: extracts ../shared/data/ARCHIVE into DIR unless DIR/MARKER exists.
extract_once() {
  local archive=$shared/$1
  [ -e "$2/$3" ] && return 0
  [ -f "$archive" ] || { echo "$script: $archive not found (see ../shared/data/README.md)" >&2; exit 1; }
  echo "extracting $archive into $2"
  mkdir -p "$2"
  tar xzf "$archive" -C "$2"
}
if [ "$dataset" = cifar10 ]; then
  data=${EWA_CACHE:-/tmp}/ewa_bench_cifar10_jpeg
  extract_once cifar10-train-jpeg.tar.gz "$data" cifar10-jpeg/train/truck
  data_args=(--set "data.root=$data/cifar10-jpeg/train")
elif [ "$dataset" = tiny ]; then
  data=${EWA_CACHE:-/tmp}/ewa_bench_tiny_imagenet
  extract_once tiny-imagenet-200-10class.tar.gz "$data" tiny-imagenet-200/wnids.txt
  data_args=(--set "data.root=$data/tiny-imagenet-200")
elif [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "$script: Fashion-MNIST not found: apt-get install dataset-fashion-mnist" >&2
  exit 1
fi

ema="train.ema.enabled=true train.ema.decay=0.995"
variants=(
  "vanilla: model.moe.enabled=false model.ewa.enabled=false"
  "ewa: model.ewa.enabled=true"
  "naive-moe: model.ewa.enabled=false"
  "ema: model.moe.enabled=false model.ewa.enabled=false $ema"
  "ewa+ema: $ema"
)
top1="top1-router: model.ewa.enabled=false model.moe.router.name=softmax_token_choice"
[ "$methods_only" = 1 ] && [ "$more" = 1 ] &&
  variants+=("$top1" "b0.5-linear: model.ewa.share_rate=0.5 model.ewa.schedule=linear")
[ "$methods_only" = 1 ] || variants+=(
  "$top1"
  "experts-2: model.moe.num_experts=2"
  "experts-8: model.moe.num_experts=8"
  "last-2-blocks: model.moe.every=-1 model.moe.last=2"
)
for b in 0.1 0.2 0.3 0.5; do
  [ "$methods_only" = 1 ] && break
  for s in constant linear cosine; do
    [ "$b/$s" = 0.3/linear ] && continue   # that cell is `ewa`
    variants+=("b$b-$s: model.ewa.share_rate=$b model.ewa.schedule=$s")
  done
done

study_args=("$config" "${data_args[@]}" --set run.threads=1 --seeds "$seeds" --out "$out")
study_sweep
