// Multi-threaded, deterministic, resumable batch loader for image classification: worker
// threads decode + augment whole batches ahead (prefetch), results identical for any thread
// count because every sample is seeded from (seed, epoch, dataset index).
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ewa/datasets/image/augment.h"
#include "ewa/datasets/image/image_dataset.h"

namespace ewa::datasets::image {

/// Loader settings; shared names equal ewa::vision2d::ImageDataOptions.
struct ImageLoaderOptions {
  TORCH_ARG(int64_t, batch_size) = 64;
  TORCH_ARG(bool, shuffle) = true;
  TORCH_ARG(bool, drop_last) = false;
  TORCH_ARG(bool, train) = true;               ///< apply augmentation (false = resize + normalise)
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(int64_t, workers) = 0;             ///< decode/augment threads (0 = at::get_num_threads())
  TORCH_ARG(int64_t, prefetch) = 4;            ///< batches prepared ahead
  TORCH_ARG(int64_t, image_size) = 0;          ///< 0 = native size (all images must agree)
  TORCH_ARG(std::string, dataset) = "";        ///< name for default mean/std when mean is empty
  TORCH_ARG(std::vector<double>, mean) = {};   ///< per channel; [] = default_norm_stats(dataset)
  TORCH_ARG(std::vector<double>, std) = {};
  TORCH_ARG(AugmentOptions, augment) = {};
};

/// One batch.
struct ImageBatch {
  torch::Tensor images;        ///< float32 [B, C, H, W], normalised
  torch::Tensor labels;        ///< int64 [B]
  torch::Tensor soft_targets;  ///< float32 [B, K] with mixup/cutmix (train), else undefined
  torch::Tensor indices;       ///< int64 [B] dataset indices
  int64_t epoch = 0;
  int64_t batch_index = 0;
};

/// Usage: `loader.set_epoch(e); while (auto b = loader.next()) {...}`. To resume exactly,
/// `set_epoch(e, batch_index)` continues with the batch that would have come next.
class ImageLoader {
 public:
  ImageLoader(ImageDatasetPtr dataset, ImageLoaderOptions options);
  ~ImageLoader();
  ImageLoader(const ImageLoader&) = delete;
  ImageLoader& operator=(const ImageLoader&) = delete;

  /// Batches per epoch (drop_last respected).
  int64_t num_batches() const;
  /// Starts epoch `epoch` at batch `start_batch` (0..num_batches()); drops in-flight work.
  void set_epoch(int64_t epoch, int64_t start_batch = 0);
  /// The next batch of the current epoch, or nullopt at its end. Rethrows a worker's error
  /// (e.g. a corrupt image with on_bad_image: fail).
  std::optional<ImageBatch> next();
  int64_t epoch() const { return epoch_; }
  /// Index of the batch next() returns next.
  int64_t position() const { return position_; }
  /// Dataset indices of epoch `epoch` in loading order (seeded shuffle or 0..N-1).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  /// Builds batch `batch_index` of `epoch` synchronously in the calling thread (what the
  /// workers compute).
  ImageBatch make_batch(int64_t epoch, int64_t batch_index) const;
  int64_t workers() const { return static_cast<int64_t>(threads_.size()); }
  const ImageDataset& dataset() const { return *dataset_; }
  const ImageLoaderOptions& options() const { return options_; }

 private:
  ImageBatch build(int64_t epoch, const std::vector<int64_t>& order, int64_t batch_index) const;
  void worker_loop();

  ImageDatasetPtr dataset_;
  ImageLoaderOptions options_;
  std::unique_ptr<ImageTransform> transform_;
  int64_t num_batches_ = 0;

  std::mutex mutex_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
  int64_t generation_ = 0;
  int64_t epoch_ = 0;
  int64_t position_ = 0;    ///< next batch handed out by next()
  int64_t next_claim_ = 0;  ///< next batch a worker starts
  std::shared_ptr<const std::vector<int64_t>> order_;
  std::map<int64_t, ImageBatch> ready_;
  std::map<int64_t, std::exception_ptr> errors_;
};

}  // namespace ewa::datasets::image
