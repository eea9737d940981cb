// Host launchers of the CUDA point-op kernels, on plain pointers so that the .cu files need no
// LibTorch. All pointers are device pointers unless named *_host; `stream` is a cudaStream_t.
#pragma once

#include <cstdint>

#include "knn_grid.h"

namespace ewa::pointcloud::ops::cuda {

/// Grid kNN. ref [n_ref,3], ref_off [B], query [n_query,3], query_off [B] (cumulative);
/// params [B] grid of each cloud (cell_base = first cell of the cloud in `start`).
/// Workspaces: cell [n_ref] int32, start [total_cells+1] int32 ZEROED, cursor [total_cells]
/// int32, sorted [n_ref,3], sorted_ids [n_ref]. Outputs idx/dist2 [n_query,k].
#define EWA_KNN_CUDA_DECL(T)                                                                    \
  void knn_grid(const T* ref, const int64_t* ref_off, int64_t n_ref, const T* query,            \
                const int64_t* query_off, int64_t n_query, int64_t num_clouds,                   \
                const detail::GridParams<T>* params, int64_t total_cells, int k, int32_t* cell, \
                int32_t* start, int32_t* cursor, T* sorted, int64_t* sorted_ids,                \
                int64_t* idx, T* dist2, void* stream);
EWA_KNN_CUDA_DECL(float)
EWA_KNN_CUDA_DECL(double)
#undef EWA_KNN_CUDA_DECL

/// Farthest point sampling, one block per cloud. xyz [N,3], off/new_off [B] cumulative,
/// start_index local to each cloud, mind workspace [N], out [new_off[B-1]] global indices.
#define EWA_FPS_CUDA_DECL(T)                                                               \
  void farthest_point_sampling(const T* xyz, const int64_t* off, const int64_t* new_off, \
                               int64_t num_clouds, int64_t start_index, T* mind, int64_t* out, \
                               void* stream);
EWA_FPS_CUDA_DECL(float)
EWA_FPS_CUDA_DECL(double)
#undef EWA_FPS_CUDA_DECL

}  // namespace ewa::pointcloud::ops::cuda
