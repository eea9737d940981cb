// EWA: the update keeps the expert mean, contracts distances by exactly 1 - bN/(N-1),
// collapses at b = (N-1)/N, matches the per-expert formula; share-rate schedules.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "ewa/core/config.h"
#include "ewa/core/ewa.h"
#include "ewa/core/moe.h"
#include "ewa/core/vit.h"

namespace {

using namespace ewa;

StackedExperts random_experts(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  StackedExperts ex(n, 5, 7, 3);
  ex->to(torch::kDouble);
  torch::NoGradGuard g;
  for (auto& p : ex->parameters()) p.normal_();
  return ex;
}

std::vector<torch::Tensor> snapshot(const StackedExperts& ex) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ex->parameters()) out.push_back(p.detach().clone());
  return out;
}

TEST(Ewa, KeepsTheExpertMean) {
  for (int64_t n : {2, 3, 5}) {
    auto ex = random_experts(n, 1);
    auto before = snapshot(ex);
    apply_ewa_(*ex, 0.3);
    auto after = snapshot(ex);
    for (size_t k = 0; k < before.size(); ++k) {
      EXPECT_TRUE(torch::allclose(before[k].mean(0), after[k].mean(0), 0, 1e-12)) << "param " << k << " n " << n;
    }
  }
}

TEST(Ewa, ShrinksDistanceToMeanByExactFactor) {
  for (int64_t n : {2, 4, 6}) {
    for (double b : {0.1, 0.3, 0.5}) {
      auto ex = random_experts(n, 2);
      auto before = snapshot(ex);
      apply_ewa_(*ex, b);
      auto after = snapshot(ex);
      const double factor = 1.0 - b * n / (n - 1);
      for (size_t k = 0; k < before.size(); ++k) {
        auto mean = before[k].mean(0, true);
        for (int64_t i = 0; i < n; ++i) {
          const double d0 = (before[k][i] - mean[0]).norm().item<double>();
          const double d1 = (after[k][i] - mean[0]).norm().item<double>();
          EXPECT_NEAR(d1, std::abs(factor) * d0, 1e-12) << "n " << n << " b " << b;
        }
        EXPECT_TRUE(torch::allclose(after[k] - mean, factor * (before[k] - mean), 0, 1e-12));
      }
    }
  }
}

TEST(Ewa, MatchesPerExpertFormula) {
  const int64_t n = 4;
  const double b = 0.37;
  auto ex = random_experts(n, 3);
  auto before = snapshot(ex);
  apply_ewa_(*ex, b);
  auto after = snapshot(ex);
  for (size_t k = 0; k < before.size(); ++k) {
    for (int64_t i = 0; i < n; ++i) {
      auto others = torch::zeros_like(before[k][i]);
      for (int64_t j = 0; j < n; ++j) {
        if (j != i) others += before[k][j];
      }
      auto want = (1 - b) * before[k][i] + b / (n - 1) * others;
      EXPECT_TRUE(torch::allclose(after[k][i], want, 0, 1e-12));
    }
  }
}

TEST(Ewa, CriticalShareRateCollapsesInOneStep) {
  const int64_t n = 5;
  auto ex = random_experts(n, 4);
  auto before = snapshot(ex);
  apply_ewa_(*ex, (n - 1.0) / n);
  auto after = snapshot(ex);
  for (size_t k = 0; k < before.size(); ++k) {
    auto mean = before[k].mean(0, true).expand_as(before[k]);
    EXPECT_TRUE(torch::allclose(after[k], mean, 0, 1e-12));
  }
}

TEST(Ewa, WalksTheModelTreeAndLeavesDenseWeightsAlone) {
  torch::manual_seed(5);
  auto vit = VisionTransformerOptions().img_size(8).patch_size(4).embed_dim(8).depth(4).num_heads(2).num_classes(3);
  VisionTransformer m(vit, MoEOptions().enabled(true).num_experts(3).every(2).init("independent"));
  auto dense_before = m->blocks()[0]->dense_mlp()->fc1->weight.clone();
  auto w1 = m->blocks()[1]->moe_mlp().ffn().w1;
  auto mean_before = w1.mean(0).clone();
  auto spread_before = (w1 - w1.mean(0, true)).norm().item<double>();
  EXPECT_EQ(apply_ewa_(*m, 0.3), 2);
  EXPECT_TRUE(torch::equal(m->blocks()[0]->dense_mlp()->fc1->weight, dense_before));
  EXPECT_TRUE(torch::allclose(w1.mean(0), mean_before, 1e-5, 1e-7));
  EXPECT_NEAR((w1 - w1.mean(0, true)).norm().item<double>(), spread_before * (1 - 0.3 * 3 / 2), 1e-4);
  EXPECT_FALSE(w1.requires_grad() && w1.grad_fn());  // still a leaf
  EXPECT_THROW(apply_ewa_(*m, 1.5), std::invalid_argument);
}

TEST(Ewa, ExpertSpreadShrinksByTheContractionFactor) {
  torch::manual_seed(5);
  auto vit = VisionTransformerOptions().img_size(8).patch_size(4).embed_dim(8).depth(4).num_heads(2).num_classes(3);
  VisionTransformer m(vit, MoEOptions().enabled(true).num_experts(4).every(2).init("independent"));
  const auto before = expert_spread(*m);
  ASSERT_EQ(before.size(), 2u);  // blocks 1 and 3, named like the routing telemetry
  EXPECT_EQ(before.begin()->first, "blocks.1.mlp");
  for (const auto& [layer, v] : before) EXPECT_GT(v, 0.1) << layer;
  apply_ewa_(*m, 0.3);
  const auto after = expert_spread(*m);
  for (const auto& [layer, v] : before) EXPECT_NEAR(after.at(layer), v * (1 - 0.3 * 4 / 3), 1e-5) << layer;
  apply_ewa_(*m, 0.75);  // b = (N-1)/N: every expert becomes the mean
  for (const auto& [layer, v] : expert_spread(*m)) EXPECT_NEAR(v, 0.0, 1e-6) << layer;
  VisionTransformer copies(vit, MoEOptions().enabled(true).num_experts(2).every(2).init("copy"));
  for (const auto& [layer, v] : expert_spread(*copies)) EXPECT_EQ(v, 0.0) << layer;
}

TEST(Ewa, SingleExpertIsLeftAlone) {
  auto ex = random_experts(1, 6);
  auto before = snapshot(ex);
  EXPECT_EQ(apply_ewa_(*ex, 0.5), 0);
  EXPECT_TRUE(torch::equal(snapshot(ex)[0], before[0]));
}

TEST(ShareRate, Schedules) {
  ShareRateSchedule constant(EwaOptions().share_rate(0.3));
  for (int64_t s : {0, 1, 100}) EXPECT_DOUBLE_EQ(constant.at(s), 0.3);

  ShareRateSchedule linear(EwaOptions().share_rate(0.3).schedule("linear").warmup_steps(10));
  EXPECT_DOUBLE_EQ(linear.at(0), 0.0);
  EXPECT_DOUBLE_EQ(linear.at(5), 0.15);
  EXPECT_DOUBLE_EQ(linear.at(10), 0.3);
  EXPECT_DOUBLE_EQ(linear.at(1000), 0.3);

  ShareRateSchedule cosine(EwaOptions().share_rate(0.3).schedule("cosine").warmup_steps(10));
  EXPECT_DOUBLE_EQ(cosine.at(0), 0.0);
  EXPECT_NEAR(cosine.at(5), 0.15, 1e-15);
  EXPECT_NEAR(cosine.at(2), 0.3 * (1 - std::cos(M_PI * 0.2)) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(cosine.at(10), 0.3);
  EXPECT_DOUBLE_EQ(cosine.at(11), 0.3);
  for (int64_t s = 1; s <= 10; ++s) EXPECT_GT(cosine.at(s), cosine.at(s - 1));

  ShareRateSchedule no_warmup(EwaOptions().share_rate(0.2).schedule("linear").warmup_steps(0));
  EXPECT_DOUBLE_EQ(no_warmup.at(0), 0.2);
  EXPECT_THROW(ShareRateSchedule(EwaOptions().schedule("step")), std::invalid_argument);

  // Early EWA: the rate follows the schedule up to end_step and is 0 after it.
  ShareRateSchedule early(EwaOptions().share_rate(0.3).schedule("linear").warmup_steps(10).end_step(20));
  EXPECT_DOUBLE_EQ(early.at(5), 0.15);
  EXPECT_DOUBLE_EQ(early.at(20), 0.3);
  EXPECT_DOUBLE_EQ(early.at(21), 0.0);
  EXPECT_DOUBLE_EQ(early.at(1000), 0.0);
  EXPECT_THROW(ewa::config::decode<EwaOptions>(
                   ewa::config::parse_yaml_string("warmup_steps: 10\nend_step: 5\n", "ewa.yaml"), "ewa.yaml"),
               ewa::config::ConfigError);
}

}  // namespace
