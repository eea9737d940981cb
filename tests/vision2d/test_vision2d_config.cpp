// Model presets, config decoding, and the shipped configs: every cls-*.yaml decodes, and each
// dataset's vanilla and EWA variants differ only in model.moe / model.ewa (and run.name).
#include <gtest/gtest.h>

#include <algorithm>

#include "ewa/core/collapse.h"
#include "ewa/core/config.h"
#include "ewa/core/model_io.h"
#include "ewa/vision2d/pipeline.h"
#include "ewa/vision2d/presets.h"
#include "ewa/vision2d/task.h"
#include "test_util.h"

namespace ewa::test {
namespace {

namespace v2 = ewa::vision2d;

config::Node parse(const std::string& yaml) { return config::parse_yaml_string(yaml, "test.yaml"); }

TEST(Vision2dPresets, FillTimmSizes) {
  auto c = v2::decode_config(parse("task: image_classification\nmodel: {preset: vit_small}\n"), "t");
  const auto& v = c.model().vit();
  EXPECT_EQ(v.embed_dim(), 384);
  EXPECT_EQ(v.depth(), 12);
  EXPECT_EQ(v.num_heads(), 6);
  EXPECT_EQ(v.patch_size(), 16);
  EXPECT_EQ(v.img_size(), 224);
  EXPECT_DOUBLE_EQ(v.mlp_ratio(), 4.0);
  auto tiny = v2::apply_vit_preset({}, "vit_tiny");
  EXPECT_EQ(tiny.embed_dim(), 192);
  EXPECT_EQ(tiny.num_heads(), 3);
  auto base = v2::apply_vit_preset({}, "vit_base");
  EXPECT_EQ(base.embed_dim(), 768);
  EXPECT_EQ(base.num_heads(), 12);
  for (const auto& [name, size, patch] : {std::tuple{"vit_28px", 28, 4}, std::tuple{"vit_32px", 32, 4},
                                          std::tuple{"vit_64px", 64, 8}}) {
    auto o = v2::apply_vit_preset({}, name);
    EXPECT_EQ(o.img_size(), size) << name;
    EXPECT_EQ(o.patch_size(), patch) << name;
    EXPECT_EQ(o.embed_dim() % o.num_heads(), 0) << name;
  }
}

TEST(Vision2dPresets, ExplicitKeysAndOverridesWin) {
  auto root = parse("task: image_classification\nmodel:\n  preset: vit_tiny\n  vit: {embed_dim: 96, in_chans: 1}\n");
  config::apply_override(root, "model.vit.depth=3");
  auto c = v2::decode_config(root, "t");
  EXPECT_EQ(c.model().vit().embed_dim(), 96);  // explicit
  EXPECT_EQ(c.model().vit().depth(), 3);       // --set
  EXPECT_EQ(c.model().vit().num_heads(), 3);   // preset
  EXPECT_EQ(c.model().vit().in_chans(), 1);
  EXPECT_EQ(c.model().vit().num_classes(), 1000);  // never set by a preset
  // The resolved config carries the expanded values: decoding it again is a fixed point.
  const std::string once = config::dump(c);
  EXPECT_EQ(config::dump(v2::decode_config(parse(once), "resolved")), once);
}

TEST(Vision2dPresets, UnknownPresetIsAConfigError) {
  try {
    v2::decode_config(parse("task: image_classification\nmodel: {preset: vit_huge}\n"), "bad.yaml");
    FAIL() << "expected a config error";
  } catch (const config::ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("bad.yaml"), std::string::npos) << m;
    EXPECT_NE(m.find("model.preset"), std::string::npos) << m;
    EXPECT_NE(m.find("vit_28px"), std::string::npos) << m;
  }
  EXPECT_THROW(v2::vit_preset_values("nope"), std::invalid_argument);
}

TEST(Vision2dPresets, BuildModelFollowsConfig) {
  auto c = v2::decode_config(parse("task: image_classification\n"
                                   "model: {preset: vit_28px, vit: {in_chans: 1, num_classes: 10, depth: 2},\n"
                                   "        moe: {enabled: true, num_experts: 3, every: 2}}\n"),
                             "t");
  auto m = v2::build_model(c);
  EXPECT_EQ(m->moe_blocks(), std::vector<int64_t>{1});
  auto y = m->forward(torch::randn({2, 1, 28, 28}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 10}));
}

// Every shipped image-classification config decodes.
TEST(Vision2dConfigs, ShippedConfigsDecode) {
  int n = 0;
  for (const auto& dir : fs::directory_iterator(fs::path(EWA_SOURCE_DIR) / "configs")) {
    for (const auto& f : fs::directory_iterator(dir.path())) {
      if (f.path().extension() != ".yaml") continue;
      auto root = config::parse_yaml_file(f.path().string());
      const config::Node* task = root.find("task");
      if (!task || task->scalar != "image_classification") continue;
      EXPECT_NO_THROW(v2::decode_config(root, f.path().string())) << f.path();
      ++n;
    }
  }
  EXPECT_GE(n, 11);
}

// Resolved config with run.name, model.moe and model.ewa removed.
std::string without_moe(const fs::path& file) {
  auto cfg = v2::decode_config(config::parse_yaml_file(file.string()), file.string());
  config::Node n = config::encode_value(cfg);
  auto drop = [](config::Node& map, const std::string& key) {
    auto& e = map.entries;
    e.erase(std::remove_if(e.begin(), e.end(), [&](const auto& kv) { return kv.first == key; }), e.end());
  };
  drop(*n.find("run"), "name");
  drop(*n.find("model"), "moe");
  drop(*n.find("model"), "ewa");
  return config::to_yaml(n);
}

TEST(Vision2dConfigs, VanillaAndEwaDifferOnlyInMoeAndEwa) {
  for (const char* ds : {"fashion_mnist", "cifar10", "cifar100", "tiny_imagenet", "image_folder"}) {
    const fs::path dir = fs::path(EWA_SOURCE_DIR) / "configs" / ds;
    const fs::path van = dir / "cls-vit-vanilla.yaml", ewa = dir / "cls-vit-ewa.yaml";
    ASSERT_TRUE(fs::exists(van)) << van;
    ASSERT_TRUE(fs::exists(ewa)) << ewa;
    EXPECT_EQ(without_moe(van), without_moe(ewa)) << ds;
    auto cv = v2::decode_config(config::parse_yaml_file(van.string()), van.string());
    auto ce = v2::decode_config(config::parse_yaml_file(ewa.string()), ewa.string());
    EXPECT_FALSE(cv.model().moe().enabled()) << ds;
    EXPECT_FALSE(cv.model().ewa().enabled()) << ds;
    EXPECT_TRUE(ce.model().moe().enabled()) << ds;
    EXPECT_TRUE(ce.model().ewa().enabled()) << ds;
    EXPECT_EQ(ce.model().moe().router().name(), "rup") << ds;
    if (std::string(ds) != "fashion_mnist") continue;  // model building is slow for the bigger presets
    // Same inference architecture: the collapsed EWA model has the vanilla parameter count.
    auto mv = v2::build_model(cv), me = v2::build_model(ce);
    EXPECT_GT(count_parameters(*me), count_parameters(*mv)) << ds;
    collapse_to_dense(me, torch::Tensor());
    EXPECT_EQ(count_parameters(*me), count_parameters(*mv)) << ds;
  }
}

}  // namespace
}  // namespace ewa::test
