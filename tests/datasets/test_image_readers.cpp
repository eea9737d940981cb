// Image dataset readers on fixtures written here (CIFAR-10/100, IDX plain/gz, image folder,
// Tiny-ImageNet) and on the real data when present (Fashion-MNIST package, ../shared/data).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "ewa/datasets/image/augment.h"
#include "ewa/datasets/image/image_io.h"
#include "ewa/datasets/image/readers.h"
#include "test_image_fixtures.h"
#include "test_util.h"

namespace ewa::datasets::image {
namespace {

using ewa::test::TempDir;
using ewa::test::write_file;
using ::testing::HasSubstr;
namespace fx = ewa::test::image_fixtures;
namespace fs = std::filesystem;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

void expect_pixels(const torch::Tensor& img, int64_t id, int64_t channels) {
  auto a = img.accessor<uint8_t, 3>();
  for (int64_t y = 0; y < img.size(0); ++y) {
    for (int64_t x = 0; x < img.size(1); ++x) {
      for (int64_t c = 0; c < channels; ++c) ASSERT_EQ(a[y][x][c], fx::pixel(id, c, y, x)) << id << " " << y << " " << x;
    }
  }
}

TEST(ImageReaders, Cifar10RecordsAndNames) {
  TempDir tmp;
  for (int b = 1; b <= 5; ++b) write_file(tmp.path() / ("data_batch_" + std::to_string(b) + ".bin"), fx::cifar_records((b - 1) * 3, 3, 1, {10}));
  write_file(tmp.path() / "test_batch.bin", fx::cifar_records(100, 4, 1, {10}));
  auto train = read_cifar10(tmp.str(), true);
  ASSERT_EQ(train->size(), 15);
  EXPECT_EQ(train->class_names(), cifar10_class_names());
  for (int64_t i = 0; i < 15; ++i) {
    auto s = train->get(i);
    ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{32, 32, 3}));
    EXPECT_EQ(s.label, i % 10);
    expect_pixels(s.image, i, 3);
  }
  // batches.meta.txt overrides the names.
  std::string meta;
  for (int k = 0; k < 10; ++k) meta += "c" + std::to_string(k) + "\n";
  write_file(tmp.path() / "batches.meta.txt", meta + "\n");
  auto test = read_cifar10(tmp.str(), false);
  ASSERT_EQ(test->size(), 4);
  EXPECT_EQ(test->class_names()[3], "c3");
  EXPECT_EQ(test->get(2).label, 102 % 10);
  expect_pixels(test->get(2).image, 102, 3);
}

TEST(ImageReaders, Cifar100FineAndCoarse) {
  TempDir tmp;
  write_file(tmp.path() / "train.bin", fx::cifar_records(0, 6, 2, {20, 100}));
  write_file(tmp.path() / "test.bin", fx::cifar_records(50, 2, 2, {20, 100}));
  torch::Tensor coarse;
  auto fine = read_cifar100(tmp.str(), true, "fine", &coarse);
  ASSERT_EQ(fine->size(), 6);
  EXPECT_EQ(fine->num_classes(), 100);
  EXPECT_EQ(fine->class_names()[0], "apple");
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(fine->label(i), (i + 1) % 100);  // byte 1 = fine
    EXPECT_EQ(coarse[i].item<int64_t>(), i % 20);
    expect_pixels(fine->get(i).image, i, 3);
  }
  std::string names;
  for (int k = 0; k < 20; ++k) names += "super" + std::to_string(k) + "\n";
  write_file(tmp.path() / "coarse_label_names.txt", names);
  auto c = read_cifar100(tmp.str(), false, "coarse");
  EXPECT_EQ(c->num_classes(), 20);
  EXPECT_EQ(c->class_names()[19], "super19");
  EXPECT_EQ(c->label(1), 51 % 20);
  EXPECT_THAT(error_of([&] { read_cifar100(tmp.str(), true, "medium"); }), HasSubstr("fine or coarse"));
}

TEST(ImageReaders, CifarTruncatedAndMissingFilesNamePath) {
  TempDir tmp;
  write_file(tmp.path() / "test_batch.bin", fx::cifar_records(0, 2, 1, {10}).substr(0, 3073 + 100));
  auto msg = error_of([&] { read_cifar10(tmp.str(), false); });
  EXPECT_THAT(msg, HasSubstr("test_batch.bin"));
  EXPECT_THAT(msg, HasSubstr("3073"));
  EXPECT_THAT(error_of([&] { read_cifar10(tmp.str(), true); }), HasSubstr("data_batch_1.bin"));
  // CIFAR-10 records read as CIFAR-100: 2 * 3073 is not a multiple of 3074.
  write_file(tmp.path() / "train.bin", fx::cifar_records(0, 2, 1, {10}));
  EXPECT_THAT(error_of([&] { read_cifar100(tmp.str(), true); }), HasSubstr("3074"));
}

TEST(ImageReaders, IdxPlainAndGzip) {
  TempDir tmp;
  write_file(tmp.path() / "plain" / "train-images-idx3-ubyte", fx::idx_images(7, 5, 4));
  write_file(tmp.path() / "plain" / "train-labels-idx1-ubyte", fx::idx_labels(7, 10));
  fx::write_gz(tmp.path() / "gz" / "train-images-idx3-ubyte.gz", fx::idx_images(7, 5, 4));
  fx::write_gz(tmp.path() / "gz" / "train-labels-idx1-ubyte.gz", fx::idx_labels(7, 10));
  for (const char* sub : {"plain", "gz"}) {
    auto ds = read_mnist_folder(tmp.str(sub), true, mnist_class_names());
    ASSERT_EQ(ds->size(), 7) << sub;
    EXPECT_EQ(ds->channels(), 1);
    for (int64_t i = 0; i < 7; ++i) {
      auto s = ds->get(i);
      ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{5, 4, 1}));
      EXPECT_EQ(s.label, i % 10);
      expect_pixels(s.image, i, 1);
    }
  }
  // Fashion-MNIST reader with an explicit root and its class names.
  auto f = read_fashion_mnist(tmp.str("gz"), true);
  EXPECT_EQ(f->class_names()[9], "Ankle boot");
}

TEST(ImageReaders, IdxErrorsNameThePath) {
  TempDir tmp;
  write_file(tmp.path() / "wrong_magic", fx::idx_images(2, 3, 3, 0x00000804));
  EXPECT_THAT(error_of([&] { read_idx_images(tmp.str("wrong_magic")); }),
              testing::AllOf(HasSubstr("wrong_magic"), HasSubstr("0x00000804"), HasSubstr("0x00000803")));
  write_file(tmp.path() / "labels_as_images", fx::idx_labels(3, 10));
  EXPECT_THAT(error_of([&] { read_idx_images(tmp.str("labels_as_images")); }), HasSubstr("label file"));
  write_file(tmp.path() / "trunc", fx::idx_images(4, 3, 3).substr(0, 16 + 20));
  EXPECT_THAT(error_of([&] { read_idx_images(tmp.str("trunc")); }), testing::AllOf(HasSubstr("trunc"), HasSubstr("truncated")));
  fx::write_gz(tmp.path() / "trunc_labels.gz", fx::idx_labels(10, 10).substr(0, 12));
  EXPECT_THAT(error_of([&] { read_idx_labels(tmp.str("trunc_labels.gz")); }), HasSubstr("truncated"));
  write_file(tmp.path() / "tiny", "abc");
  EXPECT_THAT(error_of([&] { read_idx_labels(tmp.str("tiny")); }), HasSubstr("no header"));
  // A gzip file cut in the middle of its stream.
  fx::write_gz(tmp.path() / "full.gz", fx::idx_images(50, 10, 10));
  auto gz = ewa::test::read_file(tmp.path() / "full.gz");
  write_file(tmp.path() / "cut.gz", gz.substr(0, gz.size() / 2));
  EXPECT_THAT(error_of([&] { read_idx_images(tmp.str("cut.gz")); }), HasSubstr("cut.gz"));
  // Image/label count mismatch.
  write_file(tmp.path() / "m" / "t10k-images-idx3-ubyte", fx::idx_images(3, 2, 2));
  write_file(tmp.path() / "m" / "t10k-labels-idx1-ubyte", fx::idx_labels(4, 10));
  EXPECT_THAT(error_of([&] { read_mnist_folder(tmp.str("m"), false, mnist_class_names()); }),
              testing::AllOf(HasSubstr("3 images"), HasSubstr("4 labels")));
  EXPECT_THAT(error_of([&] { read_mnist_folder(tmp.str("m"), true, mnist_class_names()); }), HasSubstr("train-images"));
}

TEST(ImageReaders, SplitAndSubsetAreSeededAndDisjoint) {
  auto base = std::make_shared<TensorImageDataset>(torch::zeros({100, 2, 2, 1}, torch::kUInt8),
                                                   torch::arange(100) % 10, mnist_class_names(), "t");
  auto [tr, va] = split_train_val(base, 0.2, 7);
  EXPECT_EQ(tr->size(), 80);
  EXPECT_EQ(va->size(), 20);
  auto idx = [](const ImageDatasetPtr& d) -> const std::vector<int64_t>& {
    return dynamic_cast<const SubsetImageDataset&>(*d).indices();
  };
  std::set<int64_t> all(idx(tr).begin(), idx(tr).end());
  for (int64_t i : idx(va)) EXPECT_TRUE(all.insert(i).second) << i;
  EXPECT_EQ(all.size(), 100u);
  auto [tr2, va2] = split_train_val(base, 0.2, 7);
  EXPECT_EQ(idx(va2), idx(va));
  auto [tr3, va3] = split_train_val(base, 0.2, 8);
  EXPECT_NE(idx(va3), idx(va));
  auto sub = random_subset(tr, 10, 3);
  EXPECT_EQ(sub->size(), 10);
  EXPECT_EQ(random_subset(tr, 0, 3), tr);
  EXPECT_EQ(sub->label(0), base->label(idx(tr)[idx(sub)[0]]));
}

class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_opencv()) GTEST_SKIP() << "built without OpenCV";
  }
};

TEST_F(ImageFolderTest, FolderLazyDecodeAndCache) {
  TempDir tmp;
  const std::vector<std::string> classes = {"bird", "cat", "dog"};
  int64_t id = 0;
  for (auto& c : classes) {
    for (int k = 0; k < 2 + (c == "cat"); ++k) write_image(tmp.str(c + "/img" + std::to_string(k) + ".png"), fx::make_rgb(id++, 6, 5));
  }
  write_file(tmp.path() / "cat" / "notes.txt", "not an image");
  for (bool cache : {false, true}) {
    FileDatasetOptions o;
    o.cache = cache;
    auto ds = read_image_folder(tmp.str(), o);
    ASSERT_EQ(ds->size(), 7);
    EXPECT_EQ(ds->class_names(), classes);
    EXPECT_EQ(ds->label(2), 1);
    auto s = ds->get(3);
    EXPECT_EQ(s.label, 1);
    expect_pixels(s.image, 3, 3);  // PNG is lossless, RGB order kept
    EXPECT_TRUE(torch::equal(ds->get(3).image, s.image));
  }
  FileDatasetOptions gray;
  gray.channels = 1;
  EXPECT_EQ(read_image_folder(tmp.str(), gray)->get(0).image.size(2), 1);
}

TEST_F(ImageFolderTest, EmptyClassFolderAndMissingRoot) {
  TempDir tmp;
  write_image(tmp.str("a/x.png"), fx::make_rgb(0, 4, 4));
  fs::create_directories(tmp.path() / "b");
  write_file(tmp.path() / "b" / "readme.txt", "x");
  auto msg = error_of([&] { read_image_folder(tmp.str(), {}); });
  EXPECT_THAT(msg, testing::AllOf(HasSubstr((tmp.path() / "b").string()), HasSubstr("no image")));
  EXPECT_THAT(error_of([&] { read_image_folder(tmp.str("nope"), {}); }), HasSubstr("nope"));
  TempDir empty;
  EXPECT_THAT(error_of([&] { read_image_folder(empty.str(), {}); }), HasSubstr("no class sub-folder"));
}

TEST_F(ImageFolderTest, CorruptImageFailOrSkip) {
  TempDir tmp;
  write_image(tmp.str("a/0.png"), fx::make_rgb(0, 4, 4));
  write_file(tmp.path() / "a" / "1.png", "this is not a png");
  write_image(tmp.str("b/2.png"), fx::make_rgb(2, 4, 4));
  FileDatasetOptions fail;
  auto ds = read_image_folder(tmp.str(), fail);
  EXPECT_THAT(error_of([&] { ds->get(1); }), testing::AllOf(HasSubstr("1.png"), HasSubstr("on_bad_image")));
  FileDatasetOptions skip;
  skip.on_bad_image = BadImagePolicy::kSkip;
  auto sk = read_image_folder(tmp.str(), skip);
  auto s = sk->get(1);  // replaced by the next good sample
  expect_pixels(s.image, 2, 3);
  EXPECT_EQ(s.label, 1);
  EXPECT_EQ(sk->bad_count(), 1);
  EXPECT_THAT(sk->bad_paths()[0], HasSubstr("1.png"));
  // preload drops the bad file up front (skip) or fails at open (fail).
  skip.preload = true;
  auto pre = read_image_folder(tmp.str(), skip);
  EXPECT_EQ(pre->size(), 2);
  EXPECT_EQ(pre->bad_count(), 1);
  fail.preload = true;
  EXPECT_THAT(error_of([&] { read_image_folder(tmp.str(), fail); }), HasSubstr("1.png"));
}

TEST_F(ImageFolderTest, TinyImageNetLayoutAndFactory) {
  TempDir tmp;
  const fs::path r = tmp.path() / "tiny";
  write_file(r / "wnids.txt", "n002\nn001\n");
  write_file(r / "words.txt", "n000\tother thing\nn001\tgoldfish, Carassius auratus\nn002\tsalamander\n");
  int64_t id = 0;
  for (std::string w : {"n002", "n001"}) {
    for (int k = 0; k < 3; ++k) write_image((r / "train" / w / "images" / (w + "_" + std::to_string(k) + ".JPEG")).string(), fx::make_rgb(id++, 8, 8));
    write_file(r / "train" / w / (w + "_boxes.txt"), "");
  }
  write_image((r / "val" / "images" / "val_0.JPEG").string(), fx::make_rgb(10, 8, 8));
  write_image((r / "val" / "images" / "val_1.JPEG").string(), fx::make_rgb(11, 8, 8));
  write_file(r / "val" / "val_annotations.txt", "val_0.JPEG\tn001\t0\t0\t7\t7\nval_1.JPEG\tn002\t1\t1\t6\t6\n");
  auto train = read_tiny_imagenet(r.string(), "train", {});
  EXPECT_EQ(train->size(), 6);
  EXPECT_EQ(train->class_names(), (std::vector<std::string>{"salamander", "goldfish"}));
  EXPECT_EQ(train->label(4), 1);
  auto val = read_tiny_imagenet(r.string(), "val", {});
  ASSERT_EQ(val->size(), 2);
  EXPECT_EQ(val->label(0), 1);
  EXPECT_EQ(val->label(1), 0);
  EXPECT_EQ(val->get(1).image.sizes(), (std::vector<int64_t>{8, 8, 3}));
  EXPECT_THAT(error_of([&] { read_tiny_imagenet(r.string(), "test", {}); }), HasSubstr("no labels"));
  write_file(r / "val" / "val_annotations.txt", "val_0.JPEG\tn999\n");
  EXPECT_THAT(error_of([&] { read_tiny_imagenet(r.string(), "val", {}); }), HasSubstr("n999"));

  ImageDataSpec spec;
  spec.dataset = "tiny_imagenet";
  spec.root = r.string();
  spec.val_fraction = 0.5;
  spec.train_limit = 2;
  spec.seed = 3;
  auto splits = load_image_splits(spec);
  EXPECT_EQ(splits.eval_name, "val_fraction");
  EXPECT_EQ(splits.eval->size(), 3);
  EXPECT_EQ(splits.train->size(), 2);
  spec.dataset = "cifar10";
  spec.root = "";
  EXPECT_THAT(error_of([&] { load_image_splits(spec); }), HasSubstr("data.root"));
  spec.dataset = "svhn";
  EXPECT_THAT(error_of([&] { load_image_splits(spec); }), HasSubstr("known: fashion_mnist"));
}

TEST(ImageRealData, FashionMnistPackage) {
  if (!fs::exists(std::string(kFashionMnistDefaultRoot) + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }
  ImageDataSpec spec;  // fashion_mnist at its default location
  auto s = load_image_splits(spec);
  ASSERT_EQ(s.train->size(), 60000);
  ASSERT_EQ(s.eval->size(), 10000);
  EXPECT_EQ(s.eval_name, "test");
  EXPECT_EQ(s.train->num_classes(), 10);
  auto& t = dynamic_cast<const TensorImageDataset&>(*s.train);
  EXPECT_EQ(t.images().sizes(), (std::vector<int64_t>{60000, 28, 28, 1}));
  EXPECT_TRUE(torch::equal(torch::bincount(t.labels()), torch::full({10}, 6000, torch::kInt64)));
  auto& e = dynamic_cast<const TensorImageDataset&>(*s.eval);
  EXPECT_TRUE(torch::equal(torch::bincount(e.labels()), torch::full({10}, 1000, torch::kInt64)));
  const double mean = t.images().to(torch::kFloat64).mean().item<double>() / 255.0;
  EXPECT_NEAR(mean, default_norm_stats("fashion_mnist").mean[0], 0.01);
}

/// Extracts `members` (tar wildcards) of ../shared/data/`archive` into `dest`.
bool extract(const std::string& shared, const std::string& archive, const std::string& dest, const std::string& members) {
  const std::string cmd = "tar xzf '" + shared + "/" + archive + "' -C '" + dest + "' --wildcards " + members;
  return std::system(cmd.c_str()) == 0;
}

TEST(ImageRealData, TinyImageNet10Class) {
  EWA_REQUIRE_SHARED_DATA(shared);
  if (!have_opencv()) GTEST_SKIP() << "built without OpenCV";
  TempDir tmp;
  ASSERT_TRUE(extract(shared, "tiny-imagenet-200-10class.tar.gz", tmp.str(), "'tiny-imagenet-200/*'"));
  ImageDataSpec spec;
  spec.dataset = "tiny_imagenet";
  spec.root = tmp.str("tiny-imagenet-200");
  spec.cache = false;
  auto s = load_image_splits(spec);
  EXPECT_EQ(s.train->size(), 5000);
  EXPECT_EQ(s.eval->size(), 100);
  EXPECT_EQ(s.train->num_classes(), 10);
  EXPECT_EQ(s.eval_name, "val");
  for (int64_t i : {0, 2500, 4999}) EXPECT_EQ(s.train->get(i).image.sizes(), (std::vector<int64_t>{64, 64, 3}));
  EXPECT_TRUE(torch::equal(torch::bincount(torch::tensor([&] {
    std::vector<int64_t> l;
    for (int64_t i = 0; i < s.eval->size(); ++i) l.push_back(s.eval->label(i));
    return l;
  }())), torch::full({10}, 10, torch::kInt64)));
}

TEST(ImageRealData, Cifar10JpegFolderSubset) {
  EWA_REQUIRE_SHARED_DATA(shared);
  if (!have_opencv()) GTEST_SKIP() << "built without OpenCV";
  TempDir tmp;
  ASSERT_TRUE(extract(shared, "cifar10-train-jpeg.tar.gz", tmp.str(),
                      "'cifar10-jpeg/train/cat/00[0-4]*' 'cifar10-jpeg/train/ship/00[0-4]*'"));
  auto ds = read_image_folder(tmp.str("cifar10-jpeg/train"), {});
  ASSERT_EQ(ds->size(), 100);
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"cat", "ship"}));
  for (int64_t i = 0; i < ds->size(); i += 7) {
    auto s = ds->get(i);
    EXPECT_EQ(s.image.sizes(), (std::vector<int64_t>{32, 32, 3}));
    EXPECT_GT(s.image.to(torch::kFloat32).std().item<float>(), 1.0f);  // real content, not blank
  }
}

}  // namespace
}  // namespace ewa::datasets::image
