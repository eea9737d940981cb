// Point ops on offset-batched point clouds: kNN (uniform grid), farthest point sampling,
// inverse-distance interpolation, grouping, grid (voxel) sampling and sphere crop.
// Each op validates its inputs here, runs the parallel CPU reference or the CUDA twin.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

/// Point-cloud batches are concatenated points plus an `offset` vector: `offset` is a 1-D
/// int64 tensor of cumulative point counts, `offset[b]` = end of cloud b (sizes 3,5 ->
/// [3, 8]); no padding. Coordinates are float32 or float64 `[N,3]`, all indices int64 and
/// global (into the concatenated tensor). Offsets may live on any device; they are read on
/// the host. CUDA tensors need a build with EWA_WITH_CUDA=ON.
namespace ewa::pointcloud::ops {

/// k nearest neighbours of every query point among the reference points of the same cloud.
/// ref_xyz [N,3] float32/float64; ref_offset [B] int64; query_xyz [M,3] (same dtype and
/// device); query_offset [B] int64 with the same B; 1 <= k <= 64.
/// Returns (idx [M,k] int64 global indices into ref_xyz, dist2 [M,k] squared distances in the
/// coordinate dtype), each row sorted by increasing distance, ties broken by the smaller index.
/// A cloud with fewer than k reference points repeats its farthest found neighbour in the
/// remaining columns. A cloud with queries but no reference points is an error.
/// Uses a per-cloud uniform grid with ring-by-ring search and exact termination.
std::tuple<torch::Tensor, torch::Tensor> knn(const torch::Tensor& ref_xyz,
                                             const torch::Tensor& ref_offset,
                                             const torch::Tensor& query_xyz,
                                             const torch::Tensor& query_offset, int64_t k);

/// Farthest point sampling per cloud. xyz [N,3] float32/float64; offset [B] int64;
/// new_offset [B] int64 cumulative sample counts (sample count of cloud b <= its size).
/// Cloud b starts at its local point `start_index` (0 <= start_index < size of b), then adds
/// the point farthest from the points chosen so far (ties: smallest index). Deterministic.
/// Returns idx [M] int64 global indices into xyz, M = new_offset[-1].
torch::Tensor farthest_point_sampling(const torch::Tensor& xyz, const torch::Tensor& offset,
                                      const torch::Tensor& new_offset, int64_t start_index = 0);

/// Inverse-distance interpolation from the k nearest source points (PTv1 / PointNet++
/// feature propagation): weight_j = 1/(d_j + 1e-8) normalised over the k neighbours, d the
/// Euclidean distance. src_xyz [N,3]; src_offset [B]; src_feat [N,C] float (any float dtype,
/// same device); dst_xyz [M,3]; dst_offset [B]. Returns [M,C] in src_feat's dtype.
/// Differentiable w.r.t. src_feat (the weights are constants: no gradient to coordinates).
torch::Tensor interpolate(const torch::Tensor& src_xyz, const torch::Tensor& src_offset,
                          const torch::Tensor& src_feat, const torch::Tensor& dst_xyz,
                          const torch::Tensor& dst_offset, int64_t k = 3);

/// Gathers neighbour features: feat [N,C], idx [M,k] int64 global indices into feat.
/// Returns [M,k,C]; differentiable w.r.t. feat.
torch::Tensor group(const torch::Tensor& feat, const torch::Tensor& idx);

/// Point Transformer vector-attention aggregation (PTv1's pointops.aggregation):
/// y[n, g*C/s + c] = sum_j (v[idx[n,j], g*C/s + c] + pe[n,j, g*C/s + c]) * w[n,j,c]
/// for v [N,C] (values before grouping), pe [M,k,C] (position encoding), w [M,k,C/s]
/// (attention weights shared by s channel groups), idx [M,k]. Returns [M,C]; differentiable
/// w.r.t. v, pe and w. Equals group(v, idx) + pe, viewed [M,k,s,C/s], times w.unsqueeze(2),
/// summed over k, without materialising the [M,k,C] intermediates (CPU kernel; tensor ops on
/// other devices). Mixed float dtypes (autocast) are computed in the widest of them.
torch::Tensor aggregate(const torch::Tensor& v, const torch::Tensor& pe, const torch::Tensor& w,
                        const torch::Tensor& idx);

/// Groups with precomputed neighbours: xyz [N,3] reference points, new_xyz [M,3] query
/// points, feat [N,C] (may be undefined: coordinates only), idx [M,k] int64 global into xyz.
/// Returns [M,k,3+C] = (xyz[idx] - new_xyz, feat[idx]) when with_xyz, else [M,k,C].
/// Differentiable w.r.t. xyz, new_xyz and feat.
torch::Tensor group_relative(const torch::Tensor& xyz, const torch::Tensor& new_xyz,
                             const torch::Tensor& feat, const torch::Tensor& idx,
                             bool with_xyz = true);

/// kNN + group_relative (PTv1's queryandgroup): xyz [N,3], offset [B], new_xyz [M,3],
/// new_offset [B], feat [N,C] or undefined. Returns [M,k,3+C] (with_xyz) or [M,k,C].
/// When `idx_out` is given it receives the neighbour indices [M,k] int64.
torch::Tensor query_and_group(const torch::Tensor& xyz, const torch::Tensor& offset,
                              const torch::Tensor& new_xyz, const torch::Tensor& new_offset,
                              const torch::Tensor& feat, int64_t k, bool with_xyz = true,
                              torch::Tensor* idx_out = nullptr);

/// Grid sampling mode: train keeps one random point per voxel; test returns fragments;
/// voxels returns no fragment, only the voxel structure (`order`, `counts`), from which
/// callers build their own fragments without materialising (largest voxel) of them.
enum class GridSampleMode { kTrain, kTest, kVoxels };

/// Result of grid_sample. Voxels are numbered per cloud in increasing voxel-key order, clouds
/// in batch order; every fragment lists exactly one point per voxel in that order.
struct GridSampleResult {
  /// train: one tensor; test: F = (largest voxel population) fragments. Each is [V] int64
  /// global indices into xyz, V = number of voxels. Fragment f takes the (f mod count)-th
  /// point of each voxel (points of a voxel in increasing index order), so the fragments
  /// together cover every point, each exactly once with f < count of its voxel.
  std::vector<torch::Tensor> fragments;
  /// [B] int64 cumulative voxel counts per cloud (the offset of every fragment).
  torch::Tensor offset;
  /// [N] int64: voxel number (= row in every fragment) of each point; undefined unless
  /// return_inverse.
  torch::Tensor inverse;
  /// [V] int64: number of points in each voxel.
  torch::Tensor counts;
  /// [N] int64 (voxels mode only): every point, voxel by voxel in voxel order, the points of
  /// a voxel in increasing index order (voxel v occupies rows cumsum(counts)[v] - counts[v] ..).
  torch::Tensor order;
};

/// Voxel grid sampling: voxel key = floor((xyz - per-cloud min) / grid_size).
/// xyz [N,3] float32/float64 (CPU; CUDA inputs are processed on the CPU and the result moved
/// back), offset [B] int64, grid_size > 0. train mode picks the kept point of each voxel
/// uniformly at random from `generator` (the default CPU generator when absent).
GridSampleResult grid_sample(const torch::Tensor& xyz, const torch::Tensor& offset,
                             double grid_size, GridSampleMode mode = GridSampleMode::kTrain,
                             std::optional<at::Generator> generator = std::nullopt,
                             bool return_inverse = false);

/// Sphere crop: per cloud the max_points points nearest to the cloud's centre (all points when
/// the cloud is smaller), sorted by increasing distance (ties: smaller index).
/// xyz [N,3] float32/float64, offset [B] int64, centre [B,3] (or [3] when B == 1), max_points
/// >= 1. Returns (idx [M] int64 global indices into xyz, new_offset [B] int64).
std::tuple<torch::Tensor, torch::Tensor> sphere_crop(const torch::Tensor& xyz,
                                                     const torch::Tensor& offset,
                                                     const torch::Tensor& centre,
                                                     int64_t max_points);

/// Single-cloud sphere crop: xyz [N,3], centre [3]. Returns idx [min(N,max_points)] int64.
torch::Tensor sphere_crop(const torch::Tensor& xyz, const torch::Tensor& centre,
                          int64_t max_points);

}  // namespace ewa::pointcloud::ops
