#!/usr/bin/env bash
# Steadiness under contention: the dense ViT train step (bench_vit_moe --dense-only) alone and
# with a twin (a second copy of the same program started at the same time) on the same cores,
# for each OpenMP wait setting. Prints step ms alone, with the twin (mean of both copies) and
# the slowdown (fair share with two equal 2-thread jobs on 2 cores: 2.0; target <= 2.5).
# Run it on an otherwise idle machine; the load average is printed with every row.
# Usage: bench/contention.sh [BUILD_DIR=build] [BATCH=32] [ITERS=15] [THREADS=2]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:-$here/../build}"
batch="${2:-32}"
iters="${3:-15}"
threads="${4:-2}"
bin="$build/bench/bench_vit_moe"
[[ -x "$bin" ]] || { echo "contention: $bin not built" >&2; exit 2; }
run() {  # run ENV... -> prints the step ms
  env "$@" "$bin" --threads "$threads" --iters "$iters" --batch "$batch" --dense-only 1 |
    sed -nE 's/.*wall ([0-9.]+) ms.*/\1/p'
}
echo "contention: ViT dense step, batch $batch, $threads threads, median of $iters steps; $(nproc) cores;" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf '%-44s %10s %14s %9s  %s\n' "OpenMP setting" "alone ms" "with twin ms" "slowdown" "load before"
# EWA_OMP_TUNING=0 keeps libgomp's default (spin 300000 iterations at a barrier); the others set
# the variable before the program starts (ewa's own default is GOMP_SPINCOUNT=1000).
for setting in "EWA_OMP_TUNING=0" "GOMP_SPINCOUNT=1000" "GOMP_SPINCOUNT=10000" "OMP_WAIT_POLICY=passive"; do
  load=$(cut -d' ' -f1 /proc/loadavg)
  alone=$(run -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY "$setting")
  a=$(mktemp) b=$(mktemp)
  run -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY "$setting" >"$a" &
  pa=$!
  run -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY "$setting" >"$b" &
  pb=$!
  wait "$pa" "$pb"
  twin=$(awk '{s += $1; n++} END {printf "%.1f", s / n}' "$a" "$b")
  rm -f "$a" "$b"
  printf '%-44s %10s %14s %9s  %s\n' "$setting" "$alone" "$twin" \
    "$(awk -v t="$twin" -v a="$alone" 'BEGIN{printf "%.2fx", t/a}')" "$load"
done
