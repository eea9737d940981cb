// Inference and training bounds found by hostile inputs: 20,000 identical points (one voxel,
// once 20,000 one-point fragments; now F fragments, and with 1-point chunks a bounded number
// of blocks), a model whose metadata asks for 1-point chunks (once quadratic chunking), and point classification with a training set of size % batch == 1
// (once a BatchNorm batch of one).
#include <gtest/gtest.h>

#include "ewa/pointcloud/cls_task.h"
#include "ewa/pointcloud/inference.h"

namespace ewa::pointcloud {
namespace {

// A logits function that counts its calls and the points it saw.
SegLogitsFn counting_fn(int64_t* calls, int64_t* points) {
  return [calls, points](const torch::Tensor& coord, const torch::Tensor&, const torch::Tensor&) {
    ++*calls;
    *points += coord.size(0);
    return torch::ones({coord.size(0), 2});
  };
}

TEST(PipelineBounds, IdenticalPointsGiveFewFragmentsThatCoverEveryPoint) {
  datasets::PointCloudData c;
  c.coord = torch::full({20000, 3}, 0.5f);
  c.color = torch::zeros({20000, 3}, torch::kUInt8);
  SceneInferenceOptions o;
  o.grid_size = 0.04;
  auto chunks = scene_chunks(c.coord, o);
  ASSERT_EQ(static_cast<int64_t>(chunks.size()), kDefaultFragments);  // one voxel: F one-point fragments
  for (const auto& ch : chunks) EXPECT_EQ(ch.size(0), 1);
  int64_t calls = 0, points = 0;
  SceneInferenceStats st;
  torch::Tensor votes;
  auto logits = infer_scene_logits(c, counting_fn(&calls, &points), o, &st, &votes);
  EXPECT_TRUE(votes.eq(1.0f).all().item<bool>());  // every point gets one prediction
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  EXPECT_EQ(points, kDefaultFragments);             // not 20,000 forwards of one point
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(st.forwards, calls);
  EXPECT_EQ(st.inherited, 20000 - kDefaultFragments);  // the rest take their voxel's mean
}

TEST(PipelineBounds, IdenticalPointsWithOnePointChunksStayBounded) {
  // Identical points have a zero-size box: median splits go by position, the halo search ties
  // everywhere, and the work stays linear in the points.
  datasets::PointCloudData c;
  c.coord = torch::full({20000, 3}, -3.0f);
  c.color = torch::zeros({20000, 3}, torch::kUInt8);
  for (double grid : {0.04, 0.0}) {
    SceneInferenceOptions o;
    o.grid_size = grid;
    o.max_points = 1;   // degenerate chunk: raised to kMinChunkPoints and V / 96
    o.fragments = kMaxFragments;
    int64_t calls = 0, points = 0;
    SceneInferenceStats st;
    torch::Tensor votes;
    infer_scene_logits(c, counting_fn(&calls, &points), o, &st, &votes);
    EXPECT_TRUE(votes.eq(1.0f).all().item<bool>()) << grid;  // each point one prediction
    const int64_t fragments = grid > 0 ? kMaxFragments : 1;
    EXPECT_EQ(st.fragments, fragments) << grid;
    EXPECT_LE(st.chunks, fragments * kMaxChunksPerFragment) << grid;
    EXPECT_LE(points, 3 * 20000) << grid;  // blocks: core >= 3/8 of the chunk
    EXPECT_LE(st.forwards, st.chunks) << grid;
  }
}

TEST(PipelineBounds, OnePointChunksFromModelMetadataAreRaised) {
  torch::manual_seed(3);
  datasets::PointCloudData c;
  c.coord = torch::rand({30000, 3});
  c.color = torch::zeros({30000, 3}, torch::kUInt8);
  SceneInferenceOptions o;
  o.grid_size = 0;   // one fragment of every point
  o.max_points = 1;  // as a hostile model file could say
  auto chunks = scene_chunks(c.coord, o);
  // the chunk is raised to V / 96 points, so there are at most kMaxChunksPerFragment blocks
  const int64_t cap = std::max<int64_t>(kMinChunkPoints, (30000 + 95) / 96);
  EXPECT_LE(static_cast<int64_t>(chunks.size()), kMaxChunksPerFragment);
  auto covered = torch::zeros({30000}, torch::kBool);
  for (const auto& ch : chunks) {
    EXPECT_LE(ch.size(0), cap);
    covered.index_fill_(0, ch, true);
  }
  EXPECT_TRUE(covered.all().item<bool>());
}

TEST(PipelineBounds, ClassificationTrainsWhenTheLastBatchWouldHoldOneShape) {
  PointClsConfig cfg;
  cfg.model().pt().variant("custom").blocks({1, 1, 1, 1, 1}).channels({8, 16, 16, 16, 16}).head("cls");
  cfg.model().pt().in_channels(3).num_classes(2);
  cfg.train().batch_size(2);
  cfg.data().num_points(32);
  ShapeSet train, val;
  torch::manual_seed(1);
  train.points = torch::rand({5, 32, 3});  // 5 % 2 == 1
  train.label = torch::tensor({0, 1, 0, 1, 0}, torch::kLong);
  train.class_names = {"a", "b"};
  val = train;
  ClsTask task(cfg, train, val);
  task.model().train();
  task.begin_epoch(0, 0);
  int64_t batches = 0;
  while (auto b = task.next_batch()) {
    EXPECT_GE(b->num_samples, 2);  // never a BatchNorm batch of one
    auto out = task.training_step(*b);
    EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
    ++batches;
  }
  EXPECT_EQ(batches, task.batches_per_epoch());
}

}  // namespace
}  // namespace ewa::pointcloud
