// Mixture-of-Experts FFN with stacked expert weights run by batched matmuls, executing any
// RoutingPlan (gather -> baddbmm experts -> weighted index_add back), plus MoE placement.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ewa/core/options.h"
#include "ewa/core/router.h"

namespace ewa {

/// E two-layer GELU FFN experts stored as one tensor per role:
/// w1 [E, in, hidden], b1 [E, hidden], w2 [E, hidden, out], b2 [E, out].
/// Registered names: w1, b1, w2, b2 (under `<block>.mlp.experts.`).
class StackedExpertsImpl : public torch::nn::Module {
 public:
  StackedExpertsImpl(int64_t num_experts, int64_t in_features, int64_t hidden_features, int64_t out_features,
                     double drop = 0.0);

  /// xs [E, C, in] -> [E, C, out]: expert e applied to its C slot inputs (two baddbmm).
  torch::Tensor forward(const torch::Tensor& xs);
  /// Expert e alone: x [n, in] -> [n, out] (two addmm; same math as row e of forward).
  torch::Tensor forward_expert(int64_t e, const torch::Tensor& x);
  /// The averaged expert (mean of the weights over E) on x [..., in] -> [..., out]. Runs
  /// exactly the computation of the dense Mlp holding those means (bit-identical outputs).
  torch::Tensor forward_mean(const torch::Tensor& x);

  /// Every expert becomes a copy of the dense FFN given in Linear layout:
  /// fc1_w [hidden, in], fc1_b [hidden], fc2_w [out, hidden], fc2_b [out].
  void copy_from_dense(const torch::Tensor& fc1_w, const torch::Tensor& fc1_b, const torch::Tensor& fc2_w,
                       const torch::Tensor& fc2_b);
  /// Mean expert in Linear layout: {fc1_w [hidden, in], fc1_b, fc2_w [out, hidden], fc2_b}.
  std::vector<torch::Tensor> mean_dense() const;
  /// Independent initialisation of each expert with the ViT scheme `weight_init`
  /// ("trunc_normal": N(0, 0.02) truncated at +-2 std; "xavier": xavier-uniform), biases 0
  /// (xavier: N(0, 1e-6) like timm's jax init of MLP biases).
  void reset_parameters(const std::string& weight_init);

  int64_t num_experts() const { return w1.size(0); }
  int64_t in_features() const { return w1.size(1); }
  int64_t hidden_features() const { return w1.size(2); }
  int64_t out_features() const { return w2.size(2); }

  torch::Tensor w1, b1, w2, b2;

 private:
  double drop_;
};
TORCH_MODULE(StackedExperts);

/// Slot inputs [E, C, in] -> slot outputs [E, C, out] (the experts of a layer).
using ExpertsFn = std::function<torch::Tensor(const torch::Tensor& slot_inputs)>;
/// Expert e alone on its tokens [n, in] -> [n, out] (the ragged path of execute_plan).
using ExpertFn = std::function<torch::Tensor(int64_t expert, const torch::Tensor& tokens)>;

/// Fraction of empty slots above which execute_plan runs each expert on its own tokens
/// (ragged) instead of one batched matmul over the padded [E, C] slots.
inline constexpr double kRaggedPaddingFraction = 0.25;

/// execute_plan's choice for a sparse plan over `num_tokens` tokens: the routed-token count of
/// each expert when more than kRaggedPaddingFraction of the [E, C] slots are empty, else {}
/// (padded path). A plan with token_slot (at most one slot per token) and fewer than
/// num_tokens + E slots stays padded without counting (its padded work is at most the dense
/// FFN's; no host sync, e.g. RUP or token choice k 1 with capacity factor 1).
std::vector<int64_t> ragged_expert_counts(const RoutingPlan& plan, int64_t num_tokens);

/// The one dispatch/combine path of every MoE layer (ViT FFN experts, Point Transformer
/// linear experts): validates `plan` against tokens x [B, T, in], gathers the slot inputs
/// (sparse plans: token indices per expert slot; Soft MoE: token mixtures per slot), runs
/// `experts` once on [E, C, in] and scatters the weighted outputs back -> [B, T, out]. Tokens
/// with no slot get 0 (the block's residual carries them). `who` names the layer in errors.
/// When `expert` is given and ragged_expert_counts() says so (more than kRaggedPaddingFraction
/// of the slots empty: unbalanced or dropless routing, the capacity is the fullest expert's), each
/// expert instead runs once on exactly its routed tokens, so the work is the routed tokens,
/// not E x the fullest expert. Both paths compute the same function.
torch::Tensor execute_plan(const torch::Tensor& x, const RoutingPlan& plan, int64_t num_experts, int64_t out_features,
                           const ExpertsFn& experts, const std::string& who, const ExpertFn& expert = nullptr);

/// MoE FFN: a router (child "router") and stacked experts (child "experts"). Tokens with no
/// slot get output 0 (the block's residual carries them). In eval mode with a router whose
/// averaged_expert_at_eval() is true (RUP) it runs the averaged expert, exactly like the
/// collapsed dense model.
class MoEMlpImpl : public torch::nn::Module {
 public:
  /// Router built by make_router(router, in_features, num_experts).
  MoEMlpImpl(int64_t in_features, int64_t hidden_features, int64_t out_features, int64_t num_experts,
             const RouterOptions& router = {}, double drop = 0.0);
  /// With an explicit router (tests, custom routers).
  MoEMlpImpl(int64_t in_features, int64_t hidden_features, int64_t out_features, int64_t num_experts,
             RouterPtr router, double drop = 0.0);

  /// x [B, T, in] floating -> [B, T, out].
  torch::Tensor forward(const torch::Tensor& x);
  /// Executes `plan` on x [B, T, in] -> [B, T, out] (no routing; validated first).
  torch::Tensor execute(const torch::Tensor& x, const RoutingPlan& plan);

  /// Sum of the weighted auxiliary losses of the last training forward (undefined if none).
  const torch::Tensor& last_aux_loss() const { return last_aux_loss_; }
  /// Routing statistics of the last forward that routed.
  const std::map<std::string, torch::Tensor>& last_stats() const { return last_stats_; }

  StackedExperts experts{nullptr};
  RouterPtr router;

 private:
  torch::Tensor last_aux_loss_;
  std::map<std::string, torch::Tensor> last_stats_;
};
TORCH_MODULE(MoEMlp);

/// Indices (sorted, unique) of the blocks that become MoE for a ViT of `depth` blocks:
/// `blocks` when non-empty (each must be in [0, depth)); otherwise the union of
/// every n (blocks n-1, 2n-1, ...) and the last n. Ignores options.enabled() (the caller
/// decides). Throws std::invalid_argument on an out-of-range index, `last` > depth, or an
/// empty selection.
std::vector<int64_t> moe_block_indices(const MoEOptions& options, int64_t depth);

}  // namespace ewa
