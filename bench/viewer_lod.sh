#!/usr/bin/env bash
# Viewer level of detail: writes a synthetic N-point `ewa segment`-style PLY (x y z rgb, label =
# prediction, gt, confidence; default 10M points) and times `ewa view --side-by-side
# --screenshot` (load + colour + render + legend) at several --max-points budgets, with peak RSS
# from /usr/bin/time -v. Usage: bench/viewer_lod.sh [EWA] [POINTS] [BUDGETS...]
set -euo pipefail
EWA="${1:-build/apps/ewa}"
N="${2:-10000000}"
if [[ $# -gt 2 ]]; then BUDGETS=("${@:3}"); else BUDGETS=(2000000 500000 0); fi
OUT="${EWA_BENCH_OUT:-/tmp/ewa_viewer_lod}"
mkdir -p "$OUT"
PLY="$OUT/room_${N}.ply"
if [[ ! -f "$PLY" ]]; then
  python3 - "$PLY" "$N" <<'PY'
import random, struct, sys
path, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(0)
hdr = ("ply\nformat binary_little_endian 1.0\ncomment label=pred\nelement vertex %d\n"
       "property float x\nproperty float y\nproperty float z\nproperty uchar red\nproperty uchar green\n"
       "property uchar blue\nproperty int label\nproperty int gt\nproperty float confidence\nend_header\n" % n)
rec = struct.Struct("<fffBBBiif")
with open(path, "wb") as f:
    f.write(hdr.encode())
    buf = bytearray()
    for i in range(n):
        s = i % 4  # floor, two walls, a table top
        a, b = rng.random(), rng.random()
        if s == 0: x, y, z, g = 8 * a, 6 * b, 0.0, 1
        elif s == 1: x, y, z, g = 8 * a, 6.0, 3 * b, 2
        elif s == 2: x, y, z, g = 0.0, 6 * b, 3 * a, 2
        else: x, y, z, g = 2 + 3 * a, 2 + 2 * b, 0.8, 7
        p = 8 if (g == 7 and x > 4) else g
        buf += rec.pack(x, y, z, 120, 110, 100, p, g, 0.9 if p == g else 0.4)
        if len(buf) > (1 << 22):
            f.write(buf); buf = bytearray()
    f.write(buf)
PY
fi
echo "cloud: $PLY ($N points, $(du -h "$PLY" | cut -f1)); CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
run() { if [[ -n "${DISPLAY:-}" ]]; then "$@"; else xvfb-run -a -s "-screen 0 1600x1000x24" "$@"; fi; }
for b in "${BUDGETS[@]}"; do
  log="$OUT/time_$b.txt"
  run /usr/bin/time -v "$EWA" view "$PLY" --side-by-side --max-points "$b" --width 1280 --height 600 --quiet \
    --screenshot "$OUT/lod_$b.png" 2>"$log" >/dev/null
  wall=$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$log")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
  echo "--max-points $b: wall $wall, peak RSS $((rss / 1024)) MiB"
done
