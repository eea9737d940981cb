// Learned routers (arXiv 2401.15969, Mobile V-MoE): capacity, BPR, dropless, Sinkhorn and
// sparse transport marginals, expert choice fill, Soft MoE normalisation, per-image sharing,
// gradients (finite differences), aux losses, config errors, ViT training + EWA per router.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include "ewa/core/collapse.h"
#include "ewa/core/config.h"
#include "ewa/core/ewa.h"
#include "ewa/core/moe.h"
#include "ewa/core/router.h"
#include "ewa/core/routers.h"
#include "ewa/core/vit.h"

namespace {

using namespace ewa;

const std::vector<std::string> kLearned = {"softmax_token_choice",   "sinkhorn_token_choice",
                                           "softmax_expert_choice",  "sinkhorn_expert_choice",
                                           "sparsity_constrained_expert_choice", "soft_moe", "per_image"};

/// How often each of the n tokens occurs in a sparse plan [E, C] -> [n] int64.
torch::Tensor occurrences(const torch::Tensor& index, int64_t n) {
  auto used = index.masked_select(index >= 0);
  return torch::bincount(used, {}, n);
}

/// Per token: the experts that hold it (set of expert ids) as a [n, E] bool matrix.
torch::Tensor token_expert_matrix(const torch::Tensor& index, int64_t n) {
  const int64_t e = index.size(0);
  auto m = torch::zeros({n, e}, torch::kBool);
  for (int64_t i = 0; i < e; ++i) {
    auto row = index[i];
    auto used = row.masked_select(row >= 0);
    m.index_put_({used, i}, true);
  }
  return m;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// ------------------------------------------------------------------------------------
TEST(RouterTokenChoice, AtMostKSlotsPerTokenAndCapacityRespected) {
  torch::manual_seed(1);
  for (auto name : {"softmax_token_choice", "sinkhorn_token_choice"}) {
    for (int64_t k : {1, 2}) {
      for (double cf : {0.5, 1.0, 1.25}) {
        auto opts = RouterOptions().name(name).k(k).capacity_factor(cf).capacity_multiple(2).noise_std(0);
        auto router = make_router(opts, 6, 4);
        router->to(torch::kDouble);
        auto x = torch::randn({3, 10, 6}, torch::kDouble);  // N = 30
        auto plan = router->route(x);
        const int64_t cap = expert_capacity(30, 4, k, cf, 2);
        ASSERT_EQ(plan.dispatch_index.sizes(), torch::IntArrayRef({4, cap})) << name;
        EXPECT_LE(occurrences(plan.dispatch_index, 30).max().item<int64_t>(), k) << name;
        // No token twice at the same expert.
        auto m = token_expert_matrix(plan.dispatch_index, 30);
        EXPECT_EQ(m.sum().item<int64_t>(), (plan.dispatch_index >= 0).sum().item<int64_t>());
        // Combine weights of a token sum to its kept gate mass.
        auto probs = torch::softmax(torch::linear(x.reshape({30, 6}),
                                                  std::dynamic_pointer_cast<LinearGateRouterImpl>(router)->gate->weight),
                                    1);  // [N, E]
        auto combined = torch::zeros({30}, torch::kDouble)
                            .index_add_(0, plan.dispatch_index.clamp_min(0).reshape(-1), plan.combine_weight.reshape(-1));
        auto kept_mass = (probs * m.to(torch::kDouble)).sum(1);
        EXPECT_TRUE(torch::allclose(combined, kept_mass, 1e-12, 1e-12)) << name << " k " << k;
        if (k == 1) {  // token_slot agrees with dispatch_index
          ASSERT_TRUE(plan.token_slot.defined());
          auto slot = plan.token_slot;
          auto flat = plan.dispatch_index.reshape(-1);
          auto has = slot >= 0;
          EXPECT_TRUE(torch::equal(flat.index({slot.masked_select(has)}), torch::arange(30).masked_select(has)));
          EXPECT_EQ(has.sum().item<int64_t>(), (flat >= 0).sum().item<int64_t>());
        }
      }
    }
  }
}

TEST(RouterTokenChoice, BatchPrioritizedRoutingKeepsLargestGates) {
  // All 8 tokens want expert 0 whose capacity is 2 (cf 1, E 4, N 8, multiple 1).
  auto experts = torch::zeros({8, 1}, torch::kLong);
  auto gates = torch::tensor({0.30, 0.90, 0.10, 0.80, 0.50, 0.95, 0.20, 0.40}, torch::kDouble).unsqueeze(1);
  auto bpr = assign_to_slots(experts, gates, 4, 1.0, 1, true);
  ASSERT_EQ(bpr.capacity, 2);
  EXPECT_TRUE(torch::equal(bpr.dispatch_index[0], torch::tensor({5, 1}, torch::kLong)));  // 0.95, 0.90
  EXPECT_TRUE(torch::equal(bpr.kept.squeeze(1).nonzero().squeeze(1), torch::tensor({1, 5}, torch::kLong)));
  auto fifo = assign_to_slots(experts, gates, 4, 1.0, 1, false);
  EXPECT_TRUE(torch::equal(fifo.dispatch_index[0], torch::tensor({0, 1}, torch::kLong)));  // token order
  EXPECT_TRUE((fifo.dispatch_index.narrow(0, 1, 3) == -1).all().item<bool>());
  // Dropped tokens get no slot: token_slot -1, combine weight 0 for them.
  EXPECT_EQ((bpr.token_slot >= 0).sum().item<int64_t>(), 2);
}

TEST(RouterTokenChoice, FirstChoicesBeforeSecondChoices) {
  // 4 tokens, 2 experts, capacity 2 per expert (k 2, cf 0.5): every token's 1st choice is
  // served before any 2nd choice, so expert 0 holds the two tokens choosing it first.
  auto experts = torch::tensor({{1, 0}, {0, 1}, {1, 0}, {0, 1}}, torch::kLong);
  auto gates = torch::full({4, 2}, 0.5, torch::kDouble);
  auto a = assign_to_slots(experts, gates, 2, 0.5, 1, false);
  ASSERT_EQ(a.capacity, 2);
  EXPECT_TRUE(torch::equal(a.dispatch_index[0], torch::tensor({1, 3}, torch::kLong)));
  EXPECT_TRUE(torch::equal(a.dispatch_index[1], torch::tensor({0, 2}, torch::kLong)));
  EXPECT_TRUE(torch::equal(a.kept.select(1, 1), torch::zeros({4}, torch::kBool)));
}

TEST(RouterTokenChoice, DroplessWithCapacityFactorZero) {
  torch::manual_seed(2);
  auto router = make_router(RouterOptions().name("softmax_token_choice").k(2).capacity_factor(0), 5, 3);
  auto x = torch::randn({2, 9, 5});
  auto plan = router->route(x);
  EXPECT_TRUE(torch::equal(occurrences(plan.dispatch_index, 18), torch::full({18}, 2, torch::kLong)));
  EXPECT_EQ(plan.stats.at("dropped_fraction").item<double>(), 0.0);
  EXPECT_EQ(plan.dispatch_index.size(1) % 4, 0);  // rounded up to capacity_multiple
  // A tight capacity drops, and reports it.
  auto tight = make_router(RouterOptions().name("softmax_token_choice").capacity_factor(0.25).capacity_multiple(1), 5, 3);
  EXPECT_GT(tight->route(x).stats.at("dropped_fraction").item<double>(), 0.0);
}

TEST(RouterTokenChoice, OneExpertDroplessEqualsDenseFfn) {
  torch::manual_seed(3);
  for (auto name : {"softmax_token_choice", "sinkhorn_token_choice"}) {
    MoEMlp moe(6, 12, 6, 1, RouterOptions().name(name).capacity_factor(0));
    moe->to(torch::kDouble);
    auto x = torch::randn({2, 7, 6}, torch::kDouble);
    auto ref = moe.ffn().forward_mean(x);
    EXPECT_TRUE(torch::allclose(moe->forward(x), ref, 1e-12, 1e-12)) << name;
  }
}

TEST(RouterTokenChoice, NoiseOnlyInTraining) {
  torch::manual_seed(4);
  auto router = make_router(RouterOptions().name("softmax_token_choice").noise_std(1.0).capacity_factor(0), 4, 4);
  auto x = torch::randn({2, 16, 4});
  router->eval();
  auto a = router->route(x), b = router->route(x);
  EXPECT_TRUE(torch::equal(a.dispatch_index, b.dispatch_index));
  EXPECT_TRUE(torch::equal(a.combine_weight, b.combine_weight));
  router->train();
  auto c = router->route(x), d = router->route(x);
  EXPECT_FALSE(torch::equal(c.combine_weight, d.combine_weight));
}

// ------------------------------------------------------------------------------------
TEST(RouterSinkhorn, MarginalsConverge) {
  torch::manual_seed(5);
  auto scores = torch::randn({24, 4}, torch::kDouble);
  auto few = sinkhorn_log_plan(scores, 0.5, 1, 1.0, 6.0).exp();
  auto many = sinkhorn_log_plan(scores, 0.5, 300, 1.0, 6.0).exp();
  EXPECT_TRUE(torch::allclose(many.sum(0), torch::full({4}, 6.0, torch::kDouble), 0, 1e-10));  // columns exact
  const double row_err_many = (many.sum(1) - 1).abs().max().item<double>();
  const double row_err_few = (few.sum(1) - 1).abs().max().item<double>();
  EXPECT_LT(row_err_many, 1e-8);
  EXPECT_LT(row_err_many, row_err_few);
  // Expert choice marginals: rows C*E/N, columns C.
  auto ec = sinkhorn_log_plan(scores, 0.5, 300, 8.0 * 4 / 24, 8.0).exp();
  EXPECT_TRUE(torch::allclose(ec.sum(1), torch::full({24}, 8.0 * 4 / 24, torch::kDouble), 0, 1e-8));
}

TEST(RouterSinkhorn, TokenChoiceBalancesSkewedLogits) {
  // Logits that all prefer expert 0: softmax token choice overloads it, Sinkhorn spreads.
  torch::manual_seed(6);
  auto opts = RouterOptions().k(1).capacity_factor(0).iterations(50).epsilon(0.1);
  auto soft = make_router(RouterOptions(opts).name("softmax_token_choice"), 4, 4);
  auto sink = make_router(RouterOptions(opts).name("sinkhorn_token_choice"), 4, 4);
  for (auto& r : {soft, sink}) {
    torch::NoGradGuard g;
    auto gate = std::dynamic_pointer_cast<LinearGateRouterImpl>(r)->gate;
    gate->weight.copy_(torch::tensor({{2.0, 0., 0., 0.}, {1.0, 0., 0., 0.}, {0.5, 0., 0., 0.}, {0., 0., 0., 0.}}));
  }
  auto x = torch::randn({1, 64, 4}).abs() + torch::tensor({1.0, 0.0, 0.0, 0.0});
  auto load_soft = soft->route(x).stats.at("expert_load");
  auto load_sink = sink->route(x).stats.at("expert_load");
  EXPECT_GT(load_soft.max().item<double>(), 0.9);
  EXPECT_LT(load_sink.max().item<double>(), 0.4);
}

// ------------------------------------------------------------------------------------
TEST(RouterExpertChoice, EveryExpertTakesExactlyCapacityDistinctTokens) {
  torch::manual_seed(7);
  for (auto name : {"softmax_expert_choice", "sinkhorn_expert_choice", "sparsity_constrained_expert_choice"}) {
    for (double cf : {0.5, 1.0, 2.0}) {
      auto router = make_router(RouterOptions().name(name).capacity_factor(cf).capacity_multiple(1), 6, 4);
      auto x = torch::randn({2, 10, 6});  // N = 20
      auto plan = router->route(x);
      const int64_t cap = std::min<int64_t>(20, expert_capacity(20, 4, 1, cf, 1));
      ASSERT_EQ(plan.dispatch_index.sizes(), torch::IntArrayRef({4, cap})) << name;
      // The sparsity-constrained router dispatches only its plan's support (<= C tokens).
      const bool sparse = std::string(name) == "sparsity_constrained_expert_choice";
      if (!sparse) {
        EXPECT_TRUE((plan.dispatch_index >= 0).all().item<bool>()) << name;
      }
      for (int64_t e = 0; e < 4; ++e) {
        auto taken = plan.dispatch_index[e].masked_select(plan.dispatch_index[e] >= 0);
        EXPECT_EQ(std::get<0>(at::_unique(taken)).numel(), taken.numel()) << name << " expert " << e;
        if (!sparse) {
          EXPECT_EQ(taken.numel(), cap) << name << " expert " << e;
        }
        EXPECT_GE(taken.numel(), 1) << name << " expert " << e;
      }
      EXPECT_TRUE((plan.combine_weight.masked_select(plan.dispatch_index >= 0) > 0).all().item<bool>());
      auto out = MoEMlp(6, 8, 6, 4, router)->forward(x);
      EXPECT_TRUE(out.isfinite().all().item<bool>());
    }
  }
}

TEST(RouterExpertChoice, SparsePlanIsCapacitySparseAndBalances) {
  torch::manual_seed(8);
  auto sim = torch::softmax(5.0 * torch::randn({30, 3}, torch::kDouble), 1);
  for (int64_t cap : {12, 30}) {
    for (int64_t iters : {1, 20, 300}) {
      auto p = sparse_expert_plan(sim, cap, 1.0, iters, 1e-2, 0.0);
      EXPECT_TRUE((p >= 0).all().item<bool>());
      EXPECT_TRUE(torch::allclose(p.sum(0), torch::full({3}, 10.0, torch::kDouble), 0, 1e-9));  // N/E per expert
      EXPECT_LE((p > 0).sum(0).max().item<int64_t>(), cap);
    }
  }
  // Without a binding sparsity constraint, Adam on the semi-dual drives every token's row to
  // mass 1 (with C < N the constraint can make the rows infeasible, so no such claim there).
  const double err_one = (sparse_expert_plan(sim, 30, 1.0, 1, 1e-2, 0.0).sum(1) - 1).abs().mean().item<double>();
  const double err_many = (sparse_expert_plan(sim, 30, 1.0, 300, 1e-2, 0.0).sum(1) - 1).abs().mean().item<double>();
  EXPECT_LT(err_many, 1e-3 * err_one);
}

// ------------------------------------------------------------------------------------
TEST(RouterSoftMoE, DispatchAndCombineNormalisedNoDropping) {
  torch::manual_seed(9);
  auto router = make_router(RouterOptions().name("soft_moe").slots_per_expert(3), 8, 2);
  router->to(torch::kDouble);
  auto x = torch::randn({2, 5, 8}, torch::kDouble);
  auto plan = router->route(x);
  ASSERT_TRUE(plan.is_soft());
  ASSERT_EQ(plan.soft_dispatch.sizes(), torch::IntArrayRef({2, 5, 2, 3}));
  EXPECT_TRUE(torch::allclose(plan.soft_dispatch.sum(1), torch::ones({2, 2, 3}, torch::kDouble), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(plan.soft_combine.sum({2, 3}), torch::ones({2, 5}, torch::kDouble), 0, 1e-12));
  EXPECT_TRUE((plan.soft_combine > 0).all().item<bool>());  // every token gets output: no dropping
  EXPECT_EQ(plan.stats.at("dropped_fraction").item<double>(), 0.0);
  // Scale invariance of the inputs (L2 normalisation).
  auto scaled = router->route(3.0 * x);
  EXPECT_TRUE(torch::allclose(scaled.soft_dispatch, plan.soft_dispatch, 1e-12, 1e-12));
}

TEST(RouterSoftMoE, FiniteDifferenceGradientOfRouterParameters) {
  torch::manual_seed(10);
  MoEMlp moe(4, 6, 4, 2, RouterOptions().name("soft_moe").slots_per_expert(2));
  moe->to(torch::kDouble);
  moe.ffn().reset_parameters("xavier");
  auto x = torch::randn({2, 3, 4}, torch::kDouble);
  auto w = torch::randn({2, 3, 4}, torch::kDouble);
  auto loss_fn = [&] { return (moe->forward(x) * w).sum(); };
  auto router = std::dynamic_pointer_cast<SoftMoERouterImpl>(moe->router);
  ASSERT_TRUE(router);
  moe->zero_grad();
  loss_fn().backward();
  for (auto* p : {&router->slots, &router->scale}) {
    auto g = p->grad().clone();
    auto flat = p->data().view(-1);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double h = 1e-6, v = flat[i].item<double>();
      torch::NoGradGuard ng;
      flat[i] = v + h;
      const double up = loss_fn().item<double>();
      flat[i] = v - h;
      const double down = loss_fn().item<double>();
      flat[i] = v;
      EXPECT_NEAR(g.view(-1)[i].item<double>(), (up - down) / (2 * h), 1e-7) << "param element " << i;
    }
  }
}

TEST(RouterTokenChoice, FiniteDifferenceGradientOfGateOnSeparatedLogits) {
  // Well separated logits: a small perturbation of the gate never changes the selection,
  // so the routed output is differentiable in the gate weights.
  torch::manual_seed(11);
  for (auto name : {"softmax_token_choice", "softmax_expert_choice"}) {
    MoEMlp moe(3, 5, 3, 3, RouterOptions().name(name).capacity_factor(std::string(name).find("token") != std::string::npos ? 0.0 : 1.0).capacity_multiple(1).noise_std(0));
    moe->to(torch::kDouble);
    auto gate = std::dynamic_pointer_cast<LinearGateRouterImpl>(moe->router)->gate;
    {
      torch::NoGradGuard ng;
      gate->weight.copy_(torch::eye(3, torch::kDouble) * 4.0);
    }
    auto x = torch::eye(3, torch::kDouble).repeat({2, 1}).view({2, 3, 3}) + 0.01 * torch::randn({2, 3, 3}, torch::kDouble);
    auto w = torch::randn({2, 3, 3}, torch::kDouble);
    auto loss_fn = [&] { return (moe->forward(x) * w).sum(); };
    moe->zero_grad();
    loss_fn().backward();
    auto g = gate->weight.grad().clone();
    EXPECT_GT(g.abs().sum().item<double>(), 0.0) << name;
    auto flat = gate->weight.data().view(-1);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double h = 1e-6, v = flat[i].item<double>();
      torch::NoGradGuard ng;
      flat[i] = v + h;
      const double up = loss_fn().item<double>();
      flat[i] = v - h;
      const double down = loss_fn().item<double>();
      flat[i] = v;
      EXPECT_NEAR(g.view(-1)[i].item<double>(), (up - down) / (2 * h), 1e-7) << name << " element " << i;
    }
  }
}

TEST(Routers, GradientsReachRouterParametersAndAuxLosses) {
  torch::manual_seed(12);
  for (const auto& name : kLearned) {
    auto opts = RouterOptions().name(name).k(name == "per_image" ? 1 : 2).importance_loss(0.01).z_loss(0.001);
    if (name.find("token_choice") != std::string::npos) opts.noise_std(0.5).load_loss(0.01);
    MoEMlp moe(6, 8, 6, 4, opts);
    auto x = torch::randn({3, 5, 6});
    auto y = moe->forward(x);
    auto loss = y.pow(2).sum();
    if (moe->last_aux_loss().defined()) loss = loss + moe->last_aux_loss();
    if (name != "soft_moe") {
      EXPECT_TRUE(moe->last_aux_loss().defined()) << name;
    }
    loss.backward();
    int64_t n_params = 0;
    for (const auto& p : moe->router->parameters()) {
      ++n_params;
      ASSERT_TRUE(p.grad().defined()) << name;
      EXPECT_TRUE(p.grad().isfinite().all().item<bool>()) << name;
      EXPECT_GT(p.grad().abs().sum().item<double>(), 0.0) << name;
    }
    EXPECT_GE(n_params, 1) << name;
    for (const auto& key : {"expert_load", "dropped_fraction", "mean_gate", "router_entropy"}) {
      EXPECT_TRUE(moe->last_stats().count(key)) << name << " " << key;
    }
    EXPECT_NEAR(moe->last_stats().at("expert_load").sum().item<double>(), 1.0, 1e-9) << name;
  }
}

TEST(Routers, AuxLossValues) {
  torch::manual_seed(13);
  // Importance CV^2 is 0 for perfectly balanced gates, positive otherwise.
  EXPECT_NEAR(cv_squared(torch::full({4}, 2.5)).item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(cv_squared(torch::tensor({1.0, 3.0})).item<double>(), 0.25, 1e-6);
  // The z loss equals weight * mean logsumexp^2 of the logits.
  auto router = std::make_shared<TokenChoiceRouterImpl>(RouterOptions().name("softmax_token_choice").z_loss(0.5), 3, 2, false);
  auto x = torch::randn({1, 4, 3});
  auto plan = router->route(x);
  auto logits = torch::linear(x.view({4, 3}), router->gate->weight);
  EXPECT_NEAR(plan.aux_losses.at("z").item<double>(), 0.5 * torch::logsumexp(logits, 1).pow(2).mean().item<double>(),
              1e-6);
  router->eval();
  EXPECT_TRUE(router->route(x).aux_losses.empty());  // aux losses only in training
}

// ------------------------------------------------------------------------------------
VisionTransformerOptions tiny_vit() {
  return VisionTransformerOptions().img_size(8).patch_size(4).in_chans(3).num_classes(4).embed_dim(16).depth(4)
      .num_heads(2).mlp_ratio(2.0);
}

TEST(RouterPerImage, AllTokensOfAnImageShareExpertsInEveryLayer) {
  torch::manual_seed(14);
  for (auto token : {"cls", "mean"}) {
    auto moe = MoEOptions().enabled(true).num_experts(4).every(1).router(RouterOptions().name("per_image").k(2).image_token(token));
    VisionTransformer vit(tiny_vit(), moe);
    // Only the first MoE layer's router owns parameters.
    int64_t gates = 0;
    for (const auto& p : vit->named_parameters()) gates += p.key().find(".router.gate.") != std::string::npos;
    EXPECT_EQ(gates, 1);
    auto x = torch::randn({5, 3, 8, 8});
    vit->forward(x);
    std::vector<std::shared_ptr<PerImageRouterImpl>> routers;
    for (int64_t i : vit->moe_blocks()) {
      routers.push_back(
          std::dynamic_pointer_cast<PerImageRouterImpl>(vit->blocks()[static_cast<size_t>(i)]->moe_mlp()->router));
      ASSERT_TRUE(routers.back());
      EXPECT_EQ(routers.back()->is_follower(), routers.size() > 1);
    }
    ASSERT_EQ(routers.size(), 4u);
    auto first = routers.front()->last_image_experts();  // [B, k]
    ASSERT_EQ(first.sizes(), torch::IntArrayRef({5, 2}));
    for (const auto& r : routers) EXPECT_TRUE(torch::equal(r->last_image_experts(), first)) << token;
    // The plan of each layer: every token of image b sits exactly at its image's experts.
    // Followers first (the leader re-decides when it routes again).
    for (auto it = routers.rbegin(); it != routers.rend(); ++it) {
      auto plan = (*it)->route(torch::randn({5, 5, 16}));
      auto chosen = (*it)->last_image_experts();
      if ((*it)->is_follower()) {
        EXPECT_TRUE(torch::equal(chosen, first));
      }
      auto m = token_expert_matrix(plan.dispatch_index, 25);  // [25, E]
      auto expected = torch::zeros({5, 4}, torch::kBool).scatter_(1, chosen, true).repeat_interleave(5, 0);
      EXPECT_TRUE(torch::equal(m, expected)) << token;
      EXPECT_EQ(occurrences(plan.dispatch_index, 25).min().item<int64_t>(), 2);
    }
  }
}

TEST(RouterPerImage, SuperclassAuxLossDecreasesWithTraining) {
  torch::manual_seed(15);
  auto router = std::make_shared<PerImageRouterImpl>(RouterOptions().name("per_image").superclass_weight(0.3), 6, 2);
  router->set_superclasses(torch::tensor({0, 0, 1, 1}, torch::kLong));  // 4 classes -> 2 groups
  auto labels = torch::arange(4).repeat(4);                                // [16]
  auto centers = torch::randn({4, 6});
  auto x = (centers.index_select(0, labels) + 0.1 * torch::randn({16, 6})).unsqueeze(1).repeat({1, 3, 1});  // [16, 3, 6]
  torch::optim::SGD opt(router->parameters(), torch::optim::SGDOptions(2.0));
  std::vector<double> losses;
  for (int step = 0; step < 60; ++step) {
    router->set_targets(labels);
    auto plan = router->route(x);
    auto loss = plan.aux_losses.at("superclass");
    losses.push_back(loss.item<double>());
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(losses.back(), 0.5 * losses.front());
  // The routing now follows the super-classes.
  router->eval();
  router->route(x);
  auto sc = torch::tensor({0, 0, 1, 1}, torch::kLong).index_select(0, labels);
  EXPECT_TRUE(torch::equal(router->last_image_experts().squeeze(1), sc));
}

TEST(RouterPerImage, SuperclassFileIsReadAndValidated) {
  const std::string path = ::testing::TempDir() + "ewa_superclasses.csv";
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write("class,superclass\n0,1\n1,0\n# comment\n2,1\n");
  EXPECT_TRUE(torch::equal(load_superclasses(path, 2), torch::tensor({1, 0, 1}, torch::kLong)));
  auto router = make_router(RouterOptions().name("per_image").superclass_file(path), 4, 2);
  EXPECT_TRUE(std::dynamic_pointer_cast<PerImageRouterImpl>(router)->superclasses().defined());
  write("0,1\n1,2\n");
  EXPECT_NE(error_of([&] { load_superclasses(path, 2); }).find("line 2: super-class 2 out of range [0, 2)"),
            std::string::npos);
  write("0,1\n2,0\n");
  EXPECT_NE(error_of([&] { load_superclasses(path, 2); }).find("each exactly once"), std::string::npos);
  write("0,x\n");
  EXPECT_NE(error_of([&] { load_superclasses(path, 2); }).find("line 1"), std::string::npos);
  EXPECT_NE(error_of([&] { load_superclasses(path + ".missing", 2); }).find("cannot open"), std::string::npos);
  std::remove(path.c_str());
}

TEST(RouterPerImage, SuperclassesClusterConfusedClasses) {
  // Classes {0, 2, 4} confuse each other, and {1, 3, 5}; little confusion across.
  torch::manual_seed(18);
  auto c = torch::eye(6, torch::kDouble) * 50 + torch::rand({6, 6}, torch::kDouble);
  for (int64_t a = 0; a < 6; ++a) {
    for (int64_t b = 0; b < 6; ++b) {
      if (a != b && a % 2 == b % 2) c[a][b] = 10.0 + a + b;
    }
  }
  auto map = cluster_superclasses(c, 2);
  EXPECT_TRUE(torch::equal(map, torch::tensor({0, 1, 0, 1, 0, 1}, torch::kLong)));
  EXPECT_TRUE(torch::equal(cluster_superclasses(c, 6), torch::arange(6)));
  EXPECT_TRUE(torch::equal(cluster_superclasses(c, 1), torch::zeros({6}, torch::kLong)));
  // Balanced: 3 groups of a 6-class matrix never exceed 2 classes each.
  EXPECT_EQ(torch::bincount(cluster_superclasses(c, 3), {}, 3).max().item<int64_t>(), 2);
  // One dominant confusion cluster: unbalanced keeps it, balanced caps it.
  auto d = torch::eye(4, torch::kDouble) * 10;
  d.narrow(0, 0, 3).narrow(1, 0, 3) += 5;
  EXPECT_EQ(torch::bincount(cluster_superclasses(d, 2, false), {}, 2).max().item<int64_t>(), 3);
  EXPECT_EQ(torch::bincount(cluster_superclasses(d, 2, true), {}, 2).max().item<int64_t>(), 2);
  EXPECT_THROW(cluster_superclasses(c, 7), std::invalid_argument);
  EXPECT_THROW(cluster_superclasses(torch::ones({2, 3}), 1), std::invalid_argument);
  EXPECT_THROW(cluster_superclasses(-torch::ones({2, 2}), 1), std::invalid_argument);
  // Saved maps read back.
  const std::string path = ::testing::TempDir() + "ewa_sc_roundtrip.csv";
  save_superclasses(path, map);
  EXPECT_TRUE(torch::equal(load_superclasses(path, 2), map));
  std::remove(path.c_str());
}

// ------------------------------------------------------------------------------------
TEST(Routers, ConfigErrorsForBadOptions) {
  auto msg = error_of([] { make_router(RouterOptions().name("nope"), 4, 2); });
  EXPECT_NE(msg.find("known: rup, softmax_token_choice, sinkhorn_token_choice"), std::string::npos) << msg;
  EXPECT_NE(msg.find("per_image"), std::string::npos) << msg;
  msg = error_of([] { make_router(RouterOptions().name("softmax_token_choice").k(3), 4, 2); });
  EXPECT_NE(msg.find("router.k must lie in [1, num_experts=2]"), std::string::npos) << msg;
  msg = error_of([] { make_router(RouterOptions().name("softmax_expert_choice").capacity_factor(0), 4, 2); });
  EXPECT_NE(msg.find("router.capacity_factor"), std::string::npos) << msg;
  msg = error_of([] { make_router(RouterOptions().name("sinkhorn_token_choice").noise_std(0).load_loss(0.1), 4, 2); });
  EXPECT_NE(msg.find("router.load_loss needs router noise"), std::string::npos) << msg;
  msg = error_of([] { make_router(RouterOptions().name("soft_moe").superclass_file("x.csv"), 4, 2); });
  EXPECT_NE(msg.find("router.superclass_file"), std::string::npos) << msg;
  // The config reader rejects the same mistakes with the key path.
  auto decode = [](const std::string& yaml) {
    return ewa::config::decode<MoEOptions>(ewa::config::parse_yaml_string(yaml, "moe.yaml"), "moe.yaml");
  };
  EXPECT_NO_THROW(decode("router:\n  name: sinkhorn_expert_choice\n  capacity_factor: 2\n"));
  msg = error_of([&] { decode("router:\n  name: softmax_expert_choice\n  capacity_factor: 0\n"); });
  EXPECT_NE(msg.find("router.capacity_factor"), std::string::npos) << msg;
  msg = error_of([&] { decode("router:\n  name: softmax_token_choice\n  noise_std: 0\n  load_loss: 0.01\n"); });
  EXPECT_NE(msg.find("router.load_loss"), std::string::npos) << msg;
  msg = error_of([&] { decode("router:\n  name: top_k\n"); });
  EXPECT_NE(msg.find("soft_moe"), std::string::npos) << msg;
  msg = error_of([&] { decode("router:\n  name: soft_moe\n  z_loss: -1\n"); });
  EXPECT_NE(msg.find("router.z_loss"), std::string::npos) << msg;
  // per_image 'cls' without a class token.
  auto moe = MoEOptions().enabled(true).num_experts(2).router(RouterOptions().name("per_image"));
  VisionTransformer vit(tiny_vit().class_token(false).global_pool("avg"), moe);
  msg = error_of([&] { vit->forward(torch::randn({1, 3, 8, 8})); });
  EXPECT_NE(msg.find("router.image_token"), std::string::npos) << msg;
}

TEST(Routers, VitTrainsWithEveryRouterAndEwaAndCollapseRun) {
  for (const auto& name : available_routers()) {
    SCOPED_TRACE(name);
    torch::manual_seed(16);
    auto ropts = RouterOptions().name(name).importance_loss(name == "rup" || name == "soft_moe" ? 0.0 : 0.01);
    auto moe = MoEOptions().enabled(true).num_experts(4).every(2).router(ropts);
    VisionTransformer vit(tiny_vit(), moe);
    torch::optim::AdamW opt(vit->parameters(), torch::optim::AdamWOptions(1e-3));
    auto x = torch::randn({6, 3, 8, 8});
    auto y = torch::randint(0, 4, {6}, torch::kLong);
    double first = 0, last = 0;
    for (int step = 0; step < 4; ++step) {
      vit->set_router_targets(y);
      torch::Tensor loss;
      try {
        auto logits = vit->forward(x);  // before aux_loss(): it reads this forward's losses
        loss = torch::cross_entropy_loss(logits, y) + vit->aux_loss();
        ASSERT_TRUE(std::isfinite(loss.item<double>())) << name << " step " << step;
        (step == 0 ? first : last) = loss.item<double>();
        opt.zero_grad();
        loss.backward();
      } catch (const std::exception& e) {
        FAIL() << name << " step " << step << ": " << std::string(e.what()).substr(0, 200);
      }
      opt.step();
      EXPECT_EQ(apply_ewa_(*vit, 0.3), 2) << name;
    }
    EXPECT_LT(last, first) << name;
    vit->eval();
    auto logits = vit->forward(x);
    EXPECT_TRUE(logits.isfinite().all().item<bool>()) << name;
    // b = (N-1)/N makes every expert the mean; collapse then runs for every router (the
    // collapsed output equals the eval output exactly only for rup, whose eval path is
    // the averaged expert; learned routers scale or mix the expert output).
    apply_ewa_(*vit, 0.75);
    auto report = collapse_to_dense(vit, x);
    EXPECT_TRUE(vit->moe_blocks().empty()) << name;
    EXPECT_TRUE(std::isfinite(report.max_abs_diff)) << name;
    if (name == "rup") {
      EXPECT_LT(report.max_abs_diff, 1e-5) << name;
    }
  }
}

TEST(Routers, UpcycledModelLinksPerImageRouters) {
  torch::manual_seed(17);
  VisionTransformer vit(tiny_vit());
  upcycle_to_moe(vit, MoEOptions().num_experts(2).every(1).router(RouterOptions().name("per_image").image_token("mean")));
  int64_t followers = 0;
  for (int64_t i : vit->moe_blocks()) {
    followers += std::dynamic_pointer_cast<PerImageRouterImpl>(vit->blocks()[static_cast<size_t>(i)]->moe_mlp()->router)
                     ->is_follower();
  }
  EXPECT_EQ(followers, 3);
  EXPECT_TRUE(vit->forward(torch::randn({2, 3, 8, 8})).isfinite().all().item<bool>());
}

}  // namespace
