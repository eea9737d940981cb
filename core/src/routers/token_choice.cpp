// Token-choice routers (softmax / Sinkhorn top-k with capacity, BPR and noise; V-MoE, S-BASE).
#include <torch/torch.h>

#include "ewa/core/routers.h"
#include "routing_stats.h"

namespace ewa {

TokenChoiceRouterImpl::TokenChoiceRouterImpl(const RouterOptions& options, int64_t dim, int64_t num_experts,
                                             bool sinkhorn)
    : LinearGateRouterImpl(options, dim, num_experts), sinkhorn_(sinkhorn) {}

RoutingPlan TokenChoiceRouterImpl::route(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 3, "router '", name(), "': expected tokens [B, T, D], got ", x.sizes());
  const int64_t n = x.size(0) * x.size(1), e = num_experts_, k = options_.k();
  auto tokens = x.reshape({n, x.size(2)});                      // [N, D]
  auto l = logits(tokens);                                      // [N, E]
  auto probs = torch::softmax(l.noisy, 1);                      // [N, E]
  torch::Tensor experts;                                        // [N, k]
  if (sinkhorn_) {
    auto log_plan = sinkhorn_log_plan(l.noisy, options_.epsilon(), options_.iterations(), 1.0,
                                      static_cast<double>(n) / static_cast<double>(e));  // [N, E]
    experts = std::get<1>(log_plan.topk(k, 1));
  } else {
    experts = std::get<1>(probs.detach().topk(k, 1));
  }
  auto gates = probs.gather(1, experts);                        // [N, k]
  auto slots = assign_to_slots(experts, gates, e, options_.capacity_factor(), options_.capacity_multiple(),
                               options_.batch_prioritized());
  RoutingPlan plan;
  plan.dispatch_index = slots.dispatch_index;
  plan.combine_weight = slots.combine_weight;
  plan.token_slot = slots.token_slot;
  add_common_losses(plan, l, probs);
  add_load_loss(plan, l, k);
  detail::add_sparse_stats(plan, 1.0 - slots.kept.to(torch::kDouble).mean());
  return plan;
}

}  // namespace ewa
