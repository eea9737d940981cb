// Farthest point sampling dispatcher: validates xyz/offsets/start index, runs the CPU
// reference (fps_cpu.cpp) or the CUDA twin (fps_cuda.cu).
#include "common.h"
#include "ewa/pointcloud/ops.h"

#ifdef EWA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>

#include "kernels.h"
#endif

namespace ewa::pointcloud::ops {

torch::Tensor farthest_point_sampling(const torch::Tensor& xyz, const torch::Tensor& offset,
                                      const torch::Tensor& new_offset, int64_t start_index) {
  constexpr const char* op = "farthest_point_sampling";
  detail::check_xyz(xyz, op, "xyz");
  detail::check_backend(xyz, op);
  auto off = detail::check_offset(offset, xyz.size(0), op, "offset");
  TORCH_CHECK(new_offset.defined() && new_offset.dim() == 1, op,
              ": new_offset must be a 1-D int64 tensor");
  TORCH_CHECK(static_cast<size_t>(new_offset.numel()) == off.size(), op, ": new_offset has ",
              new_offset.numel(), " clouds but offset has ", off.size());
  TORCH_CHECK(new_offset.scalar_type() == torch::kLong, op, ": new_offset must be int64, got ",
              new_offset.scalar_type());
  auto host = new_offset.to(torch::kCPU).contiguous();
  std::vector<int64_t> new_off(host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + host.numel());
  TORCH_CHECK(start_index >= 0, op, ": start_index must be >= 0, got ", start_index);
  int64_t s = 0, ns = 0;
  for (size_t b = 0; b < off.size(); ++b) {
    const int64_t n = off[b] - s, m = new_off[b] - ns;
    TORCH_CHECK(m >= 0, op, ": new_offset must be non-decreasing, but new_offset[", b,
                "] = ", new_off[b], " < ", ns);
    TORCH_CHECK(m <= n, op, ": cloud ", b, " has ", n, " points but ", m,
                " samples were requested by new_offset");
    TORCH_CHECK(m == 0 || start_index < n, op, ": start_index ", start_index,
                " is out of range for cloud ", b, " with ", n, " points");
    s = off[b];
    ns = new_off[b];
  }
  auto p = xyz.contiguous();
  auto out = torch::empty({new_off.back()}, p.options().dtype(torch::kLong));
  if (new_off.back() == 0) return out;
#ifdef EWA_WITH_CUDA
  if (p.is_cuda()) {
    auto o = offset.to(p.device()).contiguous();
    auto no = new_offset.to(p.device()).contiguous();
    auto mind = torch::empty({p.size(0)}, p.options());
    AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "fps_cuda", [&] {
      cuda::farthest_point_sampling(p.data_ptr<scalar_t>(), o.data_ptr<int64_t>(),
                                    no.data_ptr<int64_t>(), static_cast<int64_t>(off.size()),
                                    start_index, mind.data_ptr<scalar_t>(),
                                    out.data_ptr<int64_t>(),
                                    at::cuda::getCurrentCUDAStream().stream());
    });
    return out;
  }
#endif
  detail::fps_cpu(p, off, new_off, start_index, out);
  return out;
}

}  // namespace ewa::pointcloud::ops
