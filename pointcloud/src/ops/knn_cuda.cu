// CUDA twin of the grid kNN: counting sort of the reference points into per-cloud dense grids
// (atomics + one exclusive scan), then one thread per query running the shared grid search.
#include <cuda_runtime.h>
#include <thrust/execution_policy.h>
#include <thrust/scan.h>

#include <stdexcept>
#include <string>

#include "kernels.h"

namespace ewa::pointcloud::ops::cuda {
namespace {

using detail::GridParams;

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("knn (CUDA): ") + what + ": " + cudaGetErrorString(e));
}

/// Cloud of global point i: the first b with off[b] > i.
__device__ __forceinline__ int64_t cloud_of(const int64_t* off, int64_t B, int64_t i) {
  int64_t lo = 0, hi = B - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (off[mid] > i) hi = mid; else lo = mid + 1;
  }
  return lo;
}

template <typename T>
__global__ void assign_cells(const T* ref, const int64_t* off, int64_t n, int64_t B,
                             const GridParams<T>* params, int32_t* cell, int32_t* count) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const GridParams<T> g = params[cloud_of(off, B, i)];
  const int64_t c = g.cell_base + detail::cell_of(g, ref[3 * i], ref[3 * i + 1], ref[3 * i + 2]);
  cell[i] = static_cast<int32_t>(c);
  atomicAdd(count + c, 1);
}

template <typename T>
__global__ void scatter_points(const T* ref, int64_t n, const int32_t* cell, int32_t* cursor,
                               T* sorted, int64_t* ids) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const int32_t slot = atomicAdd(cursor + cell[i], 1);
  sorted[3 * slot] = ref[3 * i];
  sorted[3 * slot + 1] = ref[3 * i + 1];
  sorted[3 * slot + 2] = ref[3 * i + 2];
  ids[slot] = i;
}

template <typename T>
__global__ void query_kernel(const T* query, const int64_t* qoff, int64_t m, int64_t B,
                             const GridParams<T>* params, const int32_t* start, const T* sorted,
                             const int64_t* ids, int k, int64_t* out_idx, T* out_d) {
  const int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (q >= m) return;
  const GridParams<T> g = params[cloud_of(qoff, B, q)];
  T bd[detail::kMaxK];
  int64_t bi[detail::kMaxK];
  // start holds global slots, so the search runs on the global sorted arrays.
  const int cnt = detail::grid_knn(g, sorted, ids, start + g.cell_base, query[3 * q],
                                   query[3 * q + 1], query[3 * q + 2], k, bd, bi);
  for (int j = 0; j < k; ++j) {
    const int s = j < cnt ? j : cnt - 1;
    out_idx[q * k + j] = bi[s];
    out_d[q * k + j] = bd[s];
  }
}

template <typename T>
void knn_grid_impl(const T* ref, const int64_t* ref_off, int64_t n_ref, const T* query,
                   const int64_t* query_off, int64_t n_query, int64_t B,
                   const GridParams<T>* params, int64_t total_cells, int k, int32_t* cell,
                   int32_t* start, int32_t* cursor, T* sorted, int64_t* sorted_ids,
                   int64_t* idx, T* dist2, void* stream_ptr) {
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  constexpr int kThreads = 256;
  if (n_ref > 0) {
    const unsigned blocks = static_cast<unsigned>((n_ref + kThreads - 1) / kThreads);
    assign_cells<T><<<blocks, kThreads, 0, stream>>>(ref, ref_off, n_ref, B, params, cell, start);
    check(cudaGetLastError(), "assign_cells");
    thrust::exclusive_scan(thrust::cuda::par.on(stream), start, start + total_cells + 1, start);
    check(cudaMemcpyAsync(cursor, start, sizeof(int32_t) * total_cells,
                          cudaMemcpyDeviceToDevice, stream),
          "cursor copy");
    scatter_points<T><<<blocks, kThreads, 0, stream>>>(ref, n_ref, cell, cursor, sorted,
                                                       sorted_ids);
    check(cudaGetLastError(), "scatter_points");
  }
  if (n_query > 0) {
    constexpr int kQueryThreads = 128;
    const unsigned blocks = static_cast<unsigned>((n_query + kQueryThreads - 1) / kQueryThreads);
    query_kernel<T><<<blocks, kQueryThreads, 0, stream>>>(query, query_off, n_query, B, params,
                                                          start, sorted, sorted_ids, k, idx,
                                                          dist2);
    check(cudaGetLastError(), "query_kernel");
  }
}

}  // namespace

#define EWA_KNN_CUDA_DEF(T)                                                                    \
  void knn_grid(const T* ref, const int64_t* ref_off, int64_t n_ref, const T* query,           \
                const int64_t* query_off, int64_t n_query, int64_t num_clouds,                  \
                const detail::GridParams<T>* params, int64_t total_cells, int k, int32_t* cell, \
                int32_t* start, int32_t* cursor, T* sorted, int64_t* sorted_ids, int64_t* idx,  \
                T* dist2, void* stream) {                                                       \
    knn_grid_impl<T>(ref, ref_off, n_ref, query, query_off, n_query, num_clouds, params,       \
                     total_cells, k, cell, start, cursor, sorted, sorted_ids, idx, dist2,      \
                     stream);                                                                   \
  }
EWA_KNN_CUDA_DEF(float)
EWA_KNN_CUDA_DEF(double)
#undef EWA_KNN_CUDA_DEF

}  // namespace ewa::pointcloud::ops::cuda
