// Internal: the oneDNN matmul behind ewa::gemm (gemm_onednn.cpp), shared with gemm.cpp only.
#pragma once

#include <torch/torch.h>

#include <string>

namespace ewa::detail {

/// True when the build links oneDNN (EWA_WITH_ONEDNN).
bool onednn_compiled();
/// "major.minor.patch" of the oneDNN in this process, "" without oneDNN.
std::string onednn_version();
/// out = a @ b (+ bias) with oneDNN. fp32 CPU tensors; a [.., M, K], b [.., K, N] with a unit
/// stride in one of their last two dimensions; bias undefined or with out's rank and size 1
/// where it broadcasts; out [.., M, N] allocated by the caller. False (out untouched) when
/// oneDNN has no kernel for these layouts or the build has no oneDNN.
bool onednn_matmul(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias, torch::Tensor& out);

}  // namespace ewa::detail
