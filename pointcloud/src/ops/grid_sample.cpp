// Dispatchers of the data-preparation ops grid_sample and sphere_crop: validate, run the CPU
// kernels (CUDA inputs are processed on the host and the indices moved back to the device).
#include "common.h"
#include "ewa/pointcloud/ops.h"
#include "grid_sample_cpu.h"

namespace ewa::pointcloud::ops {

GridSampleResult grid_sample(const torch::Tensor& xyz, const torch::Tensor& offset,
                             double grid_size, GridSampleMode mode,
                             std::optional<at::Generator> generator, bool return_inverse) {
  constexpr const char* op = "grid_sample";
  detail::check_xyz(xyz, op, "xyz");
  detail::check_backend(xyz, op);
  TORCH_CHECK(grid_size > 0 && std::isfinite(grid_size), op, ": grid_size must be > 0, got ",
              grid_size);
  auto off = detail::check_offset(offset, xyz.size(0), op, "offset");
  auto r = detail::grid_sample_cpu(xyz.to(torch::kCPU).contiguous(), off, grid_size, mode,
                                   std::move(generator), return_inverse);
  if (!xyz.device().is_cpu()) {
    for (auto& f : r.fragments) f = f.to(xyz.device());
    r.offset = r.offset.to(xyz.device());
    r.counts = r.counts.to(xyz.device());
    if (r.inverse.defined()) r.inverse = r.inverse.to(xyz.device());
    if (r.order.defined()) r.order = r.order.to(xyz.device());
  }
  return r;
}

std::tuple<torch::Tensor, torch::Tensor> sphere_crop(const torch::Tensor& xyz,
                                                     const torch::Tensor& offset,
                                                     const torch::Tensor& centre,
                                                     int64_t max_points) {
  constexpr const char* op = "sphere_crop";
  detail::check_xyz(xyz, op, "xyz");
  detail::check_backend(xyz, op);
  TORCH_CHECK(max_points >= 1, op, ": max_points must be >= 1, got ", max_points);
  auto off = detail::check_offset(offset, xyz.size(0), op, "offset");
  const int64_t B = static_cast<int64_t>(off.size());
  TORCH_CHECK(centre.defined() && ((centre.dim() == 2 && centre.size(0) == B &&
                                    centre.size(1) == 3) ||
                                   (centre.dim() == 1 && centre.size(0) == 3 && B == 1)),
              op, ": centre must be [", B, ",3] (or [3] for one cloud), got ",
              centre.defined() ? centre.sizes() : torch::IntArrayRef{});
  auto c = centre.to(torch::kCPU, xyz.scalar_type()).reshape({B, 3}).contiguous();  // [B,3]
  std::vector<int64_t> new_off;
  auto idx = detail::sphere_crop_cpu(xyz.to(torch::kCPU).contiguous(), off, c, max_points, new_off);
  auto no = torch::tensor(new_off, torch::TensorOptions().dtype(torch::kLong));
  return {idx.to(xyz.device()), no.to(xyz.device())};
}

torch::Tensor sphere_crop(const torch::Tensor& xyz, const torch::Tensor& centre,
                          int64_t max_points) {
  TORCH_CHECK(xyz.defined() && xyz.dim() == 2, "sphere_crop: xyz must be [N,3]");
  auto offset = torch::tensor({xyz.size(0)}, torch::TensorOptions().dtype(torch::kLong));
  return std::get<0>(sphere_crop(xyz, offset, centre, max_points));
}

}  // namespace ewa::pointcloud::ops
