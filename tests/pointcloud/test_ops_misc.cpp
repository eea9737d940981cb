// Tests of grid sampling, sphere crop, grouping and inverse-distance interpolation (values,
// shapes, fragment coverage, finite-difference gradient) and their input errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <set>
#include <vector>

#include "ewa/pointcloud/ops.h"
#include "point_test_util.h"

namespace ops = ewa::pointcloud::ops;

namespace {
using ewa::test::offsets;

/// Voxel id of each point computed independently: (cloud, floor((p - min)/size)).
std::vector<std::array<int64_t, 4>> voxel_keys(const torch::Tensor& xyz,
                                               const std::vector<int64_t>& sizes, double size) {
  std::vector<std::array<int64_t, 4>> keys;
  int64_t s = 0;
  for (size_t b = 0; b < sizes.size(); ++b) {
    auto p = xyz.slice(0, s, s + sizes[b]);
    auto c = ((p - std::get<0>(p.min(0))) / size).floor().to(torch::kLong);
    for (int64_t i = 0; i < sizes[b]; ++i)
      keys.push_back({int64_t(b), c[i][0].item<int64_t>(), c[i][1].item<int64_t>(),
                      c[i][2].item<int64_t>()});
    s += sizes[b];
  }
  return keys;
}
}  // namespace

TEST(PointOpsGridSample, TrainKeepsOnePointPerVoxel) {
  torch::manual_seed(1);
  const std::vector<int64_t> sz = {400, 250};
  auto xyz = torch::rand({650, 3}, torch::kDouble);
  const double size = 0.2;
  auto keys = voxel_keys(xyz, sz, size);
  std::set<std::array<int64_t, 4>> voxels(keys.begin(), keys.end());
  auto gen = at::detail::createCPUGenerator(42);
  auto r = ops::grid_sample(xyz, offsets(sz), size, ops::GridSampleMode::kTrain, gen, true);
  ASSERT_EQ(r.fragments.size(), 1u);
  auto kept = r.fragments[0];
  EXPECT_EQ(kept.size(0), static_cast<int64_t>(voxels.size()));
  std::set<std::array<int64_t, 4>> seen;
  for (int64_t v = 0; v < kept.size(0); ++v) {
    const int64_t p = kept[v].item<int64_t>();
    EXPECT_TRUE(seen.insert(keys[p]).second) << "voxel kept twice";
    EXPECT_EQ(r.inverse[p].item<int64_t>(), v);
  }
  // inverse: points share a row iff they share a voxel; counts sum to N; offsets per cloud
  for (int64_t i = 0; i < 650; ++i)
    EXPECT_EQ(keys[kept[r.inverse[i].item<int64_t>()].item<int64_t>()], keys[i]);
  EXPECT_EQ(r.counts.sum().item<int64_t>(), 650);
  EXPECT_EQ(r.offset[1].item<int64_t>(), kept.size(0));
  EXPECT_TRUE((kept.slice(0, 0, r.offset[0].item<int64_t>()) < 400).all().item<bool>());
  // seeded: same generator seed, same picks; another seed picks differently somewhere
  auto r2 = ops::grid_sample(xyz, offsets(sz), size, ops::GridSampleMode::kTrain,
                             at::detail::createCPUGenerator(42));
  EXPECT_TRUE(torch::equal(r2.fragments[0], kept));
  auto r3 = ops::grid_sample(xyz, offsets(sz), size, ops::GridSampleMode::kTrain,
                             at::detail::createCPUGenerator(43));
  EXPECT_FALSE(torch::equal(r3.fragments[0], kept));
}

TEST(PointOpsGridSample, TestFragmentsCoverEveryPointExactlyOnce) {
  torch::manual_seed(2);
  const std::vector<int64_t> sz = {300, 1, 120};
  auto xyz = torch::rand({421, 3});
  auto r = ops::grid_sample(xyz, offsets(sz), 0.25, ops::GridSampleMode::kTest, std::nullopt,
                            true);
  const int64_t V = r.counts.size(0);
  EXPECT_EQ(static_cast<int64_t>(r.fragments.size()), r.counts.max().item<int64_t>());
  std::vector<int> hits(421, 0);
  for (size_t f = 0; f < r.fragments.size(); ++f) {
    ASSERT_EQ(r.fragments[f].size(0), V);
    for (int64_t v = 0; v < V; ++v) {
      const int64_t p = r.fragments[f][v].item<int64_t>();
      EXPECT_EQ(r.inverse[p].item<int64_t>(), v);  // one point of voxel v in row v
      if (static_cast<int64_t>(f) < r.counts[v].item<int64_t>()) ++hits[p];
    }
  }
  for (int64_t i = 0; i < 421; ++i) EXPECT_EQ(hits[i], 1) << "point " << i;
  EXPECT_TRUE(torch::equal(torch::bincount(r.inverse, {}, V), r.counts));
}

TEST(PointOpsGridSample, RejectsBadInputs) {
  auto xyz = torch::rand({10, 3});
  EXPECT_THROW(ops::grid_sample(xyz, offsets({10}), 0.0), c10::Error);
  EXPECT_THROW(ops::grid_sample(xyz, offsets({9}), 0.1), c10::Error);
  EXPECT_THROW(ops::grid_sample(xyz.view({15, 2}), offsets({15}), 0.1), c10::Error);
}

TEST(PointOpsSphereCrop, KeepsNearestSortedByDistance) {
  auto xyz = torch::tensor({5.0, 0.0, 0.0, 1.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0,  // cloud 0
                            0.0, 0.0, 9.0, 0.0, 0.0, 1.0},                                 // cloud 1
                           torch::kDouble)
                 .view({6, 3});
  auto centre = torch::tensor({{0.5, 0.0, 0.0}, {0.0, 0.0, 0.0}}, torch::kDouble);
  auto [idx, no] = ops::sphere_crop(xyz, offsets({4, 2}), centre, 3);
  // cloud 0: distances 4.5, 0.5, 2.5, 0.5 -> ties by index: 1, 3, 2; cloud 1: 5, 4
  EXPECT_TRUE(torch::equal(idx, torch::tensor({1L, 3L, 2L, 5L, 4L})));
  EXPECT_TRUE(torch::equal(no, torch::tensor({3L, 5L})));
  auto single = ops::sphere_crop(xyz.slice(0, 0, 4), torch::tensor({4.9, 0.0, 0.0}), 2);
  EXPECT_TRUE(torch::equal(single, torch::tensor({0L, 2L})));
  EXPECT_THROW(ops::sphere_crop(xyz, offsets({4, 2}), centre[0], 3), c10::Error);
  EXPECT_THROW(ops::sphere_crop(xyz, offsets({4, 2}), centre, 0), c10::Error);
}

TEST(PointOpsGroup, ShapesAndValues) {
  auto xyz = torch::tensor({0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 10.0, 0.0, 0.0}, torch::kDouble)
                 .view({4, 3});
  auto feat = torch::arange(8, torch::kDouble).view({4, 2});
  auto idx = torch::tensor({{1L, 2L}, {3L, 3L}});
  auto g = ops::group(feat, idx);
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_TRUE(torch::equal(g[0][1], feat[2]));
  auto new_xyz = torch::tensor({{0.0, 0.0, 0.0}, {9.0, 0.0, 0.0}}, torch::kDouble);
  auto gr = ops::group_relative(xyz, new_xyz, feat, idx, true);
  ASSERT_EQ(gr.sizes(), (std::vector<int64_t>{2, 2, 5}));
  EXPECT_TRUE(torch::equal(gr[1][0], torch::tensor({1.0, 0.0, 0.0, 6.0, 7.0}, torch::kDouble)));
  // query_and_group: 2 clouds, the query of cloud 1 only sees point 3
  torch::Tensor nidx;
  auto qg = ops::query_and_group(xyz, offsets({3, 1}), new_xyz, offsets({1, 1}), feat, 2, true,
                                 &nidx);
  ASSERT_EQ(qg.sizes(), (std::vector<int64_t>{2, 2, 5}));
  EXPECT_TRUE(torch::equal(nidx, torch::tensor({{0L, 1L}, {3L, 3L}})));
  EXPECT_TRUE(torch::equal(qg[0][1], torch::tensor({1.0, 0.0, 0.0, 2.0, 3.0}, torch::kDouble)));
  auto only_feat = ops::query_and_group(xyz, offsets({3, 1}), new_xyz, offsets({1, 1}), feat, 2,
                                        false);
  ASSERT_EQ(only_feat.sizes(), (std::vector<int64_t>{2, 2, 2}));
  auto only_xyz = ops::query_and_group(xyz, offsets({3, 1}), new_xyz, offsets({1, 1}), {}, 2);
  ASSERT_EQ(only_xyz.sizes(), (std::vector<int64_t>{2, 2, 3}));
  EXPECT_THROW(ops::group(feat, idx.to(torch::kInt)), c10::Error);
  EXPECT_THROW(ops::group_relative(xyz, new_xyz.slice(0, 0, 1), feat, idx), c10::Error);
}

TEST(PointOpsInterpolate, ValuesAndFiniteDifferenceGradient) {
  torch::manual_seed(4);
  auto src = torch::rand({40, 3}, torch::kDouble);
  auto dst = torch::rand({25, 3}, torch::kDouble);
  auto so = offsets({30, 10}), dof = offsets({15, 10});
  auto feat = torch::randn({40, 4}, torch::kDouble).requires_grad_(true);
  auto out = ops::interpolate(src, so, feat, dst, dof, 3);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{25, 4}));
  // exact at a source point; constant features stay constant
  auto at_src = ops::interpolate(src, so, feat, src, so, 3);
  EXPECT_TRUE(torch::allclose(at_src, feat, 1e-6, 1e-6));
  auto ones = ops::interpolate(src, so, torch::ones({40, 4}, torch::kDouble), dst, dof, 3);
  EXPECT_TRUE(torch::allclose(ones, torch::ones({25, 4}, torch::kDouble)));
  // gradient of sum(out * w) w.r.t. feat by central differences
  auto w = torch::randn({25, 4}, torch::kDouble);
  (out * w).sum().backward();
  auto grad = feat.grad().clone();
  const double eps = 1e-6;
  auto f0 = feat.detach().clone();
  for (int64_t i = 0; i < 40; i += 3)
    for (int64_t c = 0; c < 4; ++c) {
      auto fp = f0.clone(), fm = f0.clone();
      fp[i][c] += eps;
      fm[i][c] -= eps;
      const double lp = (ops::interpolate(src, so, fp, dst, dof, 3) * w).sum().item<double>();
      const double lm = (ops::interpolate(src, so, fm, dst, dof, 3) * w).sum().item<double>();
      EXPECT_NEAR(grad[i][c].item<double>(), (lp - lm) / (2 * eps), 1e-6) << i << "," << c;
    }
  // cloud 1 destinations use only cloud 1 sources: feature changes in cloud 0 don't reach them
  EXPECT_TRUE(torch::all(grad.slice(0, 30, 40).abs().sum(1) > 0).item<bool>() ||
              grad.slice(0, 30, 40).abs().sum().item<double>() > 0);
  auto f2 = f0.clone();
  f2.slice(0, 0, 30).add_(100.0);
  auto o2 = ops::interpolate(src, so, f2, dst, dof, 3);
  EXPECT_TRUE(torch::allclose(o2.slice(0, 15, 25), out.detach().slice(0, 15, 25)));
  EXPECT_THROW(ops::interpolate(src, so, feat.slice(0, 0, 39), dst, dof, 3), c10::Error);
}

// group's backward (a parallel per-row sum on the CPU) must equal LibTorch's index_add_ bit for
// bit: same additions in the same (ascending index) order, for every floating dtype, with
// repeated and unused rows, on more rows than one task takes.
TEST(PointOpsGroup, GradientEqualsIndexAddBitForBit) {
  torch::set_num_threads(2);
  torch::manual_seed(3);
  for (auto dtype : {torch::kFloat, torch::kDouble, torch::kBFloat16}) {
    const int64_t n = 5000, m = 7000, k = 9, c = 13;
    auto feat = torch::randn({n, c}, torch::dtype(dtype)).requires_grad_(true);
    auto idx = torch::randint(n / 2, {m, k}, torch::kLong);  // rows n/2.. never gathered
    idx.index_put_({0}, 7);                                  // one row gathered 9x by one query
    auto grad = torch::randn({m, k, c}, torch::dtype(dtype));
    auto g = ops::group(feat, idx);
    g.backward(grad);
    auto expected = torch::zeros({n, c}, torch::dtype(dtype)).index_add_(0, idx.reshape({-1}), grad.reshape({m * k, c}));
    EXPECT_TRUE(torch::equal(feat.grad(), expected)) << dtype;
  }
  auto feat = torch::randn({4, 2}).requires_grad_(true);
  ops::group(feat, torch::zeros({0, 3}, torch::kLong)).sum().backward();  // no neighbours at all
  EXPECT_TRUE(torch::equal(feat.grad(), torch::zeros({4, 2})));
}

// aggregate (one fused CPU kernel) equals the tensor-op composition it replaces, values and
// gradients, for share groups 1 / 4 / C, float64, float32, bf16 and mixed dtypes.
TEST(PointOpsAggregate, EqualsGroupAddMulSum) {
  torch::set_num_threads(2);
  torch::manual_seed(4);
  auto reference = [](const torch::Tensor& v, const torch::Tensor& pe, const torch::Tensor& w,
                      const torch::Tensor& idx) {
    const int64_t m = idx.size(0), k = idx.size(1), c = v.size(1), cw = w.size(2);
    return ((ops::group(v, idx) + pe).view({m, k, c / cw, cw}) * w.unsqueeze(2)).sum(1).view({m, c});
  };
  struct Case {
    torch::Dtype dtype;
    int64_t cw;
    double tol;
  };
  for (const Case& cs : {Case{torch::kDouble, 4, 1e-12}, Case{torch::kDouble, 1, 1e-12}, Case{torch::kDouble, 16, 1e-12},
                         Case{torch::kFloat, 4, 1e-5}, Case{torch::kBFloat16, 4, 5e-2}}) {
    const int64_t n = 300, m = 257, k = 7, c = 16;
    auto opt = torch::dtype(cs.dtype);
    auto v = torch::randn({n, c}, opt).requires_grad_(true);
    auto pe = torch::randn({m, k, c}, opt).requires_grad_(true);
    auto w = torch::softmax(torch::randn({m, k, cs.cw}, opt), 1).detach().requires_grad_(true);
    auto idx = torch::randint(n, {m, k}, torch::kLong);
    auto v2 = v.detach().clone().requires_grad_(true), pe2 = pe.detach().clone().requires_grad_(true),
         w2 = w.detach().clone().requires_grad_(true);
    auto g = torch::randn({m, c}, opt);
    auto y = ops::aggregate(v, pe, w, idx);
    auto y2 = reference(v2, pe2, w2, idx);
    ASSERT_EQ(y.scalar_type(), cs.dtype);
    EXPECT_TRUE(torch::allclose(y, y2, cs.tol, cs.tol)) << cs.dtype << " cw " << cs.cw;
    y.backward(g), y2.backward(g);
    EXPECT_TRUE(torch::allclose(v.grad(), v2.grad(), cs.tol, cs.tol)) << cs.dtype;
    EXPECT_TRUE(torch::allclose(pe.grad(), pe2.grad(), cs.tol, cs.tol)) << cs.dtype;
    EXPECT_TRUE(torch::allclose(w.grad(), w2.grad(), cs.tol * 4, cs.tol * 4)) << cs.dtype;
  }
  // autocast mixes dtypes: computed in the widest one
  auto v = torch::randn({10, 8}, torch::kBFloat16), pe = torch::randn({5, 3, 8});
  auto w = torch::softmax(torch::randn({5, 3, 2}), 1);
  auto idx = torch::randint(10, {5, 3}, torch::kLong);
  auto y = ops::aggregate(v, pe, w, idx);
  EXPECT_EQ(y.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(y, reference(v.to(torch::kFloat), pe, w, idx), 1e-5, 1e-5));
  EXPECT_THROW(ops::aggregate(v, pe, torch::randn({5, 3, 3}), idx), c10::Error);  // 3 does not divide 8
  EXPECT_THROW(ops::aggregate(v, pe.slice(0, 0, 4), w, idx), c10::Error);
}
