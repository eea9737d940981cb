// Image-classification datasets: an abstract indexable set of (uint8 image, label) samples,
// an in-memory tensor dataset (IDX, CIFAR), a lazily decoded file list (folders,
// Tiny-ImageNet) with an optional cache, index subsets and seeded train/val splits.
#pragma once

#include <torch/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ewa::datasets::image {

/// One decoded sample.
struct ImageSample {
  torch::Tensor image;  ///< uint8 [H, W, C], contiguous
  int64_t label = 0;    ///< class index in [0, num_classes)
};

/// What to do with an unreadable or corrupt image file (YAML data.on_bad_image).
enum class BadImagePolicy { kFail, kSkip };

/// Parses "fail" / "skip"; throws naming the value otherwise.
BadImagePolicy parse_bad_image_policy(const std::string& name);

/// Indexable, thread-safe (get() may be called from many threads) image dataset.
class ImageDataset {
 public:
  virtual ~ImageDataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t num_classes() const { return static_cast<int64_t>(class_names().size()); }
  virtual const std::vector<std::string>& class_names() const = 0;
  /// Channels of every image (1 or 3).
  virtual int64_t channels() const = 0;
  /// Sample i (0 <= i < size()): image uint8 [H, W, C].
  virtual ImageSample get(int64_t i) const = 0;
  /// Label of sample i without decoding its image.
  virtual int64_t label(int64_t i) const = 0;
  /// A short description for logs ("cifar10 train (50000 images) at /data/cifar").
  virtual std::string describe() const = 0;
  /// Number of files found unreadable so far (skip policy), and their paths.
  virtual int64_t bad_count() const { return 0; }
  virtual std::vector<std::string> bad_paths() const { return {}; }
};

using ImageDatasetPtr = std::shared_ptr<const ImageDataset>;

/// All images in memory: uint8 [N, H, W, C] + int64 labels [N] (IDX, CIFAR).
class TensorImageDataset : public ImageDataset {
 public:
  /// `images`: uint8 [N, H, W, C]; `labels`: int64 [N] with values in [0, class_names.size()).
  TensorImageDataset(torch::Tensor images, torch::Tensor labels, std::vector<std::string> class_names,
                     std::string description);
  int64_t size() const override { return images_.size(0); }
  const std::vector<std::string>& class_names() const override { return names_; }
  int64_t channels() const override { return images_.size(3); }
  ImageSample get(int64_t i) const override;
  int64_t label(int64_t i) const override;
  std::string describe() const override { return description_; }
  /// uint8 [N, H, W, C].
  const torch::Tensor& images() const { return images_; }
  /// int64 [N].
  const torch::Tensor& labels() const { return labels_; }

 private:
  torch::Tensor images_, labels_;
  const int64_t* label_ptr_ = nullptr;
  std::vector<std::string> names_;
  std::string description_;
};

/// Options of a file-backed dataset.
struct FileDatasetOptions {
  int64_t channels = 3;                            ///< decode as 1 (gray) or 3 (RGB)
  bool cache = true;                               ///< keep decoded images in memory
  BadImagePolicy on_bad_image = BadImagePolicy::kFail;
  bool preload = false;  ///< decode everything at construction (parallel), dropping bad files (skip)
};

/// Image files decoded lazily (OpenCV), optionally cached. With the skip policy a file that
/// fails to decode is recorded (bad_paths()) and get() returns the next decodable sample
/// (deterministically), so sizes and loader order stay fixed.
class FileImageDataset : public ImageDataset {
 public:
  FileImageDataset(std::vector<std::string> paths, std::vector<int64_t> labels,
                   std::vector<std::string> class_names, FileDatasetOptions options, std::string description);
  int64_t size() const override { return static_cast<int64_t>(paths_.size()); }
  const std::vector<std::string>& class_names() const override { return names_; }
  int64_t channels() const override { return options_.channels; }
  ImageSample get(int64_t i) const override;
  int64_t label(int64_t i) const override;
  std::string describe() const override { return description_; }
  int64_t bad_count() const override;
  std::vector<std::string> bad_paths() const override;
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  /// Decoded image i or an undefined tensor when it is bad (skip policy).
  torch::Tensor load(int64_t i) const;

  std::vector<std::string> paths_;
  std::vector<int64_t> labels_;
  std::vector<std::string> names_;
  FileDatasetOptions options_;
  std::string description_;
  mutable std::vector<torch::Tensor> cache_;
  mutable std::unique_ptr<std::atomic<uint8_t>[]> state_;  ///< 0 unknown, 1 cached, 2 bad
  mutable std::mutex mutex_;
  mutable std::vector<std::string> bad_;
};

/// A view of `base` restricted to `indices` (order kept).
class SubsetImageDataset : public ImageDataset {
 public:
  SubsetImageDataset(ImageDatasetPtr base, std::vector<int64_t> indices, std::string description = "");
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  const std::vector<std::string>& class_names() const override { return base_->class_names(); }
  int64_t num_classes() const override { return base_->num_classes(); }
  int64_t channels() const override { return base_->channels(); }
  ImageSample get(int64_t i) const override;
  int64_t label(int64_t i) const override;
  std::string describe() const override { return description_; }
  int64_t bad_count() const override { return base_->bad_count(); }
  std::vector<std::string> bad_paths() const override { return base_->bad_paths(); }
  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  ImageDatasetPtr base_;
  std::vector<int64_t> indices_;
  std::string description_;
};

/// A seeded permutation of 0..n-1 (same result on every platform: own 64-bit generator).
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

/// Seeded train/val split: a `val_fraction` share (rounded, at least 1 when > 0) of `ds`
/// goes to val, the rest to train; both keep ascending index order. val_fraction in [0, 1).
std::pair<ImageDatasetPtr, ImageDatasetPtr> split_train_val(const ImageDatasetPtr& ds, double val_fraction,
                                                            uint64_t seed);

/// A seeded subset of `limit` samples (ascending index order); `ds` itself when limit <= 0
/// or limit >= size.
ImageDatasetPtr random_subset(const ImageDatasetPtr& ds, int64_t limit, uint64_t seed);

}  // namespace ewa::datasets::image
