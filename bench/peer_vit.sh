#!/usr/bin/env bash
# C++ ViT step (bench_vit_moe --dense-only) vs torchvision's ViT in Python eager (peer_vit.py) on
# the same shapes, alternating the programs ROUNDS times; prints each round and the ratios of the
# medians. Four programs per round: C++ as shipped (fp32 GEMMs through oneDNN when built with it),
# C++ with EWA_ONEDNN=0 (GEMMs through OpenBLAS, as at::mm), Python as a user runs it, and Python
# with the malloc and OpenMP settings ewa applies to itself (MALLOC_* / GOMP_SPINCOUNT, see
# core/src/runtime.cpp), so that the C++ gain is split into what the allocator gives and what the
# code gives. Needs /usr/bin/python3 with torch + torchvision (Debian python3-torch,
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
# target is about.
tuned=(MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4611686018427387904 MALLOC_MMAP_MAX_=0 GOMP_SPINCOUNT=1000)
wall() { sed -E 's/.*wall ([0-9.]+) ms.*/\1/' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
cpp=() blas=() pyt=() pyt_tuned=()
for ((r = 1; r <= rounds; ++r)); do
  c=$(wall "$("$bin" --threads "$threads" --iters "$iters" --dense-only 1 | grep 'dense fp32 train step')")
  b=$(wall "$(EWA_ONEDNN=0 "$bin" --threads "$threads" --iters "$iters" --dense-only 1 | grep 'dense fp32 train step')")
  p=$(wall "$("$py" "$here/peer_vit.py" --threads "$threads" --iters "$iters")")
  t=$(wall "$(env "${tuned[@]}" "$py" "$here/peer_vit.py" --threads "$threads" --iters "$iters")")
  echo "round $r: wall C++ $c ms, C++ with EWA_ONEDNN=0 $b ms, Python $p ms, Python with ewa's malloc/OpenMP env $t ms"
  cpp+=("$c") blas+=("$b") pyt+=("$p") pyt_tuned+=("$t")
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
mc=$(med "${cpp[@]}") mb=$(med "${blas[@]}") mp=$(med "${pyt[@]}") mt=$(med "${pyt_tuned[@]}")
echo "median wall: C++ $mc ms, C++ (BLAS GEMMs) $mb ms, Python $mp ms, Python (ewa env) $mt ms"
echo "C++/Python $(ratio "$mc" "$mp") (target <= 0.90); C++/Python with ewa's env $(ratio "$mc" "$mt");" \
  "oneDNN vs BLAS GEMMs in C++: $(ratio "$mb" "$mc")x"
