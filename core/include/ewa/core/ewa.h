// Experts Weights Averaging (Huang et al., arXiv 2308.06093): the share-rate schedule and
// the in-place EWA update of every MoE layer of a model.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <map>
#include <string>

#include "ewa/core/options.h"

namespace ewa {

/// Share rate b as a function of the optimizer step (`step` = number of optimizer steps
/// taken so far, >= 0). With b_max = options.share_rate(), K = options.warmup_steps():
///   constant: b_max;
///   linear:   b_max * min(step, K) / K  (0 at step 0, b_max from step K on);
///   cosine:   b_max * (1 - cos(pi * min(step, K) / K)) / 2;
/// K == 0 gives b_max for every schedule. With options.end_step() = S > 0 the rate is 0 for
/// every step > S (early EWA).
class ShareRateSchedule {
 public:
  explicit ShareRateSchedule(const EwaOptions& options);
  double at(int64_t step) const;

 private:
  EwaOptions options_;
};

/// One EWA step with share rate `beta` in [0, 1] on every MoE layer (every ExpertBankImpl
/// module, its expert_tensors()) found in `root`'s tree, in place and without autograd, simultaneously for all N
/// experts and for weights and biases:
///   W_i <- (1 - b) W_i + b/(N-1) * sum_{j != i} W_j
///        = (1 - b - b/(N-1)) W_i + b/(N-1) * sum_j W_j.
/// Keeps the expert mean; shrinks every expert's distance to it by 1 - b N/(N-1).
/// Layers with one expert are left alone. Returns the number of MoE layers updated.
int64_t apply_ewa_(torch::nn::Module& root, double beta);

/// How far the experts of each MoE layer (ExpertBankImpl with >= 2 experts) in `root`'s tree
/// are from their mean, relative to the mean: sqrt(mean_i ||W_i - W_mean||^2) / ||W_mean||
/// over all its expert tensors, keyed by the MoE layer's module name (blocks.N.mlp). One EWA step multiplies it
/// by |1 - b N/(N-1)|; gradients that differ between experts grow it. Logged per layer as
/// routing.<layer>.expert_spread in metrics.jsonl.
std::map<std::string, double> expert_spread(torch::nn::Module& root);

}  // namespace ewa
