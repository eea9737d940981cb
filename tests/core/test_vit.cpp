// ViT: forward shapes for token/avg pooling, timm parameter names, LayerScale, DropPath,
// MoE placement in the model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "ewa/core/config.h"
#include "ewa/core/vit.h"

namespace {

using ewa::VisionTransformer;
using ewa::VisionTransformerOptions;

VisionTransformerOptions tiny() {
  return VisionTransformerOptions().img_size(8).patch_size(4).in_chans(3).num_classes(5).embed_dim(16).depth(3)
      .num_heads(2).mlp_ratio(2.0);
}

std::set<std::string> names(const VisionTransformer& m) {
  std::set<std::string> out;
  for (const auto& p : m->named_parameters()) out.insert(p.key());
  return out;
}

TEST(ViT, TokenPoolingShapes) {
  torch::manual_seed(0);
  VisionTransformer m(tiny());
  auto x = torch::randn({2, 3, 8, 8});
  EXPECT_EQ(m->forward_features(x).sizes(), torch::IntArrayRef({2, 5, 16}));
  EXPECT_EQ(m->forward(x).sizes(), torch::IntArrayRef({2, 5}));
  EXPECT_TRUE(m->forward(x).isfinite().all().item<bool>());
}

TEST(ViT, AvgPoolingShapesWithAndWithoutClassToken) {
  torch::manual_seed(0);
  VisionTransformer with_cls(tiny().global_pool("avg"));
  auto x = torch::randn({2, 3, 8, 8});
  EXPECT_EQ(with_cls->forward_features(x).sizes(), torch::IntArrayRef({2, 5, 16}));
  EXPECT_EQ(with_cls->forward(x).sizes(), torch::IntArrayRef({2, 5}));
  auto n = names(with_cls);
  EXPECT_TRUE(n.count("fc_norm.weight"));
  EXPECT_FALSE(n.count("norm.weight"));

  VisionTransformer no_cls(tiny().global_pool("avg").class_token(false).num_classes(0));
  EXPECT_EQ(no_cls->forward_features(x).sizes(), torch::IntArrayRef({2, 4, 16}));
  EXPECT_EQ(no_cls->forward(x).sizes(), torch::IntArrayRef({2, 16}));  // no head: pooled features
  EXPECT_EQ(no_cls->pos_embed.sizes(), torch::IntArrayRef({1, 4, 16}));
  EXPECT_FALSE(names(no_cls).count("cls_token"));
}

TEST(ViT, AvgPoolingAveragesPatchTokensOnly) {
  torch::manual_seed(1);
  VisionTransformer m(tiny().global_pool("avg").num_classes(0));
  m->eval();
  auto tokens = torch::randn({2, 5, 16});
  auto expected = m->fc_norm->forward(tokens.narrow(1, 1, 4).mean(1));
  EXPECT_TRUE(torch::allclose(m->forward_head(tokens), expected));
}

TEST(ViT, ParameterNamesMirrorTimm) {
  VisionTransformer m(tiny().init_values(1e-5));
  std::set<std::string> expected = {"patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed",
                                    "norm.weight", "norm.bias", "head.weight", "head.bias"};
  for (int i = 0; i < 3; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    for (const char* s : {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                          "attn.proj.bias", "ls1.gamma", "norm2.weight", "norm2.bias", "mlp.fc1.weight",
                          "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias", "ls2.gamma"}) {
      expected.insert(b + s);
    }
  }
  EXPECT_EQ(names(m), expected);
  auto params = m->named_parameters();
  EXPECT_EQ(params["blocks.0.attn.qkv.weight"].sizes(), torch::IntArrayRef({48, 16}));
  EXPECT_EQ(params["blocks.0.mlp.fc1.weight"].sizes(), torch::IntArrayRef({32, 16}));
  EXPECT_EQ(params["pos_embed"].sizes(), torch::IntArrayRef({1, 5, 16}));
  EXPECT_TRUE(torch::all(params["blocks.2.ls2.gamma"] == 1e-5f).item<bool>());
  VisionTransformer no_bias(tiny().qkv_bias(false));
  EXPECT_FALSE(names(no_bias).count("blocks.0.attn.qkv.bias"));
}

TEST(ViT, WeightInitSchemes) {
  torch::manual_seed(2);
  VisionTransformer tn(tiny().embed_dim(64).num_heads(4));
  auto w = tn->blocks()[0]->attn->qkv->weight;
  EXPECT_NEAR(w.std().item<double>(), 0.02 * 0.88, 0.003);  // N(0, .02) truncated at 2 std
  EXPECT_LE(w.abs().max().item<double>(), 0.04 + 1e-7);
  EXPECT_EQ(tn->blocks()[0]->attn->qkv->bias.abs().max().item<double>(), 0.0);
  VisionTransformer xv(tiny().embed_dim(64).num_heads(4).weight_init("xavier"));
  EXPECT_EQ(xv->head->weight.abs().max().item<double>(), 0.0);  // jax init: zero head
  const double bound = std::sqrt(6.0 / (64 + 128));
  auto fc1 = xv->blocks()[0]->dense_mlp()->fc1->weight;
  EXPECT_LE(fc1.abs().max().item<double>(), bound);
  EXPECT_GT(fc1.abs().max().item<double>(), 0.9 * bound);
}

TEST(ViT, DropPathDropsWholeSamples) {
  torch::manual_seed(3);
  auto x = torch::ones({64, 3, 4}, torch::kDouble);
  EXPECT_TRUE(torch::equal(ewa::drop_path(x, 0.5, false), x));
  auto y = ewa::drop_path(x, 0.5, true);
  auto per_sample = y.flatten(1);  // [64, 12]
  for (int64_t i = 0; i < 64; ++i) {
    const double v = per_sample[i][0].item<double>();
    EXPECT_TRUE(v == 0.0 || v == 2.0);
    EXPECT_TRUE(torch::all(per_sample[i] == v).item<bool>());
  }
}

TEST(ViT, MoEBlocksPlacedByOptions) {
  auto moe = ewa::MoEOptions().enabled(true).num_experts(3).every(2);
  VisionTransformer m(tiny().depth(4), moe);
  EXPECT_EQ(m->moe_blocks(), (std::vector<int64_t>{1, 3}));
  auto n = names(m);
  EXPECT_TRUE(n.count("blocks.1.mlp.experts.w1"));
  EXPECT_TRUE(n.count("blocks.3.mlp.experts.b2"));
  EXPECT_FALSE(n.count("blocks.1.mlp.fc1.weight"));
  EXPECT_TRUE(n.count("blocks.0.mlp.fc1.weight"));
  EXPECT_EQ(m->named_parameters()["blocks.1.mlp.experts.w1"].sizes(), torch::IntArrayRef({3, 16, 32}));
  EXPECT_EQ(m->named_parameters()["blocks.1.mlp.experts.w2"].sizes(), torch::IntArrayRef({3, 32, 16}));
  // init copy: all experts equal; independent: they differ
  auto w1 = m->named_parameters()["blocks.1.mlp.experts.w1"];
  EXPECT_TRUE(torch::equal(w1[0], w1[2]));
  VisionTransformer ind(tiny().depth(4), ewa::MoEOptions(moe).init("independent"));
  auto w1i = ind->named_parameters()["blocks.1.mlp.experts.w1"];
  EXPECT_FALSE(torch::equal(w1i[0], w1i[2]));
  auto x = torch::randn({2, 3, 8, 8});
  EXPECT_EQ(m->forward(x).sizes(), torch::IntArrayRef({2, 5}));
  m->eval();
  EXPECT_EQ(m->forward(x).sizes(), torch::IntArrayRef({2, 5}));
  EXPECT_EQ(m->aux_loss().item<double>(), 0.0);  // RUP has no aux loss
}

TEST(ViT, PlacementRules) {
  using ewa::moe_block_indices;
  auto o = ewa::MoEOptions();
  EXPECT_EQ(moe_block_indices(ewa::MoEOptions(o).every(2), 6), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(moe_block_indices(ewa::MoEOptions(o).every(3), 7), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(moe_block_indices(ewa::MoEOptions(o).every(0).last(2), 6), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(moe_block_indices(o, 6), (std::vector<int64_t>{1, 3, 5}));                   // every unset: 2
  EXPECT_EQ(moe_block_indices(ewa::MoEOptions(o).last(2), 6), (std::vector<int64_t>{4, 5}));  // no default every
  // every and last are mutually exclusive (no silent union), in code and in a config.
  EXPECT_THROW(moe_block_indices(ewa::MoEOptions(o).every(3).last(1), 6), std::invalid_argument);
  try {
    ewa::config::decode<ewa::MoEOptions>(ewa::config::parse_yaml_string("every: 2\nlast: 3\n", "moe.yaml"), "moe.yaml");
    ADD_FAILURE() << "every + last accepted";
  } catch (const ewa::config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("mutually exclusive"), std::string::npos) << e.what();
  }
  EXPECT_EQ(moe_block_indices(ewa::MoEOptions(o).blocks({4, 0, 4}).every(1), 6), (std::vector<int64_t>{0, 4}));
  EXPECT_THROW(moe_block_indices(ewa::MoEOptions(o).blocks({6}), 6), std::invalid_argument);
  EXPECT_THROW(moe_block_indices(ewa::MoEOptions(o).blocks({-1}), 6), std::invalid_argument);
  EXPECT_THROW(moe_block_indices(ewa::MoEOptions(o).every(0).last(7), 6), std::invalid_argument);
  EXPECT_THROW(moe_block_indices(ewa::MoEOptions(o).every(8).last(0), 6), std::invalid_argument);
}

TEST(ViT, OptionsRejectTokenPoolingWithoutClassToken) {
  auto node = ewa::config::parse_yaml_string("global_pool: token\nclass_token: false\n", "vit.yaml");
  EXPECT_THROW(ewa::config::decode<VisionTransformerOptions>(node, "vit.yaml"), ewa::config::ConfigError);
  EXPECT_THROW({ VisionTransformer bad(tiny().class_token(false)); }, c10::Error);
}

TEST(ViT, RejectsWrongImageSize) {
  VisionTransformer m(tiny());
  try {
    m->forward(torch::randn({1, 3, 12, 12}));
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("PatchEmbed"), std::string::npos);
  }
}

}  // namespace
