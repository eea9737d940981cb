// Deployed segmentation (`ewa segment`): run a saved Point Transformer on a scene with
// bounded fragment voting, and write the prediction (PLY with confidence, label .npy,
// float16 probabilities .npy, JSON summary).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>

#include "ewa/datasets/points/point_cloud.h"
#include "ewa/pointcloud/inference.h"
#include "ewa/pointcloud/metrics.h"
#include "ewa/pointcloud/pipeline.h"
#include "ewa/pointcloud/point_transformer.h"

namespace ewa::pointcloud {

struct SegmentOptions {
  std::string mode = "fragments";  ///< fragments | voxel
  bool tta = false;
  double grid_size = -1;     ///< < 0: the model's
  int64_t max_points = -1;   ///< chunk size; < 0: the model's eval_max_points (0 there: kDefaultChunkPoints)
  int64_t fragments = kDefaultFragments;  ///< cap on test fragments (1..kMaxFragments)
  int64_t batch_points = 0;  ///< points per forward (<= 0: the chunk size)
  bool keep_probabilities = false;  ///< fill SegmentResult::probabilities
  /// Forwards under bf16 autocast (as training and its evaluation run with train.precision
  /// auto on a CPU with native bf16); coordinates, neighbour search and the vote sums stay fp32.
  bool bf16 = false;
  std::function<void(const SceneProgress&)> progress;  ///< after every forward (may be empty)
};

struct SegmentResult {
  torch::Tensor pred;        ///< int64 [N] class per point of the cloud
  torch::Tensor confidence;  ///< float32 [N] softmax probability of the predicted class (mean logits)
  torch::Tensor probabilities;  ///< float32 [N,K] softmax of the mean logits (keep_probabilities only)
  std::optional<SegMetrics> metrics;  ///< when the cloud has ground truth
  SceneInferenceStats stats;
  int64_t chunk_points = 0;  ///< chunk size used
  double seconds = 0;
};

/// Segments `cloud` (coord, colour/normals as the model's features need) with `model` (eval
/// mode, its device).
SegmentResult segment_cloud(PointTransformer& model, const SegModelInfo& info, const datasets::PointCloudData& cloud,
                            const SegmentOptions& options);

/// Writes a binary PLY through datasets::write_point_ply: x y z (float), red green blue
/// (uchar; grey without colour), pred (int), gt (int, when the cloud has ground truth),
/// confidence (float, when defined). pred int [N]; confidence float [N] or undefined.
void write_prediction_ply(const std::string& path, const datasets::PointCloudData& cloud, const torch::Tensor& pred,
                          const torch::Tensor& confidence = {});

/// Per-class probabilities as a float16 .npy [source_points, K] in source order (rows of
/// points dropped on reading are NaN). probabilities float [N,K].
void write_probabilities_npy(const std::string& path, const datasets::PointCloudData& cloud,
                             const torch::Tensor& probabilities, int64_t source_points);

/// The JSON summary of one scene: {"scene", "input", "points", "source_points", "classes",
/// "mode", "grid_size", "chunk_points", "fragments", "augmentations", "forwards", "chunks",
/// "points_evaluated", "points_inherited" (points of voxels fuller than F, given their voxel's mean), "seconds", "peak_rss_bytes", "predicted": {class: points}, and with
/// ground truth "metrics": metrics_json (per-class IoU, mIoU, mAcc, OA, confusion)}.
nlohmann::json segment_summary(const SegmentResult& result, const datasets::PointCloudData& cloud,
                               const SegModelInfo& info, const SegmentOptions& options, int64_t source_points);

/// Peak resident set size of this process so far, in bytes (getrusage; 0 when unknown).
int64_t peak_rss_bytes();

/// Predictions in source order: [source_points] int64, -1 for points dropped on reading
/// (non-finite); cloud.index maps cloud points to source rows (identity when undefined).
torch::Tensor prediction_in_source_order(const datasets::PointCloudData& cloud, const torch::Tensor& pred,
                                         int64_t source_points);

/// A class file for `ewa view --classes`: one `name r g b` line per class.
void write_class_file(const std::string& path, const SegModelInfo& info);

}  // namespace ewa::pointcloud
