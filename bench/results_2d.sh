#!/usr/bin/env bash
# The README's 2D results table: vanilla ViT vs EWA ViT (same recipe, same epochs, same
# deployed model) on Fashion-MNIST (official 10k test set) and on the CIFAR-10 training JPEGs
# of ../shared/data (seeded training subset, evaluated on a held-out part of the rest),
# 3 seeds each: top-1 mean/std, training throughput, deployed parameters, inference time.
#
# Usage: bench/results_2d.sh [--quick] [--out DIR] [--seeds "0 1 2"] [--ewa PATH]
#                            [--shared DIR] [--threads N] [--only fashion_mnist|cifar10]
#   --quick    a minutes-long smoke version (1 seed, tiny subsets, 1 epoch): proves the
#              script works; its numbers mean nothing.
#   --out      results folder (default runs/results_2d, or runs/results_2d_quick); finished
#              runs (summary.json present) are kept, so an interrupted script continues.
#   --ewa      the ewa binary (default: $EWA, build/apps/ewa, build-*/apps/ewa).
# Writes OUT/results.md (the table + recipe) and prints it.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
script=results_2d.sh
# shellcheck source=bench/results_common.sh
source "$here/bench/results_common.sh"
seeds="0 1 2"
only=""
while [ $# -gt 0 ]; do
  results_common_option "$@"
  if [ "$consumed" = 0 ]; then
    case $1 in
      --seeds) [ $# -ge 2 ] || { echo "$script: --seeds needs a value" >&2; exit 2; }; seeds=$2; consumed=2 ;;
      --only) [ $# -ge 2 ] || { echo "$script: --only needs a value" >&2; exit 2; }; only=$2; consumed=2 ;;
      *) echo "$script: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
  fi
  shift "$consumed"
done
results_find_ewa

# ---------------------------------------------------------------- the recipe
# Small-data, longer-schedule regime (where the EWA paper reports its largest gains): a few
# thousand training images, a small ViT, many epochs. Both variants use exactly these
# settings; they differ only in model.moe / model.ewa of their config files.
fm_train=5000      # Fashion-MNIST: seeded subset of the 60k training images
fm_eval=0          # 0 = the whole official 10k test set
fm_epochs=30
c10_train=5000     # CIFAR-10 JPEGs: seeded training subset ...
c10_val=0.2        # ... after carving a seeded 20% (10k images) held-out part
c10_eval=2000      # evaluated on a seeded 2000 of the held-out part
c10_epochs=30
model=(--set model.vit.embed_dim=96 --set model.vit.depth=6 --set model.vit.num_heads=3
       --set model.vit.mlp_ratio=2.0 --set model.vit.drop_path_rate=0.1)
recipe=(--set train.batch_size=128 --set train.optimizer.lr=0.001 --set train.optimizer.weight_decay=0.05
        --set train.label_smoothing=0.1 --set train.schedule.name=cosine --set train.schedule.warmup_epochs=3
        --set train.eval_every=0 --set model.ewa.warmup_steps=300)
if [ "$quick" = 1 ]; then
  seeds="0"
  fm_train=512; fm_eval=1000; fm_epochs=1
  c10_train=512; c10_eval=500; c10_epochs=1
fi
results_out_dir results_2d

fm_cfg() { echo "$here/configs/fashion_mnist/cls-vit-$1.yaml"; }
c10_cfg() { echo "$here/configs/cifar10/cls-vit-$1.yaml"; }
fm_set=(--set data.train_limit=$fm_train --set data.eval_limit=$fm_eval --set train.epochs=$fm_epochs
        --set model.vit.patch_size=7)
c10_dir=${EWA_CACHE:-/tmp}/ewa_bench_cifar10_jpeg
c10_set=(--set data.dataset=image_folder --set "data.root=$c10_dir/cifar10-jpeg/train"
         --set model.vit.patch_size=8 --set data.val_fraction=$c10_val --set data.train_limit=$c10_train --set data.eval_limit=$c10_eval
         --set "data.mean=[0.4914,0.4822,0.4465]" --set "data.std=[0.2470,0.2435,0.2616]"
         --set train.epochs=$c10_epochs --set data.augment.mixup_alpha=0 --set data.augment.cutmix_alpha=0
         --set data.augment.randaugment_n=1 --set data.augment.random_erasing=0)

threads_opt=()
[ "$threads" -gt 0 ] && threads_opt=(--threads "$threads")

# run DATASET VARIANT SEED CONFIG ARGS...: one training, skipped when already finished.
run() {
  local ds=$1 variant=$2 seed=$3 cfg=$4
  shift 4
  local dir=$out/$ds/$variant/seed$seed
  if [ -f "$dir/summary.json" ]; then
    echo "[$ds $variant seed $seed] done before, kept ($dir)"
    return
  fi
  mkdir -p "$(dirname "$dir")"
  echo "[$ds $variant seed $seed] training ... (log: $dir.log)"
  local t0=$SECONDS
  if ! "$ewa_bin" "${threads_opt[@]}" --log-level warn train "$cfg" "$@" --set run.seed="$seed" \
       --set run.name="$ds-$variant-$seed" --run-dir "$dir" -q > "$dir.log" 2>&1; then
    echo "results_2d.sh: training failed, see $dir.log" >&2
    tail -5 "$dir.log" >&2
    exit 1
  fi
  echo "[$ds $variant seed $seed] $(head -1 "$dir.log") ($((SECONDS - t0)) s)"
}

# value KEY FILE: a number from a summary.json
value() { awk -v k="\"$1\"" -F': ' '$1 ~ k { gsub(/[ ,]/, "", $2); print $2; exit }' "$2"; }

datasets=()
if [ -z "$only" ] || [ "$only" = fashion_mnist ]; then
  if [ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    datasets+=(fashion_mnist)
  else
    echo "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): skipped" >&2
  fi
fi
if [ -z "$only" ] || [ "$only" = cifar10 ]; then
  if [ -f "$shared/cifar10-train-jpeg.tar.gz" ]; then
    if [ ! -d "$c10_dir/cifar10-jpeg/train/truck" ]; then
      echo "extracting $shared/cifar10-train-jpeg.tar.gz into $c10_dir"
      mkdir -p "$c10_dir"
      tar xzf "$shared/cifar10-train-jpeg.tar.gz" -C "$c10_dir"
    fi
    datasets+=(cifar10)
  else
    echo "$shared/cifar10-train-jpeg.tar.gz not found: CIFAR-10 skipped" >&2
  fi
fi
[ ${#datasets[@]} -gt 0 ] || { echo "results_2d.sh: no dataset available" >&2; exit 1; }

start=$SECONDS
for ds in "${datasets[@]}"; do
  for seed in $seeds; do
    for variant in vanilla ewa; do
      if [ "$ds" = fashion_mnist ]; then
        run "$ds" "$variant" "$seed" "$(fm_cfg "$variant")" "${model[@]}" "${recipe[@]}" "${fm_set[@]}"
      else
        run "$ds" "$variant" "$seed" "$(c10_cfg "$variant")" "${model[@]}" "${recipe[@]}" "${c10_set[@]}"
      fi
    done
  done
done

# ---------------------------------------------------------------- the table
table=$out/results.md
{
  echo "| dataset | model | top-1 % (mean ± std, n seeds) | train images/s | s/epoch | deployed params | inference ms/image |"
  echo "|---|---|---|---|---|---|---|"
  for ds in "${datasets[@]}"; do
    for variant in vanilla ewa; do
      files=()
      for seed in $seeds; do files+=("$out/$ds/$variant/seed$seed/summary.json"); done
      stats=$(for f in "${files[@]}"; do
                echo "$(value top1 "$f") $(value train_images_per_sec "$f") $(value params "$f") \
$(value inference_ms_per_image "$f") $(value train_images "$f")"
              done | awk '{ n++; a += $1; aa += $1 * $1; ips += $2; p = $3; ms += $4; img = $5 }
                END { m = a / n; sd = n > 1 ? sqrt((aa - n * m * m) / (n - 1)) : 0; if (sd != sd) sd = 0;
                      printf "%.2f ± %.2f (%d) | %.0f | %.1f | %d | %.3f", 100 * m, 100 * sd, n, ips / n,
                             img / (ips / n), p, ms / n }')
      echo "| $ds | ViT $variant | $stats |"
    done
  done
  echo
  echo "Recipe (both variants): ViT dim 96, depth 6, 3 heads, MLP ratio 2, drop-path 0.1; AdamW lr 1e-3,"
  echo "wd 0.05, batch 128, cosine schedule with 3 warmup epochs, label smoothing 0.1, final weights."
  echo "EWA: blocks 1, 3, 5 are 4-expert RUP MoE layers, share rate 0.3 (linear warmup over 300 steps),"
  echo "collapsed to the dense ViT after training. Fashion-MNIST: $fm_train seeded training images, patch 7,"
  echo "$fm_epochs epochs, random crop (pad 2) + flip, evaluated on the official test set. CIFAR-10"
  echo "(JPEGs of ../shared/data): $c10_train seeded training images, held-out $c10_eval of a seeded"
  echo "${c10_val} split, patch 8, $c10_epochs epochs, crop (pad 4) + flip + RandAugment(1, 9)."
  echo "Seeds: $seeds. Threads: $([ "$threads" -gt 0 ] && echo "$threads" || echo all cores)."
  echo "Wall time of this script: $(( (SECONDS - start) / 60 )) min."
} > "$table"
echo
cat "$table"
