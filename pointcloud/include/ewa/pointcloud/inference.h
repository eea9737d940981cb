// Whole-scene segmentation inference: grid-sample test fragments (or one voxel sample) that
// cover every point, optional sphere-crop chunks for large fragments, test-time augmentation
// (scale x flip), logits summed per original point. The network is any logits function.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ewa/datasets/points/point_cloud.h"

namespace ewa::pointcloud {

/// The network: coord [M,3] float32, feat [M,C] float32, offset [B] int64 -> logits [M,K].
using SegLogitsFn =
    std::function<torch::Tensor(const torch::Tensor& coord, const torch::Tensor& feat, const torch::Tensor& offset)>;

/// Bounds that keep whole-scene inference linear in the scene size whatever the data or the
/// model metadata say: at most kMaxFragments test fragments (fragments beyond it are folded
/// into the first ones, so every point stays covered), and chunks of at least
/// kMinChunkPoints points and at most kMaxChunksPerFragment chunks per fragment.
constexpr int64_t kMaxFragments = 32;
constexpr int64_t kMinChunkPoints = 64;
constexpr int64_t kMaxChunksPerFragment = 256;

struct SceneInferenceOptions {
  std::string mode = "fragments";     ///< fragments | voxel
  double grid_size = 0.04;            ///< 0 = every point in one fragment
  int64_t max_points = 0;             ///< chunk fragments larger than this (0 = no limit; raised to
                                      ///< kMinChunkPoints and to V / kMaxChunksPerFragment)
  std::vector<std::string> features = {"xyz", "rgb"};
  bool tta = false;
  std::vector<double> tta_scales = {0.9, 1.0, 1.1};
  bool tta_flip = true;
  int64_t batch_points = 400000;      ///< chunks are packed into one forward up to this many points
};

/// Inference statistics of one scene.
struct SceneInferenceStats {
  int64_t forwards = 0;   ///< network calls
  int64_t chunks = 0;     ///< fragments / crops evaluated
  int64_t points_in = 0;  ///< points fed to the network in total
};

/// Chunks (index sets into the scene, int64) that `options` evaluates for `coord` [N,3]
/// (one augmentation): every point of the scene is in at least one chunk (fragments mode:
/// the grid-sample test fragments, each with exactly one point per voxel, points of sparse
/// voxels repeated; more than kMaxFragments fragments are folded into kMaxFragments unions;
/// voxel mode: one point per voxel). Voxel mode: `inverse` [N] receives the voxel of each point and
/// `voxel_points` [V] the point evaluated for each voxel.
std::vector<torch::Tensor> scene_chunks(const torch::Tensor& coord, const SceneInferenceOptions& options,
                                        torch::Tensor* inverse = nullptr, torch::Tensor* voxel_points = nullptr);

/// Summed logits float32 [N,K] of every point of `cloud` (voxel mode: a voxel's logits are
/// copied to each of its points). Runs `fn` without gradient. Each chunk's coordinates are
/// shifted to a minimum of 0 before the features are built (as in training).
torch::Tensor infer_scene_logits(const datasets::PointCloudData& cloud, const SegLogitsFn& fn,
                                 const SceneInferenceOptions& options, SceneInferenceStats* stats = nullptr);

}  // namespace ewa::pointcloud
