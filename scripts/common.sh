# Shared by run.sh and test.sh: build directory, ccache settings, configure + build.
# shellcheck shell=bash
EWA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EWA_BUILD_DIR="${EWA_BUILD_DIR:-$EWA_ROOT/build}"
EWA_JOBS="${EWA_JOBS:-$(nproc)}"
# ccache must accept the LibTorch precompiled header.
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# Relative paths in the ccache hash: clones and extra build directories share cache hits.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$EWA_ROOT}"

ewa_configure() {
  local werror=OFF
  [[ "${CI:-}" == "true" || "${EWA_WERROR:-}" == "ON" ]] && werror=ON
  if [[ ! -f "$EWA_BUILD_DIR/build.ninja" ]] || [[ "${EWA_RECONFIGURE:-0}" == "1" ]]; then
    cmake -S "$EWA_ROOT" -B "$EWA_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DEWA_WERROR="$werror" "$@"
  fi
}

ewa_build() {
  cmake --build "$EWA_BUILD_DIR" -j "$EWA_JOBS" "$@"
}
