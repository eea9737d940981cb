// Stacked bias-free linear experts (discoverable by the core's EWA as StackedExperts) and the
// MoE pointwise linear of the Point Transformer bottleneck, executing any core RoutingPlan.
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

#include "ewa/pointcloud/point_transformer.h"
#include "rng_guard.h"

namespace ewa::pointcloud {

// --------------------------------------------------------------------------------------
PointExpertsImpl::PointExpertsImpl(int64_t num_experts, int64_t in_features, int64_t out_features)
    : StackedExpertsImpl(num_experts, 1, 1, 1) {
  TORCH_CHECK(num_experts >= 1 && in_features >= 1 && out_features >= 1, "PointExperts: sizes must be >= 1 (experts ",
              num_experts, ", in ", in_features, ", out ", out_features, ")");
  // Drop the base's FFN parameters; the one registered tensor is the stacked linear weight,
  // aliased by w1 (which apply_ewa_ updates). The empty placeholders keep EWA's loop valid.
  parameters_.clear();
  w1 = register_parameter("weight", torch::empty({num_experts, in_features, out_features}));
  b1 = torch::zeros({num_experts, 0});
  w2 = torch::zeros({num_experts, 0, 0});
  b2 = torch::zeros({num_experts, 0});
  reset_parameters();
}

torch::Tensor PointExpertsImpl::forward(const torch::Tensor& xs) {
  TORCH_CHECK(xs.dim() == 3 && xs.size(0) == num_experts() && xs.size(2) == in_features(),
              "PointExperts: expected slot inputs [E=", num_experts(), ", C, in=", in_features(), "], got ",
              xs.sizes());
  return torch::bmm(xs, w1);  // [E, C, out]
}

torch::Tensor PointExpertsImpl::forward_expert(int64_t e, const torch::Tensor& x) {
  TORCH_CHECK(e >= 0 && e < num_experts() && x.dim() == 2 && x.size(1) == in_features(),
              "PointExperts: expected expert in [0, ", num_experts(), ") and points [n, in=", in_features(),
              "], got expert ", e, " and ", x.sizes());
  return x.mm(w1[e]);  // [n, out]
}

torch::Tensor PointExpertsImpl::forward_mean(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == in_features(), "PointExperts: expected [..., in=", in_features(),
              "], got ", x.sizes());
  // Same op and operand layout as torch::nn::Linear with the collapsed weight.
  return torch::linear(x, w1.mean(0).t().contiguous());  // [..., out]
}

void PointExpertsImpl::copy_from_dense(const torch::Tensor& weight) {
  TORCH_CHECK(weight.sizes() == torch::IntArrayRef({out_features(), in_features()}),
              "PointExperts::copy_from_dense: Linear weight ", weight.sizes(), " does not match experts in ",
              in_features(), ", out ", out_features());
  torch::NoGradGuard no_grad;
  w1.copy_(weight.t().unsqueeze(0).expand_as(w1));  // [E, in, out]
}

torch::Tensor PointExpertsImpl::mean_dense() const {
  torch::NoGradGuard no_grad;
  return w1.mean(0).t().contiguous();  // [out, in]
}

void PointExpertsImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  // nn.Linear's kaiming_uniform_(a = sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features()));
  w1.uniform_(-bound, bound);
}

// --------------------------------------------------------------------------------------
PointMoELinearImpl::PointMoELinearImpl(int64_t in_features, int64_t out_features, int64_t num_experts,
                                       const RouterOptions& router_options, const torch::Tensor& init_weight) {
  if (router_options.name() == "per_image") {
    throw std::invalid_argument(
        "model.pt.moe.router.name: 'per_image' routes whole images; the Point Transformer routes the points "
        "of a batch as one sequence: choose another router");
  }
  router = register_module("router", make_router(router_options, in_features, num_experts));
  TORCH_CHECK(router->num_experts() == num_experts, "PointMoELinear: router '", router->name(), "' has ",
              router->num_experts(), " experts, layer has ", num_experts);
  if (init_weight.defined()) {
    {
      detail::RngStateGuard guard;  // the copies replace the draws: consume none
      experts = register_module("experts", PointExperts(num_experts, in_features, out_features));
    }
    experts->copy_from_dense(init_weight);
  } else {
    experts = register_module("experts", PointExperts(num_experts, in_features, out_features));
  }
}

torch::Tensor PointMoELinearImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == experts->in_features(), "PointMoELinear: expected points [N, ",
              experts->in_features(), "], got ", x.sizes());
  if (!is_training() && router->averaged_expert_at_eval()) {
    last_aux_loss_ = torch::Tensor();
    return experts->forward_mean(x);
  }
  RoutingPlan plan = router->route(x.unsqueeze(0));  // tokens [1, N, in]
  last_aux_loss_ = is_training() ? plan.total_aux_loss() : torch::Tensor();
  last_stats_ = std::move(plan.stats);
  return execute(x, plan);
}

torch::Tensor PointMoELinearImpl::execute(const torch::Tensor& x, const RoutingPlan& plan) {
  const int64_t d = experts->in_features();
  TORCH_CHECK(x.dim() == 2 && x.size(1) == d, "PointMoELinear: expected points [N, ", d, "], got ", x.sizes());
  // The points of the batch are the tokens of one sequence.
  return execute_plan(x.unsqueeze(0), plan, experts->num_experts(), experts->out_features(),
                      [this](const torch::Tensor& xs) { return experts->forward(xs); },
                      router ? router->name() : std::string("plan"),
                      [this](int64_t e, const torch::Tensor& xe) { return experts->forward_expert(e, xe); })[0];  // [N, O]
}

}  // namespace ewa::pointcloud
