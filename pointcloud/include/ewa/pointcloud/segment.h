// Deployed segmentation (`ewa segment`): run a saved Point Transformer on a scene with
// fragment voting, and write the prediction as a labelled PLY and a .npy in source order.
#pragma once

#include <torch/torch.h>

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
  int64_t max_points = -1;   ///< < 0: the model's eval_max_points
  int64_t batch_points = 400000;
};

struct SegmentResult {
  torch::Tensor pred;        ///< int64 [N] class per point of the cloud
  torch::Tensor confidence;  ///< float32 [N] softmax probability of the predicted class (mean logits)
  std::optional<SegMetrics> metrics;  ///< when the cloud has ground truth
  SceneInferenceStats stats;
  double seconds = 0;
};

/// Segments `cloud` (coord, colour/normals as the model's features need) with `model` (eval
/// mode, its device).
SegmentResult segment_cloud(PointTransformer& model, const SegModelInfo& info, const datasets::PointCloudData& cloud,
                            const SegmentOptions& options);

/// Writes a binary PLY: x y z (float), red green blue (uchar; grey without colour), label
/// (int, the prediction) and gt (int) when the cloud has ground truth, plus a `comment
/// label=pred` header line so that viewers read `label` as the prediction. Temp + rename.
void write_prediction_ply(const std::string& path, const datasets::PointCloudData& cloud, const torch::Tensor& pred);

/// Predictions in source order: [source_points] int64, -1 for points dropped on reading
/// (non-finite); cloud.index maps cloud points to source rows (identity when undefined).
torch::Tensor prediction_in_source_order(const datasets::PointCloudData& cloud, const torch::Tensor& pred,
                                         int64_t source_points);

/// A class file for `ewa view --classes`: one `name r g b` line per class.
void write_class_file(const std::string& path, const SegModelInfo& info);

}  // namespace ewa::pointcloud
