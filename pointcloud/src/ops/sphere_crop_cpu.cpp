// CPU sphere crop: per cloud, squared distances to the centre, partial selection of the
// max_points nearest (ties: smaller index), sorted by distance.
#include <ATen/Parallel.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "grid_sample_cpu.h"

namespace ewa::pointcloud::ops::detail {

torch::Tensor sphere_crop_cpu(const torch::Tensor& xyz, const std::vector<int64_t>& off,
                              const torch::Tensor& centre, int64_t max_points,
                              std::vector<int64_t>& new_off) {
  new_off.assign(off.size(), 0);
  int64_t s = 0, total = 0;
  for (size_t b = 0; b < off.size(); ++b) {
    total += std::min(off[b] - s, max_points);
    new_off[b] = total;
    s = off[b];
  }
  auto out = torch::empty({total}, torch::TensorOptions().dtype(torch::kLong));
  int64_t* o = out.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "sphere_crop_cpu", [&] {
    const scalar_t* p = xyz.data_ptr<scalar_t>();
    const scalar_t* c = centre.data_ptr<scalar_t>();
    int64_t s = 0, ns = 0;
    for (size_t b = 0; b < off.size(); ++b) {
      const int64_t n = off[b] - s, m = new_off[b] - ns;
      std::vector<scalar_t> d2(n);
      at::parallel_for(0, n, 8192, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          const scalar_t dx = p[3 * (s + i)] - c[3 * b], dy = p[3 * (s + i) + 1] - c[3 * b + 1],
                         dz = p[3 * (s + i) + 2] - c[3 * b + 2];
          d2[i] = dx * dx + dy * dy + dz * dz;
        }
      });
      std::vector<int64_t> order(n);
      std::iota(order.begin(), order.end(), int64_t(0));
      auto less = [&](int64_t a, int64_t b2) { return d2[a] < d2[b2] || (d2[a] == d2[b2] && a < b2); };
      if (m < n) std::nth_element(order.begin(), order.begin() + m, order.end(), less);
      std::sort(order.begin(), order.begin() + m, less);
      for (int64_t j = 0; j < m; ++j) o[ns + j] = s + order[j];
      s = off[b];
      ns = new_off[b];
    }
  });
  return out;
}

}  // namespace ewa::pointcloud::ops::detail
