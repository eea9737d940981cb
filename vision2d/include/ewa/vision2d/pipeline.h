// The image-classification pipeline behind `ewa train` / `ewa eval` (task:
// image_classification): train with the engine, collapse the MoE layers into the dense ViT,
// export model.safetensors, evaluate with per-class accuracy and a confusion matrix, report.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "ewa/core/pipeline.h"
#include "ewa/core/safetensors.h"
#include "ewa/core/vit.h"
#include "ewa/vision2d/config.h"
#include "ewa/vision2d/task.h"

namespace ewa::vision2d {

/// Metadata keys that model.safetensors carries besides the core's ewa.vit (so that
/// `ewa classify` needs nothing else).
constexpr const char* kMetaTask = "ewa.task";                ///< "image_classification"
constexpr const char* kMetaClassNames = "ewa.class_names";   ///< JSON array of strings
constexpr const char* kMetaMean = "ewa.mean";                ///< JSON array, per channel (or 1 value)
constexpr const char* kMetaStd = "ewa.std";                  ///< JSON array
constexpr const char* kMetaImageSize = "ewa.image_size";     ///< decimal: square input side in px
constexpr const char* kMetaDataset = "ewa.dataset";          ///< data.dataset of the training config

/// `ewa train` for image classification. Fresh or resumed (req.resume: a checkpoint or a
/// run directory, which uses its checkpoints/last.ckpt and defaults the run dir to it).
/// After training, in the run directory: model.safetensors (RUP/EWA MoE layers collapsed to
/// the dense ViT; a learned router's model stays the routed MoE; timm names, class names /
/// normalisation / image size in the metadata),
/// eval_<split>.json (top-1/top-5/loss, per-class accuracy, confusion matrix, params,
/// inference time), confusion.csv, summary.json and report.html. Prints a short summary.
/// Returns exit_code 1 on divergence (message logged); an interrupted run (SIGINT/SIGTERM)
/// returns 0 with the checkpoint written and a resume hint logged. Other failures throw.
PipelineResult train(const ImageClassificationConfig& cfg, const TrainRequest& req);

/// `ewa eval RUN_DIR`: loads req.checkpoint (best | last | model | a .ckpt/.safetensors
/// path; best falls back to last when the run has no best), evaluates on req.split ("" =
/// the config's evaluation split; train | test | val), prints the per-class table and
/// writes the JSON (req.out or RUN_DIR/eval_<split>.json).
PipelineResult evaluate(const ImageClassificationConfig& cfg, const EvalRequest& req);

/// The evaluation report of a model: metrics, per-class accuracy, confusion matrix, model
/// size and inference time. `confusion` int64 [K, K] (rows true, columns predicted).
nlohmann::json eval_report(const EvalMetrics& m, const std::vector<std::string>& class_names,
                           const std::string& split, const std::string& weights, int64_t params);

/// The per-class table and confusion matrix (for <= 20 classes) as printable text.
std::string format_eval_table(const nlohmann::json& report);

/// Writes `confusion` int64 [K, K] as RUN_DIR/confusion.csv (first row: class names).
void write_confusion_csv(const std::string& path, const torch::Tensor& confusion,
                         const std::vector<std::string>& class_names);

/// The metadata model.safetensors carries besides the core's ewa.vit: task, class names
/// (omitted when `class_names` is empty), normalisation, image size, dataset.
safetensors::Metadata export_metadata(const ImageClassificationConfig& cfg,
                                      const std::vector<std::string>& class_names);

/// How `ewa convert` turns a model into its export (see convert_model()).
struct ConvertOptions {
  int64_t probe_batch = 4;  ///< seeded random images that verify a RUP/EWA collapse
  uint64_t seed = 0;        ///< seed of the probe batch
  double tolerance = 1e-4;  ///< max |MoE - dense| allowed on the probe (RUP/EWA)
  /// Average the experts of a learned-router model (off: such a model is refused, it is
  /// served as the routed MoE). The accuracy this costs is measured on the run's evaluation split.
  bool average = false;
};

/// What convert_model() did.
struct ConvertResult {
  std::vector<int64_t> moe_blocks;  ///< blocks that were MoE layers (empty: dense model)
  int64_t num_experts = 0;
  std::string router;               ///< router of the MoE layers ("" for a dense model)
  double max_abs_diff = 0.0;        ///< RUP/EWA: max |MoE eval logits - dense logits| on the probe
  bool averaged_learned = false;    ///< a learned-router model was averaged (--average)
  std::string split;                ///< learned router: the evaluation split measured
  int64_t eval_images = 0;
  double top1_routed = 0.0, top1_averaged = 0.0;  ///< learned router: before / after averaging
};

/// The one collapse path of `ewa convert` (model files and checkpoints): a dense model is left
/// as is; RUP/EWA MoE layers collapse to their expert means, verified on a probe batch
/// (throws when max |diff| > tolerance); a learned-router model (routes_at_eval()) throws
/// std::invalid_argument unless `options.average`, then it is evaluated on the evaluation
/// split of `cfg` (required: throws when null) before and after the averaging.
ConvertResult convert_model(VisionTransformer& model, const ConvertOptions& options,
                            const ImageClassificationConfig* cfg);

/// What export_checkpoint() did.
struct CheckpointExport {
  ConvertResult convert;
  int64_t params_train = 0;         ///< parameters of the checkpoint's (MoE) model
  int64_t params = 0;               ///< parameters of the exported dense ViT
  int64_t step = 0;                 ///< optimizer steps of the checkpoint
  bool has_class_names = false;     ///< the dataset was readable: class names in the metadata
};

/// `ewa convert CHECKPOINT`: builds the model of the run's config `cfg`, loads the trainer
/// checkpoint's weights (optimizer state ignored), runs convert_model() and writes `out` with
/// the same metadata as the training's model.safetensors (so `ewa classify` takes it). Class
/// names come from the config's dataset when it is readable here.
CheckpointExport export_checkpoint(const ImageClassificationConfig& cfg, const std::string& checkpoint,
                                   const std::string& out, const ConvertOptions& options);


}  // namespace ewa::vision2d
