#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ (clang-14, ASan + UBSan, in build-fuzz/) and runs
# each for SECONDS_PER_TARGET seconds (default 60), then prints one row per harness:
# executions, executions per second, crashes. Usage:
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
# Environment: EWA_FUZZ_TARGETS="yaml idx" (default: all), EWA_FUZZ_BUILD_DIR (build-fuzz),
# EWA_FUZZ_WORK (corpus/crash folder, default $EWA_FUZZ_BUILD_DIR/work), EWA_FUZZ_SEED (a
# fixed libFuzzer -seed, as CI uses), EWA_FUZZ_RUNS (stop each harness after this many executions;
# SECONDS_PER_TARGET is then a cap: `EWA_FUZZ_RUNS=1000000 scripts/fuzz.sh 3600` is the long
# run of the README's Robustness table), EWA_JOBS.
# New inputs go to the work folder, never into tests/data/fuzz/corpus; a crashing input is saved as
# work/crashes/<name>/crash-* - copy it to tests/data/fuzz/regressions/<name>/ once fixed.
# Exit status: 0 when no harness crashed, 1 otherwise.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$EWA_ROOT"

seconds="${1:-60}"
build="${EWA_FUZZ_BUILD_DIR:-$EWA_ROOT/build-fuzz}"
work="${EWA_FUZZ_WORK:-$build/work}"

# clang-14 and its libFuzzer/sanitizer runtimes (only this script needs them).
EWA_EXTRA_PKGS="${EWA_EXTRA_PKGS:-} clang-14 libclang-rt-14-dev libomp-14-dev" "$EWA_ROOT/scripts/install-deps.sh"

# One build at a time in the fuzz build directory (several scripts may share a checkout); the
# lock is released once the harnesses are built, so runs of different EWA_FUZZ_TARGETS (each
# with its own EWA_FUZZ_WORK) can share the cores.
mkdir -p "$build"
exec 9>"$build/.fuzz.lock"
flock 9

if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$EWA_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DEWA_BUILD_FUZZ=ON -DEWA_BUILD_TESTS=OFF -DEWA_BUILD_BENCH=OFF -DEWA_BUILD_VIEWER=OFF \
    -DEWA_WITH_CUDA=OFF -DEWA_WERROR=OFF
fi
cmake --build "$build" -j "$EWA_JOBS" --target ewa_fuzzers
exec 9>&-

targets=()
if [[ -n "${EWA_FUZZ_TARGETS:-}" ]]; then
  read -r -a targets <<<"$EWA_FUZZ_TARGETS"
else
  for f in "$EWA_ROOT"/fuzz/fuzz_*.cpp; do n="$(basename "$f" .cpp)"; targets+=("${n#fuzz_}"); done
fi

# LibTorch's OpenMP pool and the sanitizers: one thread, and ASan settings libFuzzer expects.
export OMP_NUM_THREADS=1
# (A harness may set more in __asan_default_options: fuzz_room_h5 lets libhdf5's malloc return NULL.)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

rows=()
crashed=0
for name in "${targets[@]}"; do
  exe="$build/fuzz/fuzz_$name"
  [[ -x "$exe" ]] || { echo "[fuzz] no harness fuzz_$name" >&2; exit 2; }
  mkdir -p "$work/corpus/$name" "$work/crashes/$name" "$work/logs"
  seeds=("$EWA_ROOT/tests/data/fuzz/corpus/$name")
  [[ -d "$EWA_ROOT/tests/data/fuzz/regressions/$name" ]] && seeds+=("$EWA_ROOT/tests/data/fuzz/regressions/$name")
  log="$work/logs/$name.log"
  count_artifacts() { find "$work/crashes/$name" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l; }
  before=$(count_artifacts)
  echo "[fuzz] $name: ${seconds}s${EWA_FUZZ_RUNS:+ or $EWA_FUZZ_RUNS executions} (log: $log)"
  set +e
  seed_arg=()
  [[ -n "${EWA_FUZZ_SEED:-}" ]] && seed_arg=(-seed="$EWA_FUZZ_SEED")
  [[ -n "${EWA_FUZZ_RUNS:-}" ]] && seed_arg+=(-runs="$EWA_FUZZ_RUNS")
  "$exe" "${seed_arg[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$work/crashes/$name/" "$work/corpus/$name" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  crashes=$(( $(count_artifacts) - before ))
  if [[ $rc -ne 0 && $crashes -eq 0 ]]; then crashes=1; fi
  if [[ $crashes -gt 0 ]]; then crashed=1; fi
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | grep -o '[0-9]* second' | grep -o '[0-9]*' || true)
  rows+=("$(printf '%-14s %14s %10s %8s %8s' "$name" "${execs:-?}" "${rate:-?}" "${secs:-$seconds}" "$crashes")")
done

echo
printf '%-14s %14s %10s %8s %8s\n' target executions exec/s seconds crashes
for r in "${rows[@]}"; do echo "$r"; done
echo "[fuzz] ${seconds}s per target; corpora and crashes under $work"
exit "$crashed"
