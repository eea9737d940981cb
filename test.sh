#!/usr/bin/env bash
# Installs what is missing (apt), configures, builds everything and runs the whole test suite
# (ctest). Exits non-zero on any failure. Extra arguments go to ctest (e.g. -R core).
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
cd "$EWA_ROOT"

start=$(date +%s)
"$EWA_ROOT/scripts/install-deps.sh"
ewa_configure -DEWA_BUILD_TESTS=ON
ewa_build
echo "[test.sh] build finished after $(( $(date +%s) - start )) s"
ctest --test-dir "$EWA_BUILD_DIR" --output-on-failure -j "$EWA_JOBS" --timeout 900 "$@"
echo "[test.sh] done in $(( $(date +%s) - start )) s"
