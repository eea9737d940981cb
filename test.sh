#!/usr/bin/env bash
# Installs what is missing (apt), configures, builds everything and runs the whole test suite
# (ctest), then (CI, or EWA_FUZZ_SECONDS > 0) fuzzes every harness briefly. Exits non-zero on
# any failure. Extra arguments go to ctest (e.g. -R core).
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
cd "$EWA_ROOT"

start=$(date +%s)
"$EWA_ROOT/scripts/install-deps.sh"
ewa_configure -DEWA_BUILD_TESTS=ON
ewa_build
echo "[test.sh] build finished after $(( $(date +%s) - start )) s"
ctest --test-dir "$EWA_BUILD_DIR" --output-on-failure -j "$EWA_JOBS" --timeout 900 "$@"
# Brief fuzzing of every libFuzzer harness (the corpora replay already ran in ctest): in CI
# 10 s per harness with a fixed seed, elsewhere only when EWA_FUZZ_SECONDS > 0. It builds
# build-fuzz/ with clang-14 (about 8 CPU-minutes cold); see README "Robustness".
fuzz_seconds="${EWA_FUZZ_SECONDS:-}"
if [[ -z "$fuzz_seconds" ]]; then
  if [[ "${CI:-}" == "true" ]]; then fuzz_seconds=10; else fuzz_seconds=0; fi
fi
if (( fuzz_seconds > 0 )); then
  # A finding here is reported loudly but does not fail the run: the corpora replay in ctest is
  # the gate, and a 10 s search can find a new input on one CPU and not on another (its inputs
  # depend on speed). Set EWA_FUZZ_STRICT=1 to fail on findings.
  if ! EWA_FUZZ_SEED="${EWA_FUZZ_SEED:-1}" "$EWA_ROOT/scripts/fuzz.sh" "$fuzz_seconds"; then
    if [[ "${EWA_FUZZ_STRICT:-0}" == "1" ]]; then exit 1; fi
    echo "[test.sh] WARNING: fuzzing found inputs that break a parser's error contract (table above);" \
      "fix them and add each to tests/data/fuzz/regressions/<name>/"
  fi
  echo "[test.sh] fuzzing finished after $(( $(date +%s) - start )) s"
fi
echo "[test.sh] done in $(( $(date +%s) - start )) s"
