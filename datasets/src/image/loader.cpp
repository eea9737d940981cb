// ImageLoader: worker threads build whole batches ahead of the consumer (prefetch window);
// a generation counter discards in-flight work when the epoch or position changes.
#include "ewa/datasets/image/loader.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace ewa::datasets::image {

namespace {
constexpr uint64_t kMixStream = 0x6d69786d6978ULL;  // batch-level stream id ("mixmix")
}

ImageLoader::ImageLoader(ImageDatasetPtr dataset, ImageLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  TORCH_CHECK(dataset_, "ImageLoader: null dataset");
  TORCH_CHECK(options_.batch_size() >= 1, "batch_size must be >= 1, got ", options_.batch_size());
  TORCH_CHECK(options_.prefetch() >= 1, "prefetch must be >= 1, got ", options_.prefetch());
  TORCH_CHECK(options_.workers() >= 0, "workers must be >= 0, got ", options_.workers());
  TORCH_CHECK(dataset_->size() > 0, dataset_->describe(), ": the dataset is empty");
  auto mean = options_.mean(), std = options_.std();
  if (mean.empty()) {
    TORCH_CHECK(std.empty(), "ImageLoader: std given without mean");
    auto stats = default_norm_stats(options_.dataset().empty() ? "imagenet" : options_.dataset());
    mean = stats.mean;
    std = stats.std;
    if (dataset_->channels() == 1 && mean.size() == 3) {  // gray images with RGB statistics
      mean = {(mean[0] + mean[1] + mean[2]) / 3};
      std = {(std[0] + std[1] + std[2]) / 3};
    }
  }
  TORCH_CHECK(mean.size() == 1 || static_cast<int64_t>(mean.size()) == dataset_->channels(), dataset_->describe(),
              ": mean/std have ", mean.size(), " values but the images have ", dataset_->channels(), " channels");
  transform_ = std::make_unique<ImageTransform>(options_.augment(), options_.image_size(), mean, std, options_.train());
  const int64_t n = dataset_->size(), b = options_.batch_size();
  num_batches_ = options_.drop_last() ? n / b : (n + b - 1) / b;
  TORCH_CHECK(num_batches_ > 0, dataset_->describe(), ": ", n, " images make no full batch of ", b,
              " (drop_last: true)");
  order_ = std::make_shared<const std::vector<int64_t>>(epoch_order(0));
  const int64_t workers = options_.workers() > 0 ? options_.workers() : std::max<int64_t>(1, at::get_num_threads());
  for (int64_t i = 0; i < workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

ImageLoader::~ImageLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

int64_t ImageLoader::num_batches() const { return num_batches_; }

std::vector<int64_t> ImageLoader::epoch_order(int64_t epoch) const {
  const int64_t n = dataset_->size();
  if (!options_.shuffle()) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    return order;
  }
  Rng r = Rng::for_sample(options_.seed(), epoch, -1, 0x5348554646ULL);  // "SHUFF"
  return seeded_permutation(n, r.next_u64());
}

void ImageLoader::set_epoch(int64_t epoch, int64_t start_batch) {
  TORCH_CHECK(epoch >= 0, "set_epoch: epoch must be >= 0, got ", epoch);
  TORCH_CHECK(start_batch >= 0 && start_batch <= num_batches_, "set_epoch: start batch ", start_batch,
              " outside [0, ", num_batches_, "]");
  auto order = std::make_shared<const std::vector<int64_t>>(epoch_order(epoch));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    epoch_ = epoch;
    position_ = next_claim_ = start_batch;
    order_ = std::move(order);
    ready_.clear();
    errors_.clear();
  }
  work_cv_.notify_all();
}

std::optional<ImageBatch> ImageLoader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (position_ >= num_batches_) return std::nullopt;
  const int64_t want = position_;
  done_cv_.wait(lock, [&] { return ready_.count(want) || errors_.count(want); });
  auto err = errors_.find(want);
  if (err != errors_.end()) {
    auto e = err->second;
    errors_.erase(err);
    ++position_;
    lock.unlock();
    work_cv_.notify_all();
    std::rethrow_exception(e);
  }
  auto it = ready_.find(want);
  ImageBatch batch = std::move(it->second);
  ready_.erase(it);
  ++position_;
  lock.unlock();
  work_cv_.notify_all();
  return batch;
}

void ImageLoader::worker_loop() {
  while (true) {
    int64_t b = 0, gen = 0, epoch = 0;
    std::shared_ptr<const std::vector<int64_t>> order;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] {
        return stop_ || (next_claim_ < num_batches_ && next_claim_ < position_ + options_.prefetch());
      });
      if (stop_) return;
      b = next_claim_++;
      gen = generation_;
      epoch = epoch_;
      order = order_;
    }
    ImageBatch batch;
    std::exception_ptr error;
    try {
      batch = build(epoch, *order, b);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (gen != generation_) continue;  // epoch/position changed meanwhile: drop
      if (error) {
        errors_[b] = error;
      } else {
        ready_[b] = std::move(batch);
      }
    }
    done_cv_.notify_all();
  }
}

ImageBatch ImageLoader::make_batch(int64_t epoch, int64_t batch_index) const {
  TORCH_CHECK(batch_index >= 0 && batch_index < num_batches_, "make_batch: batch ", batch_index, " outside [0, ",
              num_batches_, ")");
  return build(epoch, epoch_order(epoch), batch_index);
}

ImageBatch ImageLoader::build(int64_t epoch, const std::vector<int64_t>& order, int64_t batch_index) const {
  const int64_t n = static_cast<int64_t>(order.size()), bs = options_.batch_size();
  const int64_t begin = batch_index * bs, end = std::min(n, begin + bs);
  std::vector<torch::Tensor> images;
  images.reserve(static_cast<size_t>(end - begin));
  auto labels = torch::empty({end - begin}, torch::kInt64);
  auto indices = torch::empty({end - begin}, torch::kInt64);
  int64_t* lp = labels.data_ptr<int64_t>();
  int64_t* ip = indices.data_ptr<int64_t>();
  for (int64_t k = begin; k < end; ++k) {
    const int64_t idx = order[k];
    auto sample = dataset_->get(idx);
    Rng rng = Rng::for_sample(options_.seed(), epoch, idx);
    auto img = (*transform_)(sample.image, rng);  // [C, H, W]
    if (!images.empty()) {
      TORCH_CHECK(img.sizes() == images.front().sizes(), dataset_->describe(), ": image ", idx, " has shape ",
                  sample.image.sizes(), " unlike the others in its batch; set data.image_size to resize all images");
    }
    images.push_back(std::move(img));
    lp[k - begin] = sample.label;
    ip[k - begin] = idx;
  }
  ImageBatch batch;
  batch.images = torch::stack(images);  // [B, C, H, W]
  batch.labels = labels;
  batch.indices = indices;
  batch.epoch = epoch;
  batch.batch_index = batch_index;
  const auto& aug = options_.augment();
  if (options_.train() && (aug.mixup_alpha() > 0 || aug.cutmix_alpha() > 0)) {
    Rng rng = Rng::for_sample(options_.seed(), epoch, batch_index, kMixStream);
    batch.soft_targets = mix_batch_(batch.images, batch.labels, dataset_->num_classes(), aug.mixup_alpha(),
                                    aug.cutmix_alpha(), rng);
  }
  return batch;
}

}  // namespace ewa::datasets::image
