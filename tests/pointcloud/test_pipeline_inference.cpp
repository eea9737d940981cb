// Whole-scene inference without a trained network: fragments (one point per voxel each)
// cover every point, voting sums one logit row per evaluated point and augmentation, voxel mode copies a voxel's
// logits, sphere-crop chunking of large fragments still covers every point.
#include <gtest/gtest.h>

#include "ewa/pointcloud/inference.h"

namespace ewa::pointcloud {
namespace {

using datasets::PointCloudData;

/// A dense random room slab with labels encoded in the red channel (label * 40).
PointCloudData labelled_cloud(int64_t n, int64_t k, uint64_t seed) {
  torch::manual_seed(seed);
  PointCloudData c;
  c.coord = torch::rand({n, 3}) * torch::tensor({2.0f, 1.5f, 1.0f});  // [N,3]
  c.segment = torch::randint(k, {n}, torch::kLong);
  c.color = torch::zeros({n, 3}, torch::kUInt8);
  c.color.select(1, 0).copy_((c.segment * 40).to(torch::kUInt8));
  c.name = "synthetic";
  c.source = "memory";
  return c;
}

/// A fake network: class = red channel / 40 (features xyz, rgb -> channel 3).
SegLogitsFn oracle(int64_t k, int64_t* points_seen = nullptr) {
  return [k, points_seen](const torch::Tensor& coord, const torch::Tensor& feat, const torch::Tensor& offset) {
    EXPECT_EQ(offset[-1].item<int64_t>(), coord.size(0));
    EXPECT_GE(coord.min().item<float>(), 0.0f);  // chunks are shifted to the origin
    if (points_seen) *points_seen += coord.size(0);
    auto cls = (feat.select(1, 3) * 255.0 / 40.0).round().to(torch::kLong);  // [M]
    return torch::one_hot(cls, k).to(torch::kFloat);                           // [M,K]
  };
}

TEST(PipelineInference, FragmentsCoverEveryPoint) {
  auto c = labelled_cloud(3000, 4, 1);
  SceneInferenceOptions o;
  o.grid_size = 0.1;
  auto chunks = scene_chunks(c.coord, o);
  ASSERT_GT(chunks.size(), 1u);
  auto all = std::get<0>(std::get<0>(at::_unique(torch::cat(chunks))).sort());  // sparse voxels repeat points
  EXPECT_TRUE(torch::equal(all, torch::arange(3000, torch::kLong)));
  for (const auto& ch : chunks) EXPECT_EQ(ch.size(0), chunks[0].size(0));  // every fragment: all voxels
  // each chunk holds at most one point per voxel
  auto key = ((c.coord - std::get<0>(c.coord.min(0))) / 0.1).floor().to(torch::kLong);  // grid_sample's voxels
  for (const auto& ch : chunks) {
    auto k = key.index_select(0, ch);
    auto code = k.select(1, 0) * 1000000 + k.select(1, 1) * 1000 + k.select(1, 2);
    EXPECT_EQ(std::get<0>(at::_unique(code)).size(0), ch.size(0));
  }
}

TEST(PipelineInference, VotingSumsOneRowPerPointAndAugmentation) {
  const int64_t k = 4;
  auto c = labelled_cloud(2000, k, 2);
  SceneInferenceOptions o;
  o.grid_size = 0.08;
  o.batch_points = 700;  // several forwards
  int64_t seen = 0;
  SceneInferenceStats st;
  auto logits = infer_scene_logits(c, oracle(k, &seen), o, &st);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2000, k}));
  auto votes = logits.sum(1);                                // one-hot rows: votes per point
  EXPECT_TRUE(votes.ge(1.0f).all().item<bool>());            // every point voted
  EXPECT_EQ(votes.sum().item<float>(), static_cast<float>(seen));  // each evaluated row lands once
  EXPECT_EQ(seen, st.points_in);
  EXPECT_TRUE(torch::equal(logits.argmax(1), c.segment));
  EXPECT_GT(st.forwards, 1);

  o.tta = true;  // 3 scales x 4 flips: at least 12 votes each
  logits = infer_scene_logits(c, oracle(k), o);
  EXPECT_TRUE(logits.sum(1).ge(12.0f).all().item<bool>());
  EXPECT_TRUE(torch::equal(logits.argmax(1), c.segment));
}

TEST(PipelineInference, LargeFragmentsAreChunkedAndStillCovered) {
  const int64_t k = 3;
  auto c = labelled_cloud(1500, k, 3);
  SceneInferenceOptions o;
  o.grid_size = 0;  // one fragment of every point
  o.max_points = 200;
  auto chunks = scene_chunks(c.coord, o);
  EXPECT_GE(chunks.size(), 8u);
  for (const auto& ch : chunks) EXPECT_LE(ch.size(0), 200);
  auto logits = infer_scene_logits(c, oracle(k), o);
  EXPECT_TRUE(logits.sum(1).ge(1.0f).all().item<bool>());  // every point voted at least once
  EXPECT_TRUE(torch::equal(logits.argmax(1), c.segment));
}

TEST(PipelineInference, VoxelModeCopiesTheVoxelLogits) {
  const int64_t k = 3;
  auto c = labelled_cloud(1200, k, 4);
  SceneInferenceOptions o;
  o.mode = "voxel";
  o.grid_size = 0.2;
  torch::Tensor inverse, reps;
  auto chunks = scene_chunks(c.coord, o, &inverse, &reps);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(inverse.size(0), 1200);
  auto logits = infer_scene_logits(c, oracle(k), o);
  EXPECT_TRUE(torch::equal(logits.sum(1), torch::ones({1200})));
  // a point's prediction is the label of its voxel's evaluated point
  auto expect = c.segment.index_select(0, reps.index_select(0, inverse));
  EXPECT_TRUE(torch::equal(logits.argmax(1), expect));
}

TEST(PipelineInference, BadNetworkOutputIsAnError) {
  auto c = labelled_cloud(100, 2, 5);
  SceneInferenceOptions o;
  auto bad = [](const torch::Tensor& coord, const torch::Tensor&, const torch::Tensor&) {
    return torch::zeros({coord.size(0) + 1, 2});
  };
  EXPECT_THROW(infer_scene_logits(c, bad, o), c10::Error);
  c.color = torch::Tensor();
  EXPECT_THROW(infer_scene_logits(c, oracle(2), o), std::runtime_error);  // rgb feature without colour
}

}  // namespace
}  // namespace ewa::pointcloud
