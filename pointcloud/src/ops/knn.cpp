// kNN dispatcher: validates shapes, dtypes, offsets and devices, then runs the CPU reference
// (knn_cpu.cpp) or the CUDA twin (knn_cuda.cu).
#include <algorithm>
#include <limits>

#include "common.h"
#include "ewa/pointcloud/ops.h"
#include "knn_grid.h"

#ifdef EWA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>

#include "kernels.h"
#endif

namespace ewa::pointcloud::ops {

#ifdef EWA_WITH_CUDA
namespace {

template <typename T>
void knn_cuda(const torch::Tensor& ref, const std::vector<int64_t>& ref_off,
              const torch::Tensor& ref_off_t, const torch::Tensor& query,
              const torch::Tensor& query_off_t, int64_t k, torch::Tensor& idx,
              torch::Tensor& dist2) {
  const int64_t B = static_cast<int64_t>(ref_off.size());
  std::vector<detail::GridParams<T>> params(B);
  // Per-cloud bounding boxes (device reductions, one small copy back).
  std::vector<torch::Tensor> boxes;
  int64_t s = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = ref_off[b] - s;
    if (n > 0) {
      auto seg = ref.narrow(0, s, n);
      boxes.push_back(torch::cat({seg.amin(0), seg.amax(0)}));
    } else {
      boxes.push_back(torch::zeros({6}, ref.options()));
    }
    s = ref_off[b];
  }
  auto box = torch::stack(boxes).to(torch::kCPU).contiguous();  // [B,6]
  const T* bp = box.data_ptr<T>();
  int64_t total_cells = 0;
  s = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = ref_off[b] - s;
    const int64_t cap = 8 * n + 4096;
    detail::init_grid(params[b], bp + 6 * b, bp + 6 * b + 3, n, std::max(1.5, k / 3.0), cap);
    params[b].cell_base = total_cells;
    params[b].point_base = s;
    total_cells += params[b].dims[0] * params[b].dims[1] * params[b].dims[2];
    s = ref_off[b];
  }
  TORCH_CHECK(total_cells < std::numeric_limits<int32_t>::max(), "knn: grid too large");
  auto params_t = torch::from_blob(params.data(),
                                   {static_cast<int64_t>(params.size() * sizeof(params[0]))},
                                   torch::kUInt8)
                      .to(ref.device());
  const int64_t n_ref = ref.size(0), n_query = query.size(0);
  auto iopt = ref.options().dtype(torch::kInt);
  auto cell = torch::empty({n_ref}, iopt);
  auto start = torch::zeros({total_cells + 1}, iopt);
  auto cursor = torch::empty({total_cells}, iopt);
  auto sorted = torch::empty({n_ref, 3}, ref.options());
  auto sorted_ids = torch::empty({n_ref}, ref.options().dtype(torch::kLong));
  cuda::knn_grid(ref.data_ptr<T>(), ref_off_t.data_ptr<int64_t>(), n_ref, query.data_ptr<T>(),
                 query_off_t.data_ptr<int64_t>(), n_query, B,
                 reinterpret_cast<const detail::GridParams<T>*>(params_t.data_ptr<uint8_t>()),
                 total_cells, static_cast<int>(k), cell.data_ptr<int32_t>(),
                 start.data_ptr<int32_t>(), cursor.data_ptr<int32_t>(), sorted.data_ptr<T>(),
                 sorted_ids.data_ptr<int64_t>(), idx.data_ptr<int64_t>(), dist2.data_ptr<T>(),
                 at::cuda::getCurrentCUDAStream().stream());
}

}  // namespace
#endif

std::tuple<torch::Tensor, torch::Tensor> knn(const torch::Tensor& ref_xyz,
                                             const torch::Tensor& ref_offset,
                                             const torch::Tensor& query_xyz,
                                             const torch::Tensor& query_offset, int64_t k) {
  constexpr const char* op = "knn";
  detail::check_xyz(ref_xyz, op, "ref_xyz");
  detail::check_xyz(query_xyz, op, "query_xyz");
  TORCH_CHECK(query_xyz.scalar_type() == ref_xyz.scalar_type(), op, ": query_xyz dtype ",
              query_xyz.scalar_type(), " differs from ref_xyz dtype ", ref_xyz.scalar_type());
  detail::check_backend(ref_xyz, op);
  detail::check_device(query_xyz, ref_xyz, op, "query_xyz");
  TORCH_CHECK(k >= 1 && k <= detail::kMaxK, op, ": k must be in [1, ", detail::kMaxK, "], got ",
              k);
  // A NaN coordinate has no distance order: the neighbour list would stay empty.
  TORCH_CHECK(ref_xyz.numel() == 0 || torch::isfinite(ref_xyz).all().item<bool>(), op,
              ": ref_xyz has non-finite (NaN/Inf) coordinates; drop those points first");
  TORCH_CHECK(query_xyz.numel() == 0 || torch::isfinite(query_xyz).all().item<bool>(), op,
              ": query_xyz has non-finite (NaN/Inf) coordinates; drop those points first");
  auto ref_off = detail::check_offset(ref_offset, ref_xyz.size(0), op, "ref_offset");
  auto query_off = detail::check_offset(query_offset, query_xyz.size(0), op, "query_offset");
  TORCH_CHECK(ref_off.size() == query_off.size(), op, ": ref_offset has ", ref_off.size(),
              " clouds but query_offset has ", query_off.size());
  int64_t rs = 0, qs = 0;
  for (size_t b = 0; b < ref_off.size(); ++b) {
    const int64_t n = ref_off[b] - rs, m = query_off[b] - qs;
    TORCH_CHECK(n > 0 || m == 0, op, ": cloud ", b, " has ", m,
                " query points but no reference points");
    TORCH_CHECK(n < std::numeric_limits<int32_t>::max() / 2, op, ": cloud ", b, " has ", n,
                " points, more than supported");
    rs = ref_off[b];
    qs = query_off[b];
  }
  auto ref = ref_xyz.contiguous();
  auto query = query_xyz.is_same(ref_xyz) ? ref : query_xyz.contiguous();
  const int64_t M = query.size(0);
  auto idx = torch::empty({M, k}, ref.options().dtype(torch::kLong));
  auto dist2 = torch::empty({M, k}, ref.options());
  if (M == 0) return {idx, dist2};
#ifdef EWA_WITH_CUDA
  if (ref.is_cuda()) {
    auto ro = ref_offset.to(ref.device()).contiguous();
    auto qo = query_offset.to(ref.device()).contiguous();
    AT_DISPATCH_FLOATING_TYPES(ref.scalar_type(), "knn_cuda", [&] {
      knn_cuda<scalar_t>(ref, ref_off, ro, query, qo, k, idx, dist2);
    });
    return {idx, dist2};
  }
#endif
  detail::knn_cpu(ref, ref_off, query, query_off, k, idx, dist2);
  return {idx, dist2};
}

}  // namespace ewa::pointcloud::ops
