// The image-classification TrainTask: a ViT (dense or with MoE FFNs) built from the config,
// the resumable threaded image loader, mixup/cutmix soft-target loss with label smoothing,
// router auxiliary losses, expert-load statistics and top-1/top-5 evaluation.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ewa/core/trainer.h"
#include "ewa/core/vit.h"
#include "ewa/datasets/image/loader.h"
#include "ewa/datasets/image/readers.h"
#include "ewa/vision2d/config.h"

namespace ewa::vision2d {

namespace img = ewa::datasets::image;

/// The data-selection fields of `cfg.data` (+ run seed) for load_image_splits().
img::ImageDataSpec data_spec(const ImageClassificationConfig& cfg);

/// Loader options of the config for the train (augmenting, shuffled) or eval loader. Images
/// are resized to model.vit.img_size; mean/std are data.mean/std or the dataset defaults.
img::ImageLoaderOptions loader_options(const ImageClassificationConfig& cfg, bool train);

/// The normalisation statistics the loader uses for `cfg` (data.mean/std or the defaults).
img::NormStats norm_stats(const ImageClassificationConfig& cfg);

/// Builds the model of the config (ViT + MoE layers when model.moe.enabled). Seeds nothing.
///
/// With `load_init` and model.init_from set (training), the dense ViT is built, the file's
/// timm-named weights are loaded (strict: one line naming the file and every missing,
/// unexpected or mis-shaped tensor; a head of another class count is left fresh) and its FFNs
/// are upcycled into the MoE experts as copies (upcycle_to_moe), so the step-0 MoE model
/// computes the dense model's function.
VisionTransformer build_model(const ImageClassificationConfig& cfg, bool load_init = false);

/// Throws std::runtime_error (naming the config keys) when the data does not fit the model:
/// class count vs model.vit.num_classes, image channels vs model.vit.in_chans,
/// data.image_size vs model.vit.img_size.
void check_data_matches_model(const ImageClassificationConfig& cfg, const img::ImageDataset& data);

/// Accuracy, loss and (optionally) the confusion matrix of a model on a loader.
struct EvalMetrics {
  double top1 = 0.0, top5 = 0.0, loss = 0.0;
  int64_t count = 0;
  torch::Tensor confusion;   ///< int64 [K, K], rows = true class, columns = predicted
  double seconds = 0.0;      ///< wall time of the forward passes (data loading excluded)
};

/// Runs `model` (eval mode, no grad; the caller sets the mode) over every batch of epoch 0 of
/// `loader` on `device`. top5 uses min(5, K) classes.
EvalMetrics evaluate_model(VisionTransformer& model, img::ImageLoader& loader, torch::Device device);

/// The TrainTask of `ewa train` for `task: image_classification`.
class ImageClassificationTask : public TrainTask {
 public:
  /// Opens the datasets of cfg.data (throws naming the dataset/path) and builds the model.
  /// Seeds LibTorch's generator with run.seed first so the initial weights are reproducible.
  explicit ImageClassificationTask(ImageClassificationConfig cfg);
  /// With already opened datasets (tests, the results script).
  ImageClassificationTask(ImageClassificationConfig cfg, img::ImageSplits splits);

  torch::nn::Module& model() override { return *model_; }
  VisionTransformer& vit() { return model_; }
  int64_t batches_per_epoch() const override;
  void set_shard(int rank, int world_size) override;
  void begin_epoch(int64_t epoch, int64_t start_batch) override;
  std::optional<Batch> next_batch() override;
  /// batch "image" float [B, C, H, W], "label" int64 [B], optional "soft_target" float [B, K].
  StepOutput training_step(const Batch& batch) override;
  /// {"val.top1", "val.top5", "val.loss"} on the evaluation split.
  std::map<std::string, double> evaluate() override;
  /// Fraction of tokens per expert of each MoE layer in the last training forward, keyed
  /// "blocks.<i>.mlp".
  std::map<std::string, std::vector<double>> routing_stats() override;

  const ImageClassificationConfig& config() const { return cfg_; }
  const img::ImageSplits& splits() const { return splits_; }
  /// The evaluation loader (created on first use).
  img::ImageLoader& eval_loader();

 private:
  void make_train_loader();

  ImageClassificationConfig cfg_;
  img::ImageSplits splits_;
  VisionTransformer model_{nullptr};
  std::unique_ptr<img::ImageLoader> train_loader_, eval_loader_;
  int rank_ = 0, world_ = 1;
};

}  // namespace ewa::vision2d
