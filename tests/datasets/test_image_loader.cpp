// ImageLoader: identical batches for any worker count, exact resume from a batch index,
// epoch coverage, drop_last / shuffle, soft targets, and worker errors reaching the caller.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ewa/datasets/image/image_io.h"
#include "ewa/datasets/image/loader.h"
#include "ewa/datasets/image/readers.h"
#include "test_util.h"

namespace ewa::datasets::image {
namespace {

ImageDatasetPtr toy_dataset(int64_t n = 37) {
  torch::manual_seed(1);
  auto images = torch::randint(0, 256, {n, 12, 12, 3}, torch::kInt64).to(torch::kUInt8);
  return std::make_shared<TensorImageDataset>(images, torch::arange(n) % 5,
                                              std::vector<std::string>{"a", "b", "c", "d", "e"}, "toy");
}

ImageLoaderOptions full_recipe(int64_t workers) {
  AugmentOptions aug;
  aug.crop_padding(2).hflip(true).randaugment_n(2).randaugment_m(9).color_jitter(0.4).random_erasing(0.25);
  aug.mixup_alpha(0.8).cutmix_alpha(1.0);
  return ImageLoaderOptions().batch_size(8).seed(5).workers(workers).prefetch(3).dataset("cifar10").augment(aug);
}

std::vector<ImageBatch> drain(ImageLoader& l) {
  std::vector<ImageBatch> out;
  while (auto b = l.next()) out.push_back(std::move(*b));
  return out;
}

void expect_same(const ImageBatch& a, const ImageBatch& b) {
  EXPECT_EQ(a.batch_index, b.batch_index);
  EXPECT_TRUE(torch::equal(a.indices, b.indices));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_TRUE(torch::equal(a.soft_targets, b.soft_targets));
}

TEST(ImageLoader, SameBatchesForAnyWorkerCount) {
  auto ds = toy_dataset();
  ImageLoader one(ds, full_recipe(1)), three(ds, full_recipe(3));
  EXPECT_EQ(three.workers(), 3);
  for (int64_t epoch : {0, 1}) {
    one.set_epoch(epoch);
    three.set_epoch(epoch);
    auto a = drain(one), b = drain(three);
    ASSERT_EQ(a.size(), 5u);
    ASSERT_EQ(b.size(), 5u);
    for (size_t i = 0; i < a.size(); ++i) expect_same(a[i], b[i]);
    expect_same(a[2], one.make_batch(epoch, 2));
  }
}

TEST(ImageLoader, EpochCoversEveryImageOnceAndShapes) {
  auto ds = toy_dataset();
  ImageLoader l(ds, full_recipe(2));
  EXPECT_EQ(l.num_batches(), 5);
  auto e0 = drain(l);
  std::vector<int64_t> seen;
  for (auto& b : e0) {
    EXPECT_EQ(b.images.dim(), 4);
    EXPECT_EQ(b.images.size(1), 3);
    EXPECT_EQ(b.images.size(2), 12);
    EXPECT_EQ(b.images.scalar_type(), torch::kFloat32);
    EXPECT_EQ(b.soft_targets.size(1), 5);
    EXPECT_TRUE(torch::allclose(b.soft_targets.sum(1), torch::ones({b.labels.size(0)}), 1e-5, 1e-5));
    for (int64_t i = 0; i < b.indices.size(0); ++i) {
      seen.push_back(b.indices[i].item<int64_t>());
      EXPECT_EQ(b.labels[i].item<int64_t>(), ds->label(seen.back()));
    }
  }
  EXPECT_EQ(e0.back().labels.size(0), 37 - 32);
  std::sort(seen.begin(), seen.end());
  for (int64_t i = 0; i < 37; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_FALSE(l.next().has_value());
  // Another epoch: another order and other augmentations.
  l.set_epoch(1);
  auto e1 = drain(l);
  EXPECT_FALSE(torch::equal(e0[0].indices, e1[0].indices));
  EXPECT_NE(l.epoch_order(0), l.epoch_order(1));
}

TEST(ImageLoader, ResumeFromBatchIndexIsExact) {
  auto ds = toy_dataset();
  ImageLoader a(ds, full_recipe(2));
  a.set_epoch(3);
  auto full = drain(a);
  ImageLoader b(ds, full_recipe(1));
  b.next();  // some work in flight for epoch 0, dropped by set_epoch
  b.set_epoch(3, 2);
  EXPECT_EQ(b.position(), 2);
  auto rest = drain(b);
  ASSERT_EQ(rest.size(), 3u);
  for (size_t i = 0; i < rest.size(); ++i) expect_same(rest[i], full[i + 2]);
  b.set_epoch(3, b.num_batches());
  EXPECT_FALSE(b.next().has_value());
  EXPECT_THROW(b.set_epoch(3, 6), c10::Error);
}

TEST(ImageLoader, DropLastNoShuffleEval) {
  auto ds = toy_dataset();
  auto o = ImageLoaderOptions().batch_size(8).shuffle(false).drop_last(true).train(false).workers(2).image_size(6)
               .mean({0.5}).std({0.25});
  ImageLoader l(ds, o);
  EXPECT_EQ(l.num_batches(), 4);
  auto batches = drain(l);
  ASSERT_EQ(batches.size(), 4u);
  for (int64_t b = 0; b < 4; ++b) {
    EXPECT_TRUE(torch::equal(batches[b].indices, torch::arange(b * 8, b * 8 + 8)));
    EXPECT_FALSE(batches[b].soft_targets.defined());
    EXPECT_EQ(batches[b].images.sizes(), (std::vector<int64_t>{8, 3, 6, 6}));
  }
  // Eval without resizing: exactly (x / 255 - mean) / std, the same every epoch.
  ImageLoader raw(ds, ImageLoaderOptions().batch_size(4).shuffle(false).train(false).mean({0.5}).std({0.25}));
  auto b0 = raw.next();
  auto expect = (dynamic_cast<const TensorImageDataset&>(*ds).images().slice(0, 0, 4).permute({0, 3, 1, 2})
                     .to(torch::kFloat32) / 255 - 0.5) / 0.25;
  EXPECT_TRUE(torch::allclose(b0->images, expect, 1e-5, 1e-5));
  ImageLoaderOptions bad;
  bad.batch_size(100).drop_last(true);
  EXPECT_THROW(ImageLoader(ds, bad), c10::Error);
}

TEST(ImageLoader, WorkerErrorReachesCallerWithPath) {
  if (!have_opencv()) GTEST_SKIP() << "built without OpenCV";
  ewa::test::TempDir tmp;
  write_image(tmp.str("a/0.png"), torch::full({4, 4, 3}, 10, torch::kUInt8));
  ewa::test::write_file(tmp.path() / "a" / "1.png", "garbage");
  write_image(tmp.str("b/2.png"), torch::full({4, 4, 3}, 200, torch::kUInt8));
  auto o = ImageLoaderOptions().batch_size(1).shuffle(false).workers(2).dataset("image_folder");
  ImageLoader l(read_image_folder(tmp.str(), {}), o);
  EXPECT_TRUE(l.next().has_value());
  try {
    l.next();
    FAIL() << "expected an error for the corrupt image";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("1.png"));
  }
  EXPECT_TRUE(l.next().has_value());  // the loader continues after the error
  FileDatasetOptions skip;
  skip.on_bad_image = BadImagePolicy::kSkip;
  auto ds = read_image_folder(tmp.str(), skip);
  ImageLoader ls(ds, o);
  int n = 0;
  while (ls.next()) ++n;
  EXPECT_EQ(n, 3);
  EXPECT_EQ(ds->bad_count(), 1);
}

}  // namespace
}  // namespace ewa::datasets::image
