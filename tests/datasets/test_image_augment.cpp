// Augmentation invariants: flips, crops and resizes keep shapes and content, RandAugment ops at
// magnitude 0 are identities, normalisation values, random erasing, mixup/cutmix soft targets.
#include <gtest/gtest.h>

#include <cmath>

#include "ewa/datasets/image/augment.h"

namespace ewa::datasets::image {
namespace {

torch::Tensor random_image(int64_t h, int64_t w, int64_t c, uint64_t seed) {
  torch::manual_seed(static_cast<uint64_t>(seed));
  return torch::randint(0, 256, {h, w, c}, torch::kInt64).to(torch::kUInt8);
}

TEST(ImageAugment, FlipTwiceIsIdentityAndMirrors) {
  auto img = random_image(5, 7, 3, 1);
  auto f = hflip(img);
  EXPECT_TRUE(torch::equal(f, img.flip({1})));
  EXPECT_TRUE(torch::equal(hflip(f), img));
}

TEST(ImageAugment, CropWithPaddingIsAShiftedWindow) {
  auto img = random_image(10, 9, 3, 2) | 1;  // no zero pixel, so padding is recognisable
  for (uint64_t s = 0; s < 20; ++s) {
    Rng rng(s);
    auto out = random_crop_with_padding(img, 3, rng);
    ASSERT_EQ(out.sizes(), img.sizes());
    auto padded = torch::zeros({16, 15, 3}, torch::kUInt8);
    padded.slice(0, 3, 13).slice(1, 3, 12).copy_(img);
    int matches = 0;
    for (int dy = 0; dy <= 6; ++dy) {
      for (int dx = 0; dx <= 6; ++dx) matches += torch::equal(out, padded.slice(0, dy, dy + 10).slice(1, dx, dx + 9));
    }
    EXPECT_EQ(matches, 1) << "seed " << s;
  }
  Rng rng(0);
  EXPECT_TRUE(torch::equal(random_crop_with_padding(img, 0, rng), img));
}

TEST(ImageAugment, ResizeAndRandomResizedCropSizes) {
  auto img = random_image(20, 30, 3, 3);
  EXPECT_EQ(resize(img, 8, 12).sizes(), (std::vector<int64_t>{8, 12, 3}));
  EXPECT_EQ(resize(img, 40, 50).sizes(), (std::vector<int64_t>{40, 50, 3}));
  EXPECT_TRUE(torch::equal(resize(img, 20, 30), img));
  auto flat = torch::full({16, 16, 1}, 77, torch::kUInt8);
  EXPECT_TRUE(torch::equal(resize(flat, 5, 9), torch::full({5, 9, 1}, 77, torch::kUInt8)));
  for (uint64_t s = 0; s < 10; ++s) {
    Rng rng(s);
    EXPECT_EQ(random_resized_crop(img, 16, 16, 0.08, 1.0, 0.75, 4.0 / 3, rng).sizes(), (std::vector<int64_t>{16, 16, 3}));
  }
  // scale 1 and ratio 1 on a square image: the crop is the whole image.
  auto sq = random_image(12, 12, 3, 4);
  Rng rng(5);
  EXPECT_TRUE(torch::equal(random_resized_crop(sq, 12, 12, 1.0, 1.0, 1.0, 1.0, rng), sq));
}

TEST(ImageAugment, RandAugmentOpsKeepShapeAndZeroMagnitudeIsIdentity) {
  auto rgb = random_image(16, 16, 3, 6) & 0xFE;  // no 255 pixel: Solarize at m=0 changes nothing
  auto gray = random_image(9, 11, 1, 7) & 0xFE;
  const auto& names = rand_augment_op_names();
  ASSERT_EQ(names.size(), 14u);
  for (int64_t op = 0; op < 14; ++op) {
    for (const auto& img : {rgb, gray}) {
      for (double m : {0.0, 9.0, 30.0}) {
        for (bool neg : {false, true}) {
          auto out = rand_augment_op(img, op, m, neg);
          ASSERT_EQ(out.sizes(), img.sizes()) << names[op];
          ASSERT_EQ(out.scalar_type(), torch::kUInt8) << names[op];
        }
      }
      if (names[op] != "AutoContrast" && names[op] != "Equalize") {
        EXPECT_TRUE(torch::equal(rand_augment_op(img, op, 0.0, false), img)) << names[op];
      }
    }
  }
  // AutoContrast stretches every non-constant channel to [0, 255].
  auto ac = rand_augment_op(rgb.div(2, "floor").add(20), 12, 9, false);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(ac.select(2, c).min().item<int>(), 0);
    EXPECT_EQ(ac.select(2, c).max().item<int>(), 255);
  }
  // Rotate by the largest magnitude moves pixels; translate by the full magnitude shifts them.
  EXPECT_FALSE(torch::equal(rand_augment_op(rgb, 5, 30, false), rgb));
  auto tx = rand_augment_op(rgb, 3, 30, false);  // +150/331 * 16 = 7.25 px -> 7 px to the right (nearest)
  EXPECT_TRUE(torch::equal(tx.slice(1, 7), rgb.slice(1, 0, 9)));
  EXPECT_EQ(tx.slice(1, 0, 7).max().item<int>(), 0);
}

TEST(ImageAugment, ColorJitterAndRandAugmentAreSeeded) {
  auto img = random_image(8, 8, 3, 8);
  Rng a(11), b(11);
  EXPECT_TRUE(torch::equal(rand_augment(color_jitter(img, 0.4, a), 2, 9, a), rand_augment(color_jitter(img, 0.4, b), 2, 9, b)));
  Rng c(0);
  EXPECT_TRUE(torch::equal(color_jitter(img, 0.0, c), img));
}

TEST(ImageAugment, NormaliseValues) {
  auto img = torch::zeros({2, 3, 3}, torch::kUInt8);
  img[1][2][0] = 255;
  img[0][1][2] = 51;
  auto out = normalize_image(img, {0.5, 0.25, 0.0}, {0.5, 0.25, 0.2});
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 2, 3}));
  EXPECT_NEAR(out[0][1][2].item<float>(), 1.0, 1e-6);
  EXPECT_NEAR(out[0][0][0].item<float>(), -1.0, 1e-6);
  EXPECT_NEAR(out[2][0][1].item<float>(), 1.0, 1e-6);  // 51/255 / 0.2
  EXPECT_NEAR(out[1][0][0].item<float>(), -1.0, 1e-6);
  EXPECT_THROW(normalize_image(img, {0.1, 0.2}, {0.1, 0.2}), c10::Error);
  for (const char* d : {"fashion_mnist", "mnist", "cifar10", "cifar100", "tiny_imagenet", "imagenet"}) {
    auto s = default_norm_stats(d);
    EXPECT_EQ(s.mean.size(), s.std.size()) << d;
  }
  EXPECT_THROW(default_norm_stats("svhn"), std::invalid_argument);
}

TEST(ImageAugment, RandomErasingChangesABoxOnly) {
  auto base = torch::full({3, 16, 16}, 5.0f);
  auto x = base.clone();
  Rng rng(3);
  random_erasing_(x, 1.0, rng);
  auto changed = (x != base).any(0);  // [16, 16]
  const auto n = changed.sum().item<int64_t>();
  EXPECT_GE(n, 4);
  EXPECT_LE(n, 16 * 16 / 3 + 16);
  auto rows = changed.any(1).nonzero(), cols = changed.any(0).nonzero();
  EXPECT_EQ((rows.max() - rows.min() + 1).item<int64_t>() * (cols.max() - cols.min() + 1).item<int64_t>(), n);
  auto y = base.clone();
  random_erasing_(y, 0.0, rng);
  EXPECT_TRUE(torch::equal(y, base));
}

TEST(ImageAugment, MixupAndCutmixSoftTargets) {
  torch::manual_seed(0);
  auto labels = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kInt64);
  for (uint64_t s = 0; s < 10; ++s) {
    auto x = torch::randn({6, 3, 8, 8});
    // mixup: x' = lam x + (1 - lam) flip(x), targets lam / 1 - lam on the two labels.
    auto mixed = x.clone();
    Rng rng(s);
    auto t = mix_batch_(mixed, labels, 7, 0.8, 0.0, rng);
    ASSERT_EQ(t.sizes(), (std::vector<int64_t>{6, 7}));
    EXPECT_TRUE(torch::allclose(t.sum(1), torch::ones({6}), 1e-6, 1e-6));
    const double lam = t[0][0].item<double>();
    EXPECT_TRUE(torch::allclose(mixed, x * lam + x.flip({0}) * (1 - lam), 1e-5, 1e-5));
    EXPECT_NEAR(t[0][5].item<double>(), 1 - lam, 1e-6);
    // cutmix: every pixel comes from the image or its partner; area share = target share.
    auto cut = x.clone();
    Rng rng2(s);
    auto tc = mix_batch_(cut, labels, 6, 0.0, 1.0, rng2);
    EXPECT_TRUE(torch::allclose(tc.sum(1), torch::ones({6}), 1e-6, 1e-6));
    auto from_partner = (cut == x.flip({0})) & (cut != x);  // [6, 3, 8, 8]
    EXPECT_TRUE(((cut == x) | (cut == x.flip({0}))).all().item<bool>());
    const double share = from_partner[0][0].to(torch::kFloat64).mean().item<double>();
    EXPECT_NEAR(tc[0][5].item<double>(), share, 1e-6);
  }
  auto x = torch::randn({2, 1, 2, 2});
  Rng rng(0);
  auto onehot = mix_batch_(x, torch::tensor({1, 0}, torch::kInt64), 3, 0.0, 0.0, rng);
  EXPECT_TRUE(torch::equal(onehot, torch::tensor({{0.f, 1.f, 0.f}, {1.f, 0.f, 0.f}})));
}

TEST(ImageAugment, BetaSamplerMean) {
  Rng rng(42);
  double sum = 0;
  for (int i = 0; i < 20000; ++i) sum += rng.beta(2.0, 6.0);
  EXPECT_NEAR(sum / 20000, 0.25, 0.01);
  double small = 0;
  for (int i = 0; i < 20000; ++i) small += rng.beta(0.2, 0.2);
  EXPECT_NEAR(small / 20000, 0.5, 0.02);
}

TEST(ImageAugment, TransformTrainAndEval) {
  AugmentOptions aug;
  aug.crop_padding(2).hflip(true).randaugment_n(2).randaugment_m(9).color_jitter(0.3).random_erasing(0.5);
  ImageTransform train(aug, 0, {0.5}, {0.5}, true);
  ImageTransform eval(aug, 12, {0.5}, {0.5}, false);
  auto img = random_image(10, 10, 3, 9);
  Rng a(1), b(1);
  auto ta = train(img, a);
  EXPECT_EQ(ta.sizes(), (std::vector<int64_t>{3, 10, 10}));
  EXPECT_TRUE(torch::equal(ta, train(img, b)));
  Rng c(2);
  auto te = eval(img, c);
  EXPECT_EQ(te.sizes(), (std::vector<int64_t>{3, 12, 12}));
  Rng d(3);
  EXPECT_TRUE(torch::equal(te, eval(img, d)));  // eval is not random
}

}  // namespace
}  // namespace ewa::datasets::image
