// CLI smoke tests of `ewa convert` (MoE -> dense, verified) and `ewa inspect`.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ewa/core/ewa.h"
#include "ewa/core/model_io.h"
#include "test_util.h"

namespace {

using namespace ewa;

TEST(CliModel, ConvertCollapsesAndInspectLists) {
  test::TempDir tmp;
  torch::manual_seed(0);
  auto vit = VisionTransformerOptions().img_size(8).patch_size(4).num_classes(3).embed_dim(8).depth(2).num_heads(2);
  VisionTransformer m(vit, MoEOptions().enabled(true).num_experts(3).every(2).init("independent"));
  apply_ewa_(*m, 0.1);
  save_model(m, tmp.str("moe.safetensors"));

  auto ins = test::run_ewa("inspect '" + tmp.str("moe.safetensors") + "'");
  ASSERT_EQ(ins.status, 0) << ins.err;
  EXPECT_NE(ins.out.find("blocks.1.mlp.experts.w1"), std::string::npos) << ins.out;
  EXPECT_NE(ins.out.find("block 1: 3 experts, in 8, hidden 32"), std::string::npos) << ins.out;
  int64_t params = 0;
  for (const auto& p : m->parameters()) params += p.numel();
  EXPECT_NE(ins.out.find("parameters: " + std::to_string(params)), std::string::npos) << ins.out;
  EXPECT_NE(ins.out.find("ewa.moe"), std::string::npos);

  auto conv = test::run_ewa("--threads 1 convert '" + tmp.str("moe.safetensors") + "' --out '" +
                            tmp.str("dense.safetensors") + "'");
  ASSERT_EQ(conv.status, 0) << conv.err;
  EXPECT_NE(conv.out.find("collapsed 1 MoE layers"), std::string::npos) << conv.out;
  const std::string key = "max |MoE eval output - dense output| = ";
  const auto pos = conv.out.find(key);
  ASSERT_NE(pos, std::string::npos) << conv.out;
  EXPECT_LE(std::stod(conv.out.substr(pos + key.size())), 1e-5) << conv.out;

  auto dense = load_model(tmp.str("dense.safetensors"));
  EXPECT_TRUE(dense->moe_blocks().empty());
  auto names = model_tensors(dense);
  EXPECT_TRUE(names.count("blocks.1.mlp.fc1.weight"));
  EXPECT_TRUE(torch::equal(names.at("blocks.1.mlp.fc1.weight"),
                           model_tensors(m).at("blocks.1.mlp.experts.w1").mean(0).t()));
  auto ins2 = test::run_ewa("inspect '" + tmp.str("dense.safetensors") + "'");
  ASSERT_EQ(ins2.status, 0) << ins2.err;
  EXPECT_NE(ins2.out.find("MoE layers: none"), std::string::npos) << ins2.out;

  test::write_file(tmp.path() / "bad.safetensors", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10));
  auto bad = test::run_ewa("inspect '" + tmp.str("bad.safetensors") + "'");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("bad.safetensors"), std::string::npos) << bad.err;
  auto bad2 = test::run_ewa("convert '" + tmp.str("bad.safetensors") + "' --out '" + tmp.str("x.safetensors") + "'");
  EXPECT_EQ(bad2.status, 1);
  EXPECT_EQ(test::run_ewa("convert").status, 2);
}

// A learned-router model file is the routed MoE: inspect loads and runs it and names its router;
// convert refuses to average it unless --average is given (and then needs the run's config).
TEST(CliModel, LearnedRouterModelIsServedAsTrained) {
  test::TempDir tmp;
  torch::manual_seed(1);
  auto vit = VisionTransformerOptions().img_size(8).patch_size(4).num_classes(3).embed_dim(8).depth(2).num_heads(2);
  VisionTransformer m(vit, MoEOptions().enabled(true).num_experts(2).every(1).router(
                               RouterOptions().name("softmax_token_choice")));
  save_model(m, tmp.str("tc.safetensors"));
  auto ins = test::run_ewa("inspect '" + tmp.str("tc.safetensors") + "'");
  ASSERT_EQ(ins.status, 0) << ins.err;
  EXPECT_NE(ins.out.find("router: softmax_token_choice (learned"), std::string::npos) << ins.out;
  EXPECT_NE(ins.out.find("load check: ok (routed MoE ViT, 1 image -> logits [1, 3])"), std::string::npos) << ins.out;
  auto conv = test::run_ewa("convert '" + tmp.str("tc.safetensors") + "' --out '" + tmp.str("x.safetensors") + "'");
  EXPECT_EQ(conv.status, 2);
  EXPECT_NE(conv.err.find("--average"), std::string::npos) << conv.err;
  auto avg = test::run_ewa("convert '" + tmp.str("tc.safetensors") + "' --average --out '" + tmp.str("x.safetensors") +
                           "'");
  EXPECT_EQ(avg.status, 2);
  EXPECT_NE(avg.err.find("--config"), std::string::npos) << avg.err;
}

}  // namespace
