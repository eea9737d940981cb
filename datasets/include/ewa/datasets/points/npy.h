// NumPy .npy reader/writer (format 1.0/2.0/3.0) and Pointcept's per-room folders
// (coord.npy color.npy segment.npy instance.npy [normal.npy]).
#pragma once

#include "ewa/datasets/points/point_cloud.h"

#include <string>
#include <vector>

namespace ewa::datasets {

/// Reads a C-order .npy array. dtypes: '<f2' '<f4' '<f8' '|u1' '|i1' '|b1' '<i2' '<i4' '<i8'
/// (and the '>' big-endian forms, byte-swapped). fortran_order=True, other dtypes, or a
/// payload shorter than the shape are rejected with the path.
torch::Tensor read_npy(const std::string& path);

/// Writes `t` (float16/32/64, uint8, int8/16/32/64, bool) as little-endian C-order .npy
/// (temp name + rename).
void write_npy(const std::string& path, const torch::Tensor& t);

/// Reads a Pointcept room folder: coord.npy [N,3] (f4/f8), color.npy [N,3] (u1 or float
/// 0..255), segment.npy [N] or [N,1] (int, -1 ignore), instance.npy, normal.npy (optional).
PointCloudData read_pointcept_room(const std::string& room_dir);

/// Folders under `root` (recursively, depth <= 3) that contain coord.npy, naturally sorted.
std::vector<std::string> list_pointcept_rooms(const std::string& root);

}  // namespace ewa::datasets
