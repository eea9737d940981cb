#!/usr/bin/env bash
# C++ ViT step (bench_vit_moe --dense-only) vs torchvision's ViT in Python eager (peer_vit.py) on
# the same shapes, alternating the two programs ROUNDS times; prints each round and the ratio of
# the medians. Needs /usr/bin/python3 with torch + torchvision (Debian python3-torch,
# python3-torchvision); exits 77 (skipped) without them.
# Usage: bench/peer_vit.sh [BUILD_DIR=build] [ROUNDS=3] [ITERS=7] [THREADS=2]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:-$here/../build}"
rounds="${2:-3}"
iters="${3:-7}"
threads="${4:-2}"
py=/usr/bin/python3
if ! "$py" -c 'import torch, torchvision' 2>/dev/null; then
  echo "peer_vit: $py has no torch/torchvision (apt install python3-torch python3-torchvision); skipped"
  exit 77
fi
bin="$build/bench/bench_vit_moe"
[[ -x "$bin" ]] || { echo "peer_vit: $bin not built (cmake --build $build --target bench_vit_moe)" >&2; exit 2; }
echo "peer_vit: $rounds rounds x $iters steps, $threads threads; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "env: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset} load $(cut -d' ' -f1-3 /proc/loadavg)"
# Each program prints "... cpu X ms, wall Y ms" (medians of its steps). Wall time is what the
# target is about; CPU time (process, all threads) is the load-independent check with 1 thread.
cpp=() pyt=() cppc=() pytc=()
for ((r = 1; r <= rounds; ++r)); do
  c=$("$bin" --threads "$threads" --iters "$iters" --dense-only 1 | grep 'dense fp32 train step')
  p=$("$py" "$here/peer_vit.py" --threads "$threads" --iters "$iters")
  cw=$(sed -E 's/.*wall ([0-9.]+) ms.*/\1/' <<<"$c") cc=$(sed -E 's/.*cpu ([0-9.]+) ms.*/\1/' <<<"$c")
  pw=$(sed -E 's/.*wall ([0-9.]+) ms.*/\1/' <<<"$p") pc=$(sed -E 's/.*cpu ([0-9.]+) ms.*/\1/' <<<"$p")
  echo "round $r: wall C++ $cw ms, Python $pw ms ($(awk -v a="$cw" -v b="$pw" 'BEGIN{printf "%.3f", a/b}'));" \
    "cpu C++ $cc ms, Python $pc ms ($(awk -v a="$cc" -v b="$pc" 'BEGIN{printf "%.3f", a/b}'))"
  cpp+=("$cw") pyt+=("$pw") cppc+=("$cc") pytc+=("$pc")
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
mc=$(med "${cpp[@]}") mp=$(med "${pyt[@]}") mcc=$(med "${cppc[@]}") mpc=$(med "${pytc[@]}")
echo "median wall: C++ $mc ms, Python $mp ms, C++/Python $(awk -v a="$mc" -v b="$mp" 'BEGIN{printf "%.3f", a/b}') (target <= 0.90)"
echo "median cpu:  C++ $mcc ms, Python $mpc ms, C++/Python $(awk -v a="$mcc" -v b="$mpc" 'BEGIN{printf "%.3f", a/b}')"
