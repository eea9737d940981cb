// ModelNet40 readers: modelnet40_ply_hdf5_2048 (HDF5), modelnet40_normal_resampled (text
// `x,y,z,nx,ny,nz`), and raw ModelNet .off meshes with area-weighted surface sampling.
#pragma once

#include "ewa/datasets/points/point_cloud.h"

#include <string>
#include <vector>

namespace ewa::datasets {

/// modelnet40_ply_hdf5_2048 split.
struct ModelNetH5 {
  torch::Tensor points;  ///< float32 [n,P,3]
  torch::Tensor normal;  ///< float32 [n,P,3] or undefined (when the files have no `normal`)
  torch::Tensor label;   ///< int64 [n]
  std::vector<std::string> class_names;  ///< from shape_names.txt
};

/// Reads `dir`/{split}_files.txt (split "train" or "test") and every listed .h5 (resolved
/// against `dir`, its parent, then by file name), concatenating `data`, `label` [n,1] or
/// [n] and `normal` if every file has it. Labels outside the class list throw. Needs HDF5.
ModelNetH5 read_modelnet_h5(const std::string& dir, const std::string& split);

/// One shape of modelnet40_normal_resampled.
struct ModelNetShapeEntry {
  std::string id;    ///< "airplane_0001"
  std::string path;  ///< <root>/airplane/airplane_0001.txt
  int64_t label = 0;
};

/// Class names from <root>/*_shape_names.txt (modelnet40_ or modelnet10_; 40 wins).
std::vector<std::string> read_modelnet_class_names(const std::string& root);

/// Entries of <root>/modelnet{40,10}_{split}.txt; the class is the id without its trailing
/// _NNNN (class names may contain '_', e.g. night_stand_0001). Unknown classes throw.
std::vector<ModelNetShapeEntry> list_modelnet_resampled(const std::string& root, const std::string& split);

/// Reads one `x,y,z,nx,ny,nz` file (commas or blanks; 3 or 6 columns) -> coord [+normal].
/// `max_points` > 0 keeps the first that many (the files are FPS-ordered). Bad lines
/// throw with file:line.
PointCloudData read_modelnet_txt(const std::string& path, int64_t max_points = 0);

/// A triangle mesh.
struct TriMesh {
  torch::Tensor vertices;  ///< float32 [V,3]
  torch::Tensor faces;     ///< int64 [F,3] (polygons fan-triangulated)
};

/// Reads an OFF mesh; accepts the broken header with counts glued to it (`OFF6586 5534 0`),
/// comments (#) and blank lines. Indices out of range throw with file:line.
TriMesh read_off(const std::string& path);

/// Samples `n` points uniformly on the surface (triangles chosen with probability
/// proportional to area, uniform barycentric inside). Returns coord float32 [n,3] and the
/// face normal float32 [n,3]. Deterministic for a given seed. Throws for zero total area.
PointCloudData sample_mesh_surface(const TriMesh& mesh, int64_t n, uint64_t seed);

}  // namespace ewa::datasets
