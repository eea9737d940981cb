// The expert-bank interface, the ViT's stacked FFN experts, the one MoE layer executing any
// RoutingPlan (gather -> batched expert matmuls -> weighted combine), plus MoE placement.
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

/// The expert-bank interface of every MoE layer: E experts of one layer shape whose weights
/// are stacked, one tensor per role with the expert as leading dimension [E, ...]. The ViT's
/// FFN experts (StackedExperts) and the Point Transformer's pointwise linears implement it;
/// MoELayer runs it on a routing plan, apply_ewa_() averages expert_tensors(), collapse
/// replaces the layer by mean_module().
class ExpertBankImpl : public torch::nn::Module {
 public:
  ~ExpertBankImpl() override = default;
  virtual int64_t num_experts() const = 0;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  /// xs [E, C, in] -> [E, C, out]: expert e applied to its C slot inputs (batched matmuls).
  virtual torch::Tensor forward(const torch::Tensor& xs) = 0;
  /// Expert e alone: x [n, in] -> [n, out] (same math as row e of forward).
  virtual torch::Tensor forward_expert(int64_t e, const torch::Tensor& x) = 0;
  /// The averaged expert on x [..., in] -> [..., out]: exactly the computation of
  /// mean_module() (bit-identical outputs), used by RUP layers in eval mode.
  virtual torch::Tensor forward_mean(const torch::Tensor& x) = 0;
  /// The stacked tensors EWA averages (the registered parameters, each [E, ...]), in place.
  virtual std::vector<torch::Tensor> expert_tensors() = 0;
  /// A new dense module (the layer's dense type: the ViT's Mlp, a bias-free nn::Linear) holding
  /// the mean expert, on the bank's device and dtype: what collapse puts in the layer's place.
  virtual std::shared_ptr<torch::nn::Module> mean_module() const = 0;
};
using ExpertBankPtr = std::shared_ptr<ExpertBankImpl>;

/// E two-layer GELU FFN experts stored as one tensor per role:
/// w1 [E, in, hidden], b1 [E, hidden], w2 [E, hidden, out], b2 [E, out].
/// Registered names: w1, b1, w2, b2 (under `<block>.mlp.experts.`).
class StackedExpertsImpl : public ExpertBankImpl {
 public:
  StackedExpertsImpl(int64_t num_experts, int64_t in_features, int64_t hidden_features, int64_t out_features,
                     double drop = 0.0);

  /// xs [E, C, in] -> [E, C, out]: expert e applied to its C slot inputs (two baddbmm).
  torch::Tensor forward(const torch::Tensor& xs) override;
  /// Expert e alone: x [n, in] -> [n, out] (two addmm; same math as row e of forward).
  torch::Tensor forward_expert(int64_t e, const torch::Tensor& x) override;
  /// The averaged expert (mean of the weights over E) on x [..., in] -> [..., out]. Runs
  /// exactly the computation of the dense Mlp holding those means (bit-identical outputs).
  torch::Tensor forward_mean(const torch::Tensor& x) override;
  /// {w1, b1, w2, b2}.
  std::vector<torch::Tensor> expert_tensors() override { return {w1, b1, w2, b2}; }
  /// A dense Mlp (fc1, fc2; same dropout) holding mean_dense().
  std::shared_ptr<torch::nn::Module> mean_module() const override;

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

  int64_t num_experts() const override { return w1.size(0); }
  int64_t in_features() const override { return w1.size(1); }
  int64_t hidden_features() const { return w1.size(2); }
  int64_t out_features() const override { return w2.size(2); }

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

/// The one MoE layer of the project (ViT FFN experts, Point Transformer pointwise linears): a
/// router (child "router") and an expert bank (child "experts"). Tokens with no slot get
/// output 0 (the block's residual carries them). In eval mode with a router whose
/// averaged_expert_at_eval() is true (RUP) it runs the averaged expert, exactly like the
/// collapsed dense model; learned routers keep routing (the model as trained).
class MoELayerImpl : public torch::nn::Module {
 public:
  MoELayerImpl(RouterPtr router, ExpertBankPtr experts);

  /// x [B, T, in] floating -> [B, T, out]; x [N, in] is routed as one sequence of N tokens
  /// (the Point Transformer's points of a batch) -> [N, out].
  torch::Tensor forward(const torch::Tensor& x);
  /// Executes `plan` on x [B, T, in] (or [N, in] as [1, N, in]) -> [B, T, out] / [N, out]
  /// (no routing; validated first).
  torch::Tensor execute(const torch::Tensor& x, const RoutingPlan& plan);

  /// Sum of the weighted auxiliary losses of the last training forward (undefined if none).
  const torch::Tensor& last_aux_loss() const { return last_aux_loss_; }
  /// Each weighted auxiliary loss of the last training forward by name (importance, load, z, ...).
  const std::map<std::string, torch::Tensor>& last_aux_losses() const { return last_aux_losses_; }
  /// Routing statistics of the last forward that routed.
  const std::map<std::string, torch::Tensor>& last_stats() const { return last_stats_; }

  /// The expert bank as its concrete type (throws when it is another bank).
  template <class Bank>
  Bank& bank() const {
    auto* b = dynamic_cast<Bank*>(experts.get());
    TORCH_CHECK(b, "MoELayer: the expert bank is not of the requested type");
    return *b;
  }

  RouterPtr router;
  ExpertBankPtr experts;

 private:
  torch::Tensor last_aux_loss_;
  std::map<std::string, torch::Tensor> last_aux_losses_;
  std::map<std::string, torch::Tensor> last_stats_;
};
TORCH_MODULE(MoELayer);

/// Holder of an MoE FFN: an MoELayer whose bank is StackedExperts (constructs like Mlp).
class MoEMlp : public torch::nn::ModuleHolder<MoELayerImpl> {
 public:
  MoEMlp(std::nullptr_t) : ModuleHolder(nullptr) {}  // NOLINT(google-explicit-constructor)
  MoEMlp(std::shared_ptr<MoELayerImpl> layer) : ModuleHolder(std::move(layer)) {}  // NOLINT
  /// Router built by make_router(router, in_features, num_experts).
  MoEMlp(int64_t in_features, int64_t hidden_features, int64_t out_features, int64_t num_experts,
         const RouterOptions& router = {}, double drop = 0.0);
  /// With an explicit router (tests, custom routers).
  MoEMlp(int64_t in_features, int64_t hidden_features, int64_t out_features, int64_t num_experts, RouterPtr router,
         double drop = 0.0);
  /// The FFN experts.
  StackedExpertsImpl& ffn() const { return get()->bank<StackedExpertsImpl>(); }
};

/// Scalar routing telemetry of every MoELayer under `root` (module path, e.g. "blocks.3.mlp"
/// or "enc4.1.linear1" -> name -> value) from its last forward that routed: the scalar stats
/// the router recorded (dropped_fraction, mean_gate, router_entropy) and each weighted
/// auxiliary loss of the last training forward as "aux.<name>". Host syncs: call it on
/// logging steps only. Layers that never routed (RUP in eval) report what they have.
std::map<std::string, std::map<std::string, double>> moe_routing_scalars(const torch::nn::Module& root);

/// Indices (sorted, unique) of the blocks that become MoE for a ViT of `depth` blocks:
/// `blocks` when non-empty (each must be in [0, depth)); otherwise every n-th block (blocks
/// n-1, 2n-1, ...; `every` unset = 2) or the last n blocks. Ignores options.enabled() (the
/// caller decides). Throws std::invalid_argument on an out-of-range index, `last` > depth,
/// both `every` and `last` set, or an empty selection.
std::vector<int64_t> moe_block_indices(const MoEOptions& options, int64_t depth);

}  // namespace ewa
