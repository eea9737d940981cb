// Scenes of the segmentation pipeline: train/val scene lists for every data format of
// SegDataOptions, reading any single scene given on the command line, per-point input
// features, and the seeded training-sample recipe (augment, grid sample, sphere crop).
#pragma once

#include <torch/torch.h>

#include <ATen/core/Generator.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ewa/datasets/points/point_cloud.h"
#include "ewa/datasets/points/pointnet.h"
#include "ewa/pointcloud/config.h"

namespace ewa::pointcloud {

/// An ordered list of scenes of one split with an (optionally caching) loader. Every loaded
/// scene has coord float32 [N,3], segment int64 [N] (-1 = ignore; undefined when unlabelled),
/// and color / normal when the format has them.
class SceneSet {
 public:
  struct Entry {
    std::string name;  ///< e.g. "Area_5/office_19", "learn12"
    std::string path;  ///< file / folder read (or the PointNet folder)
    int64_t block = -1;  ///< pointnet_h5: block row
  };
  SceneSet() = default;
  /// `pointnet`: the blocks of a pointnet_h5 folder (entries refer to rows by `block`).
  SceneSet(const SegDataOptions& options, std::vector<Entry> entries,
           std::shared_ptr<const datasets::PointNetIndoor3d> pointnet = nullptr);

  int64_t size() const { return static_cast<int64_t>(entries_.size()); }
  bool empty() const { return entries_.empty(); }
  const Entry& entry(int64_t i) const { return entries_.at(static_cast<size_t>(i)); }
  /// Reads scene i (from memory when data.cache and already read). Thread-safe. Throws
  /// naming the path on bad files and on labels >= the number of classes.
  datasets::PointCloudData load(int64_t i) const;
  /// Keeps only the first n scenes (n <= size()).
  void truncate(int64_t n);

 private:
  struct Shared;
  SegDataOptions options_;
  std::vector<Entry> entries_;
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<const datasets::PointNetIndoor3d> pointnet_;
};

/// Training and validation scenes.
struct SegSplits {
  SceneSet train;
  SceneSet val;
};

/// Lists the scenes of `options` (validation = area `test_area` for the area formats, or
/// val_files). Throws naming root when a split is empty or root is missing.
SegSplits make_seg_splits(const SegDataOptions& options, int64_t test_area);

/// How a single scene file is read by `ewa segment` (from the model's metadata).
struct SceneReadSpec {
  std::vector<std::string> class_names;  ///< labels outside are dropped (gt unknown)
  std::string label_field = "label";
  std::string label_map;                 ///< "" = identity, "mosd", or rules
};

/// Reads an S3DIS room folder (Annotations), a Pointcept room folder (coord.npy), a prepared
/// room (.h5), a .ply / .pcd (label field -> segment through label_map), or a .npy array
/// [N,3] xyz / [N,6] xyz rgb (0..255) / [N,7] xyz rgb label. Non-finite points are dropped
/// (their source indices are in `index`). segment is left undefined when the scene has no
/// usable labels. `source_points` receives the point count of the source (before dropping).
/// Throws naming the path.
datasets::PointCloudData read_scene_file(const std::string& path, const SceneReadSpec& spec,
                                         int64_t* source_points = nullptr);

/// Channel count of a feature list (xyz, rgb, normal: 3 each).
int64_t feature_channels(const std::vector<std::string>& features);

/// Per-point input features float32 [N,C]: concatenation of xyz (coord), rgb (color / 255)
/// and normal in the order of `features`. Missing colour or normals are an error naming
/// the scene.
torch::Tensor make_features(const datasets::PointCloudData& cloud, const std::vector<std::string>& features);

/// One training sample from a scene: transforms (seeded by `gen`), train-mode grid sampling,
/// sphere crop to max_points around a random point, coordinates shifted so their minimum is
/// 0. Returns the sample (coord, color/normal, segment).
datasets::PointCloudData make_training_sample(datasets::PointCloudData scene, const SegDataOptions& options,
                                              at::Generator& gen);

/// Shifts coord so that its per-axis minimum is 0 (the PTv1 input normalisation).
torch::Tensor shift_to_origin(const torch::Tensor& coord);

/// Splits `s` on commas (trimming blanks); "a, b" -> {"a", "b"}.
std::vector<std::string> split_list(const std::string& s);

}  // namespace ewa::pointcloud
