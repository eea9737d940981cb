// Model export/import with timm names, collapse (MoE eval output == dense output), upcycling,
// and clear errors for missing / unexpected / mis-shaped tensors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>

#include "ewa/core/collapse.h"
#include "ewa/core/config.h"
#include "ewa/core/ewa.h"
#include "ewa/core/model_io.h"
#include "test_util.h"

namespace {

using namespace ewa;

VisionTransformerOptions tiny() {
  return VisionTransformerOptions().img_size(8).patch_size(4).num_classes(4).embed_dim(16).depth(4).num_heads(2)
      .mlp_ratio(2.0);
}

MoEOptions moe4() { return MoEOptions().enabled(true).num_experts(4).every(2).init("independent"); }

void expect_error_contains(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    for (const auto& s : fragments) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what();
  }
}

TEST(ModelIo, DenseRoundTripIsBitExact) {
  torch::manual_seed(0);
  test::TempDir tmp;
  VisionTransformer m(tiny().init_values(0.1).global_pool("avg"));
  save_model(m, tmp.str("m.safetensors"));
  auto loaded = load_model(tmp.str("m.safetensors"));
  EXPECT_EQ(config::dump(loaded->options()), config::dump(m->options()));
  EXPECT_FALSE(loaded->moe_options().has_value());
  auto a = model_tensors(m), b = model_tensors(loaded);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) EXPECT_TRUE(torch::equal(v, b.at(k))) << k;
  auto header = safetensors::read_header(tmp.str("m.safetensors"));
  EXPECT_FALSE(header.metadata.count(kMetaMoe));
  EXPECT_EQ(header.metadata.at("format"), "pt");
  m->eval();
  loaded->eval();
  auto x = torch::randn({2, 3, 8, 8});
  EXPECT_TRUE(torch::equal(m->forward(x), loaded->forward(x)));
}

TEST(ModelIo, MoERoundTripKeepsExperts) {
  torch::manual_seed(1);
  test::TempDir tmp;
  VisionTransformer m(tiny(), moe4());
  save_model(m, tmp.str("moe.safetensors"));
  auto header = safetensors::read_header(tmp.str("moe.safetensors"));
  ASSERT_TRUE(header.metadata.count(kMetaMoe));
  auto loaded = load_model(tmp.str("moe.safetensors"));
  EXPECT_EQ(loaded->moe_blocks(), (std::vector<int64_t>{1, 3}));
  auto w1 = model_tensors(loaded).at("blocks.1.mlp.experts.w1");
  EXPECT_EQ(w1.sizes(), torch::IntArrayRef({4, 16, 32}));
  EXPECT_TRUE(torch::equal(w1, model_tensors(m).at("blocks.1.mlp.experts.w1")));
}

// A learned-router model file is the routed MoE: it reloads with its router (weights and
// options) and gives the same eval outputs.
TEST(ModelIo, LearnedRouterMoERoundTrip) {
  torch::manual_seed(2);
  test::TempDir tmp;
  auto moe = MoEOptions().enabled(true).num_experts(3).every(2).router(
      RouterOptions().name("softmax_expert_choice").capacity_factor(1.5));
  VisionTransformer m(tiny(), moe);
  save_model(m, tmp.str("ec.safetensors"));
  auto loaded = load_model(tmp.str("ec.safetensors"));
  EXPECT_TRUE(routes_at_eval(*loaded));
  EXPECT_EQ(loaded->moe_options()->router().name(), "softmax_expert_choice");
  EXPECT_TRUE(model_tensors(loaded).count("blocks.1.mlp.router.gate.weight"));
  m->eval();
  loaded->eval();
  auto x = torch::randn({3, 3, 8, 8});
  EXPECT_TRUE(torch::equal(m->forward(x), loaded->forward(x)));
}

// Metadata that disagrees with the stored tensors (e.g. huge dimensions) fails with one line
// naming the file and the tensor BEFORE any model is built.
TEST(ModelIo, MetadataCheckedAgainstTensorsBeforeBuilding) {
  torch::manual_seed(3);
  test::TempDir tmp;
  VisionTransformer m(tiny(), moe4());
  auto tensors = model_tensors(m);
  auto meta = model_metadata(m);
  auto write_with = [&](const std::string& key, const std::string& from, const std::string& to) {
    auto md = meta;
    auto pos = md.at(key).find(from);
    EXPECT_NE(pos, std::string::npos) << md.at(key);
    md[key].replace(pos, from.size(), to);
    const std::string path = tmp.str("edited.safetensors");
    safetensors::save_file(path, tensors, md);
    return path;
  };
  const std::string huge = write_with(kMetaVit, "embed_dim: 16", "embed_dim: 1000000");
  expect_error_contains([&] { load_model(huge); }, {"edited.safetensors", "embed_dim", "patch_embed.proj.weight"});
  expect_error_contains([&] { load_model(write_with(kMetaVit, "depth: 4", "depth: 400000000")); },
                        {"edited.safetensors", "depth"});
  expect_error_contains([&] { load_model(write_with(kMetaVit, "mlp_ratio: 2", "mlp_ratio: 20000")); },
                        {"edited.safetensors", "mlp_ratio", "blocks.0.mlp.fc1.weight"});
  expect_error_contains([&] { load_model(write_with(kMetaMoe, "num_experts: 4", "num_experts: 4000")); },
                        {"edited.safetensors", "num_experts", "blocks.1.mlp.experts.w1"});
  expect_error_contains([&] { load_model(write_with(kMetaVit, "num_classes: 4", "num_classes: 99999999")); },
                        {"edited.safetensors", "num_classes", "head.weight"});
}

// The export is what timm loads: tests/tools/timm_vit_reference.py (pure Python, written from
// timm's VisionTransformer module definitions, no code shared with ours) checks the file
// against the state dict timm's model would load with strict=True and recomputes the logits.
// Cases: class token + token pooling; average pooling without class token, no qkv bias,
// LayerScale, one input channel; an EWA-trained MoE collapsed for export.
TEST(ModelIo, ExportMatchesAnIndependentTimmForward) {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not installed";
  struct Case {
    const char* name;
    VisionTransformerOptions o;
    bool moe;
  };
  const auto base = VisionTransformerOptions().img_size(8).patch_size(4).in_chans(3).num_classes(3).embed_dim(8)
                        .depth(2).num_heads(2).mlp_ratio(2.0);
  const std::vector<Case> cases = {
      {"token", base, false},
      {"avg-layerscale", VisionTransformerOptions().img_size(8).patch_size(2).in_chans(1).num_classes(5).embed_dim(12)
                             .depth(2).num_heads(3).mlp_ratio(1.5).global_pool("avg").class_token(false)
                             .qkv_bias(false).init_values(0.1), false},
      {"ewa-collapsed", base, true},
  };
  ewa::test::TempDir tmp;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    torch::manual_seed(7);
    VisionTransformer m(c.o, c.moe ? MoEOptions().enabled(true).num_experts(4).every(1).init("independent")
                                   : MoEOptions());
    {
      torch::NoGradGuard no_grad;
      for (auto& p : m->parameters()) p.normal_(0.0, 0.3);
    }
    if (c.moe) {
      apply_ewa_(*m, 0.3);
      collapse_to_dense(m, torch::Tensor());
    }
    m->eval();
    const auto& o = c.o;
    const auto x = torch::randn({2, o.in_chans(), o.img_size(), o.img_size()});
    const auto logits = m->forward(x).detach().contiguous();
    const std::string file = tmp.str(std::string(c.name) + ".safetensors");
    save_model(m, file);
    nlohmann::json arch = {{"img_size", o.img_size()},       {"patch_size", o.patch_size()},
                           {"in_chans", o.in_chans()},       {"embed_dim", o.embed_dim()},
                           {"depth", o.depth()},             {"num_heads", o.num_heads()},
                           {"mlp_ratio", o.mlp_ratio()},     {"qkv_bias", o.qkv_bias()},
                           {"class_token", o.class_token()}, {"global_pool", o.global_pool()},
                           {"num_classes", o.num_classes()}};
    arch["init_values"] = o.init_values() > 0 ? nlohmann::json(o.init_values()) : nlohmann::json(nullptr);
    const auto xc = x.contiguous();
    nlohmann::json input = {{"shape", xc.sizes().vec()},
                            {"data", std::vector<float>(xc.data_ptr<float>(), xc.data_ptr<float>() + xc.numel())}};
    std::ofstream(tmp.str("arch.json")) << arch.dump();
    std::ofstream(tmp.str("input.json")) << input.dump();
    const auto r = ewa::test::run_command("python3 '" + std::string(EWA_SOURCE_DIR) +
                                          "/tests/tools/timm_vit_reference.py' '" + file + "' '" +
                                          tmp.str("arch.json") + "' '" + tmp.str("input.json") + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto ref = nlohmann::json::parse(r.out).get<std::vector<std::vector<double>>>();
    ASSERT_EQ(static_cast<int64_t>(ref.size()), logits.size(0));
    double max_diff = 0.0, max_abs = 0.0;
    for (int64_t b = 0; b < logits.size(0); ++b) {
      ASSERT_EQ(static_cast<int64_t>(ref[b].size()), logits.size(1));
      for (int64_t k = 0; k < logits.size(1); ++k) {
        const double v = logits[b][k].item<double>();
        max_diff = std::max(max_diff, std::abs(v - ref[b][k]));
        max_abs = std::max(max_abs, std::abs(v));
      }
    }
    EXPECT_GT(max_abs, 0.1);  // the random weights give non-trivial logits
    EXPECT_LE(max_diff, 1e-5 * (1.0 + max_abs)) << "max |ewa - timm reference| " << max_diff;
  }
}

TEST(Collapse, DenseOutputEqualsMoEEvalOutput) {
  torch::manual_seed(2);
  VisionTransformer m(tiny(), moe4());
  apply_ewa_(*m, 0.2);
  auto probe = torch::randn({3, 3, 8, 8});
  m->eval();
  auto moe_out = m->forward(probe).detach();
  auto expected_fc1 = m->blocks()[1]->moe_mlp().ffn().w1.mean(0).t().contiguous();
  m->train();
  auto report = collapse_to_dense(m, probe);
  EXPECT_EQ(report.blocks, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(report.num_experts, 4);
  // Same values through the same ops; GEMM blocking may still differ in the last bits.
  EXPECT_LE(report.max_abs_diff, 1e-5);
  EXPECT_TRUE(m->is_training());  // mode restored
  EXPECT_TRUE(m->moe_blocks().empty());
  EXPECT_FALSE(m->moe_options().has_value());
  EXPECT_TRUE(torch::equal(m->blocks()[1]->dense_mlp()->fc1->weight, expected_fc1));
  m->eval();
  EXPECT_TRUE(torch::allclose(m->forward(probe), moe_out, 1e-5, 1e-5));
  // The collapsed model has exactly the dense model's names and shapes.
  VisionTransformer dense(tiny());
  auto a = model_tensors(m), b = model_tensors(dense);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : b) EXPECT_EQ(a.at(k).sizes(), v.sizes()) << k;
}

TEST(Collapse, IdenticalExpertsTrainOutputEqualsDenseInDouble) {
  torch::manual_seed(3);
  VisionTransformer dense(tiny());
  dense->to(torch::kDouble);
  test::TempDir tmp;
  save_model(dense, tmp.str("d.safetensors"));
  auto moe = load_model(tmp.str("d.safetensors"));
  moe->to(torch::kDouble);
  EXPECT_EQ(upcycle_to_moe(moe, MoEOptions().num_experts(3).every(0).last(2)), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(moe->moe_options().has_value());
  auto x = torch::randn({2, 3, 8, 8}, torch::kDouble);
  dense->train();
  moe->train();  // RUP routing in train mode, no dropout configured
  EXPECT_LE((moe->forward(x) - dense->forward(x)).abs().max().item<double>(), 1e-12);
  EXPECT_THROW(upcycle_to_moe(moe, MoEOptions().every(0).last(1)), std::invalid_argument);
  auto report = collapse_to_dense(moe, x);
  EXPECT_LE(report.max_abs_diff, 1e-12);
  for (const auto& [k, v] : model_tensors(dense)) EXPECT_TRUE(torch::equal(v, model_tensors(moe).at(k))) << k;
}

TEST(ModelIo, LoadsTimmNamedDenseWeightsAndReportsProblems) {
  torch::manual_seed(4);
  test::TempDir tmp;
  VisionTransformer src(tiny());
  auto tensors = model_tensors(src);
  // A "pretrained" timm file: same names, F16 data, no ewa metadata.
  safetensors::TensorMap half;
  for (const auto& [k, v] : tensors) half[k] = v.to(torch::kHalf);
  safetensors::save_file(tmp.str("timm.safetensors"), half, {{"format", "pt"}});
  VisionTransformer dst(tiny());
  load_weights_file(dst, tmp.str("timm.safetensors"));
  EXPECT_TRUE(torch::equal(model_tensors(dst).at("pos_embed"), half.at("pos_embed").to(torch::kFloat)));
  expect_error_contains([&] { load_model(tmp.str("timm.safetensors")); }, {"timm.safetensors", "ewa.vit"});

  // Different class count: strict load fails on head, skipping "head." works.
  VisionTransformer ten(tiny().num_classes(10));
  expect_error_contains([&] { load_weights_file(ten, tmp.str("timm.safetensors")); },
                        {"timm.safetensors", "mis-shaped", "head.weight", "[4, 16]", "[10, 16]"});
  EXPECT_NO_THROW(load_weights_file(ten, tmp.str("timm.safetensors"), {"head."}));

  auto missing = tensors;
  missing.erase("blocks.2.attn.qkv.weight");
  missing["blocks.9.mlp.fc1.weight"] = torch::zeros({1});
  expect_error_contains([&] { load_weights(dst, missing, "partial.safetensors"); },
                        {"partial.safetensors", "missing blocks.2.attn.qkv.weight", "unexpected blocks.9.mlp.fc1.weight"});

  // An MoE file into a dense model points at `ewa convert`.
  VisionTransformer moe(tiny(), moe4());
  expect_error_contains([&] { load_weights(dst, model_tensors(moe), "moe.safetensors"); },
                        {"blocks.1.mlp.experts.w1", "ewa convert"});
}

}  // namespace
