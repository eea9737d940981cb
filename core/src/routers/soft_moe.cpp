// Soft MoE router (Puigcerver et al., "From Sparse to Soft Mixtures of Experts", 2023):
// slots are softmax-over-tokens mixtures, outputs softmax-over-slots mixtures.
#include <torch/torch.h>

#include <cmath>

#include "ewa/core/routers.h"
#include "routing_stats.h"

namespace ewa {

SoftMoERouterImpl::SoftMoERouterImpl(const RouterOptions& options, int64_t dim, int64_t num_experts)
    : RouterImpl(num_experts), options_(options) {
  TORCH_CHECK(dim >= 1, "router 'soft_moe': token width must be >= 1, got ", dim);
  const int64_t s = options.slots_per_expert();
  TORCH_CHECK(s >= 1, "router.slots_per_expert must be >= 1, got ", s);
  // LeCun-normal slot parameters (the paper's init); only their direction matters.
  slots = register_parameter("slots", torch::randn({dim, num_experts * s}) / std::sqrt(static_cast<double>(dim)));
  scale = register_parameter("scale", torch::ones({}));
}

RoutingPlan SoftMoERouterImpl::route(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 3, "router 'soft_moe': expected tokens [B, T, D], got ", x.sizes());
  const int64_t b = x.size(0), t = x.size(1), e = num_experts_, s = options_.slots_per_expert();
  auto phi = slots.to(x.scalar_type());
  auto xn = x / x.norm(2, -1, /*keepdim=*/true).clamp_min(1e-6);            // [B, T, D]
  auto pn = phi / phi.norm(2, 0, /*keepdim=*/true).clamp_min(1e-6);         // [D, E*S]
  auto logits = scale.to(x.scalar_type()) * torch::matmul(xn, pn);          // [B, T, E*S]
  RoutingPlan plan;
  plan.soft_dispatch = torch::softmax(logits, 1).view({b, t, e, s});        // columns sum to 1 over T
  auto combine = torch::softmax(logits, 2);                                 // [B, T, E*S] rows sum to 1
  plan.soft_combine = combine.view({b, t, e, s});
  if (is_training() && options_.z_loss() > 0) {
    plan.aux_losses["z"] = options_.z_loss() * torch::logsumexp(logits, 2).pow(2).mean();
  }
  auto per_expert = plan.soft_combine.detach().sum({0, 1, 3}).to(torch::kDouble);  // [E]
  plan.stats["expert_load"] = per_expert / per_expert.sum();
  plan.stats["dropped_fraction"] = torch::zeros({}, torch::kDouble);
  plan.stats["mean_gate"] = torch::full({}, 1.0 / static_cast<double>(e * s), torch::kDouble);
  plan.stats["router_entropy"] = detail::mean_entropy(combine);
  return plan;
}

}  // namespace ewa
