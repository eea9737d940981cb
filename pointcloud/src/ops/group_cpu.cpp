// CPU kernels of the gather gradient (ops::group's backward) and of the vector-attention
// aggregation (ops::aggregate, forward and backward). LibTorch 1.13's index_add_ on
// the CPU adds one row per index through a tensor op, serially: 50 ms for the 320k neighbour
// rows of a 40k-point level. Here the indices are bucketed by target row (counting sort, which
// keeps their ascending order) and the rows are summed in parallel, each target row by one
// thread, so no two threads write the same memory and the result equals index_add_'s.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

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

// Vector-attention aggregation, one query point per iteration (parallel over points): its k
// neighbour rows of v, pe and w are read once and y accumulates in the accumulate type.
torch::Tensor aggregate_cpu(const torch::Tensor& v, const torch::Tensor& pe, const torch::Tensor& w,
                            const torch::Tensor& idx) {
  const int64_t m = pe.size(0), k = pe.size(1), c = pe.size(2), cw = w.size(2);
  auto y = torch::empty({m, c}, v.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.scalar_type(), "aggregate_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t *vp = v.data_ptr<scalar_t>(), *pp = pe.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>();
    const int64_t* ip = idx.data_ptr<int64_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    at::parallel_for(0, m, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, k * c)), [&](int64_t b, int64_t e) {
      std::vector<acc_t> acc(static_cast<size_t>(c));
      for (int64_t n = b; n < e; ++n) {
        std::fill(acc.begin(), acc.end(), acc_t(0));
        for (int64_t j = 0; j < k; ++j) {
          const scalar_t* vr = vp + ip[n * k + j] * c;
          const scalar_t* pr = pp + (n * k + j) * c;
          const scalar_t* wr = wp + (n * k + j) * cw;
          for (int64_t g = 0; g < c; g += cw) {
            for (int64_t q = 0; q < cw; ++q) {
              acc[g + q] += (static_cast<acc_t>(vr[g + q]) + static_cast<acc_t>(pr[g + q])) * static_cast<acc_t>(wr[q]);
            }
          }
        }
        for (int64_t q = 0; q < c; ++q) yp[n * c + q] = static_cast<scalar_t>(acc[q]);
      }
    });
  });
  return y;
}

std::vector<torch::Tensor> aggregate_backward_cpu(const torch::Tensor& grad_y, const torch::Tensor& v,
                                                  const torch::Tensor& pe, const torch::Tensor& w,
                                                  const torch::Tensor& idx) {
  const int64_t m = pe.size(0), k = pe.size(1), c = pe.size(2), cw = w.size(2);
  auto grad_pe = torch::empty_like(pe);
  auto grad_w = torch::empty_like(w);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, v.scalar_type(), "aggregate_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t *gy = grad_y.data_ptr<scalar_t>(), *vp = v.data_ptr<scalar_t>(), *pp = pe.data_ptr<scalar_t>(),
                   *wp = w.data_ptr<scalar_t>();
    const int64_t* ip = idx.data_ptr<int64_t>();
    scalar_t *gp = grad_pe.data_ptr<scalar_t>(), *gw = grad_w.data_ptr<scalar_t>();
    at::parallel_for(0, m, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, k * c)), [&](int64_t b, int64_t e) {
      std::vector<acc_t> acc(static_cast<size_t>(cw));
      for (int64_t n = b; n < e; ++n) {
        const scalar_t* g = gy + n * c;
        for (int64_t j = 0; j < k; ++j) {
          const int64_t row = n * k + j;
          const scalar_t* vr = vp + ip[row] * c;
          const scalar_t* pr = pp + row * c;
          const scalar_t* wr = wp + row * cw;
          std::fill(acc.begin(), acc.end(), acc_t(0));
          for (int64_t gr = 0; gr < c; gr += cw) {
            for (int64_t q = 0; q < cw; ++q) {
              const acc_t gq = static_cast<acc_t>(g[gr + q]);
              gp[row * c + gr + q] = static_cast<scalar_t>(gq * static_cast<acc_t>(wr[q]));
              acc[q] += gq * (static_cast<acc_t>(vr[gr + q]) + static_cast<acc_t>(pr[gr + q]));
            }
          }
          for (int64_t q = 0; q < cw; ++q) gw[row * cw + q] = static_cast<scalar_t>(acc[q]);
        }
      }
    });
  });
  // v's gradient is pe's scattered back to the source rows (same values, gathered by idx).
  auto grad_v = gather_backward_cpu(grad_pe.view({m * k, c}), idx.view({-1}), v.size(0));
  return {grad_v, grad_pe, grad_w};
}

}  // namespace ewa::pointcloud::ops::detail
