#!/usr/bin/env bash
# The cost of reading HDF5 files through the isolated reader (a forked, memory-capped child that
# serves one file after another, see datasets/src/points/h5_util.cpp) against reading them in
# this process (EWA_HDF5_IN_PROCESS=1): `ewa data info` over ROOMS prepared rooms (copies of one
# synthetic room of ~100k points, written by `ewa data synth-rooms` + `ewa data prepare`), the
# way a training run lists and reads an S3DIS cache of 272 rooms. Prints the median wall time of
# RUNS runs of each and the ratio. Run it on an otherwise idle machine.
# Usage: bench/hdf5_listing.sh [EWA=build/apps/ewa] [ROOMS=272] [RUNS=3]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ewa="${1:-$here/build/apps/ewa}"
rooms="${2:-272}"
runs="${3:-3}"
[[ -x "$ewa" ]] || { echo "hdf5_listing: $ewa not built" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$ewa" --log-level warn data synth-rooms "$work/raw" --rooms 1 --density 500 -j 1 > "$work/log" 2>&1 ||
  { cat "$work/log" >&2; exit 1; }
"$ewa" --log-level warn data prepare s3dis "$work/raw" "$work/cache" -j 1 > "$work/log" 2>&1 ||
  { cat "$work/log" >&2; exit 1; }
room="$work/cache/Area_1/room_1.h5"
[[ -f "$room" ]] || { echo "hdf5_listing: $room was not written" >&2; exit 1; }
files=()
for ((i = 1; i <= rooms; ++i)); do  # copies: new inodes, so no file counts as already read
  a=$(( (i - 1) % 6 + 1 ))
  mkdir -p "$work/rooms/Area_$a"
  cp "$room" "$work/rooms/Area_$a/room_$i.h5"
  files+=("$work/rooms/Area_$a/room_$i.h5")
done
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
time_runs() {  # time_runs ENV... -> median seconds of `ewa data info` over every file
  for ((r = 0; r < runs; ++r)); do
    local t0 t1
    t0=$(date +%s.%N)
    env "$@" "$ewa" --log-level warn data info "${files[@]}" > /dev/null
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", b - a}'
  done | median
}
echo "hdf5_listing: ewa data info over $rooms prepared rooms of $(du -h "$room" | cut -f1) each, median of $runs runs;" \
  "$(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1 /proc/loadavg)"
inproc=$(time_runs EWA_HDF5_IN_PROCESS=1)
isolated=$(time_runs -u EWA_HDF5_IN_PROCESS)
printf '%-34s %8s s\n' "in-process (EWA_HDF5_IN_PROCESS=1)" "$inproc" "isolated reader child" "$isolated"
awk -v i="$isolated" -v p="$inproc" -v n="$rooms" \
  'BEGIN {printf "isolated / in-process: %.2fx (%.1f ms more per file)\n", i / p, 1000 * (i - p) / n}'
