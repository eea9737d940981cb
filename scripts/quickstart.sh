#!/usr/bin/env bash
# The quickstart run by ./run.sh: exercises the product end to end on embedded defaults and
# prints a summary of what it produced. Usage: scripts/quickstart.sh PATH/TO/ewa [--view]
set -euo pipefail
EWA="$1"; shift || true
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${EWA_QUICKSTART_OUT:-$ROOT/out/quickstart}"
mkdir -p "$OUT"

echo "== ewa quickstart (output: $OUT)"
"$EWA" --version
"$EWA" config check "$ROOT/configs/fashion_mnist/cls-vit-ewa.yaml" > "$OUT/cls-vit-ewa.resolved.yaml"
echo "config check: configs/fashion_mnist/cls-vit-ewa.yaml OK -> $OUT/cls-vit-ewa.resolved.yaml"

echo
echo "== summary"
echo "  resolved config: $OUT/cls-vit-ewa.resolved.yaml"
