// Tests of kNN and farthest point sampling: brute-force agreement on uneven random batches,
// analytic inputs (grid neighbours, FPS order on x = 3^i), CUDA == CPU, and input errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "ewa/pointcloud/ops.h"
#include "point_test_util.h"

namespace ops = ewa::pointcloud::ops;

namespace {

using ewa::test::offsets;

/// Brute-force kNN with the same (dist2, index) order; rows of a small cloud repeat the last.
void brute_knn(const torch::Tensor& ref, const torch::Tensor& roff, const torch::Tensor& q,
               const torch::Tensor& qoff, int64_t k, torch::Tensor& idx, torch::Tensor& d2) {
  idx = torch::empty({q.size(0), k}, torch::kLong);
  d2 = torch::empty({q.size(0), k}, torch::kDouble);
  int64_t rs = 0, qs = 0;
  for (int64_t b = 0; b < roff.size(0); ++b) {
    const int64_t re = roff[b].item<int64_t>(), qe = qoff[b].item<int64_t>();
    if (qe > qs) {
      auto r = ref.slice(0, rs, re);
      for (int64_t i = 0; i < qe - qs; ++i) {
        // exact same formula as the kernel
        auto diff = r - q[qs + i].unsqueeze(0);
        auto dd = (diff.select(1, 0) * diff.select(1, 0) + diff.select(1, 1) * diff.select(1, 1) +
                   diff.select(1, 2) * diff.select(1, 2))
                      .contiguous();
        std::vector<int64_t> ord(re - rs);
        for (size_t j = 0; j < ord.size(); ++j) ord[j] = j;
        const double* dp = dd.data_ptr<double>();
        std::stable_sort(ord.begin(), ord.end(), [&](int64_t a, int64_t c) { return dp[a] < dp[c]; });
        for (int64_t j = 0; j < k; ++j) {
          const int64_t s = std::min<int64_t>(j, static_cast<int64_t>(ord.size()) - 1);
          idx[qs + i][j] = rs + ord[s];
          d2[qs + i][j] = dp[ord[s]];
        }
      }
    }
    rs = re;
    qs = qe;
  }
}

}  // namespace

TEST(PointOpsKnn, MatchesBruteForceOnUnevenBatches) {
  torch::manual_seed(7);
  const std::vector<int64_t> rsz = {300, 5, 1200, 17}, qsz = {100, 9, 250, 0};
  auto ref = torch::rand({1522, 3}, torch::kDouble) * torch::tensor({4.0, 2.0, 1.0}, torch::kDouble);
  auto q = torch::rand({359, 3}, torch::kDouble) * 4.0 - 0.5;  // some queries outside the box
  auto roff = offsets(rsz), qoff = offsets(qsz);
  for (int64_t k : {1, 16, 64}) {
    auto [idx, d2] = ops::knn(ref, roff, q, qoff, k);
    torch::Tensor bidx, bd2;
    brute_knn(ref, roff, q, qoff, k, bidx, bd2);
    ASSERT_EQ(idx.sizes(), bidx.sizes());
    EXPECT_TRUE(torch::allclose(d2, bd2, 0, 1e-12)) << "k=" << k;
    // identical index sets up to exact distance ties (continuous random data: none expected)
    EXPECT_TRUE(torch::equal(idx, bidx)) << "k=" << k;
  }
}

TEST(PointOpsKnn, ExactTiesAndDuplicatesMatchBruteForce) {
  // A 20^3 integer lattice plus 1000 exact duplicates: every query sits on a lattice point, so
  // its neighbour shells are full of exact distance ties (order by index, like brute force),
  // and duplicated points have several neighbours at distance 0.
  torch::manual_seed(21);
  auto r = torch::arange(20, torch::kDouble);
  auto lattice = torch::stack(torch::meshgrid({r, r, r}, "ij"), -1).reshape({-1, 3});  // [8000, 3]
  auto dup = lattice.index({torch::randint(8000, {1000}, torch::kLong)});
  auto ref = torch::cat({lattice, dup}).index({torch::randperm(9000, torch::kLong)}).contiguous();
  auto q = ref.index({torch::randint(9000, {300}, torch::kLong)}).contiguous();
  auto roff = offsets({9000}), qoff = offsets({300});
  for (int64_t k : {8, 16, 33}) {
    for (auto dtype : {torch::kDouble, torch::kFloat}) {
      auto [idx, d2] = ops::knn(ref.to(dtype), roff, q.to(dtype), qoff, k);
      torch::Tensor bidx, bd2;
      brute_knn(ref, roff, q, qoff, k, bidx, bd2);
      EXPECT_TRUE(torch::equal(idx, bidx)) << "k=" << k << " dtype " << dtype;  // integer data: exact in float
      EXPECT_TRUE(torch::equal(d2.to(torch::kDouble), bd2)) << "k=" << k;
    }
  }
}

TEST(PointOpsKnn, SelfQueryFloatSurfaceCloud) {
  torch::manual_seed(3);
  // points on two planes (surface-like: exercises the cell-size refinement)
  auto a = torch::rand({1500, 3});
  a.select(1, 2).zero_();
  auto b = torch::rand({1500, 3});
  b.select(1, 0).fill_(1.0f);
  auto xyz = torch::cat({a, b});
  auto off = offsets({3000});
  auto [idx, d2] = ops::knn(xyz, off, xyz, off, 16);
  torch::Tensor bidx, bd2;
  auto xd = xyz.to(torch::kDouble);
  brute_knn(xd, off, xd, off, 16, bidx, bd2);
  // float32 distances agree with the double brute force up to rounding
  EXPECT_TRUE(torch::allclose(d2.to(torch::kDouble), bd2, 1e-5, 1e-7));
  // every point is its own nearest neighbour
  EXPECT_TRUE(torch::equal(idx.select(1, 0), torch::arange(3000, torch::kLong)));
  // in double precision the neighbour lists are identical
  auto [didx, dd2] = ops::knn(xd, off, xd, off, 16);
  EXPECT_TRUE(torch::equal(didx, bidx));
  EXPECT_TRUE(torch::equal(dd2, bd2));
}

TEST(PointOpsKnn, GridPointsHaveKnownNeighbours) {
  // 5x5x5 integer lattice: the 7 nearest of an interior point are itself + its 6 face neighbours.
  auto r = torch::arange(5, torch::kDouble);
  auto g = torch::stack(torch::meshgrid({r, r, r}, "ij"), -1).reshape({-1, 3});  // [125,3]
  auto off = offsets({125});
  auto q = torch::tensor({{2.0, 2.0, 2.0}, {0.0, 0.0, 0.0}}, torch::kDouble);
  auto [idx, d2] = ops::knn(g, off, q, offsets({2}), 7);
  auto id = [](int x, int y, int z) { return int64_t(x * 25 + y * 5 + z); };
  std::vector<int64_t> expect = {id(2, 2, 2), id(1, 2, 2), id(2, 1, 2), id(2, 2, 1),
                                 id(2, 2, 3), id(2, 3, 2), id(3, 2, 2)};
  std::sort(expect.begin() + 1, expect.end());
  for (int j = 0; j < 7; ++j) EXPECT_EQ(idx[0][j].item<int64_t>(), expect[j]);
  EXPECT_DOUBLE_EQ(d2[0][0].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(d2[0][6].item<double>(), 1.0);
  // corner: itself, 3 at distance 1, 3 at distance sqrt 2
  auto dc = d2[1];
  EXPECT_TRUE(torch::equal(dc, torch::tensor({0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0}, torch::kDouble)));
}

TEST(PointOpsKnn, SmallCloudRepeatsFarthest) {
  auto ref = torch::tensor({{0.0, 0.0, 0.0}, {1.0, 0.0, 0.0}, {3.0, 0.0, 0.0}}, torch::kDouble);
  auto q = torch::tensor({{0.1, 0.0, 0.0}}, torch::kDouble);
  auto [idx, d2] = ops::knn(ref, offsets({3}), q, offsets({1}), 5);
  EXPECT_TRUE(torch::equal(idx[0], torch::tensor({0L, 1L, 2L, 2L, 2L})));
  EXPECT_NEAR(d2[0][4].item<double>(), 2.9 * 2.9, 1e-12);
}

TEST(PointOpsKnn, RejectsBadInputs) {
  auto xyz = torch::rand({10, 3});
  auto off = offsets({4, 6});
  EXPECT_THROW(ops::knn(xyz, torch::tensor({4L, 9L}), xyz, off, 3), c10::Error);
  EXPECT_THROW(ops::knn(xyz, torch::tensor({6L, 4L}), xyz, off, 3), c10::Error);
  EXPECT_THROW(ops::knn(xyz, off.to(torch::kInt), xyz, off, 3), c10::Error);
  EXPECT_THROW(ops::knn(xyz.view({5, 6}), off, xyz, off, 3), c10::Error);
  EXPECT_THROW(ops::knn(xyz, off, xyz, off, 65), c10::Error);
  EXPECT_THROW(ops::knn(xyz, off, xyz, offsets({10}), 3), c10::Error);
  EXPECT_THROW(ops::knn(xyz, off, xyz.to(torch::kDouble), off, 3), c10::Error);
  // a cloud with queries but no reference points
  EXPECT_THROW(ops::knn(xyz, torch::tensor({0L, 10L}), xyz, off, 3), c10::Error);
  // non-finite coordinates have no distance order: named in the error
  auto bad = xyz.clone();
  bad[3][1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(ops::knn(bad, off, xyz, off, 3), c10::Error);
  try {
    ops::knn(xyz, off, bad, off, 3);
    ADD_FAILURE() << "a NaN query was accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
  try {
    ops::knn(xyz, torch::tensor({4L, 9L}), xyz, off, 3);
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ref_offset"), std::string::npos) << e.what();
  }
}

namespace {
torch::Tensor brute_fps(const torch::Tensor& xyz, const std::vector<int64_t>& sizes,
                        const std::vector<int64_t>& samples, int64_t start) {
  std::vector<int64_t> out;
  int64_t s = 0;
  for (size_t b = 0; b < sizes.size(); ++b) {
    auto p = xyz.slice(0, s, s + sizes[b]);
    auto mind = torch::full({sizes[b]}, std::numeric_limits<double>::infinity(), torch::kDouble);
    int64_t cur = start;
    for (int64_t i = 0; i < samples[b]; ++i) {
      out.push_back(s + cur);
      auto d = (p - p[cur]).square().sum(1);
      mind = torch::minimum(mind, d);
      cur = mind.argmax().item<int64_t>();  // first maximum
    }
    s += sizes[b];
  }
  return torch::tensor(out, torch::kLong);
}
}  // namespace

TEST(PointOpsFps, MatchesBruteForce) {
  torch::manual_seed(11);
  const std::vector<int64_t> sz = {3000, 37, 512}, ns = {700, 10, 1};
  auto xyz = torch::rand({3549, 3}, torch::kDouble);
  for (int64_t start : {0, 3}) {
    auto idx = ops::farthest_point_sampling(xyz, offsets(sz), offsets(ns), start);
    EXPECT_TRUE(torch::equal(idx, brute_fps(xyz, sz, ns, start))) << "start " << start;
  }
}

TEST(PointOpsFps, AnalyticOrder) {
  // x = 3^i: from x=1 the farthest is 3^7, then 3^0's neighbour chain descends: 3^6, 3^5, ...
  std::vector<double> v;
  for (int i = 0; i < 8; ++i) v.push_back(std::pow(3.0, i));
  auto xyz = torch::zeros({8, 3}, torch::kDouble);
  xyz.select(1, 0).copy_(torch::tensor(v, torch::kDouble));
  auto idx = ops::farthest_point_sampling(xyz, offsets({8}), offsets({8}), 0);
  EXPECT_TRUE(torch::equal(idx, torch::tensor({0L, 7L, 6L, 5L, 4L, 3L, 2L, 1L})));
  auto idx2 = ops::farthest_point_sampling(xyz, offsets({8}), offsets({3}), 7);
  EXPECT_TRUE(torch::equal(idx2, torch::tensor({7L, 0L, 6L})));
}

TEST(PointOpsFps, RejectsBadInputs) {
  auto xyz = torch::rand({10, 3});
  EXPECT_THROW(ops::farthest_point_sampling(xyz, offsets({10}), offsets({11})), c10::Error);
  EXPECT_THROW(ops::farthest_point_sampling(xyz, offsets({4, 6}), offsets({2})), c10::Error);
  EXPECT_THROW(ops::farthest_point_sampling(xyz, offsets({10}), offsets({2}), 10), c10::Error);
  EXPECT_THROW(ops::farthest_point_sampling(xyz, offsets({9}), offsets({2})), c10::Error);
}

// ---- CUDA == CPU, parameterised over the available devices ----
class PointOpsDevice : public ::testing::TestWithParam<std::string> {};

TEST_P(PointOpsDevice, MatchesCpuReference) {
  const torch::Device dev(GetParam());
  if (dev.is_cuda() && !torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(5);
  const std::vector<int64_t> sz = {3000, 7, 900};
  auto xyz = torch::rand({3907, 3}, torch::kDouble);
  auto off = offsets(sz);
  auto q = torch::rand({500, 3}, torch::kDouble);
  auto qoff = offsets({200, 100, 200});
  auto [ci, cd] = ops::knn(xyz, off, q, qoff, 16);
  auto [gi, gd] = ops::knn(xyz.to(dev), off.to(dev), q.to(dev), qoff.to(dev), 16);
  EXPECT_EQ(gi.device(), dev);
  EXPECT_TRUE(torch::equal(gi.cpu(), ci));
  EXPECT_TRUE(torch::allclose(gd.cpu(), cd, 1e-12, 1e-14));
  auto nf = offsets({700, 3, 200});
  EXPECT_TRUE(torch::equal(ops::farthest_point_sampling(xyz.to(dev), off.to(dev), nf.to(dev), 1).cpu(),
                           ops::farthest_point_sampling(xyz, off, nf, 1)));
}

INSTANTIATE_TEST_SUITE_P(Devices, PointOpsDevice, ::testing::Values("cpu", "cuda"));

#ifndef EWA_WITH_CUDA
TEST(PointOpsKnn, CudaTensorInCpuBuildNamesBuildOption) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device to create a CUDA tensor";
  auto xyz = torch::rand({4, 3}).cuda();
  try {
    ops::knn(xyz, offsets({4}), xyz, offsets({4}), 1);
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("EWA_WITH_CUDA"), std::string::npos);
  }
}
#endif
