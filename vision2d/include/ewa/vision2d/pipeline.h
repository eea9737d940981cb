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
/// After training, in the run directory: model.safetensors (MoE layers collapsed to the
/// dense ViT, timm names, class names / normalisation / image size in the metadata),
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

/// What export_checkpoint() did.
struct CheckpointExport {
  std::vector<int64_t> moe_blocks;  ///< blocks that were MoE layers (empty: dense run)
  int64_t num_experts = 0;
  double max_abs_diff = 0.0;        ///< max |MoE eval logits - dense logits| on the probe
  int64_t params_train = 0;         ///< parameters of the checkpoint's (MoE) model
  int64_t params = 0;               ///< parameters of the exported dense ViT
  int64_t step = 0;                 ///< optimizer steps of the checkpoint
  bool has_class_names = false;     ///< the dataset was readable: class names in the metadata
};

/// `ewa convert CHECKPOINT`: builds the model of the run's config `cfg`, loads the trainer
/// checkpoint's weights (optimizer state ignored), collapses every MoE layer into the dense
/// FFN, verifies the collapse on `probe_batch` seeded random images (throws when max |diff|
/// exceeds `tolerance`, e.g. for a learned router whose routed output is not the expert mean),
/// and writes `out` with the same metadata as the training's model.safetensors (so `ewa
/// classify` takes it). Class names come from the config's dataset when it is readable here.
CheckpointExport export_checkpoint(const ImageClassificationConfig& cfg, const std::string& checkpoint,
                                   const std::string& out, int64_t probe_batch, uint64_t seed, double tolerance);

/// Number of parameters of a module.
int64_t count_parameters(const torch::nn::Module& module);

}  // namespace ewa::vision2d
