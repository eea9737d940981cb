// Scope guard restoring the default CPU generator's state (private to the PT model code).
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

namespace ewa::pointcloud::detail {

/// Restores the default CPU generator on scope exit, so that modules built inside consume
/// no random numbers (keeps an MoE model's other weights equal to the dense model's).
class RngStateGuard {
 public:
  RngStateGuard() : state_(at::detail::getDefaultCPUGenerator().get_state()) {}
  ~RngStateGuard() {
    at::Generator gen = at::detail::getDefaultCPUGenerator();  // shares the default generator
    gen.set_state(state_);
  }
  RngStateGuard(const RngStateGuard&) = delete;
  RngStateGuard& operator=(const RngStateGuard&) = delete;

 private:
  torch::Tensor state_;
};

}  // namespace ewa::pointcloud::detail
