// ImageDataset implementations: in-memory tensors, lazily decoded files with a thread-safe
// cache and bad-file policy, index subsets, seeded splits.
#include "ewa/datasets/image/image_dataset.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "ewa/datasets/image/augment.h"
#include "ewa/datasets/image/image_io.h"

namespace ewa::datasets::image {

BadImagePolicy parse_bad_image_policy(const std::string& name) {
  if (name == "fail") return BadImagePolicy::kFail;
  if (name == "skip") return BadImagePolicy::kSkip;
  throw std::invalid_argument("on_bad_image: expected fail or skip, got '" + name + "'");
}

// ---------------------------------------------------------------- TensorImageDataset

TensorImageDataset::TensorImageDataset(torch::Tensor images, torch::Tensor labels,
                                       std::vector<std::string> class_names, std::string description)
    : images_(std::move(images)), labels_(std::move(labels)), names_(std::move(class_names)),
      description_(std::move(description)) {
  TORCH_CHECK(images_.dim() == 4 && images_.scalar_type() == torch::kUInt8, description_,
              ": images must be uint8 [N, H, W, C], got ", images_.scalar_type(), " ", images_.sizes());
  TORCH_CHECK(images_.size(3) == 1 || images_.size(3) == 3, description_, ": channels must be 1 or 3");
  labels_ = labels_.to(torch::kInt64).contiguous();
  images_ = images_.contiguous();
  TORCH_CHECK(labels_.dim() == 1 && labels_.size(0) == images_.size(0), description_, ": ", images_.size(0),
              " images but ", labels_.numel(), " labels");
  TORCH_CHECK(!names_.empty(), description_, ": no class names");
  if (labels_.numel() > 0) {
    const int64_t lo = labels_.min().item<int64_t>(), hi = labels_.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < static_cast<int64_t>(names_.size()), description_, ": label ", (lo < 0 ? lo : hi),
                " outside [0, ", names_.size(), ")");
  }
  label_ptr_ = labels_.data_ptr<int64_t>();
}

ImageSample TensorImageDataset::get(int64_t i) const {
  TORCH_CHECK(i >= 0 && i < size(), description_, ": index ", i, " out of range [0, ", size(), ")");
  return {images_[i], label_ptr_[i]};
}

int64_t TensorImageDataset::label(int64_t i) const {
  TORCH_CHECK(i >= 0 && i < size(), description_, ": index ", i, " out of range [0, ", size(), ")");
  return label_ptr_[i];
}

// ---------------------------------------------------------------- FileImageDataset

FileImageDataset::FileImageDataset(std::vector<std::string> paths, std::vector<int64_t> labels,
                                   std::vector<std::string> class_names, FileDatasetOptions options,
                                   std::string description)
    : paths_(std::move(paths)), labels_(std::move(labels)), names_(std::move(class_names)), options_(options),
      description_(std::move(description)) {
  TORCH_CHECK(paths_.size() == labels_.size(), description_, ": ", paths_.size(), " files but ", labels_.size(),
              " labels");
  TORCH_CHECK(options_.channels == 1 || options_.channels == 3, description_, ": channels must be 1 or 3");
  if (!paths_.empty() && !have_opencv()) decode_image(paths_[0], options_.channels);  // throws the clear error
  for (size_t i = 0; i < labels_.size(); ++i) {
    TORCH_CHECK(labels_[i] >= 0 && labels_[i] < static_cast<int64_t>(names_.size()), paths_[i], ": label ",
                labels_[i], " outside [0, ", names_.size(), ")");
  }
  if (options_.preload) {
    // Decode everything once (in parallel), keep the good files only.
    std::vector<torch::Tensor> decoded(paths_.size());
    std::vector<std::string> errors(paths_.size());
    at::parallel_for(0, static_cast<int64_t>(paths_.size()), 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        try {
          decoded[i] = decode_image(paths_[i], options_.channels);
        } catch (const std::exception& ex) {
          errors[i] = ex.what();
        }
      }
    });
    std::vector<std::string> keep_paths;
    std::vector<int64_t> keep_labels;
    for (size_t i = 0; i < paths_.size(); ++i) {
      if (!decoded[i].defined()) {
        if (options_.on_bad_image == BadImagePolicy::kFail) throw std::runtime_error(errors[i]);
        bad_.push_back(paths_[i]);
        continue;
      }
      keep_paths.push_back(paths_[i]);
      keep_labels.push_back(labels_[i]);
      if (options_.cache) cache_.push_back(std::move(decoded[i]));
    }
    paths_ = std::move(keep_paths);
    labels_ = std::move(keep_labels);
    TORCH_CHECK(!paths_.empty(), description_, ": no decodable image (", bad_.size(), " bad files, first '",
                bad_.empty() ? std::string() : bad_[0], "')");
  }
  cache_.resize(paths_.size());
  state_ = std::make_unique<std::atomic<uint8_t>[]>(paths_.size());
  for (size_t i = 0; i < paths_.size(); ++i) state_[i].store(cache_[i].defined() ? 1 : 0);
}

torch::Tensor FileImageDataset::load(int64_t i) const {
  const uint8_t st = state_[i].load(std::memory_order_acquire);
  if (st == 1) return cache_[i];
  if (st == 2) return {};
  torch::Tensor img;
  try {
    img = decode_image(paths_[i], options_.channels);
  } catch (const std::exception& e) {
    if (options_.on_bad_image == BadImagePolicy::kFail) {
      throw std::runtime_error(std::string(e.what()) + " [" + description_ +
                               "; set data.on_bad_image: skip to skip such files]");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_[i].load() != 2) {
      bad_.push_back(paths_[i]);
      TORCH_WARN("skipping unreadable image '", paths_[i], "' (", bad_.size(), " skipped so far)");
      state_[i].store(2, std::memory_order_release);
    }
    return {};
  }
  if (options_.cache) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_[i].load() == 0) {
      cache_[i] = img;
      state_[i].store(1, std::memory_order_release);
    }
  }
  return img;
}

ImageSample FileImageDataset::get(int64_t i) const {
  TORCH_CHECK(i >= 0 && i < size(), description_, ": index ", i, " out of range [0, ", size(), ")");
  const int64_t n = size();
  for (int64_t k = 0; k < n; ++k) {
    const int64_t j = (i + k) % n;  // a bad file is replaced by the next good one
    auto img = load(j);
    if (img.defined()) return {img, labels_[j]};
  }
  throw std::runtime_error(description_ + ": no decodable image (first bad file '" + paths_[i] + "')");
}

int64_t FileImageDataset::label(int64_t i) const {
  TORCH_CHECK(i >= 0 && i < size(), description_, ": index ", i, " out of range [0, ", size(), ")");
  return labels_[i];
}

int64_t FileImageDataset::bad_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(bad_.size());
}

std::vector<std::string> FileImageDataset::bad_paths() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bad_;
}

// ---------------------------------------------------------------- subsets and splits

SubsetImageDataset::SubsetImageDataset(ImageDatasetPtr base, std::vector<int64_t> indices, std::string description)
    : base_(std::move(base)), indices_(std::move(indices)), description_(std::move(description)) {
  TORCH_CHECK(base_, "SubsetImageDataset: null base dataset");
  for (int64_t i : indices_) {
    TORCH_CHECK(i >= 0 && i < base_->size(), base_->describe(), ": subset index ", i, " out of range");
  }
  if (description_.empty()) {
    description_ = base_->describe() + " [subset of " + std::to_string(indices_.size()) + "]";
  }
}

ImageSample SubsetImageDataset::get(int64_t i) const {
  TORCH_CHECK(i >= 0 && i < size(), description_, ": index ", i, " out of range [0, ", size(), ")");
  return base_->get(indices_[i]);
}

int64_t SubsetImageDataset::label(int64_t i) const {
  TORCH_CHECK(i >= 0 && i < size(), description_, ": index ", i, " out of range [0, ", size(), ")");
  return base_->label(indices_[i]);
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  Rng rng(seed ^ 0x5bd1e995ULL);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng.randint(0, i)]);  // Fisher-Yates
  return p;
}

std::pair<ImageDatasetPtr, ImageDatasetPtr> split_train_val(const ImageDatasetPtr& ds, double val_fraction,
                                                            uint64_t seed) {
  TORCH_CHECK(val_fraction >= 0 && val_fraction < 1, "val_fraction must be in [0, 1), got ", val_fraction);
  const int64_t n = ds->size();
  int64_t n_val = static_cast<int64_t>(std::llround(val_fraction * static_cast<double>(n)));
  if (val_fraction > 0) n_val = std::max<int64_t>(n_val, 1);
  TORCH_CHECK(n_val < n || n == 0, ds->describe(), ": val_fraction ", val_fraction, " leaves no training image");
  auto perm = seeded_permutation(n, seed);
  std::vector<int64_t> val(perm.begin(), perm.begin() + n_val), train(perm.begin() + n_val, perm.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  auto tr = std::make_shared<SubsetImageDataset>(ds, std::move(train), ds->describe() + " [train part]");
  auto va = std::make_shared<SubsetImageDataset>(ds, std::move(val), ds->describe() + " [val part]");
  return {tr, va};
}

ImageDatasetPtr random_subset(const ImageDatasetPtr& ds, int64_t limit, uint64_t seed) {
  if (limit <= 0 || limit >= ds->size()) return ds;
  auto perm = seeded_permutation(ds->size(), seed ^ 0x9e3779b97f4a7c15ULL);
  std::vector<int64_t> keep(perm.begin(), perm.begin() + limit);
  std::sort(keep.begin(), keep.end());
  return std::make_shared<SubsetImageDataset>(ds, std::move(keep),
                                              ds->describe() + " [seeded subset of " + std::to_string(limit) + "]");
}

}  // namespace ewa::datasets::image
