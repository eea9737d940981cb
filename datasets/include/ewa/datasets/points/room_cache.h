// Prepared room cache: one HDF5 file per room with coord float32 [N,3], color uint8 [N,3],
// segment int16 [N], instance int16 [N] (+ optional normal float32 [N,3]).
#pragma once

#include "ewa/datasets/points/point_cloud.h"

#include <string>

namespace ewa::datasets {

/// True when the library was built with HDF5 (EWA_HAVE_HDF5).
bool have_hdf5();

/// Writes `cloud` to `path` (temp name + rename, never half-written). segment/instance are
/// stored as int16 (values must fit; -1 = ignore). Throws without HDF5.
void write_room_h5(const std::string& path, const PointCloudData& cloud);

/// Reads a room written by write_room_h5 (segment/instance widened to int64). Missing
/// optional datasets give undefined fields. Throws naming the path on a bad file.
PointCloudData read_room_h5(const std::string& path);

/// True when `path` exists and holds a readable, consistent room (used to resume).
bool room_h5_valid(const std::string& path);

}  // namespace ewa::datasets
