// Train / eval entry points of the 3D tasks (called by `ewa train` / `ewa eval` through the
// task table) and the model metadata that `ewa segment` reads back.
#pragma once

#include <array>
#include <functional>
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

/// Metadata of a classification model trained with `config` on a dataset of `class_names`.
std::map<std::string, std::string> classification_metadata(const PointClsConfig& config,
                                                           const std::vector<std::string>& class_names);

/// How `ewa convert` turns a Point Transformer into its deployed model (see convert_point_model()).
struct PointConvertOptions {
  int64_t probe_points = 4096;  ///< seeded random points (two clouds) that verify a RUP/EWA collapse
  uint64_t seed = 0;            ///< seed of the probe clouds
  double tolerance = 1e-4;      ///< max |MoE - dense| allowed on the probe (RUP/EWA)
  /// Average the experts of a learned-router model (off: such a model is refused, it is served
  /// as the routed MoE). The metric this costs is measured on the run's evaluation split.
  bool average = false;
};

/// A model's score on a run's evaluation split (mIoU for segmentation, OA for classification).
struct PointEvaluation {
  std::string split;   ///< e.g. "val"
  std::string metric;  ///< "mIoU" | "OA"
  int64_t items = 0;   ///< scenes / shapes evaluated
  double value = 0.0;  ///< in [0, 1]
};
using PointEvalFn = std::function<PointEvaluation(PointTransformer&)>;
/// The final evaluation of a run (eval.mode / eval.tta on the validation scenes; OA with
/// eval.voting on the validation shapes), on run.device; the data is read on the first call.
PointEvalFn segmentation_eval_fn(const SemSegConfig& config);
PointEvalFn classification_eval_fn(const PointClsConfig& config);

/// What convert_point_model() did.
struct PointConvertResult {
  int64_t moe_layers = 0;        ///< MoE linears of the input (0: a dense model)
  int64_t num_experts = 0;
  std::string router;            ///< router of the MoE linears ("" for a dense model)
  double max_abs_diff = 0.0;     ///< RUP/EWA: max |MoE eval logits - dense logits| on the probe
  int64_t probe_points = 0;      ///< RUP/EWA: points of the probe clouds
  bool averaged_learned = false; ///< a learned-router model was averaged (`average`)
  PointEvaluation routed, averaged;  ///< learned router: before / after averaging
};

/// The one collapse path of `ewa convert` for Point Transformers (model files and checkpoints):
/// a dense model is left as is; RUP/EWA MoE linears collapse to their expert means, verified on
/// seeded probe clouds (throws when max |diff| > tolerance); a learned-router model throws
/// std::invalid_argument unless `options.average`, then `evaluate` (required: throws when empty)
/// scores it before and after the averaging. The model ends on the CPU in eval mode.
PointConvertResult convert_point_model(PointTransformer& net, const PointConvertOptions& options,
                                       const PointEvalFn& evaluate);

/// What export_point_checkpoint() did.
struct PointCheckpointExport {
  PointConvertResult convert;
  int64_t step = 0;          ///< optimizer steps of the checkpoint
  int64_t params_train = 0;  ///< parameters of the checkpoint's (MoE) network
  int64_t params = 0;        ///< parameters of the exported network
};

/// `ewa convert CHECKPOINT` of a 3D run: builds the network of `config`, loads the trainer
/// checkpoint's weights (optimizer state ignored; a damaged file fails before anything is
/// built), runs convert_point_model() (scored on the run's evaluation split) and writes `out`
/// with the metadata of the training's model.safetensors, so `ewa segment` / `ewa eval` take it.
/// Classification reads its dataset for the class names.
PointCheckpointExport export_point_checkpoint(const SemSegConfig& config, const std::string& checkpoint,
                                              const std::string& out, const PointConvertOptions& options);
PointCheckpointExport export_point_checkpoint(const PointClsConfig& config, const std::string& checkpoint,
                                              const std::string& out, const PointConvertOptions& options);

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
