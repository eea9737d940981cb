// CPU grid sampling and sphere crop kernels (internal; inputs validated by the dispatchers).
#pragma once

#include <optional>
#include <vector>

#include "ewa/pointcloud/ops.h"

namespace ewa::pointcloud::ops::detail {

/// xyz [N,3] contiguous CPU float/double, off host cumulative counts.
GridSampleResult grid_sample_cpu(const torch::Tensor& xyz, const std::vector<int64_t>& off,
                                 double grid_size, GridSampleMode mode,
                                 std::optional<at::Generator> generator, bool return_inverse);

/// xyz [N,3] contiguous CPU, centre [B,3] contiguous CPU (xyz dtype). Returns idx and the
/// new host offsets.
torch::Tensor sphere_crop_cpu(const torch::Tensor& xyz, const std::vector<int64_t>& off,
                              const torch::Tensor& centre, int64_t max_points,
                              std::vector<int64_t>& new_off);

}  // namespace ewa::pointcloud::ops::detail
