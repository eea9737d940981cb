// Expert-choice routers (Zhou et al. 2022): each expert takes its top-C tokens by softmax
// gate, Sinkhorn plan, or sparsity-constrained transport plan.
#include <torch/torch.h>

#include "ewa/core/routers.h"
#include "routing_stats.h"

namespace ewa {

ExpertChoiceRouterImpl::ExpertChoiceRouterImpl(const RouterOptions& options, int64_t dim, int64_t num_experts,
                                               Selection selection)
    : LinearGateRouterImpl(options, dim, num_experts), selection_(selection) {}

std::string ExpertChoiceRouterImpl::name() const {
  switch (selection_) {
    case Selection::kSoftmax:
      return "softmax_expert_choice";
    case Selection::kSinkhorn:
      return "sinkhorn_expert_choice";
    case Selection::kSparsityConstrained:
      return "sparsity_constrained_expert_choice";
  }
  return "expert_choice";
}

RoutingPlan ExpertChoiceRouterImpl::route(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 3, "router '", name(), "': expected tokens [B, T, D], got ", x.sizes());
  const int64_t n = x.size(0) * x.size(1), e = num_experts_;
  const int64_t cap =
      std::min(n, expert_capacity(n, e, 1, options_.capacity_factor(), options_.capacity_multiple()));
  auto tokens = x.reshape({n, x.size(2)});                      // [N, D]
  auto l = logits(tokens);                                      // [N, E]
  const bool sparse = selection_ == Selection::kSparsityConstrained;
  if (sparse) l.noisy = l.clean;                                // vmoe's k-sparse router draws no noise
  auto probs = torch::softmax(l.noisy, 1);                      // [N, E]
  torch::Tensor key;                                            // [N, E] selection score, no grad
  switch (selection_) {
    case Selection::kSoftmax:
      key = probs.detach();
      break;
    case Selection::kSinkhorn:
      key = sinkhorn_log_plan(l.noisy, options_.epsilon(), options_.iterations(), 1.0,
                              static_cast<double>(n) / static_cast<double>(e));  // log plan
      break;
    case Selection::kSparsityConstrained:
      key = sparse_expert_plan(probs, cap, options_.epsilon(), options_.iterations());  // [N, E]
      break;
  }
  auto [top, index] = key.topk(cap, 0);                         // [C, E]
  index = index.t().contiguous();                               // [E, C]
  if (sparse) index = torch::where(top.t() > 0, index, torch::full({}, -1, index.options()));  // support only
  RoutingPlan plan;
  plan.dispatch_index = index;
  plan.combine_weight = probs.t().gather(1, index.clamp_min(0)) * (index >= 0).to(probs.scalar_type());  // [E, C]
  add_common_losses(plan, l, probs);
  auto dbl = probs.options().dtype(torch::kDouble);
  auto covered = torch::zeros({n + 1}, dbl)
                     .index_add_(0, torch::where(index >= 0, index, torch::full({}, n, index.options())).reshape({-1}),
                                 torch::ones({e * cap}, dbl))
                     .narrow(0, 0, n);                          // [N] experts per token
  detail::add_sparse_stats(plan, (covered == 0).to(torch::kDouble).mean());
  return plan;
}

}  // namespace ewa
