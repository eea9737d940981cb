// Whole-scene segmentation inference in bounded time and memory: at most F grid-sample test
// fragments that cover every point, fragments larger than the chunk size cut into spatial
// blocks with a halo of context, test-time augmentation (scale x flip), mean logits per point.
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

/// Bounds that keep whole-scene inference linear in the scene size whatever the data, the
/// flags or the model metadata say (README, "Whole-scene inference"):
/// - fragments: the fragment count is min(options.fragments, largest voxel population), and
///   options.fragments is clamped to [1, kMaxFragments]. Fragment f holds point f mod c of
///   every voxel (c its points): one point per voxel, the density the network trained on. The
///   points of voxels fuller than F that are in no fragment take the mean logits of their
///   voxel's evaluated points, so every point gets a prediction, the work is F x voxels, and
///   20,000 identical points are F one-point fragments.
/// - chunks: a fragment of V points larger than the chunk size P is cut by splits along the
///   longest axis into ceil(V / (3/4 P)) blocks of equal size (cores; duplicates split by position), each
///   with the nearest other points as halo, up to P and at most a third of the core (context;
///   only core logits are kept, so every point is voted once per fragment). P is raised to kMinChunkPoints and to
///   V / 96, so a fragment has at most kMaxChunksPerFragment blocks.
constexpr int64_t kMaxFragments = 32;
/// Default cap on fragments and chunk size, chosen by measurement (README, "Whole-scene
/// inference"): kinect-office1.pcd with the mOSD model (181k voxels at 1 cm) takes 16.5 s and
/// 1.46 GB with 2 / 150,000, 51.6 s and 2.2 GB with 4 / 200,000 (loaded 2-core machine); on
/// mOSD learn3.pcd mIoU is 0.933 / 0.937 with 2 / 4 fragments.
constexpr int64_t kDefaultFragments = 2;
constexpr int64_t kMinChunkPoints = 64;
constexpr int64_t kMaxChunksPerFragment = 256;
/// Chunk size (and points per forward) when neither the caller nor the model gives one.
constexpr int64_t kDefaultChunkPoints = 150000;

/// Progress of one scene, reported after every forward.
struct SceneProgress {
  int64_t done = 0;      ///< fragment points evaluated so far, all augmentations
  int64_t total = 0;     ///< estimate of all fragment points (exact once the last augmentation started)
  int64_t forwards = 0;  ///< network calls so far
  double seconds = 0;    ///< since the scene started
};

struct SceneInferenceOptions {
  std::string mode = "fragments";  ///< fragments | voxel
  double grid_size = 0.04;         ///< 0 = every point in one fragment
  /// Chunk size: fragments larger than this are cut into blocks of this many points (core +
  /// halo; <= 0: kDefaultChunkPoints; raised as the bounds above say).
  int64_t max_points = 0;
  /// Cap on test fragments per augmentation (clamped to [1, kMaxFragments]).
  int64_t fragments = kDefaultFragments;
  std::vector<std::string> features = {"xyz", "rgb"};
  bool tta = false;
  std::vector<double> tta_scales = {0.9, 1.0, 1.1};
  bool tta_flip = true;
  /// Chunks are packed into one forward up to this many points (<= 0: the chunk size); one
  /// chunk always fits. Peak memory follows max(chunk size, batch_points), not the scene.
  int64_t batch_points = 0;
  /// Called after every forward (may be empty).
  std::function<void(const SceneProgress&)> progress;
};

/// Inference statistics of one scene.
struct SceneInferenceStats {
  int64_t forwards = 0;       ///< network calls
  int64_t chunks = 0;         ///< fragments / blocks evaluated
  int64_t points_in = 0;      ///< points fed to the network in total (halos included)
  int64_t fragments = 0;      ///< test fragments per augmentation (the last one's)
  int64_t inherited = 0;      ///< points in no fragment that took their voxel's mean logits (all augmentations)
  int64_t augmentations = 0;  ///< 1, or the TTA variants
};

/// Chunks (index sets into the scene, int64) that `options` evaluates for `coord` [N,3]
/// (one augmentation), fragment by fragment: every voxel is in every fragment (fragments mode:
/// min(options.fragments, largest voxel) fragments, each with one point per voxel, so every
/// point of voxels with <= F points is in one; voxel mode: one point per voxel); a chunk of a split fragment lists its core points first, then halo. Voxel mode: `inverse` [N] receives the voxel of each point and
/// `voxel_points` [V] the point evaluated for each voxel. (infer_scene_logits builds the same
/// chunks one fragment at a time; this materialises them, for tests and tools.)
std::vector<torch::Tensor> scene_chunks(const torch::Tensor& coord, const SceneInferenceOptions& options,
                                        torch::Tensor* inverse = nullptr, torch::Tensor* voxel_points = nullptr);

/// Mean logits float32 [N,K] of every point of `cloud` over all its evaluations (fragments,
/// augmentations; voxel mode, and points of voxels fuller than F: the voxel's mean logits), so points
/// repeated in several fragments do not get a sharper softmax and the argmax equals that of
/// the summed fragment votes. `votes` [N] float32 receives the evaluations per point (>= 1). Runs `fn`
/// without gradient. Each chunk's coordinates are shifted to a minimum of 0 before the
/// features are built (as in training). Memory beyond the [N,K] sum and O(N) index tensors is
/// one fragment's chunks and one forward.
torch::Tensor infer_scene_logits(const datasets::PointCloudData& cloud, const SegLogitsFn& fn,
                                 const SceneInferenceOptions& options, SceneInferenceStats* stats = nullptr,
                                 torch::Tensor* votes = nullptr);

}  // namespace ewa::pointcloud
