// Whole-scene inference without a trained network: fragments (one point per voxel each)
// cover every point, voting averages one logit row per evaluated point and augmentation,
// voxel mode copies a voxel's logits, block chunking (core + halo) of large fragments still
// covers every point; capped fragments cover every point; the bounded design equals the plain
// grid-sample fragment voting where that fits; chunked equals unchunked for a per-point net.
#include <gtest/gtest.h>

#include "ewa/datasets/points/cloud_formats.h"
#include "ewa/datasets/points/npy.h"
#include "ewa/pointcloud/inference.h"
#include "ewa/pointcloud/ops.h"
#include "ewa/pointcloud/point_transformer.h"
#include "ewa/pointcloud/scene_data.h"
#include "ewa/pointcloud/seg_task.h"
#include "ewa/pointcloud/segment.h"
#include "test_util.h"

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
  o.fragments = kMaxFragments;  // more than the fullest voxel: the plain one-point-per-voxel fragments
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
  o.fragments = kMaxFragments;  // every point in a fragment (none takes its voxel's mean)
  o.batch_points = 700;         // several forwards
  int64_t seen = 0;
  SceneInferenceStats st;
  torch::Tensor votes;
  auto logits = infer_scene_logits(c, oracle(k, &seen), o, &st, &votes);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2000, k}));
  EXPECT_TRUE(torch::allclose(logits.sum(1), torch::ones({2000})));  // mean of one-hot rows
  EXPECT_TRUE(votes.ge(1.0f).all().item<bool>());                     // every point voted
  EXPECT_EQ(votes.sum().item<float>(), static_cast<float>(seen));     // each evaluated row lands once
  EXPECT_EQ(seen, st.points_in);
  EXPECT_EQ(st.inherited, 0);
  EXPECT_TRUE(torch::equal(logits.argmax(1), c.segment));
  EXPECT_GT(st.forwards, 1);
  EXPECT_EQ(st.augmentations, 1);

  o.tta = true;  // 3 scales x 4 flips: at least 12 votes each, streamed into the same sum
  logits = infer_scene_logits(c, oracle(k), o, &st, &votes);
  EXPECT_EQ(st.augmentations, 12);
  EXPECT_TRUE(votes.ge(12.0f).all().item<bool>());
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
  EXPECT_LE(chunks.size(), static_cast<size_t>(kMaxChunksPerFragment));
  for (const auto& ch : chunks) {
    EXPECT_EQ(ch.size(0), 200);  // core + halo fill the chunk
    EXPECT_EQ(std::get<0>(at::_unique(ch)).size(0), 200);  // no point twice in a chunk
  }
  torch::Tensor votes;
  auto logits = infer_scene_logits(c, oracle(k), o, nullptr, &votes);
  EXPECT_TRUE(votes.ge(1.0f).all().item<bool>());  // every point voted at least once
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
  torch::Tensor votes;
  auto logits = infer_scene_logits(c, oracle(k), o, nullptr, &votes);
  EXPECT_TRUE(torch::equal(logits.sum(1), torch::ones({1200})));
  EXPECT_TRUE(torch::equal(votes, torch::ones({1200})));
  // a point's prediction is the label of its voxel's evaluated point
  auto expect = c.segment.index_select(0, reps.index_select(0, inverse));
  EXPECT_TRUE(torch::equal(logits.argmax(1), expect));
}

/// A cloud whose voxels (grid 0.1) hold very different numbers of points: a dense corner of
/// `dense` points in one voxel, the rest spread out.
PointCloudData uneven_cloud(int64_t n, int64_t dense, int64_t k, uint64_t seed) {
  auto c = labelled_cloud(n, k, seed);
  c.coord.narrow(0, 0, dense).mul_(0.05f);  // [dense,3] inside the first voxel
  return c;
}

TEST(PipelineInference, CappedFragmentsGiveEveryPointAPrediction) {
  // F fragments of one point per voxel; the points of voxels fuller than F that no fragment
  // holds take the mean logits of their voxel's evaluated points.
  auto c = uneven_cloud(4000, 500, 3, 6);
  c.color = torch::randint(256, {4000, 3}, torch::kLong).to(torch::kUInt8);
  auto w = torch::randn({3, 3});
  SegLogitsFn pointwise = [w](const torch::Tensor&, const torch::Tensor& feat, const torch::Tensor&) {
    return feat.narrow(1, 3, 3).matmul(w);  // [M,K] from the colour only
  };
  auto own = c.color.to(torch::kFloat).div(255.0).matmul(w);  // [N,K] each point's own logits
  auto g = ops::grid_sample(c.coord, torch::full({1}, int64_t{4000}), 0.1, ops::GridSampleMode::kTest, std::nullopt,
                            /*return_inverse=*/true);
  const int64_t voxels = g.counts.size(0);
  ASSERT_GT(g.counts.max().item<int64_t>(), 7);
  SceneInferenceOptions o;
  o.grid_size = 0.1;
  o.max_points = 100000;  // no blocks: one chunk per fragment
  for (int64_t cap : {int64_t{1}, int64_t{3}, int64_t{7}}) {
    o.fragments = cap;
    auto chunks = scene_chunks(c.coord, o);
    ASSERT_EQ(static_cast<int64_t>(chunks.size()), cap) << cap;
    auto in_fragment = torch::zeros({4000}, torch::kBool);
    for (const auto& ch : chunks) {
      EXPECT_EQ(ch.size(0), voxels) << cap;  // one point per voxel
      EXPECT_EQ(std::get<0>(at::_unique(g.inverse.index_select(0, ch))).size(0), voxels) << cap;
      in_fragment.index_fill_(0, ch, true);
    }
    // voxels with <= F points: all their points are in a fragment
    auto small = g.counts.index_select(0, g.inverse).le(cap);  // [N]
    EXPECT_TRUE(in_fragment.logical_or(small.logical_not()).all().item<bool>()) << cap;
    SceneInferenceStats st;
    torch::Tensor votes;
    auto logits = infer_scene_logits(c, pointwise, o, &st, &votes);
    EXPECT_TRUE(votes.ge(1.0f).all().item<bool>()) << cap;
    const int64_t left_out = 4000 - in_fragment.sum().item<int64_t>();
    EXPECT_EQ(st.inherited, left_out) << cap;
    EXPECT_EQ(st.points_in, cap * voxels) << cap;
    // evaluated points keep their own logits; a left-out point gets its voxel's evaluated mean
    auto evaluated = in_fragment.nonzero().view({-1});
    EXPECT_TRUE(torch::allclose(logits.index_select(0, evaluated), own.index_select(0, evaluated), 1e-5, 1e-5)) << cap;
    auto out = in_fragment.logical_not().nonzero().view({-1});
    ASSERT_GT(out.size(0), 0) << cap;
    for (int64_t t = 0; t < std::min<int64_t>(out.size(0), 5); ++t) {
      const int64_t p = out[t].item<int64_t>();
      auto mates = g.inverse.eq(g.inverse[p]).logical_and(in_fragment).nonzero().view({-1});
      auto mean = own.index_select(0, mates).mean(0);
      EXPECT_TRUE(torch::allclose(logits[p], mean, 1e-4, 1e-5)) << cap << " point " << p;
    }
  }
  o.fragments = 1000;  // clamped to kMaxFragments
  EXPECT_LE(static_cast<int64_t>(scene_chunks(c.coord, o).size()), kMaxFragments);
}

TEST(PipelineInference, EqualsPlainFragmentVotingWhereItFits) {
  // The reference: today's grid-sample test fragments, one forward each, logits summed.
  torch::manual_seed(11);
  const int64_t k = 4;
  auto c = labelled_cloud(3000, k, 7);
  PointTransformerOptions po;
  po.variant("custom").blocks({1, 1, 1}).channels({8, 16, 16}).nsample({8, 8, 8}).stride({1, 4, 4});
  po.in_channels(6).num_classes(k);
  PointTransformer net(po);
  net->eval();
  auto fn = model_logits_fn(net);
  SceneInferenceOptions o;
  o.grid_size = 0.15;
  o.fragments = kMaxFragments;
  o.max_points = 100000;
  auto g = ops::grid_sample(c.coord, torch::full({1}, int64_t{3000}), o.grid_size, ops::GridSampleMode::kTest);
  ASSERT_GT(g.fragments.size(), 1u);
  ASSERT_LE(g.fragments.size(), static_cast<size_t>(kMaxFragments));
  // the same index sets in the same order
  auto chunks = scene_chunks(c.coord, o);
  ASSERT_EQ(chunks.size(), g.fragments.size());
  for (size_t f = 0; f < chunks.size(); ++f) EXPECT_TRUE(torch::equal(chunks[f], g.fragments[f])) << f;
  torch::NoGradGuard ng;
  auto sum = torch::zeros({3000, k});
  for (const auto& frag : g.fragments) {
    auto part = datasets::select_points(c, frag);
    part.coord = shift_to_origin(part.coord);
    sum.index_add_(0, frag, fn(part.coord, make_features(part, o.features), torch::full({1}, frag.size(0))));
  }
  torch::Tensor votes;
  auto mean = infer_scene_logits(c, fn, o, nullptr, &votes);  // fragments packed into shared forwards
  EXPECT_TRUE(torch::allclose(mean * votes.unsqueeze(1), sum, 1e-4, 1e-4));
  EXPECT_TRUE(torch::equal(mean.argmax(1), sum.argmax(1)));
}

TEST(PipelineInference, ChunkedEqualsUnchunkedForAPointwiseNetwork) {
  // A per-point network (its logits depend on the colour only): whatever block holds a point,
  // its mean logits are its own, so chunked and unchunked inference agree to float tolerance.
  const int64_t k = 5;
  auto c = labelled_cloud(6000, k, 8);
  c.color = torch::randint(256, {6000, 3}, torch::kLong).to(torch::kUInt8);
  auto w = torch::randn({3, k});
  SegLogitsFn pointwise = [w](const torch::Tensor&, const torch::Tensor& feat, const torch::Tensor&) {
    return torch::tanh(feat.narrow(1, 3, 3).matmul(w));  // [M,K]
  };
  SceneInferenceOptions o;
  o.grid_size = 0.05;
  o.fragments = kMaxFragments;  // every point evaluated (no voxel means), in every TTA variant
  o.max_points = 1000000;
  SceneInferenceStats whole_st, chunked_st;
  torch::Tensor whole_votes, chunked_votes;
  auto whole = infer_scene_logits(c, pointwise, o, &whole_st, &whole_votes);
  o.max_points = 300;  // every fragment cut into blocks of 225 core + 75 halo points
  auto chunked = infer_scene_logits(c, pointwise, o, &chunked_st, &chunked_votes);
  EXPECT_GT(chunked_st.chunks, 4 * whole_st.chunks);
  EXPECT_GT(chunked_st.points_in, whole_st.points_in);  // halos: context evaluated twice
  EXPECT_TRUE(torch::equal(whole_votes, chunked_votes));  // but each point kept once per fragment
  EXPECT_TRUE(torch::allclose(whole, chunked, 1e-5, 1e-6));
  o.tta = true;
  o.tta_scales = {0.9, 1.1};
  EXPECT_TRUE(torch::allclose(whole, infer_scene_logits(c, pointwise, o), 1e-5, 1e-6));
}

TEST(PipelineInference, ProgressReachesTheTotal) {
  auto c = labelled_cloud(3000, 3, 9);
  SceneInferenceOptions o;
  o.grid_size = 0.1;
  o.max_points = 500;
  std::vector<SceneProgress> seen;
  o.progress = [&seen](const SceneProgress& p) { seen.push_back(p); };
  SceneInferenceStats st;
  infer_scene_logits(c, oracle(3), o, &st);
  ASSERT_EQ(static_cast<int64_t>(seen.size()), st.forwards);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i].done, seen[i - 1].done);
  EXPECT_NEAR(static_cast<double>(seen.back().done), static_cast<double>(seen.back().total),
              0.01 * static_cast<double>(seen.back().total) + 2);
  EXPECT_EQ(seen.back().forwards, st.forwards);
}

/// A 2-stage Point Transformer (channels c, 2c) on xyz+rgb in eval mode, random weights.
PointTransformer two_stage_net(int64_t c, int64_t k) {
  PointTransformerOptions po;
  po.variant("custom").blocks({1, 1}).channels({c, 2 * c}).nsample({8, 8}).stride({1, 4}).in_channels(6).num_classes(k);
  PointTransformer net(po);
  net->eval();
  return net;
}

/// Metadata of a 3-class model (a, b, c) on 0.1 m voxels with xyz+rgb features.
SegModelInfo abc_model_info() {
  SegModelInfo info;
  info.class_names = {"a", "b", "c"};
  info.palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  info.grid_size = 0.1;
  info.features = {"xyz", "rgb"};
  return info;
}

TEST(PipelineInference, SegmentOutputsReadBackThroughTheProjectReader) {
  // `ewa segment`'s outputs: PLY (pred, gt, confidence), float16 probabilities in source order
  // (a dropped point's row NaN), JSON summary with metrics; read back with open_cloud / read_npy.
  torch::manual_seed(12);
  const int64_t k = 3;
  auto c = labelled_cloud(1500, k, 10);
  c.index = torch::arange(1500, torch::kLong) + (torch::arange(1500, torch::kLong) >= 700).to(torch::kLong);  // source row 700 dropped
  PointTransformer net = two_stage_net(8, k);
  const SegModelInfo info = abc_model_info();
  SegmentOptions so;
  so.keep_probabilities = true;
  auto r = segment_cloud(net, info, c, so);
  ASSERT_TRUE(r.metrics.has_value());
  ASSERT_EQ(r.probabilities.sizes(), (std::vector<int64_t>{1500, k}));
  EXPECT_TRUE(torch::allclose(r.probabilities.sum(1), torch::ones({1500}), 1e-5, 1e-5));
  EXPECT_TRUE(torch::equal(r.probabilities.argmax(1), r.pred));
  test::TempDir tmp;
  const std::string ply = tmp.str("pred.ply"), npy = tmp.str("prob.npy");
  write_prediction_ply(ply, c, r.pred, r.confidence);
  auto back = datasets::open_cloud(ply);
  ASSERT_EQ(back.cloud.size(), 1500);
  EXPECT_FALSE(back.cloud.has_segment());  // no `label` field: pred and gt are explicit
  ASSERT_TRUE(back.cloud.extra.count("pred") && back.cloud.extra.count("gt") && back.cloud.extra.count("confidence"));
  EXPECT_TRUE(torch::equal(back.cloud.extra.at("pred").to(torch::kLong), r.pred));
  EXPECT_TRUE(torch::equal(back.cloud.extra.at("gt").to(torch::kLong), c.segment));
  EXPECT_TRUE(torch::equal(back.cloud.extra.at("confidence").to(torch::kFloat), r.confidence));
  EXPECT_TRUE(torch::equal(back.cloud.color, c.color));
  EXPECT_TRUE(torch::equal(datasets::read_point_labels(ply, "pred"), r.pred));
  EXPECT_TRUE(torch::equal(datasets::read_point_labels(ply, "gt"), c.segment));

  write_probabilities_npy(npy, c, r.probabilities, 1501);
  auto p = datasets::read_npy(npy);
  ASSERT_EQ(p.scalar_type(), torch::kHalf);
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{1501, k}));
  EXPECT_TRUE(torch::isnan(p[700].to(torch::kFloat)).all().item<bool>());
  auto kept = p.index_select(0, c.index).to(torch::kFloat);  // [1500,K]
  EXPECT_TRUE(torch::allclose(kept, r.probabilities, 0, 1e-3));

  auto js = segment_summary(r, c, info, so, 1501);
  auto j = nlohmann::json::parse(js.dump());
  EXPECT_EQ(j["points"].get<int64_t>(), 1500);
  EXPECT_EQ(j["source_points"].get<int64_t>(), 1501);
  EXPECT_EQ(j["forwards"].get<int64_t>(), r.stats.forwards);
  EXPECT_GE(j["fragments"].get<int64_t>(), 1);
  EXPECT_GT(j["peak_rss_bytes"].get<int64_t>(), 0);
  ASSERT_TRUE(j.contains("metrics"));
  EXPECT_EQ(j["metrics"]["confusion"].size(), static_cast<size_t>(k));
  EXPECT_NEAR(j["metrics"]["oa"].get<double>(), r.pred.eq(c.segment).to(torch::kDouble).mean().item<double>(), 1e-9);
  EXPECT_EQ(j["metrics"]["classes"].size(), static_cast<size_t>(k));
}

TEST(PipelineInference, Bf16SegmentStaysCloseToFp32) {
  // `ewa segment --precision bf16` (auto on a CPU with native bf16): the forwards run under
  // autocast (so the logits differ from fp32 in the low bits), the votes are summed in fp32 and
  // the probabilities stay close; the summary says which precision ran.
  torch::manual_seed(13);
  const int64_t k = 3;
  auto c = labelled_cloud(2000, k, 11);
  PointTransformer net = two_stage_net(16, k);
  const SegModelInfo info = abc_model_info();
  SegmentOptions so;
  so.keep_probabilities = true;
  auto fp32 = segment_cloud(net, info, c, so);
  so.bf16 = true;
  auto bf16 = segment_cloud(net, info, c, so);
  ASSERT_EQ(bf16.probabilities.scalar_type(), torch::kFloat);
  EXPECT_FALSE(torch::equal(bf16.probabilities, fp32.probabilities));  // autocast was on
  EXPECT_LT((bf16.probabilities - fp32.probabilities).abs().max().item<float>(), 0.05f);
  EXPECT_EQ(segment_summary(bf16, c, info, so, 2000)["precision"], "bf16");
  so.bf16 = false;
  EXPECT_EQ(segment_summary(fp32, c, info, so, 2000)["precision"], "fp32");
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
