// PointNet's `indoor3d_sem_seg_hdf5_data` (S3DIS cut into 1x1 m blocks of 4096 points):
// ply_data_all_*.h5 with `data` float32 [B,4096,9] and `label` uint8 [B,4096], listed by
// all_files.txt, with room_filelist.txt naming the room of each block.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace ewa::datasets {

struct PointNetIndoor3d {
  torch::Tensor data;   ///< float32 [B,P,9]: block-centred xyz, rgb in [0,1], room-normalised xyz
  torch::Tensor label;  ///< int64 [B,P] class index (S3DIS order)
  std::vector<std::string> rooms;  ///< B entries, e.g. "Area_1_conferenceRoom_1"
  std::vector<int> areas;          ///< B entries, area number parsed from rooms (0 if none)
};

/// Reads the folder (the one with all_files.txt). `areas` keeps blocks of those areas only
/// (e.g. {1,2,3,4,6} for training on the Area-5 split); empty = all. Paths listed in
/// all_files.txt are resolved against the folder, its parent, then by file name.
/// Throws (naming the file) on missing files, shape/dtype mismatches, or a room list whose
/// length differs from the block count. Needs HDF5.
PointNetIndoor3d read_pointnet_indoor3d(const std::string& dir, const std::vector<int>& areas = {});

}  // namespace ewa::datasets
