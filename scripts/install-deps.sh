#!/usr/bin/env bash
# Installs the Debian bookworm packages ewa-vision needs (idempotent: skips what is installed).
# Works as root without sudo, or as a user with sudo. EWA_SKIP_DEPS=1 skips everything.
set -euo pipefail

if [[ "${EWA_SKIP_DEPS:-0}" == "1" ]]; then exit 0; fi

PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-openmp
  libpcl-dev libopencv-dev libopen3d-dev open3d-gui-data
  libhdf5-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libspdlog-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev libgloo-dev libdnnl-dev
  xvfb xauth xdotool dataset-fashion-mnist
  python3  # tests/tools: the independent timm-forward check of the ViT export
)
# Extra packages can be added by the caller (e.g. EWA_EXTRA_PKGS="gdb valgrind").
if [[ -n "${EWA_EXTRA_PKGS:-}" ]]; then read -r -a extra <<<"$EWA_EXTRA_PKGS"; PKGS+=("${extra[@]}"); fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "[install-deps] all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=()
if [[ "$(id -u)" != "0" ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    echo "[install-deps] missing packages: ${missing[*]}" >&2
    echo "[install-deps] not root and no sudo: install them, or set EWA_SKIP_DEPS=1" >&2
    exit 1
  fi
fi
echo "[install-deps] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "[install-deps] done"
