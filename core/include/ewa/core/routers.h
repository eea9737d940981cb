// Learned routers of the MoE layer in the unified formulation of "Routers in Vision Mixture of
// Experts" (Liu et al., arXiv 2401.15969) plus the per-image router of Mobile V-MoE
// (Daxberger et al., arXiv 2309.04354), and the routing primitives they share.
#pragma once

#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "ewa/core/options.h"
#include "ewa/core/router.h"

namespace ewa {

// ---------------------------------------------------------------------------------------
// Primitives (exposed for tests and for custom routers).

/// Result of assigning token-expert choices to capacity slots.
struct SlotAssignment {
  torch::Tensor dispatch_index;  ///< [E, C] int64 token index or -1
  torch::Tensor combine_weight;  ///< [E, C] gates (differentiable w.r.t. `gates`), 0 on empty slots
  torch::Tensor token_slot;      ///< [N] int64 flat slot e*C + c per token or -1; only when k == 1
  torch::Tensor kept;            ///< [N, k] bool: choice j of token n got a slot
  int64_t capacity = 0;          ///< C
};

/// Token-choice slot assignment (V-MoE, Riquelme et al. 2021). `experts` [N, k] int64 (the
/// k distinct experts chosen by each token, best first), `gates` [N, k] floating. Choices
/// are served level by level (every token's 1st choice before any 2nd choice); within a
/// level in token order, or with `batch_prioritized` by decreasing top gate `gates[:, 0]`
/// (Batch Prioritized Routing). Each expert keeps its first C assignments, C =
/// expert_capacity(N, E, k, capacity_factor, multiple); later ones are dropped. With
/// capacity_factor == 0 (dropless) C is the largest expert load rounded up to `multiple`
/// (one host sync).
SlotAssignment assign_to_slots(const torch::Tensor& experts, const torch::Tensor& gates, int64_t num_experts,
                               double capacity_factor, int64_t multiple, bool batch_prioritized);

/// Entropic optimal transport by Sinkhorn iterations in the log domain (Cuturi 2013):
/// the plan P = exp(scores/epsilon + u_n + v_e) [N, E] with row sums ~ `row_mass` and
/// column sums ~ `col_mass` (N*row_mass must equal E*col_mass). Each iteration updates u
/// (rows exact) then v (columns exact). scores [N, E] floating; returns log P [N, E]
/// (no gradient: used for selection only).
torch::Tensor sinkhorn_log_plan(const torch::Tensor& scores, double epsilon, int64_t iterations, double row_mass,
                                double col_mass);

/// Sparsity-constrained optimal transport for expert choice, as in google-research/vmoe
/// (ksparse_projection_routing.py: quadratically regularised OT with a k-sparse constraint per
/// expert column; Liu et al. 2023, "Sparsity-constrained optimal transport"). `similarity`
/// [N, E] (the router's softmax gates), marginals: every token row 1, every expert column N/E.
/// The semi-dual over the token potentials alpha [N] is minimised with Adam (learning rate
/// `learning_rate`, betas 0.9 / 0.999, eps 1e-8, from alpha = 0) for `iterations` steps or until
/// the gradient norm is <= `tolerance` (jaxopt OptaxSolver's rule; 0 = never). Column j of the
/// plan = (N/E) * the projection of (alpha + similarity[:, j]) / (gamma N/E) onto the simplex
/// restricted to its top-`capacity` entries. Returns the plan [N, E] >= 0 (no gradient), each
/// column summing to N/E with at most `capacity` non-zeros.
torch::Tensor sparse_expert_plan(const torch::Tensor& similarity, int64_t capacity, double gamma = 1.0,
                                 int64_t iterations = 20, double learning_rate = 1e-2, double tolerance = 1e-3);

/// Squared coefficient of variation var/mean^2 (population variance) of v [E].
torch::Tensor cv_squared(const torch::Tensor& v);

/// Class -> super-class map from a text file: one `class,superclass` pair of integers per
/// line (0-based, every class 0..K-1 exactly once; '#' comments, blank lines and a
/// `class,superclass` header allowed). Super-classes must lie in [0, num_groups). Returns
/// [K] int64. Throws std::runtime_error naming the file and line.
torch::Tensor load_superclasses(const std::string& path, int64_t num_groups);

/// Super-classes for per-image routing (Mobile V-MoE): groups the K classes into `groups`
/// clusters of mutually confused classes. confusion [K, K] (rows true class, columns
/// predicted; counts or rates, >= 0) is row-normalised, symmetrised into the similarity
/// S = (R + R^T) / 2 with a zero diagonal, then clustered agglomeratively with average
/// linkage (merge the two clusters of highest mean similarity). With `balanced`, a merge
/// may not exceed ceil(K / groups) classes unless no such merge is left (then the smallest
/// merge is taken). Returns [K] int64 super-class ids in [0, groups), numbered by their
/// smallest class. Throws std::invalid_argument for a non-square or negative matrix or
/// groups outside [1, K].
torch::Tensor cluster_superclasses(const torch::Tensor& confusion, int64_t groups, bool balanced = true);

/// Writes a map [K] int64 as the `class,superclass` file read by load_superclasses().
void save_superclasses(const std::string& path, const torch::Tensor& map);

// ---------------------------------------------------------------------------------------
// Routers. All learned routers own a bias-free linear gate "gate" (Linear(D, E), weight
// [E, D]) except Soft MoE ("slots", "scale"). Training noise on the logits is N(0, sigma^2)
// with sigma = noise_std / E (V-MoE). Aux losses (each multiplied by its weight in
// RouterOptions and only computed when that weight is > 0, in training), all on the CLEAN
// logits as in google-research/vmoe:
//   importance: cv_squared(sum over tokens of the softmax gates)   (V-MoE, Shazeer 2017)
//   load:       cv_squared(mean over tokens of P(expert selected if its noise were redrawn),
//               threshold = the token's k-th largest noisy logit) for the token-choice and
//               per-image routers (needs noise_std > 0)
//   z:          mean over tokens of logsumexp(logits)^2              (ST-MoE, Zoph 2022)
// Routing groups (router.group_size) apply to the token- and expert-choice routers.
// Stats (detached): expert_load [E] (share of the dispatched assignments per expert, sums
// to 1), dropped_fraction (token choice: share of the N*k choices that found no slot;
// expert choice: share of tokens no expert took), mean_gate (mean combine weight of the
// dispatched assignments), router_entropy (mean entropy of the softmax gates, nats).
// Eval-time behaviour: every learned router keeps routing in eval mode, without noise and
// with the same capacity rule as in training; only `rup` runs the averaged expert.

/// Base of the routers with a linear gate: logits = gate(x) [N, E], plus noise
/// N(0, noise_std^2) in training.
class LinearGateRouterImpl : public RouterImpl {
 public:
  LinearGateRouterImpl(const RouterOptions& options, int64_t dim, int64_t num_experts);
  const RouterOptions& options() const { return options_; }
  int64_t group_size() const override { return options_.group_size(); }
  /// Standard deviation of the training noise on the logits: noise_std / E.
  double noise_sigma() const;

  torch::nn::Linear gate{nullptr};

 protected:
  struct Logits {
    torch::Tensor clean;  ///< [N, E] gate(x)
    torch::Tensor noisy;  ///< [N, E] clean + noise in training (== clean otherwise)
  };
  /// tokens [N, D] -> logits.
  Logits logits(const torch::Tensor& tokens);
  /// Adds the weighted importance and z losses (training only) and the router_entropy stat.
  /// probs [N, E] softmax of logits.noisy.
  void add_common_losses(RoutingPlan& plan, const Logits& logits, const torch::Tensor& probs) const;
  /// Adds the weighted load loss (training, noise_std > 0) for top-`k` selection.
  void add_load_loss(RoutingPlan& plan, const Logits& logits, int64_t k) const;

  RouterOptions options_;
};

/// Token choice (`softmax_token_choice`, `sinkhorn_token_choice`): each token picks its top-k
/// experts, by the softmax gates or by the Sinkhorn-balanced plan of the (noisy) logits
/// (entropic OT with `iterations` and `epsilon`, token mass 1, expert mass N/E; vmoe's
/// KL-projection router: epsilon 1, 20 iterations). Combine
/// weight = the softmax gate of the chosen expert. Capacity, BPR and dropless as in
/// assign_to_slots(); a dropped choice contributes nothing (residual pass-through).
class TokenChoiceRouterImpl : public LinearGateRouterImpl {
 public:
  TokenChoiceRouterImpl(const RouterOptions& options, int64_t dim, int64_t num_experts, bool sinkhorn);
  RoutingPlan route(const torch::Tensor& x) override;
  std::string name() const override { return sinkhorn_ ? "sinkhorn_token_choice" : "softmax_token_choice"; }

 private:
  bool sinkhorn_;
};

/// Expert choice (Zhou et al. 2022): each expert takes exactly C = min(N,
/// expert_capacity(N, E, 1, capacity_factor, capacity_multiple)) tokens of the batch.
/// Selection: top-C of the softmax gates (`softmax_expert_choice`), of the Sinkhorn plan
/// with expert mass C (`sinkhorn_expert_choice`), or of the sparsity-constrained plan
/// (`sparsity_constrained_expert_choice`, sparse_expert_plan() of the clean softmax gates with
/// gamma = epsilon and `iterations` Adam steps; a token outside the plan's support is not
/// dispatched, and this router uses no noise, as vmoe's k-sparse router).
/// Combine weight = softmax gate. A token may be taken by several experts or none.
class ExpertChoiceRouterImpl : public LinearGateRouterImpl {
 public:
  enum class Selection { kSoftmax, kSinkhorn, kSparsityConstrained };
  ExpertChoiceRouterImpl(const RouterOptions& options, int64_t dim, int64_t num_experts, Selection selection);
  RoutingPlan route(const torch::Tensor& x) override;
  std::string name() const override;

 private:
  Selection selection_;
};

/// Soft MoE (Puigcerver et al. 2023): S = slots_per_expert slots per expert, parameters
/// "slots" [D, E*S] and learned scalar "scale" (init 1). logits[b,t,s] = scale *
/// <x[b,t]/|x[b,t]|, slots[:,s]/|slots[:,s]|>; dispatch = softmax over tokens t, combine =
/// softmax over the E*S slots. Dense plan, no dropping; same at eval. Only the z loss
/// applies (on the combine logits).
class SoftMoERouterImpl : public RouterImpl {
 public:
  SoftMoERouterImpl(const RouterOptions& options, int64_t dim, int64_t num_experts);
  RoutingPlan route(const torch::Tensor& x) override;
  std::string name() const override { return "soft_moe"; }

  torch::Tensor slots;  ///< [D, E*S]
  torch::Tensor scale;  ///< [] learned temperature

 private:
  RouterOptions options_;
};

/// Per-image routing (Mobile V-MoE): one gate decision per image from its class token
/// (image_token "cls") or mean patch token ("mean") of the tokens entering the first MoE
/// block; the image's top-k experts (combine weight = softmax gate) process all its tokens
/// in every MoE layer of the model. The router of the first MoE layer is the leader (owns
/// "gate"); link_routers() makes the later ones followers (no parameters) that reuse the
/// leader's decision of the same forward. Never drops (capacity = the largest number of
/// images any expert got; capacity_factor is ignored; one host sync per forward).
/// Super-class guidance: with a super-class map (superclass_file or set_superclasses) and
/// labels from set_targets(), training adds superclass_weight * CE(logits [B, E],
/// superclass[label]) (super-class ids are expert ids). Without observe_block_input()
/// (a layer used outside a ViT) the leader routes on its own input x, token 0 ("cls")
/// or the mean token ("mean").
class PerImageRouterImpl : public LinearGateRouterImpl {
 public:
  PerImageRouterImpl(const RouterOptions& options, int64_t dim, int64_t num_experts);
  RoutingPlan route(const torch::Tensor& x) override;
  std::string name() const override { return "per_image"; }
  int64_t group_size() const override { return 0; }  // one decision per image
  void observe_block_input(const torch::Tensor& tokens, int64_t num_prefix_tokens) override;

  /// Makes this router reuse `leader`'s decisions (nullptr: route itself again).
  void follow(std::shared_ptr<PerImageRouterImpl> leader);
  bool is_follower() const { return leader_ != nullptr; }
  /// Class -> super-class map [K] int64 with values in [0, E) (undefined: no guidance).
  void set_superclasses(torch::Tensor map);
  const torch::Tensor& superclasses() const { return superclasses_; }
  /// Experts chosen per image in the last forward [B, k] int64 (leader or follower).
  const torch::Tensor& last_image_experts() const { return last_.experts; }

 private:
  struct ImageDecision {
    torch::Tensor experts;         ///< [B, k] int64
    torch::Tensor dispatch_index;  ///< [E, Ci] image index or -1
    torch::Tensor combine_weight;  ///< [E, Ci]
    std::map<std::string, torch::Tensor> aux_losses, stats;
  };
  ImageDecision decide(const torch::Tensor& image_features);

  std::shared_ptr<PerImageRouterImpl> leader_;
  torch::Tensor image_features_;  ///< [B, D] observed for the next route(), consumed by it
  torch::Tensor superclasses_;
  ImageDecision last_;
};

}  // namespace ewa
