// CPU kernel of the gather gradient (ops::group's backward). LibTorch 1.13's index_add_ on
// the CPU adds one row per index through a tensor op, serially: 50 ms for the 320k neighbour
// rows of a 40k-point level. Here the indices are bucketed by target row (counting sort, which
// keeps their ascending order) and the rows are summed in parallel, each target row by one
// thread, so no two threads write the same memory and the result equals index_add_'s.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "common.h"

namespace ewa::pointcloud::ops::detail {

torch::Tensor gather_backward_cpu(const torch::Tensor& grad, const torch::Tensor& idx, int64_t n) {
  const int64_t m = grad.size(0), c = grad.size(1);
  auto out = torch::zeros({n, c}, grad.options());
  if (m == 0 || c == 0 || n == 0) return out;
  const int64_t* id = idx.data_ptr<int64_t>();
  // start[r] .. start[r+1]: the positions i (ascending) with idx[i] == r.
  std::vector<int64_t> start(static_cast<size_t>(n) + 1, 0), order(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    TORCH_CHECK(id[i] >= 0 && id[i] < n, "group: index ", id[i], " out of range for ", n, " rows");
    ++start[static_cast<size_t>(id[i]) + 1];
  }
  for (int64_t r = 0; r < n; ++r) start[r + 1] += start[r];
  {
    std::vector<int64_t> cursor(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < m; ++i) order[cursor[id[i]]++] = i;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, grad.scalar_type(), "gather_backward_cpu", [&] {
    const scalar_t* g = grad.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    // Grain: about 16k gathered values per task.
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, c * std::max<int64_t>(1, m / n)));
    at::parallel_for(0, n, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t* dst = o + r * c;
        for (int64_t p = start[r]; p < start[r + 1]; ++p) {
          const scalar_t* src = g + order[p] * c;
          for (int64_t j = 0; j < c; ++j) dst[j] = dst[j] + src[j];
        }
      }
    });
  });
  return out;
}

}  // namespace ewa::pointcloud::ops::detail
