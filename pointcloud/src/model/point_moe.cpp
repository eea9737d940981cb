// The Point Transformer's expert bank (stacked bias-free linear experts, an ewa::ExpertBankImpl)
// and the MoE pointwise linear of its bottleneck blocks: the core's MoELayer over that bank.
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

#include "ewa/core/gemm.h"
#include "ewa/pointcloud/point_transformer.h"
#include "rng_guard.h"

namespace ewa::pointcloud {

// --------------------------------------------------------------------------------------
PointExpertsImpl::PointExpertsImpl(int64_t num_experts, int64_t in_features, int64_t out_features) {
  TORCH_CHECK(num_experts >= 1 && in_features >= 1 && out_features >= 1, "PointExperts: sizes must be >= 1 (experts ",
              num_experts, ", in ", in_features, ", out ", out_features, ")");
  weight = register_parameter("weight", torch::empty({num_experts, in_features, out_features}));
  reset_parameters();
}

torch::Tensor PointExpertsImpl::forward(const torch::Tensor& xs) {
  TORCH_CHECK(xs.dim() == 3 && xs.size(0) == num_experts() && xs.size(2) == in_features(),
              "PointExperts: expected slot inputs [E=", num_experts(), ", C, in=", in_features(), "], got ",
              xs.sizes());
  return gemm(xs, weight);  // [E, C, out]
}

torch::Tensor PointExpertsImpl::forward_expert(int64_t e, const torch::Tensor& x) {
  TORCH_CHECK(e >= 0 && e < num_experts() && x.dim() == 2 && x.size(1) == in_features(),
              "PointExperts: expected expert in [0, ", num_experts(), ") and points [n, in=", in_features(),
              "], got expert ", e, " and ", x.sizes());
  return gemm(x, weight[e]);  // [n, out]
}

torch::Tensor PointExpertsImpl::forward_mean(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == in_features(), "PointExperts: expected [..., in=", in_features(),
              "], got ", x.sizes());
  // Same op and operand layout as ewa::Linear with the collapsed weight.
  return gemm_linear(x, weight.mean(0).t().contiguous());  // [..., out]
}

std::shared_ptr<torch::nn::Module> PointExpertsImpl::mean_module() const {
  auto w = mean_dense();  // [out, in]
  std::shared_ptr<ewa::LinearImpl> lin;
  {
    detail::RngStateGuard guard;  // collapsing draws no random numbers
    lin = std::make_shared<ewa::LinearImpl>(torch::nn::LinearOptions(w.size(1), w.size(0)).bias(false));
  }
  lin->to(w.device(), w.scalar_type());
  torch::NoGradGuard no_grad;
  lin->weight.copy_(w);
  lin->train(is_training());
  return lin;
}

void PointExpertsImpl::copy_from_dense(const torch::Tensor& dense_weight) {
  TORCH_CHECK(dense_weight.sizes() == torch::IntArrayRef({out_features(), in_features()}),
              "PointExperts::copy_from_dense: Linear weight ", dense_weight.sizes(), " does not match experts in ",
              in_features(), ", out ", out_features());
  torch::NoGradGuard no_grad;
  weight.copy_(dense_weight.t().unsqueeze(0).expand_as(weight));  // [E, in, out]
}

torch::Tensor PointExpertsImpl::mean_dense() const {
  torch::NoGradGuard no_grad;
  return weight.mean(0).t().contiguous();  // [out, in]
}

void PointExpertsImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  // nn.Linear's kaiming_uniform_(a = sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features()));
  weight.uniform_(-bound, bound);
}

// --------------------------------------------------------------------------------------
namespace {

std::shared_ptr<MoELayerImpl> make_point_moe_layer(int64_t in_features, int64_t out_features, int64_t num_experts,
                                                   const RouterOptions& router_options,
                                                   const torch::Tensor& init_weight) {
  if (router_options.name() == "per_image") {
    throw std::invalid_argument(
        "model.pt.moe.router.name: 'per_image' routes whole images; the Point Transformer routes the points "
        "of a batch as one sequence: choose another router");
  }
  auto router = make_router(router_options, in_features, num_experts);
  std::shared_ptr<PointExpertsImpl> bank;
  if (init_weight.defined()) {
    {
      detail::RngStateGuard guard;  // the copies replace the draws: consume none
      bank = std::make_shared<PointExpertsImpl>(num_experts, in_features, out_features);
    }
    bank->copy_from_dense(init_weight);
  } else {
    bank = std::make_shared<PointExpertsImpl>(num_experts, in_features, out_features);
  }
  return std::make_shared<MoELayerImpl>(std::move(router), std::move(bank));
}

}  // namespace

PointMoELinear::PointMoELinear(int64_t in_features, int64_t out_features, int64_t num_experts,
                               const RouterOptions& router, const torch::Tensor& init_weight)
    : ModuleHolder(make_point_moe_layer(in_features, out_features, num_experts, router, init_weight)) {}

}  // namespace ewa::pointcloud
