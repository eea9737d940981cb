// Optimizers of the training engine: AdamW / SGD (momentum, Nesterov) over parameter groups
// (no weight decay on norms, biases, position embeddings, class token; per-group lr factors).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "ewa/core/train_options.h"

namespace ewa {

/// One parameter group: its parameters (with their names), weight decay and lr multiplier.
struct ParamGroupSpec {
  std::string name;  ///< e.g. "decay", "no_decay", "decay@head"
  std::vector<std::string> param_names;
  std::vector<torch::Tensor> params;
  double weight_decay = 0.0;
  double lr_mult = 1.0;
};

/// True when a parameter gets no weight decay: 0/1-dimensional tensors (biases, norm
/// scales/shifts, LayerScale gammas) and names containing pos_embed / cls_token / norm.
bool is_no_decay_param(const std::string& name, const torch::Tensor& param);

/// Splits the trainable parameters of `model` into groups by (decay?, lr multiplier).
/// `opts.lr_mult` maps a name prefix to a factor (longest prefix wins). Empty groups are
/// dropped; the order is deterministic (decay before no_decay, then by multiplier key).
std::vector<ParamGroupSpec> build_param_groups(const torch::nn::Module& model, const OptimizerOptions& opts);

/// torch::optim::AdamW whose step updates each parameter in one fused pass over its memory
/// (weight decay, both moments, bias correction and the parameter update), where LibTorch 1.13's
/// AdamW runs eight tensor ops (eight passes, four temporaries) per parameter. Same options,
/// same per-parameter state (AdamWParamState: step, exp_avg, exp_avg_sq) and checkpoint format;
/// results equal torch::optim::AdamW's to rounding (the same formula, contracted to FMAs).
/// amsgrad, sparse, non-contiguous or non-float/double parameters take AdamW's own step.
class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

/// An optimizer together with the lr multiplier of each of its param groups, so that a
/// schedule can set lr(group) = schedule_lr * multiplier.
struct Optimizer {
  std::unique_ptr<torch::optim::Optimizer> optim;
  std::vector<double> lr_mult;  ///< one per param group, same order
  std::vector<std::string> group_names;

  /// Sets every group's lr to `lr * lr_mult[g]`.
  void set_lr(double lr);
  /// Learning rate of group `g`.
  double group_lr(size_t g) const;
};

/// Builds AdamW or SGD (opts.name) over build_param_groups(model, opts).
Optimizer make_optimizer(const torch::nn::Module& model, const OptimizerOptions& opts);

}  // namespace ewa
