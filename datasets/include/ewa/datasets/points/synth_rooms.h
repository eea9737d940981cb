// Procedural indoor rooms written in the raw S3DIS layout (clearly labelled synthetic):
// Area_<a>/room_<k>/room_<k>.txt + Annotations/<class>_<i>.txt, lines `x y z r g b`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ewa::datasets {

struct SynthRoomsOptions {
  double density = 500;  ///< surface points per square metre (~100k points per room at 500)
  double noise = 0.005;  ///< Gaussian sensor noise (metres, per axis)
  int area = 1;          ///< rooms go to Area_<area>
  int threads = 0;       ///< rooms written in parallel (0 = hardware concurrency)
};

struct SynthRoomsSummary {
  std::vector<std::string> room_dirs;
  int64_t points = 0;
  int64_t bytes = 0;  ///< annotation text bytes written
};

/// Writes `n_rooms` rooms under `out_root` (plus README.txt saying the data is synthetic).
/// Each room: floor, ceiling, 4 walls with a door, windows and a board cut into them, a beam,
/// a column, tables, chairs, a sofa, bookcases and clutter (all 13 S3DIS classes), with
/// class-typical colours, per-instance tints and Gaussian noise. Deterministic per seed.
SynthRoomsSummary synth_rooms(const std::string& out_root, int n_rooms, uint64_t seed,
                              const SynthRoomsOptions& options = {});

}  // namespace ewa::datasets
