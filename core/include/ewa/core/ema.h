// Model EMA: an exponential moving average of a model's weights kept beside the training
// weights (train.ema), swapped in for evaluation and copied in for export.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ewa/core/train_options.h"

namespace ewa {

/// Named tensors in the order of named_parameters() then named_buffers().
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

class ModelEma {
 public:
  /// Shadow = a copy of `model`'s current parameters and buffers (on their device).
  ModelEma(torch::nn::Module& model, const EmaOptions& options);

  /// Decay used by the update after `updates` earlier updates (warmup rule when enabled).
  double decay_at(int64_t updates) const;
  /// One EMA update from `model` (call after the optimizer step; the caller applies
  /// every_n_steps). Floating tensors are averaged, integer buffers copied. Returns the decay.
  double update(torch::nn::Module& model);
  /// Exchanges the model's values and the shadow (twice = unchanged); evaluation swaps around.
  void swap(torch::nn::Module& model);
  /// Copies the shadow into the model (end of training: export the averaged weights).
  void copy_to(torch::nn::Module& model) const;
  int64_t updates() const { return updates_; }
  const EmaOptions& options() const { return options_; }

  /// The shadow on the CPU, for checkpoints.
  NamedTensors state() const;
  /// Restores a shadow saved by state() (names and shapes must match the model's); throws
  /// std::invalid_argument naming the first tensor that does not.
  void load(const NamedTensors& shadow, int64_t updates);

 private:
  EmaOptions options_;
  std::vector<std::string> names_;
  std::vector<torch::Tensor> shadow_;
  std::vector<bool> floating_;
  int64_t updates_ = 0;
};

/// Names of `model`'s BatchNorm modules (empty when it has none). The EMA averages their
/// running statistics like every floating buffer, and averaged statistics need not belong to
/// averaged weights (README "Evidence": the mOSD Point Transformer's EMA predicted a single
/// class), so the trainer recomputes them (train.ema.bn_batches) or warns.
std::vector<std::string> batchnorm_modules(torch::nn::Module& model);

/// The running mean and variance tensors of `model`'s BatchNorm layers that track statistics.
std::vector<torch::Tensor> batchnorm_statistics(torch::nn::Module& model);

/// Recomputes the running statistics of `model`'s BatchNorm layers (1-, 2- and 3-d, those that
/// track statistics) from the batches that `forward_next` runs, at most `max_batches` of them
/// (SWA's update_bn): statistics reset, then each layer takes the plain mean of the batches'
/// statistics, while every other module is in eval mode (no dropout; MoE layers evaluate as
/// their averaged expert: the network that is evaluated and exported). `forward_next` runs one
/// forward and returns false when there is no more data. Momentum and the model's mode are
/// restored; with no batch at all the statistics are left as they were. Returns the batches run.
int64_t recompute_batchnorm(torch::nn::Module& model, const std::function<bool()>& forward_next, int64_t max_batches);

/// Swaps the EMA into `model` for the scope's lifetime (no-op when `ema` is null).
class EmaSwapGuard {
 public:
  EmaSwapGuard(ModelEma* ema, torch::nn::Module& model) : ema_(ema), model_(model) {
    if (ema_) ema_->swap(model_);
  }
  ~EmaSwapGuard() {
    if (ema_) ema_->swap(model_);
  }
  EmaSwapGuard(const EmaSwapGuard&) = delete;
  EmaSwapGuard& operator=(const EmaSwapGuard&) = delete;

 private:
  ModelEma* ema_;
  torch::nn::Module& model_;
};

}  // namespace ewa
