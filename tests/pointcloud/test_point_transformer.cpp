// Tests of the Point Transformer: published Seg50 parameter count, reference names, seg/cls
// shapes on uneven batches, cloud independence, gradients, MoE linears (RUP execution,
// identical-expert collapse, EWA invariants, routing stats), save/load round trip.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <unistd.h>

#include "ewa/core/ewa.h"
#include "ewa/core/safetensors.h"
#include "ewa/pointcloud/point_transformer.h"
#include "point_test_util.h"

namespace pc = ewa::pointcloud;

namespace {

using ewa::test::offsets;

/// Five stages like Seg26 but narrow, so every test runs in well under a second.
pc::PointTransformerOptions tiny(const std::string& head = "seg", int64_t in = 6, int64_t classes = 5) {
  pc::PointTransformerOptions o;
  o.variant("custom").blocks({1, 1, 2, 1, 1}).channels({8, 16, 16, 24, 32}).in_channels(in).num_classes(classes);
  o.head(head);
  return o;
}

pc::PointTransformerOptions with_moe(pc::PointTransformerOptions o, std::vector<int64_t> stages, int64_t experts = 4,
                                     const std::string& init = "copy", const std::string& layers = "both") {
  o.moe().enabled(true).num_experts(experts).stages(std::move(stages)).init(init).layers(layers);
  return o;
}

struct Batch {
  torch::Tensor coord, feat, offset;
};

Batch make_batch(const std::vector<int64_t>& sizes, int64_t channels, torch::Dtype dtype, uint64_t seed) {
  torch::manual_seed(seed);
  int64_t n = 0;
  for (auto s : sizes) n += s;
  Batch b;
  b.coord = torch::rand({n, 3}, dtype) * 2.0;
  b.feat = torch::randn({n, channels}, dtype);
  b.offset = offsets(sizes);
  return b;
}

int64_t count_params(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

std::vector<std::string> names(const torch::nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& item : m.named_parameters()) out.push_back(item.key());
  for (const auto& item : m.named_buffers()) out.push_back(item.key());
  return out;
}

/// Gives every BatchNorm non-trivial running statistics (eval outputs then depend on them).
void randomise_bn(pc::PointTransformer& model, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (const auto& item : model->named_buffers()) {
    if (item.key().find("running_mean") != std::string::npos) item.value().uniform_(-0.1, 0.1);
    if (item.key().find("running_var") != std::string::npos) item.value().uniform_(0.5, 1.5);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
TEST(PointTransformerParams, Seg50HasThePublished7_8M) {
  // Computed by hand from the reference architecture (pointtransformer_seg_repro, c=6, k=13):
  // encoders TD + [1,2,3,5,2] blocks, decoders TU + 1 block, cls head; see dense_parameter_count.
  constexpr int64_t kSeg50 = 7767729;
  pc::PointTransformerOptions o;  // defaults: seg50, in 6, 13 classes
  EXPECT_EQ(pc::dense_parameter_count(o), kSeg50);
  pc::PointTransformer model(o);
  EXPECT_EQ(count_params(*model), kSeg50);
  EXPECT_EQ(std::lround(kSeg50 / 1e5), 78);  // "7.8M" in the paper
}

TEST(PointTransformerParams, CountMatchesTheBuiltModel) {
  for (const std::string v : {"seg38", "seg26"}) {
    pc::PointTransformerOptions o;
    o.variant(v);
    pc::PointTransformer m(o);
    EXPECT_EQ(count_params(*m), pc::dense_parameter_count(o)) << v;
  }
  EXPECT_EQ(pc::dense_parameter_count(pc::PointTransformerOptions().variant("seg38")), 6658857);
  EXPECT_EQ(pc::dense_parameter_count(pc::PointTransformerOptions().variant("seg26")), 4854145);
  for (const auto& o : {tiny("seg"), tiny("cls", 3, 40)}) {
    pc::PointTransformer m(o);
    EXPECT_EQ(count_params(*m), pc::dense_parameter_count(o));
  }
  pc::PointTransformerOptions cls;
  cls.head("cls").in_channels(3).num_classes(40);
  pc::PointTransformer m(cls);
  EXPECT_EQ(count_params(*m), pc::dense_parameter_count(cls));
}

TEST(PointTransformerParams, ReferenceImplementationNames) {
  pc::PointTransformer model(pc::PointTransformerOptions{});
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& item : model->named_parameters()) shapes[item.key()] = item.value().sizes().vec();
  for (const auto& item : model->named_buffers()) shapes[item.key()] = item.value().sizes().vec();
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"enc1.0.linear.weight", {32, 6}},
      {"enc1.0.bn.running_mean", {32}},
      {"enc1.1.linear1.weight", {32, 32}},
      {"enc1.1.transformer2.linear_q.weight", {32, 32}},
      {"enc1.1.transformer2.linear_p.0.weight", {3, 3}},
      {"enc1.1.transformer2.linear_p.1.weight", {3}},
      {"enc1.1.transformer2.linear_p.3.weight", {32, 3}},
      {"enc1.1.transformer2.linear_w.0.weight", {32}},
      {"enc1.1.transformer2.linear_w.2.weight", {4, 32}},
      {"enc1.1.transformer2.linear_w.3.running_var", {4}},
      {"enc1.1.transformer2.linear_w.5.weight", {4, 4}},
      {"enc2.0.linear.weight", {64, 35}},
      {"enc4.5.bn3.weight", {256}},
      {"enc5.2.linear3.weight", {512, 512}},
      {"dec5.0.linear1.0.weight", {512, 1024}},
      {"dec5.0.linear2.0.weight", {512, 512}},
      {"dec5.1.transformer2.linear_v.bias", {512}},
      {"dec4.0.linear1.1.weight", {256}},
      {"dec4.0.linear2.0.weight", {256, 512}},
      {"dec1.1.bn2.num_batches_tracked", {}},
      {"cls.0.weight", {32, 32}},
      {"cls.1.running_mean", {32}},
      {"cls.3.weight", {13, 32}},
  };
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(shapes.count(name)) << name;
    EXPECT_EQ(shapes[name], shape) << name;
  }
  EXPECT_FALSE(shapes.count("enc5.3.linear1.weight"));
  EXPECT_FALSE(shapes.count("enc1.0.linear.bias"));  // transition-down linears have no bias
  EXPECT_FALSE(shapes.count("enc1.1.linear1.bias"));
}

TEST(PointTransformerParams, InvalidOptionsNameTheKey) {
  auto expect_error = [](pc::PointTransformerOptions o, const std::string& key) {
    try {
      pc::PointTransformer m(o);
      ADD_FAILURE() << "no error for " << key;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expect_error(pc::PointTransformerOptions().channels({32, 64, 128}), "pt.channels");
  expect_error(tiny().channels({8, 16, 20, 24, 32}), "pt.channels");  // 20 % 8 != 0
  expect_error(tiny().nsample({8, 16, 16, 16, 65}), "pt.nsample");
  expect_error(with_moe(tiny(), {5}), "pt.moe.stages");
  expect_error(tiny().in_channels(0), "pt.in_channels");
  auto bad_router = with_moe(tiny(), {1});
  bad_router.moe().router().name("no_such_router");
  EXPECT_THROW(pc::PointTransformer{bad_router}, std::invalid_argument);
}

// ---------------------------------------------------------------------------------------
TEST(PointTransformerForward, SegShapesOnAnUnevenBatch) {
  torch::manual_seed(1);
  pc::PointTransformer model(tiny("seg", 6, 7));
  auto b = make_batch({300, 77, 531}, 6, torch::kFloat, 2);
  auto out = model->forward(b.coord, b.feat, b.offset);
  EXPECT_EQ(out.sizes(), torch::IntArrayRef({908, 7}));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  model->eval();
  auto eval_out = model->forward(b.coord, b.feat, b.offset);
  EXPECT_EQ(eval_out.sizes(), torch::IntArrayRef({908, 7}));
}

TEST(PointTransformerForward, ClsHeadOutputsOneRowPerCloud) {
  torch::manual_seed(1);
  pc::PointTransformer model(tiny("cls", 3, 10));
  auto b = make_batch({256, 100, 400, 64}, 3, torch::kFloat, 3);
  auto out = model->forward(b.coord, b.feat, b.offset);
  EXPECT_EQ(out.sizes(), torch::IntArrayRef({4, 10}));
  model->eval();
  EXPECT_EQ(model->forward(b.coord, b.feat, b.offset).sizes(), torch::IntArrayRef({4, 10}));
}

TEST(PointTransformerForward, CloudsOfABatchDoNotInteractInEval) {
  // Eval mode (BatchNorm running statistics): cloud A's logits are the same alone and next
  // to another cloud, so kNN, FPS, interpolation and the per-cloud means respect offsets.
  for (const std::string head : {"seg", "cls"}) {
    torch::manual_seed(4);
    pc::PointTransformer model(tiny(head, 6, 5));
    model->to(torch::kDouble);
    randomise_bn(model, 5);
    model->eval();
    auto b = make_batch({220, 370}, 6, torch::kDouble, 6);
    auto both = model->forward(b.coord, b.feat, b.offset);
    for (int64_t c = 0; c < 2; ++c) {
      const int64_t s = c == 0 ? 0 : 220, e = c == 0 ? 220 : 590;
      auto alone = model->forward(b.coord.slice(0, s, e), b.feat.slice(0, s, e), offsets({e - s}));
      auto part = head == "seg" ? both.slice(0, s, e) : both.slice(0, c, c + 1);
      EXPECT_TRUE(torch::allclose(alone, part, 1e-10, 1e-12)) << head << " cloud " << c;
    }
  }
}

TEST(PointTransformerForward, GradientsReachEveryParameter) {
  // Strides 1,4,4,2,2: stage 5 keeps several points per cloud (a lone point has all-zero
  // relative coordinates, which legitimately gives linear_p no gradient).
  auto seg = tiny("seg"), cls = with_moe(tiny("cls", 6, 4), {2, 3}, 3, "independent");
  seg.stride({1, 4, 4, 2, 2});
  cls.stride({1, 4, 4, 2, 2});
  for (const auto& o : {seg, cls}) {
    torch::manual_seed(7);
    pc::PointTransformer model(o);
    model->train();
    auto b = make_batch({420, 330, 510}, 6, torch::kFloat, 8);
    auto logits = model->forward(b.coord, b.feat, b.offset);
    const int64_t rows = logits.size(0);
    auto target = torch::randint(o.num_classes(), {rows}, torch::kLong);
    auto loss = torch::nn::functional::cross_entropy(logits, target) + model->aux_loss();
    loss.backward();
    EXPECT_TRUE(std::isfinite(loss.item<double>()));
    for (const auto& item : model->named_parameters()) {
      const auto& g = item.value().grad();
      ASSERT_TRUE(g.defined()) << item.key();
      EXPECT_TRUE(torch::isfinite(g).all().item<bool>()) << item.key();
      // Biases that feed a BatchNorm (e.g. linear_q/k, linear_p.0) get ~0 gradient by design.
      const auto& key = item.key();
      if (key.size() > 6 && key.compare(key.size() - 6, 6, "weight") == 0) {
        EXPECT_GT(g.abs().sum().item<double>(), 0.0) << key;
      }
    }
  }
}

TEST(PointTransformerForward, RejectsBadInputs) {
  pc::PointTransformer model(tiny());
  auto b = make_batch({100, 50}, 6, torch::kFloat, 9);
  EXPECT_THROW(model->forward(b.coord, b.feat.slice(1, 0, 5), b.offset), c10::Error);
  EXPECT_THROW(model->forward(b.coord, b.feat, offsets({100, 49})), c10::Error);
  EXPECT_THROW(model->forward(b.coord, b.feat.to(torch::kDouble), b.offset), c10::Error);
}

// ---------------------------------------------------------------------------------------
TEST(PointTransformerMoE, LinearExecutesEachPointOnItsExpert) {
  torch::manual_seed(10);
  pc::PointMoELinear layer(6, 5, 3);  // RUP, independent experts
  layer->to(torch::kDouble);
  auto x = torch::randn({31, 6}, torch::kDouble);
  layer->train();
  auto y = layer->forward(x);  // [31, 5]
  const auto& w = layer.linear_experts().weight;  // [3, 6, 5]
  auto per_expert = torch::einsum("nd,edo->eno", {x, w});  // [3, 31, 5]
  auto diff = (per_expert - y.unsqueeze(0)).abs().amax(2);  // [3, 31]
  auto matches = (diff < 1e-12).to(torch::kLong).sum(0);    // experts reproducing each row
  EXPECT_TRUE((matches == 1).all().item<bool>());
  auto load = layer->last_stats().at("expert_load");
  EXPECT_NEAR(load.sum().item<double>(), 1.0, 1e-12);
  // A hand-made plan: point i on expert i % 3 with weight 2; rows of slot -1 ignored.
  auto index = torch::full({3, 11}, -1, torch::kLong);
  for (int64_t i = 0; i < 31; ++i) index[i % 3][i / 3] = i;
  ewa::RoutingPlan plan;
  plan.dispatch_index = index;
  plan.combine_weight = torch::full({3, 11}, 2.0, torch::kDouble);
  auto z = layer->execute(x, plan);
  for (int64_t i = 0; i < 31; ++i) {
    EXPECT_TRUE(torch::allclose(z[i], 2.0 * torch::matmul(x[i], w[i % 3]), 1e-12, 1e-12)) << i;
  }
  layer->eval();  // RUP at eval: the mean expert
  EXPECT_TRUE(torch::allclose(layer->forward(x), torch::matmul(x, w.mean(0)), 1e-12, 1e-12));
}

TEST(PointTransformerMoE, PlacementAndNames) {
  pc::PointTransformer both(with_moe(tiny(), {2, 3}));
  EXPECT_EQ(both->num_moe_layers(), 2 * (2 + 1));  // stages 2 (2 blocks) and 3 (1 block)
  pc::PointTransformer l1(with_moe(tiny(), {}, 2, "copy", "linear1"));  // empty stages = all
  EXPECT_EQ(l1->num_moe_layers(), 1 + 1 + 2 + 1 + 1);
  std::set<std::string> n;
  for (const auto& item : both->named_parameters()) n.insert(item.key());
  EXPECT_TRUE(n.count("enc3.1.linear1.experts.weight"));
  EXPECT_TRUE(n.count("enc3.2.linear3.experts.weight"));
  EXPECT_TRUE(n.count("enc2.1.linear1.weight"));
  EXPECT_EQ(both->named_parameters()["enc4.1.linear3.experts.weight"].sizes(), torch::IntArrayRef({4, 24, 24}));
  // Only the stacked weight is a parameter (no FFN leftovers of the base class).
  for (const auto& name : n) {
    for (const char* leftover : {"experts.w1", "experts.b1", "experts.w2", "experts.b2"}) {
      EXPECT_EQ(name.find(leftover), std::string::npos) << name;
    }
  }
}

TEST(PointTransformerMoE, CopyInitEqualsTheDenseModelOfTheSameSeed) {
  torch::manual_seed(11);
  pc::PointTransformer dense(tiny());
  torch::manual_seed(11);
  pc::PointTransformer moe(with_moe(tiny(), {1, 2, 3, 4}));
  auto dn = dense->named_parameters();
  for (const auto& item : moe->named_parameters()) {
    const auto& key = item.key();
    const auto pos = key.find(".experts.weight");
    if (pos == std::string::npos) {
      EXPECT_TRUE(torch::equal(item.value(), dn[key])) << key;
    } else {
      const auto& dw = dn[key.substr(0, pos) + ".weight"];  // [out, in]
      for (int64_t e = 0; e < item.value().size(0); ++e) EXPECT_TRUE(torch::equal(item.value()[e].t(), dw)) << key;
    }
  }
  dense->eval();
  moe->eval();
  auto b = make_batch({150, 260}, 6, torch::kFloat, 12);
  // Eval runs the mean expert: the float mean of 4 equal weights may differ by an ulp.
  EXPECT_TRUE(torch::allclose(dense->forward(b.coord, b.feat, b.offset), moe->forward(b.coord, b.feat, b.offset),
                              1e-5, 1e-6));
}

TEST(PointTransformerMoE, IdenticalExpertsCollapseToTheDenseOutput) {
  for (const auto& head : {"seg", "cls"}) {
    torch::manual_seed(13);
    // dropout 0: RUP draws from the global generator, so dropout masks would differ.
    pc::PointTransformer model(with_moe(tiny(head).dropout(0.0), {2, 3, 4}, 4, "copy"));
    model->to(torch::kDouble);
    randomise_bn(model, 14);
    auto b = make_batch({210, 333, 150}, 6, torch::kDouble, 15);
    // Train mode: RUP really splits the points among the (identical) experts.
    model->train();
    torch::manual_seed(16);
    auto moe_train = model->forward(b.coord, b.feat, b.offset);
    EXPECT_EQ(model->routing_stats().size(), 8u);
    model->eval();
    auto moe_eval = model->forward(b.coord, b.feat, b.offset);
    EXPECT_EQ(model->collapse_to_dense(), 8);
    EXPECT_EQ(model->num_moe_layers(), 0);
    EXPECT_FALSE(model->options().moe().enabled());
    auto dense_eval = model->forward(b.coord, b.feat, b.offset);
    EXPECT_TRUE(torch::equal(moe_eval, dense_eval)) << head;  // mean of identical experts
    model->train();
    auto dense_train = model->forward(b.coord, b.feat, b.offset);
    EXPECT_TRUE(torch::allclose(moe_train, dense_train, 1e-10, 1e-10))
        << head << " max diff " << (moe_train - dense_train).abs().max().item<double>();
  }
}

TEST(PointTransformerMoE, CollapseGivesTheDenseArchitecture) {
  torch::manual_seed(17);
  const auto dense_opts = tiny();
  pc::PointTransformer model(with_moe(dense_opts, {0, 1, 2, 3, 4}, 3, "independent"));
  EXPECT_GT(count_params(*model), pc::dense_parameter_count(dense_opts));
  EXPECT_EQ(model->collapse_to_dense(), 12);  // 6 blocks x (linear1, linear3)
  EXPECT_EQ(count_params(*model), pc::dense_parameter_count(dense_opts));
  pc::PointTransformer dense(dense_opts);
  EXPECT_EQ(names(*model), names(*dense));  // same names in the same order
  // The collapsed linear holds the expert mean.
  torch::manual_seed(17);
  pc::PointTransformer again(with_moe(dense_opts, {0, 1, 2, 3, 4}, 3, "independent"));
  auto mean = again->named_parameters()["enc3.2.linear1.experts.weight"].mean(0).t();
  EXPECT_TRUE(torch::allclose(model->named_parameters()["enc3.2.linear1.weight"], mean, 0, 0));
  EXPECT_EQ(model->collapse_to_dense(), 0);  // idempotent
}

TEST(PointTransformerMoE, CoreEwaFindsThePointExpertsAndKeepsTheMean) {
  torch::manual_seed(18);
  pc::PointTransformer model(with_moe(tiny(), {2, 3}, 4, "independent"));
  model->to(torch::kDouble);
  std::vector<torch::Tensor> before;
  std::vector<torch::Tensor> stacks;
  for (const auto& item : model->named_parameters()) {
    if (item.key().find("experts.weight") != std::string::npos) {
      stacks.push_back(item.value());
      before.push_back(item.value().detach().clone());
    }
  }
  ASSERT_EQ(stacks.size(), 6u);
  const double beta = 0.3, shrink = 1.0 - beta * 4.0 / 3.0;
  EXPECT_EQ(ewa::apply_ewa_(*model, beta), 6);
  for (size_t i = 0; i < stacks.size(); ++i) {
    EXPECT_TRUE(torch::allclose(stacks[i].mean(0), before[i].mean(0), 1e-13, 1e-14));
    auto d0 = before[i] - before[i].mean(0, true), d1 = stacks[i] - stacks[i].mean(0, true);
    EXPECT_TRUE(torch::allclose(d1, shrink * d0, 1e-12, 1e-13));
    EXPECT_FALSE(torch::equal(stacks[i], before[i]));
  }
  // A dense (collapsed) model has nothing left for EWA.
  model->collapse_to_dense();
  EXPECT_EQ(ewa::apply_ewa_(*model, beta), 0);
}

TEST(PointTransformerMoE, RoutingStatsAndAuxLoss) {
  torch::manual_seed(19);
  pc::PointTransformer model(with_moe(tiny(), {3, 4}, 4, "copy", "linear3"));
  auto b = make_batch({300, 200}, 6, torch::kFloat, 20);
  model->train();
  model->forward(b.coord, b.feat, b.offset);
  auto stats = model->routing_stats();
  ASSERT_EQ(stats.size(), 2u);
  ASSERT_TRUE(stats.count("enc4.1.linear3"));
  ASSERT_TRUE(stats.count("enc5.1.linear3"));
  for (const auto& [name, load] : stats) {
    ASSERT_EQ(load.size(), 4u) << name;
    double sum = 0;
    for (double l : load) sum += l;
    EXPECT_NEAR(sum, 1.0, 1e-12) << name;
  }
  auto aux = model->aux_loss();
  EXPECT_EQ(aux.dim(), 0);
  EXPECT_EQ(aux.item<double>(), 0.0);  // RUP has no auxiliary loss
}

// ---------------------------------------------------------------------------------------
TEST(PointTransformerIO, SaveLoadRoundTripIsBitExact) {
  const auto dir = std::filesystem::temp_directory_path() / ("ewa_pt_io_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const auto& o : {tiny("seg"), with_moe(tiny("cls", 3, 9), {2, 4}, 3, "independent")}) {
    for (const auto dtype : {torch::kFloat, torch::kDouble}) {
      torch::manual_seed(21);
      pc::PointTransformer model(o);
      model->to(dtype);
      randomise_bn(model, 22);
      const auto path = (dir / "model.safetensors").string();
      pc::save_point_model(model, path, {{"class_names", "a,b,c"}});
      std::map<std::string, std::string> meta;
      auto loaded = pc::load_point_model(path, &meta);
      EXPECT_EQ(meta.at("class_names"), "a,b,c");
      EXPECT_TRUE(meta.count("ewa.pt"));
      EXPECT_EQ(loaded->num_moe_layers(), model->num_moe_layers());
      auto a = pc::point_model_tensors(model), b = pc::point_model_tensors(loaded);
      ASSERT_EQ(a.size(), b.size());
      EXPECT_EQ(a.at("enc1.0.bn.num_batches_tracked").scalar_type(), torch::kLong);  // to() keeps ints
      for (const auto& [name, t] : a) {
        ASSERT_TRUE(b.count(name)) << name;
        EXPECT_EQ(t.scalar_type(), b[name].scalar_type()) << name;
        EXPECT_TRUE(torch::equal(t, b[name])) << name;
      }
      model->eval();
      loaded->eval();
      auto batch = make_batch({200, 120}, o.in_channels(), dtype, 23);
      EXPECT_TRUE(torch::equal(model->forward(batch.coord, batch.feat, batch.offset),
                               loaded->forward(batch.coord, batch.feat, batch.offset)));
    }
  }
  // A collapsed MoE model is written (and read back) as the dense network.
  torch::manual_seed(24);
  pc::PointTransformer moe(with_moe(tiny(), {3}));
  moe->collapse_to_dense();
  const auto path = (dir / "collapsed.safetensors").string();
  pc::save_point_model(moe, path);
  auto loaded = pc::load_point_model(path);
  EXPECT_EQ(loaded->num_moe_layers(), 0);
  EXPECT_EQ(count_params(*loaded), pc::dense_parameter_count(tiny()));
  std::filesystem::remove_all(dir);
}

TEST(PointTransformerIO, ForeignFilesAreRejectedWithTheirName) {
  const auto dir = std::filesystem::temp_directory_path() / ("ewa_pt_io2_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "plain.safetensors").string();
  ewa::safetensors::save_file(path, {{"w", torch::zeros({2})}});
  try {
    pc::load_point_model(path);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  // Right metadata, wrong tensors: the strict loader lists what is missing.
  torch::manual_seed(25);
  pc::PointTransformer model(tiny());
  pc::save_point_model(model, path);
  auto contents = ewa::safetensors::load_file(path);
  contents.tensors.erase("enc2.0.linear.weight");
  ewa::safetensors::save_file(path, contents.tensors, contents.metadata);
  try {
    pc::load_point_model(path);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("enc2.0.linear.weight"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

namespace {

// The Point Transformer's experts are their own bank (no ViT FFN placeholders); the MoE
// linear is the core's one MoE layer.
TEST(PointTransformerMoE, ExpertsAreAnExpertBankNotTheVitFfn) {
  pc::PointMoELinear layer(6, 5, 3);
  ewa::ExpertBankImpl* bank = layer->experts.get();
  EXPECT_EQ(dynamic_cast<ewa::StackedExpertsImpl*>(bank), nullptr);
  ASSERT_NE(dynamic_cast<pc::PointExpertsImpl*>(bank), nullptr);
  EXPECT_EQ(bank->expert_tensors().size(), 1u);
  auto params = layer->experts->named_parameters();
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params.begin()->key(), "weight");
  auto lin = std::dynamic_pointer_cast<torch::nn::LinearImpl>(bank->mean_module());
  ASSERT_TRUE(lin);
  auto x = torch::randn({7, 6});
  EXPECT_TRUE(torch::equal(lin->forward(x), bank->forward_mean(x)));
}

// A learned-router Point Transformer is saved and reloaded as the routed MoE; metadata that
// disagrees with the tensors (huge channels, wrong expert count) fails before building.
TEST(PointTransformerIO, RoutedMoERoundTripAndMetadataChecks) {
  const auto dir = std::filesystem::temp_directory_path() / ("ewa_pt_io3_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  torch::manual_seed(26);
  auto o = with_moe(tiny(), {3, 4});
  o.moe().router().name("softmax_token_choice");
  pc::PointTransformer model(o);
  const auto path = (dir / "routed.safetensors").string();
  pc::save_point_model(model, path);
  auto loaded = pc::load_point_model(path);
  EXPECT_EQ(loaded->num_moe_layers(), model->num_moe_layers());
  EXPECT_TRUE(ewa::routes_at_eval(*loaded));
  model->eval();
  loaded->eval();
  auto batch = make_batch({150, 90}, o.in_channels(), torch::kFloat, 27);
  EXPECT_TRUE(torch::equal(model->forward(batch.coord, batch.feat, batch.offset),
                           loaded->forward(batch.coord, batch.feat, batch.offset)));
  auto contents = ewa::safetensors::load_file(path);
  auto edited = [&](const std::string& from, const std::string& to) {
    auto md = contents.metadata;
    auto& y = md.at(pc::kMetaPointTransformer);
    const auto pos = y.find(from);
    EXPECT_NE(pos, std::string::npos) << y;
    if (pos != std::string::npos) y.replace(pos, from.size(), to);
    const auto out = (dir / "edited.safetensors").string();
    ewa::safetensors::save_file(out, contents.tensors, md);
    return out;
  };
  for (const auto& [from, to, fragment] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"num_experts: 4", "num_experts: 40000", "enc4.1.linear1.experts.weight"},
           {"num_classes: 5", "num_classes: 500000000", "cls.3.weight"},
           {"channels: [8, 16, 16, 24, 32]", "channels: [8, 16, 16, 24, 3200000]", "enc5.0.linear.weight"}}) {
    try {
      pc::load_point_model(edited(from, to));
      ADD_FAILURE() << "no error for " << to;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("edited.safetensors"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

namespace {

// EWA fine-tuning of a dense Point Transformer: init_from upcycles its linears into the MoE
// experts; at step 0 the RUP MoE model computes the dense model's outputs.
TEST(PointTransformerIO, InitFromUpcyclesADenseModel) {
  const auto dir = std::filesystem::temp_directory_path() / ("ewa_pt_io4_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  torch::manual_seed(28);
  pc::PointTransformer dense(tiny());
  const auto path = (dir / "dense.safetensors").string();
  pc::save_point_model(dense, path);
  torch::manual_seed(29);  // another seed: every weight must come from the file
  auto moe = pc::build_point_model(with_moe(tiny(), {2, 3, 4}, 3, "independent"), path);
  EXPECT_GT(moe->num_moe_layers(), 0);
  dense->eval();
  moe->eval();
  auto batch = make_batch({160, 100}, 6, torch::kFloat, 30);
  EXPECT_TRUE(torch::allclose(dense->forward(batch.coord, batch.feat, batch.offset),
                              moe->forward(batch.coord, batch.feat, batch.offset), 1e-5, 1e-5));
  // A file of other widths: one line naming the file and the tensor.
  pc::PointTransformer other(pc::PointTransformerOptions(tiny()).channels({8, 16, 16, 24, 40}));
  pc::save_point_model(other, path);
  try {
    pc::build_point_model(with_moe(tiny(), {2}), path);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("dense.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mis-shaped dec4.0.linear2.0.weight"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

// The model's BatchNorm path for few channels (transposed copy) gives BatchNorm1d's outputs,
// running statistics and gradients up to float summation order, in train and eval mode.
TEST(PointTransformerForward, FewChannelBatchNormMatchesBatchNorm1d) {
  torch::manual_seed(5);
  for (int64_t c : {3, 4, 8, 32}) {
    torch::nn::BatchNorm1d a(c), b(c);
    {
      torch::NoGradGuard no_grad;
      a->weight.uniform_(0.5, 1.5), a->bias.uniform_(-0.5, 0.5);
      b->weight.copy_(a->weight), b->bias.copy_(a->bias);
    }
    auto x = (torch::randn({20000, c}) * 3 + 1).requires_grad_(true);
    auto x2 = x.detach().clone().requires_grad_(true);
    auto g = torch::randn({20000, c});
    for (int step = 0; step < 2; ++step) {
      auto ya = pc::batch_norm_rows(*a, x), yb = b->forward(x2);
      EXPECT_TRUE(torch::allclose(ya, yb, 1e-4, 1e-5)) << c;
      if (step == 0) {
        ya.backward(g), yb.backward(g);
        EXPECT_TRUE(torch::allclose(x.grad(), x2.grad(), 1e-4, 1e-5)) << c;
        EXPECT_TRUE(torch::allclose(a->weight.grad(), b->weight.grad(), 1e-4, 1e-3)) << c;
        EXPECT_TRUE(torch::allclose(a->bias.grad(), b->bias.grad(), 1e-4, 1e-3)) << c;
      }
    }
    EXPECT_TRUE(torch::allclose(a->running_mean, b->running_mean, 1e-5, 1e-6)) << c;
    EXPECT_TRUE(torch::allclose(a->running_var, b->running_var, 1e-5, 1e-6)) << c;
    EXPECT_EQ(a->num_batches_tracked.item<int64_t>(), 2);
    a->eval(), b->eval();
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::allclose(pc::batch_norm_rows(*a, x), b->forward(x), 1e-5, 1e-6)) << c;
  }
}
