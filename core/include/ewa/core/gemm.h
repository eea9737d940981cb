// Dense matrix products of the models (linear layers, the experts' batched FFNs) with one fp32
// CPU fast path: oneDNN's matmul (AVX-512 / AMX kernels) instead of the BLAS behind at::mm, which
// on many CPUs runs AVX2 kernels at half the speed. Every other case goes to the LibTorch op.
#pragma once

#include <torch/torch.h>

#include <string>

namespace ewa {

/// a @ b (+ bias), differentiable. a [M, K] with b [K, N], or a [E, M, K] with b [E, K, N]
/// (one product per leading index); bias broadcastable to the result ([N] or [E, 1, N]) or
/// undefined. fp32 CPU tensors outside autocast go through oneDNN when the build has it (the
/// backward too; views such as w.t() are read in place, never copied); anything else
/// (other dtypes or devices, autocast regions, tiny products) through at::addmm / at::baddbmm.
torch::Tensor gemm(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias = {});

/// x @ weight^T + bias over the last dimension of x (torch::linear), through gemm.
/// x [..., in], weight [out, in], bias [out] or undefined -> [..., out].
torch::Tensor gemm_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

/// The fp32 CPU GEMM in use: "oneDNN <version>" or "BLAS (at::mm)" (built without oneDNN, or
/// EWA_ONEDNN=0 in the environment).
std::string gemm_backend();

/// torch::nn::Linear whose forward is ewa::gemm_linear (same parameters and state-dict names).
/// Note: Module::clone() of a model copies these as torch::nn::LinearImpl (LibTorch's Cloneable),
/// i.e. the same values computed by at::linear.
class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& x) { return gemm_linear(x, weight, bias); }
};
TORCH_MODULE(Linear);

}  // namespace ewa
