#!/usr/bin/env bash
# Installs what is missing (apt), builds, and runs the main job: the quickstart over the
# product on embedded defaults. `./run.sh --help` lists the other jobs.
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
cd "$EWA_ROOT"

usage() {
  cat <<USAGE
Usage: ./run.sh [JOB] [ARGS...]

Jobs:
  (none)            quickstart: build, then run the main job on embedded defaults
                    (writes everything under out/quickstart; --view opens the viewer)
  train CONFIG ...  ewa train CONFIG ... (e.g. configs/fashion_mnist/cls-vit-ewa.yaml)
  view ARGS...      ewa view ARGS... (desktop viewer of a cloud / segmentation)
  check CONFIG ...  ewa config check CONFIG ...
  ewa ARGS...       run any ewa subcommand (ewa --help lists them)
  build             only install dependencies and build
  --help            this text

Environment: EWA_BUILD_DIR (default build/), EWA_JOBS (default nproc), EWA_SKIP_DEPS=1.
USAGE
}

job="${1:-quickstart}"
case "$job" in
  -h|--help|help) usage; exit 0 ;;
esac
[[ $# -gt 0 ]] && shift

"$EWA_ROOT/scripts/install-deps.sh"
ewa_configure
ewa_build --target ewa
EWA="$EWA_BUILD_DIR/apps/ewa"

case "$job" in
  quickstart) exec "$EWA_ROOT/scripts/quickstart.sh" "$EWA" "$@" ;;
  --view) exec "$EWA_ROOT/scripts/quickstart.sh" "$EWA" --view "$@" ;;
  train) exec "$EWA" train "$@" ;;
  view) exec "$EWA" view "$@" ;;
  check) exec "$EWA" config check "$@" ;;
  ewa) exec "$EWA" "$@" ;;
  build) ewa_build; echo "built in $EWA_BUILD_DIR" ;;
  *) echo "run.sh: unknown job '$job'" >&2; usage >&2; exit 2 ;;
esac
