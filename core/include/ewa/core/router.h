// The one routing interface of the MoE layer: a router turns tokens into a RoutingPlan
// (index dispatch + combine weights per expert slot, optional dense Soft-MoE mixing, aux
// losses, stats) that MoELayerImpl executes. Built-ins are created by name in make_router().
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ewa/core/options.h"

namespace ewa {

/// What a router decided for one forward pass over tokens x [B, T, D] (N = B*T tokens).
///
/// Sparse plans (every router but Soft MoE) fill `dispatch_index` / `combine_weight`:
/// expert e, capacity slot c processes token `dispatch_index[e][c]` (flat index into the
/// B*T tokens, -1 = empty slot) and its output is added to that token scaled by
/// `combine_weight[e][c]`. A token may sit in several slots (top-k) or in none (dropped:
/// the MoE layer outputs zero for it, so the block's residual passes it through).
///
/// Dense plans (Soft MoE, Puigcerver et al. 2023) fill `soft_dispatch` / `soft_combine`
/// instead: slot s of expert e of image b takes sum_t soft_dispatch[b,t,e,s] * x[b,t] and
/// token t gets sum_{e,s} soft_combine[b,t,e,s] * y[b,e,s].
struct RoutingPlan {
  torch::Tensor dispatch_index;  ///< [E, C] int64, flat token index in [0, B*T) or -1
  torch::Tensor combine_weight;  ///< [E, C] floating (x's dtype), 0 on empty slots
  /// Optional inverse of dispatch_index for plans where each token sits in at most one
  /// slot (RUP, top-1): [B*T] int64 flat slot e*C + c of each token, or -1 (dropped).
  /// When set, the MoE layer combines by a gather (inverse permutation) instead of a
  /// scatter-add; it must agree with dispatch_index.
  torch::Tensor token_slot;
  torch::Tensor soft_dispatch;   ///< optional [B, T, E, S] floating (columns sum to 1 over T)
  torch::Tensor soft_combine;    ///< optional [B, T, E, S] floating (rows sum to 1 over E*S)
  /// Auxiliary losses, each already multiplied by its weight (scalar tensors with grad).
  /// The MoE layer sums them; the trainer adds the model's total to the task loss.
  std::map<std::string, torch::Tensor> aux_losses;
  /// Detached statistics for logging, e.g. "expert_load" [E] (fraction of tokens per
  /// expert), "dropped_fraction" scalar. Tensors, so no device sync happens while routing.
  std::map<std::string, torch::Tensor> stats;

  bool is_soft() const { return soft_dispatch.defined(); }
  /// Sum of aux_losses (undefined when there are none).
  torch::Tensor total_aux_loss() const {
    torch::Tensor total;
    for (const auto& [name, loss] : aux_losses) total = total.defined() ? total + loss : loss;
    return total;
  }
};

/// Base class of every router. Subclasses implement route(); they read is_training() for
/// train-only behaviour (noise, random partitions) and may read targets() (labels set by
/// the model before the forward, for super-class guided routing).
class RouterImpl : public torch::nn::Module {
 public:
  explicit RouterImpl(int64_t num_experts) : num_experts_(num_experts) {
    TORCH_CHECK(num_experts >= 1, "router: num_experts must be >= 1, got ", num_experts);
  }
  ~RouterImpl() override = default;

  /// Routes x [B, T, D] (floating) to the experts. Must return either a sparse plan with
  /// dispatch_index/combine_weight [E, C] or a dense (soft) plan [B, T, E, S].
  virtual RoutingPlan route(const torch::Tensor& x) = 0;

  /// Registry name ("rup", "soft_moe", ...).
  virtual std::string name() const = 0;

  /// Tokens per routing group (0 = the whole batch is one group). See route_grouped().
  virtual int64_t group_size() const { return 0; }

  /// Routes x [B, T, D] in groups of group_size() tokens (flat order), each group routed
  /// independently by route() as one sequence [1, G, D] (V-MoE routing groups), and merges the
  /// group plans into one: expert e's slots are the groups' slots side by side ([E, groups *
  /// C_max], -1 padded), each auxiliary loss and statistic is the mean over the groups. Without
  /// groups (or one group) it is route(x). Throws when group_size does not divide B*T.
  RoutingPlan route_grouped(const torch::Tensor& x);

  /// True when, in eval mode, the MoE layer should skip routing and run the averaged
  /// expert (mean of the expert weights): the EWA/RUP semantics, identical to the model
  /// collapsed by collapse_to_dense(). Learned routers keep routing at eval (false).
  virtual bool averaged_expert_at_eval() const { return false; }

  int64_t num_experts() const { return num_experts_; }

  /// Called by the VisionTransformer with the tokens entering the first MoE block
  /// (tokens [B, T, D], the output of the layer before it; `num_prefix_tokens` class
  /// tokens first) before that block runs. Default: ignored. The per-image router routes
  /// on these.
  virtual void observe_block_input(const torch::Tensor& tokens, int64_t num_prefix_tokens) {
    (void)tokens;
    (void)num_prefix_tokens;
  }

  /// Labels of the current batch ([B] int64), or an undefined tensor to clear them.
  void set_targets(torch::Tensor targets) { targets_ = std::move(targets); }
  const torch::Tensor& targets() const { return targets_; }

 protected:
  int64_t num_experts_;
  torch::Tensor targets_;
};

using RouterPtr = std::shared_ptr<RouterImpl>;

/// Capacity per expert for `num_tokens` tokens each sent to `k` experts:
/// ceil(k * num_tokens * capacity_factor / num_experts) rounded up to a multiple of
/// `multiple`, at least 1; capacity_factor == 0 means dropless (k * num_tokens).
int64_t expert_capacity(int64_t num_tokens, int64_t num_experts, int64_t k,
                        double capacity_factor, int64_t multiple);

/// Checks a plan against the tokens it routes (shapes, dtypes; no device sync); throws
/// c10::Error naming `router_name` and the offending field.
void validate_plan(const RoutingPlan& plan, int64_t batch, int64_t tokens, int64_t num_experts,
                   const std::string& router_name);

/// Random Uniform Partition (EWA, arXiv 2308.06093): one random permutation of the B*T
/// tokens per forward, split into E near-equal chunks (the first (B*T) % E experts get one
/// token more), expert i takes chunk i with combine weight 1. Every token lands in exactly
/// one slot. At eval time the MoE layer uses the averaged expert instead.
class RupRouterImpl : public RouterImpl {
 public:
  /// `seed`: when given, a private CPU generator makes the partitions reproducible;
  /// otherwise the global LibTorch generator is used (seeded by seed_everything()).
  explicit RupRouterImpl(int64_t num_experts, std::optional<uint64_t> seed = std::nullopt);

  RoutingPlan route(const torch::Tensor& x) override;
  std::string name() const override { return "rup"; }
  bool averaged_expert_at_eval() const override { return true; }

  /// Uses a private CPU generator seeded with `seed` from now on.
  void reseed(uint64_t seed);

  /// The partition for n tokens: [E, ceil(n/E)] int64 flat indices, -1 in the padding
  /// slots of the experts that get floor(n/E) tokens. On CPU; the caller moves it.
  torch::Tensor partition(int64_t n);

 private:
  std::optional<at::Generator> generator_;
};

/// Connects the routers of one model's MoE layers, given in depth order, that share a
/// decision: for `per_image` the first router computes the per-image expert choice and
/// every later one reuses it (Mobile V-MoE). No-op for the other routers. Called by the
/// VisionTransformer constructor and by upcycle_to_moe().
void link_routers(const std::vector<RouterPtr>& routers_in_depth_order);

/// Creates the router named `options.name()` for tokens of width `dim` and `num_experts`
/// experts. The one registry of built-in routers (router_registry.cpp). Throws
/// std::invalid_argument listing the known names for an unknown name, and naming the
/// key (router.k, router.capacity_factor, ...) for options invalid with `num_experts`.
/// Learned routers are documented in routers.h.
RouterPtr make_router(const RouterOptions& options, int64_t dim, int64_t num_experts);

/// True when `root`'s module tree holds at least one router that keeps routing in eval mode
/// (averaged_expert_at_eval() false: a learned router). Such a model is exported and served
/// as the routed MoE it was trained as; dense and RUP/EWA models collapse to the dense network.
bool routes_at_eval(const torch::nn::Module& root);

/// `options` with every "-1 = reference default" field (noise_std, importance_loss,
/// load_loss) replaced by the router's default from google-research/vmoe (see options.h).
RouterOptions resolve_router_defaults(RouterOptions options);

/// Names make_router() can build.
std::vector<std::string> available_routers();

}  // namespace ewa
