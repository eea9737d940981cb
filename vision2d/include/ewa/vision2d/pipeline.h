// The image-classification pipeline behind `ewa train` / `ewa eval` (task:
// image_classification): train with the engine, collapse the MoE layers into the dense ViT,
// export model.safetensors, evaluate with per-class accuracy and a confusion matrix, report.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "ewa/core/pipeline.h"
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

/// Number of parameters of a module.
int64_t count_parameters(const torch::nn::Module& module);

}  // namespace ewa::vision2d
