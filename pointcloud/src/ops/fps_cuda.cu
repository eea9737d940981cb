// CUDA twin of farthest point sampling: one block per cloud; each iteration updates the
// min-distance array and reduces (distance, index) in shared memory, ties to the lower index.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels.h"

namespace ewa::pointcloud::ops::cuda {
namespace {

constexpr int kThreads = 512;

template <typename T>
__global__ void fps_kernel(const T* xyz, const int64_t* off, const int64_t* new_off,
                           int64_t start_index, T* mind, int64_t* out) {
  const int64_t b = blockIdx.x;
  const int64_t s = b == 0 ? 0 : off[b - 1], n = off[b] - s;
  const int64_t ns = b == 0 ? 0 : new_off[b - 1], m = new_off[b] - ns;
  if (m <= 0) return;
  __shared__ T sd[kThreads];
  __shared__ int64_t si[kThreads];
  const T* p = xyz + 3 * s;
  T* md = mind + s;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) md[j] = T(INFINITY);
  int64_t cur = start_index;
  if (threadIdx.x == 0) out[ns] = s + cur;
  for (int64_t it = 1; it < m; ++it) {
    const T cx = p[3 * cur], cy = p[3 * cur + 1], cz = p[3 * cur + 2];
    T best = T(-1);
    int64_t bidx = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const T dx = p[3 * j] - cx, dy = p[3 * j + 1] - cy, dz = p[3 * j + 2] - cz;
      const T d = dx * dx + dy * dy + dz * dz;
      const T v = d < md[j] ? d : md[j];
      md[j] = v;
      if (v > best) {  // j increases per thread: first index wins ties
        best = v;
        bidx = j;
      }
    }
    sd[threadIdx.x] = best;
    si[threadIdx.x] = bidx;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
      if (threadIdx.x < w) {
        const T o = sd[threadIdx.x + w];
        const int64_t oi = si[threadIdx.x + w];
        if (o > sd[threadIdx.x] || (o == sd[threadIdx.x] && oi < si[threadIdx.x])) {
          sd[threadIdx.x] = o;
          si[threadIdx.x] = oi;
        }
      }
      __syncthreads();
    }
    cur = si[0];
    if (threadIdx.x == 0) out[ns + it] = s + cur;
    __syncthreads();  // everyone read si[0] before it is overwritten
  }
}

template <typename T>
void fps_impl(const T* xyz, const int64_t* off, const int64_t* new_off, int64_t B,
              int64_t start_index, T* mind, int64_t* out, void* stream) {
  if (B == 0) return;
  fps_kernel<T><<<static_cast<unsigned>(B), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      xyz, off, new_off, start_index, mind, out);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("farthest_point_sampling (CUDA): ") +
                             cudaGetErrorString(e));
}

}  // namespace

#define EWA_FPS_CUDA_DEF(T)                                                                 \
  void farthest_point_sampling(const T* xyz, const int64_t* off, const int64_t* new_off,  \
                               int64_t num_clouds, int64_t start_index, T* mind,          \
                               int64_t* out, void* stream) {                              \
    fps_impl<T>(xyz, off, new_off, num_clouds, start_index, mind, out, stream);           \
  }
EWA_FPS_CUDA_DEF(float)
EWA_FPS_CUDA_DEF(double)
#undef EWA_FPS_CUDA_DEF

}  // namespace ewa::pointcloud::ops::cuda
