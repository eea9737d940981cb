// Train / eval entry points of the 3D tasks (called by `ewa train` / `ewa eval` through the
// task table) and the model metadata that `ewa segment` reads back.
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include "ewa/core/pipeline.h"
#include "ewa/pointcloud/config.h"
#include "ewa/pointcloud/point_transformer.h"

namespace ewa::pointcloud {

/// Semantic segmentation: Trainer fit (resumable), MoE collapsed to dense, RUN_DIR/model.safetensors
/// with class names / palette / features / grid size in the metadata, final whole-scene
/// evaluation (eval.mode, eval.tta) into RUN_DIR/eval_val.json and a printed per-class table.
/// data.six_fold: six such runs into RUN_DIR/fold_<a> and RUN_DIR/eval_six_fold.json.
PipelineResult train_semantic_segmentation(const SemSegConfig& config, const TrainRequest& request);
/// Evaluates RUN_DIR's checkpoint (best | last | path) or a model file on the validation scenes.
PipelineResult eval_semantic_segmentation(const SemSegConfig& config, const EvalRequest& request);

/// Point classification: fit, collapse, RUN_DIR/model.safetensors, final OA/mAcc with voting.
PipelineResult train_point_classification(const PointClsConfig& config, const TrainRequest& request);
PipelineResult eval_point_classification(const PointClsConfig& config, const EvalRequest& request);

/// Metadata keys written next to the weights by the 3D pipelines.
constexpr const char* kMetaTask = "ewa.task";          ///< semantic_segmentation | point_classification
constexpr const char* kMetaClasses = "ewa.classes";    ///< JSON array of class names
constexpr const char* kMetaPalette = "ewa.palette";    ///< JSON array of [r,g,b]
constexpr const char* kMetaFeatures = "ewa.features";  ///< JSON array, e.g. ["xyz","rgb"]
constexpr const char* kMetaGridSize = "ewa.grid_size"; ///< metres, decimal text
constexpr const char* kMetaLabelField = "ewa.label_field";
constexpr const char* kMetaLabelMap = "ewa.label_map";
constexpr const char* kMetaEvalMaxPoints = "ewa.eval_max_points";
constexpr const char* kMetaNumPoints = "ewa.num_points";  ///< classification

/// Display colours of `class_names`: the S3DIS palette for the 13 S3DIS classes, otherwise
/// a fixed qualitative palette.
std::vector<std::array<int, 3>> class_palette(const std::vector<std::string>& class_names);

/// Metadata of a segmentation model trained with `config`.
std::map<std::string, std::string> segmentation_metadata(const SemSegConfig& config);

/// A deployed segmentation model and what is needed to run it.
struct SegModelInfo {
  std::vector<std::string> class_names;
  std::vector<std::array<int, 3>> palette;
  std::vector<std::string> features;
  double grid_size = 0.04;
  int64_t eval_max_points = 0;
  std::string label_field = "label";
  std::string label_map;
};
/// Parses the metadata written by segmentation_metadata (error naming `source` when a key is
/// missing or malformed).
SegModelInfo parse_segmentation_metadata(const std::map<std::string, std::string>& metadata,
                                         const std::string& source);

}  // namespace ewa::pointcloud
