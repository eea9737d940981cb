// SemSegTask: the TrainTask of `task: semantic_segmentation` (Point Transformer on scenes
// concatenated with offsets, per-point cross-entropy with ignore index, whole-scene
// evaluation with mIoU / mAcc / OA).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ewa/core/trainer.h"
#include "ewa/pointcloud/config.h"
#include "ewa/pointcloud/inference.h"
#include "ewa/pointcloud/metrics.h"
#include "ewa/pointcloud/point_transformer.h"
#include "ewa/pointcloud/scene_data.h"

namespace ewa::pointcloud {

/// Result of a whole-split evaluation.
struct SegEvaluation {
  SegMetrics metrics;
  std::vector<std::string> scenes;
  double seconds = 0;
  int64_t forwards = 0;  ///< network calls
};

/// Evaluates `fn` on every scene of `scenes` (at most max_scenes, 0 = all) with `options`;
/// labels of each scene compared to argmax of the summed logits. `progress` shows a bar.
SegEvaluation evaluate_scenes(const SceneSet& scenes, const SegLogitsFn& fn, const SceneInferenceOptions& options,
                              int64_t num_classes, int64_t max_scenes = 0, bool progress = false);

/// Inference options of a config's eval section (`mode` and `tta` chosen by the caller).
SceneInferenceOptions inference_options(const SemSegConfig& config, const std::string& mode, bool tta);

/// A logits function running `model` in eval mode on the model's device (inputs moved), under
/// bf16 autocast when `bf16` (logits come back bf16; callers accumulate in fp32).
SegLogitsFn model_logits_fn(PointTransformer model, bool bf16 = false);

/// Cross-entropy of logits [N,K] against labels [N] int64 (-1 = ignore), optional class
/// weights [K]; 0 (with gradient) when no point is labelled.
torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                                const torch::Tensor& class_weights = {});

class SemSegTask : public TrainTask {
 public:
  /// Builds the model from config.model.pt (seeded by run.seed by the caller).
  SemSegTask(SemSegConfig config, SegSplits splits);
  SemSegTask(SemSegConfig config, SegSplits splits, PointTransformer model);

  torch::nn::Module& model() override { return *net_; }
  PointTransformer& net() { return net_; }
  int64_t batches_per_epoch() const override;
  void set_shard(int rank, int world_size) override;
  /// Order: a seeded permutation of (scene x loop) from (seed, epoch); rank r takes its
  /// contiguous share; sample augmentation seeded by (seed, epoch, position).
  void begin_epoch(int64_t epoch, int64_t start_batch) override;
  std::optional<Batch> next_batch() override;
  /// Batch tensors: coord [N,3] float, feat [N,C] float, offset [B] int64, label [N] int64.
  StepOutput training_step(const Batch& batch) override;
  /// val.miou / val.macc / val.oa with eval.mode_during_training (no TTA).
  std::map<std::string, double> evaluate() override;
  std::map<std::string, std::vector<double>> routing_stats() override;

  const SemSegConfig& config() const { return config_; }
  const SegSplits& splits() const { return splits_; }

 private:
  SemSegConfig config_;
  SegSplits splits_;
  PointTransformer net_{nullptr};
  torch::Tensor class_weights_;
  int rank_ = 0, world_ = 1;
  int64_t epoch_ = 0, pos_ = 0;
  torch::Tensor order_;  // [per-rank items] scene indices of this rank's share
};

}  // namespace ewa::pointcloud
