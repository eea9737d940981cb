// Validation helpers shared by the point-op dispatchers (offset/shape/dtype/device checks) and
// the declarations of the CPU reference implementations.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ewa::pointcloud::ops::detail {

/// Checks xyz is [N,3] float32/float64; `what` names the argument in errors.
inline void check_xyz(const torch::Tensor& xyz, const char* op, const char* what) {
  TORCH_CHECK(xyz.defined(), op, ": ", what, " is undefined");
  TORCH_CHECK(xyz.dim() == 2 && xyz.size(1) == 3, op, ": ", what, " must be [N,3], got ",
              xyz.sizes());
  TORCH_CHECK(xyz.scalar_type() == torch::kFloat || xyz.scalar_type() == torch::kDouble, op, ": ",
              what, " must be float32 or float64, got ", xyz.scalar_type());
}

/// Checks the offset tensor against n points and returns it as a host vector.
/// Requirements: 1-D int64, non-empty, non-decreasing, non-negative, last entry == n.
inline std::vector<int64_t> check_offset(const torch::Tensor& offset, int64_t n, const char* op,
                                         const char* what) {
  TORCH_CHECK(offset.defined(), op, ": ", what, " is undefined");
  TORCH_CHECK(offset.dim() == 1 && offset.numel() >= 1, op, ": ", what,
              " must be a non-empty 1-D tensor of cumulative counts, got shape ", offset.sizes());
  TORCH_CHECK(offset.scalar_type() == torch::kLong, op, ": ", what, " must be int64, got ",
              offset.scalar_type());
  auto host = offset.to(torch::kCPU).contiguous();
  const int64_t* p = host.data_ptr<int64_t>();
  std::vector<int64_t> v(p, p + host.numel());
  int64_t prev = 0;
  for (size_t b = 0; b < v.size(); ++b) {
    TORCH_CHECK(v[b] >= prev, op, ": ", what, " must be non-decreasing cumulative counts, but ",
                what, "[", b, "] = ", v[b], " < ", prev);
    prev = v[b];
  }
  TORCH_CHECK(v.back() == n, op, ": ", what, "[-1] = ", v.back(),
              " must equal the number of points ", n);
  return v;
}

/// Checks that a tensor is on the same device as `ref`, and that CUDA is compiled in.
inline void check_device(const torch::Tensor& t, const torch::Tensor& ref, const char* op,
                         const char* what) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", what, " is on ", t.device(),
              " but the points are on ", ref.device());
}

inline void check_backend(const torch::Tensor& t, const char* op) {
  TORCH_CHECK(t.device().is_cpu() || t.device().is_cuda(), op, ": unsupported device ",
              t.device());
#ifndef EWA_WITH_CUDA
  TORCH_CHECK(!t.device().is_cuda(), op,
              ": got a CUDA tensor, but ewa-vision was built without CUDA kernels; reconfigure "
              "with -DEWA_WITH_CUDA=ON (needs a CUDA-enabled LibTorch and nvcc)");
#endif
}

// ---- CPU reference implementations (inputs validated, contiguous, on the CPU) ----

/// idx [M,k] int64 and dist2 [M,k] (coordinate dtype), preallocated.
void knn_cpu(const torch::Tensor& ref, const std::vector<int64_t>& ref_off,
             const torch::Tensor& query, const std::vector<int64_t>& query_off, int64_t k,
             torch::Tensor& idx, torch::Tensor& dist2);

/// out [M] int64, preallocated.
void fps_cpu(const torch::Tensor& xyz, const std::vector<int64_t>& off,
             const std::vector<int64_t>& new_off, int64_t start, torch::Tensor& out);

/// Gradient of a row gather (group's backward): out [n, C] with out[r] = sum of grad rows i
/// with idx[i] == r, added in ascending i (the order of index_add_, so the result is the same
/// bit for bit), parallel over output rows. grad [m, C] contiguous, idx [m] int64 in [0, n).
torch::Tensor gather_backward_cpu(const torch::Tensor& grad, const torch::Tensor& idx, int64_t n);

/// ops::aggregate on the CPU (inputs contiguous, one dtype). Forward returns y [M,C];
/// backward returns {grad_v [N,C], grad_pe [M,k,C], grad_w [M,k,C/s]} for grad_y [M,C].
torch::Tensor aggregate_cpu(const torch::Tensor& v, const torch::Tensor& pe, const torch::Tensor& w,
                            const torch::Tensor& idx);
std::vector<torch::Tensor> aggregate_backward_cpu(const torch::Tensor& grad_y, const torch::Tensor& v,
                                                  const torch::Tensor& pe, const torch::Tensor& w,
                                                  const torch::Tensor& idx);

}  // namespace ewa::pointcloud::ops::detail
