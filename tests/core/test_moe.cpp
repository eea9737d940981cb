// MoE layer and routing: RUP partitions, plan execution against a per-token reference,
// identical experts == dense FFN, eval uses the averaged expert, router registry.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ewa/core/moe.h"
#include "ewa/core/router.h"
#include "ewa/core/vit.h"

namespace {

using namespace ewa;

/// Every token index 0..n-1 exactly once among the non-negative entries of `index`.
void expect_exact_cover(const torch::Tensor& index, int64_t n) {
  auto used = index.masked_select(index >= 0);
  ASSERT_EQ(used.numel(), n);
  EXPECT_TRUE(torch::equal(std::get<0>(used.sort()), torch::arange(n, torch::kLong)));
}

TEST(Rup, CoversEveryTokenOnceWithNearEqualChunks) {
  for (auto [n, e] : std::vector<std::pair<int64_t, int64_t>>{{12, 4}, {10, 4}, {13, 5}, {3, 4}, {7, 1}, {65, 4}}) {
    RupRouterImpl router(e, /*seed=*/11);
    auto index = router.partition(n);
    ASSERT_EQ(index.size(0), e);
    EXPECT_EQ(index.size(1), (n + e - 1) / e);
    expect_exact_cover(index, n);
    auto sizes = (index >= 0).sum(1);  // [E]
    for (int64_t i = 0; i < e; ++i) {
      EXPECT_EQ(sizes[i].item<int64_t>(), n / e + (i < n % e ? 1 : 0)) << "n " << n << " e " << e;
    }
  }
}

TEST(Rup, RouteBuildsAPlanOverBatchAndTokens) {
  auto router = std::make_shared<RupRouterImpl>(3, 5);
  auto x = torch::randn({2, 5, 4});  // B*T = 10 tokens, 10 % 3 != 0
  auto plan = router->route(x);
  expect_exact_cover(plan.dispatch_index, 10);
  EXPECT_TRUE(torch::equal(plan.combine_weight, (plan.dispatch_index >= 0).to(torch::kFloat)));
  EXPECT_NEAR(plan.stats.at("expert_load").sum().item<double>(), 1.0, 1e-12);
  EXPECT_TRUE(plan.aux_losses.empty());
  // token_slot is the inverse permutation of the dispatch.
  ASSERT_TRUE(plan.token_slot.defined());
  EXPECT_TRUE(torch::equal(plan.dispatch_index.reshape({-1}).index({plan.token_slot}), torch::arange(10)));
  // Combining by the inverse (gather) equals the scatter-add path.
  MoEMlp moe(4, 8, 4, 3, router);
  moe.ffn().reset_parameters("xavier");
  auto with_inverse = moe->execute(x, plan);
  RoutingPlan scatter = plan;
  scatter.token_slot = torch::Tensor();
  EXPECT_TRUE(torch::allclose(moe->execute(x, scatter), with_inverse, 1e-6, 1e-7));
}

TEST(Rup, DeterministicPerSeed) {
  RupRouterImpl a(4, 123), b(4, 123), c(4, 124);
  auto pa = a.partition(50), pb = b.partition(50), pc = c.partition(50);
  EXPECT_TRUE(torch::equal(pa, pb));
  EXPECT_FALSE(torch::equal(pa, pc));
  EXPECT_FALSE(torch::equal(a.partition(50), pa));  // a new permutation each forward
  a.reseed(123);
  EXPECT_TRUE(torch::equal(a.partition(50), pa));
  // Without a private seed the global generator decides.
  RupRouterImpl g(4);
  torch::manual_seed(9);
  auto g1 = g.partition(50);
  torch::manual_seed(9);
  EXPECT_TRUE(torch::equal(g.partition(50), g1));
}

/// Reference: out[tok] += w * expert_e(x[tok]) for every filled slot, a loop over slots.
torch::Tensor reference_sparse(StackedExpertsImpl& ex, const torch::Tensor& x, const RoutingPlan& plan) {
  auto flat = x.reshape({-1, x.size(-1)});
  auto out = torch::zeros({flat.size(0), ex.out_features()}, x.options());
  for (int64_t e = 0; e < plan.dispatch_index.size(0); ++e) {
    for (int64_t c = 0; c < plan.dispatch_index.size(1); ++c) {
      const int64_t tok = plan.dispatch_index[e][c].item<int64_t>();
      if (tok < 0) continue;
      auto h = torch::gelu(torch::matmul(flat[tok], ex.w1[e]) + ex.b1[e]);
      out[tok] += plan.combine_weight[e][c] * (torch::matmul(h, ex.w2[e]) + ex.b2[e]);
    }
  }
  return out.view({x.size(0), x.size(1), -1});
}

TEST(MoEMlp, ExecutesTopKPlanWithDroppedTokens) {
  torch::manual_seed(4);
  MoEMlp moe(6, 10, 6, 3, RouterOptions(), 0.0);
  moe->to(torch::kDouble);
  moe.ffn().reset_parameters("xavier");
  auto x = torch::randn({2, 4, 6}, torch::kDouble);  // 8 tokens
  RoutingPlan plan;
  plan.dispatch_index = torch::tensor({{0, 3, 5, -1}, {0, 1, 7, 3}, {-1, -1, 2, 6}}, torch::kLong);  // token 4 dropped
  plan.combine_weight = torch::rand({3, 4}, torch::kDouble);
  auto got = moe->execute(x, plan);
  auto want = reference_sparse(moe.ffn(), x, plan);
  EXPECT_TRUE(torch::allclose(got, want, 1e-12, 1e-12));
  EXPECT_EQ(got[1][0].abs().max().item<double>(), 0.0);  // token 4 (b 1, t 0) got no slot
}

TEST(MoEMlp, RaggedPathEqualsPaddedPathWithGradients) {
  // A skewed top-2 plan: expert 0 holds 7 tokens, expert 1 two, expert 2 none, expert 3 one
  // (30 of 40 slots empty), so execute() runs each expert on its own tokens; execute_plan
  // without a per-expert function runs the padded batched path. Same outputs, same grads.
  torch::manual_seed(14);
  MoEMlp moe(6, 10, 6, 4, RouterOptions(), 0.0);
  moe->to(torch::kDouble);
  moe.ffn().reset_parameters("xavier");
  RoutingPlan plan;
  plan.dispatch_index = torch::tensor({{0, 1, 2, 3, 4, 5, 7, -1, -1, -1},
                                       {5, 2, -1, -1, -1, -1, -1, -1, -1, -1},
                                       {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
                                       {-1, -1, -1, 0, -1, -1, -1, -1, -1, -1}},
                                      torch::kLong);  // token 6 dropped, tokens 0, 2, 5 twice
  plan.combine_weight = torch::rand({4, 10}, torch::kDouble);
  const auto x0 = torch::randn({2, 4, 6}, torch::kDouble);
  auto run = [&](bool ragged) {
    moe->zero_grad();
    auto x = x0.clone().requires_grad_(true);
    auto y = ragged ? moe->execute(x, plan)
                    : execute_plan(x, plan, 4, 6, [&](const torch::Tensor& xs) { return moe.ffn().forward(xs); },
                                   "padded");
    (y * torch::linspace(-1, 1, y.numel(), torch::kDouble).view_as(y)).sum().backward();
    return std::vector<torch::Tensor>{y.detach(), x.grad().clone(), moe.ffn().w1.grad().clone(),
                                      moe.ffn().b1.grad().clone(), moe.ffn().w2.grad().clone(),
                                      moe.ffn().b2.grad().clone()};
  };
  auto padded = run(false), ragged = run(true);
  const char* names[] = {"output", "dx", "dw1", "db1", "dw2", "db2"};
  for (size_t i = 0; i < padded.size(); ++i) {
    EXPECT_TRUE(torch::allclose(ragged[i], padded[i], 1e-12, 1e-12)) << names[i];
  }
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::allclose(ragged[0], reference_sparse(moe.ffn(), x0, plan), 1e-12, 1e-12));
  }
  EXPECT_EQ(ragged_expert_counts(plan, 8), (std::vector<int64_t>{7, 2, 0, 1}));
  // RUP partitions every token once into near-equal chunks: padded path, decided unread.
  auto rup = RupRouterImpl(4, 3).route(torch::randn({2, 5, 6}));
  EXPECT_TRUE(ragged_expert_counts(rup, 10).empty());
  EXPECT_EQ(padded[2][2].abs().max().item<double>(), 0.0);  // expert 2 got no token
  EXPECT_EQ(padded[0][1][2].abs().max().item<double>(), 0.0);  // token 6 (b 1, t 2) dropped
}

TEST(MoEMlp, ExecutesSoftPlan) {
  torch::manual_seed(5);
  MoEMlp moe(4, 8, 4, 2, RouterOptions(), 0.0);
  moe->to(torch::kDouble);
  moe.ffn().reset_parameters("xavier");
  auto x = torch::randn({2, 3, 4}, torch::kDouble);
  RoutingPlan plan;
  auto logits = torch::randn({2, 3, 2, 2}, torch::kDouble);  // [B, T, E, S]
  plan.soft_dispatch = logits.softmax(1);
  plan.soft_combine = logits.flatten(2).softmax(2).view({2, 3, 2, 2});
  auto got = moe->execute(x, plan);
  auto want = torch::zeros({2, 3, 4}, torch::kDouble);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t e = 0; e < 2; ++e) {
      for (int64_t s = 0; s < 2; ++s) {
        auto slot_in = (plan.soft_dispatch.index({b, torch::indexing::Slice(), e, s}).unsqueeze(1) * x[b]).sum(0);
        auto h = torch::gelu(torch::matmul(slot_in, moe.ffn().w1[e]) + moe.ffn().b1[e]);
        auto y = torch::matmul(h, moe.ffn().w2[e]) + moe.ffn().b2[e];
        want[b] += plan.soft_combine.index({b, torch::indexing::Slice(), e, s}).unsqueeze(1) * y;
      }
    }
  }
  EXPECT_TRUE(torch::allclose(got, want, 1e-12, 1e-12));
}

TEST(MoEMlp, IdenticalExpertsEqualDenseFfn) {
  torch::manual_seed(6);
  Mlp dense(8, 16, 8);
  dense->to(torch::kDouble);
  MoEMlp moe(8, 16, 8, 4);  // RUP
  moe->to(torch::kDouble);
  moe.ffn().copy_from_dense(dense->fc1->weight, dense->fc1->bias, dense->fc2->weight, dense->fc2->bias);
  auto x = torch::randn({3, 7, 8}, torch::kDouble);  // 21 tokens, 21 % 4 != 0
  moe->train();
  auto diff = (moe->forward(x) - dense->forward(x)).abs().max().item<double>();
  EXPECT_LE(diff, 1e-12);
  moe->eval();
  EXPECT_LE((moe->forward(x) - dense->forward(x)).abs().max().item<double>(), 1e-12);
}

TEST(MoEMlp, EvalRunsTheAveragedExpert) {
  torch::manual_seed(7);
  MoEMlp moe(8, 16, 8, 3);
  moe.ffn().reset_parameters("trunc_normal");  // distinct experts
  moe->to(torch::kDouble);
  moe->eval();
  auto mean = moe.ffn().mean_dense();
  Mlp dense(8, 16, 8);
  dense->to(torch::kDouble);
  {
    torch::NoGradGuard g;
    dense->fc1->weight.copy_(mean[0]);
    dense->fc1->bias.copy_(mean[1]);
    dense->fc2->weight.copy_(mean[2]);
    dense->fc2->bias.copy_(mean[3]);
  }
  auto x = torch::randn({2, 5, 8}, torch::kDouble);
  EXPECT_LE((moe->forward(x) - dense->forward(x)).abs().max().item<double>(), 1e-12);
  moe->train();  // routed experts differ from the mean expert
  EXPECT_GT((moe->forward(x) - dense->forward(x)).abs().max().item<double>(), 1e-6);
}

TEST(MoEMlp, GradientsReachEveryExpert) {
  torch::manual_seed(8);
  MoEMlp moe(4, 8, 4, 4);
  auto x = torch::randn({2, 9, 4}, torch::requires_grad());
  moe->forward(x).pow(2).sum().backward();
  auto g = moe.ffn().w1.grad().flatten(1).abs().sum(1);  // [E]
  EXPECT_TRUE(torch::all(g > 0).item<bool>());
  EXPECT_TRUE(x.grad().abs().sum(-1).gt(0).all().item<bool>());  // every token got an expert
}

// Telemetry: every routing statistic and each weighted auxiliary loss of a layer, by module path.
TEST(MoELayer, RoutingScalarsPerLayer) {
  torch::manual_seed(5);
  torch::nn::Sequential net(MoEMlp(6, 8, 6, 3, RouterOptions().name("softmax_token_choice").importance_loss(0.5).z_loss(0.1)),
                            MoEMlp(6, 8, 6, 3));  // RUP: expert load only, no scalars
  net->train();
  auto x = torch::randn({2, 5, 6});
  net->forward(x);
  auto scalars = moe_routing_scalars(*net);
  ASSERT_EQ(scalars.size(), 1u);
  const auto& row = scalars.at("0");
  for (const char* k : {"dropped_fraction", "mean_gate", "router_entropy", "aux.importance", "aux.z"}) {
    EXPECT_TRUE(row.count(k)) << k;
  }
  auto layer = net[0]->as<MoELayerImpl>();
  ASSERT_TRUE(layer);
  double aux = 0;
  for (const auto& [k, v] : row) aux += k.rfind("aux.", 0) == 0 ? v : 0.0;  // importance, load (default), z
  EXPECT_NEAR(aux, layer->last_aux_loss().item<double>(), 1e-6);
  EXPECT_GE(row.at("router_entropy"), 0.0);
  EXPECT_LE(row.at("router_entropy"), std::log(3.0) + 1e-9);
}

// The expert-bank interface: EWA and collapse reach the experts through it.
TEST(MoELayer, ExpertBankInterface) {
  torch::manual_seed(6);
  MoEMlp moe(4, 8, 4, 3);
  moe.ffn().reset_parameters("trunc_normal");
  ExpertBankImpl& bank = *moe->experts;
  EXPECT_EQ(bank.num_experts(), 3);
  EXPECT_EQ(bank.expert_tensors().size(), 4u);
  auto dense = std::dynamic_pointer_cast<MlpImpl>(bank.mean_module());
  ASSERT_TRUE(dense);
  auto x = torch::randn({5, 4});
  EXPECT_TRUE(torch::equal(dense->forward(x), bank.forward_mean(x)));
}

TEST(Router, RegistryAndValidation) {
  EXPECT_EQ(make_router(RouterOptions(), 8, 4)->name(), "rup");
  try {
    make_router(RouterOptions().name("soft_moe_unknown"), 8, 4);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("known: rup"), std::string::npos) << e.what();
  }
  MoEMlp moe(4, 8, 4, 2);
  RoutingPlan bad;
  bad.dispatch_index = torch::zeros({3, 2}, torch::kLong);
  bad.combine_weight = torch::ones({3, 2});
  EXPECT_THROW(moe->execute(torch::randn({1, 2, 4}), bad), c10::Error);
  RoutingPlan out_of_range;
  out_of_range.dispatch_index = torch::full({2, 1}, 5, torch::kLong);
  out_of_range.combine_weight = torch::ones({2, 1});
  EXPECT_THROW(moe->execute(torch::randn({1, 2, 4}), out_of_range), c10::Error);
}

TEST(Router, ExpertCapacity) {
  EXPECT_EQ(expert_capacity(100, 4, 1, 1.0, 1), 25);
  EXPECT_EQ(expert_capacity(100, 4, 2, 1.0, 4), 52);
  EXPECT_EQ(expert_capacity(10, 4, 1, 1.5, 1), 4);
  EXPECT_EQ(expert_capacity(10, 4, 1, 0.0, 1), 10);  // dropless
  EXPECT_EQ(expert_capacity(1, 8, 1, 0.1, 1), 1);
}

}  // namespace
