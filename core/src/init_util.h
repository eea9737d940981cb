// Weight-initialisation helpers shared by the ViT and the stacked experts (private to core).
#pragma once

#include <torch/torch.h>

#include <cmath>

namespace ewa::detail {

/// In place: N(0, std^2) truncated at +-2 std (inverse-CDF sampling, like timm's
/// trunc_normal_). `t` any floating tensor; returns it.
inline torch::Tensor trunc_normal_(torch::Tensor t, double std) {
  torch::NoGradGuard no_grad;
  const double lo = std::erf(-2.0 / std::sqrt(2.0)), hi = std::erf(2.0 / std::sqrt(2.0));
  t.uniform_(lo, hi).erfinv_().mul_(std * std::sqrt(2.0)).clamp_(-2.0 * std, 2.0 * std);
  return t;
}

/// In place: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010).
inline torch::Tensor xavier_uniform_(torch::Tensor t, int64_t fan_in, int64_t fan_out) {
  torch::NoGradGuard no_grad;
  const double a = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  t.uniform_(-a, a);
  return t;
}

}  // namespace ewa::detail
