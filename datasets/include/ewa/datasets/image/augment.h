// Image augmentation for classification training: seeded per-sample ops on uint8 HWC
// images (crop with padding, random resized crop, flip, RandAugment, color jitter, resize),
// normalisation to float CHW, random erasing, and batch-level mixup / cutmix.
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ewa::datasets::image {

/// Augmentation switches; field names equal ewa::vision2d::AugmentOptions (YAML data.augment).
struct AugmentOptions {
  TORCH_ARG(int64_t, crop_padding) = 0;        ///< random crop with this zero padding (0 = off)
  TORCH_ARG(bool, random_resized_crop) = false;
  TORCH_ARG(double, rrc_min_scale) = 0.08;     ///< RRC area scale range [rrc_min_scale, 1]
  TORCH_ARG(bool, hflip) = false;              ///< horizontal flip with probability 0.5
  TORCH_ARG(int64_t, randaugment_n) = 0;       ///< RandAugment ops per image (0 = off)
  TORCH_ARG(int64_t, randaugment_m) = 9;       ///< RandAugment magnitude 0..30
  TORCH_ARG(double, color_jitter) = 0.0;       ///< brightness/contrast/saturation strength
  TORCH_ARG(double, random_erasing) = 0.0;     ///< probability
  TORCH_ARG(double, mixup_alpha) = 0.0;        ///< 0 = off
  TORCH_ARG(double, cutmix_alpha) = 0.0;       ///< 0 = off
};

/// Small deterministic generator (splitmix64 + own distributions): identical streams on
/// every platform and thread count.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  /// The stream of sample `index` in `epoch` of a run with `seed` (`stream` separates uses).
  static Rng for_sample(uint64_t seed, int64_t epoch, int64_t index, uint64_t stream = 0);
  uint64_t next_u64();
  double uniform();                                ///< [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int64_t randint(int64_t lo, int64_t hi);         ///< uniform integer in [lo, hi]
  bool bernoulli(double p) { return uniform() < p; }
  double normal();                                 ///< standard normal
  double gamma(double shape);                      ///< Gamma(shape, 1)
  double beta(double a, double b);                 ///< Beta(a, b)

 private:
  uint64_t state_;
};

/// Per-channel normalisation statistics (on [0, 1] pixel values).
struct NormStats {
  std::vector<double> mean, std;
};

/// Default mean/std of fashion_mnist, mnist, cifar10, cifar100, tiny_imagenet, imagenet and
/// image_folder (= imagenet). Throws listing the known names otherwise.
NormStats default_norm_stats(const std::string& dataset);

/// The 14 RandAugment ops (torchvision order): Identity, ShearX, ShearY, TranslateX,
/// TranslateY, Rotate, Brightness, Color, Contrast, Sharpness, Posterize, Solarize,
/// AutoContrast, Equalize.
const std::vector<std::string>& rand_augment_op_names();

// ---- per-sample ops on uint8 [H, W, C] (C = 1 or 3) images; each returns a new tensor ----

/// Mirrors left-right. uint8 [H, W, C] -> same shape.
torch::Tensor hflip(const torch::Tensor& image);
/// Zero-pads by `padding` on every side and crops a random [H, W] window.
torch::Tensor random_crop_with_padding(const torch::Tensor& image, int64_t padding, Rng& rng);
/// Random resized crop (torchvision algorithm: area scale in [min_scale, max_scale], log-uniform
/// aspect ratio in [min_ratio, max_ratio], 10 tries then center crop) resized to [out_h, out_w].
torch::Tensor random_resized_crop(const torch::Tensor& image, int64_t out_h, int64_t out_w, double min_scale,
                                  double max_scale, double min_ratio, double max_ratio, Rng& rng);
/// Bilinear resize (antialiased when shrinking) to uint8 [out_h, out_w, C].
torch::Tensor resize(const torch::Tensor& image, int64_t out_h, int64_t out_w);
/// Brightness, contrast and saturation factors in [1-s, 1+s], applied in random order.
torch::Tensor color_jitter(const torch::Tensor& image, double strength, Rng& rng);
/// One RandAugment op by index into rand_augment_op_names() at magnitude `m` (0..30 bins,
/// torchvision scale); `negate` flips the sign of signed ops.
torch::Tensor rand_augment_op(const torch::Tensor& image, int64_t op, double m, bool negate);
/// RandAugment (Cubuk et al. 2020): `n` ops drawn uniformly, magnitude `m`, random signs.
torch::Tensor rand_augment(const torch::Tensor& image, int64_t n, double m, Rng& rng);

/// uint8 [H, W, C] -> float32 [C, H, W] with (x / 255 - mean[c]) / std[c]; a 1-element
/// mean/std applies to every channel.
torch::Tensor normalize_image(const torch::Tensor& image, const std::vector<double>& mean,
                              const std::vector<double>& std);
/// Random erasing (Zhong et al. 2020, timm "pixel" mode) in place on float [C, H, W] with
/// probability `p`: a box of area 2%..33% and aspect 0.3..3.3 gets standard-normal noise.
void random_erasing_(torch::Tensor& image, double p, Rng& rng);

/// Batch-level mixup (Zhang et al. 2018) / cutmix (Yun et al. 2019), timm semantics: with
/// both alphas > 0 one of them is chosen per batch (p = 0.5); lambda ~ Beta(alpha, alpha);
/// the partner of sample b is sample B-1-b; cutmix corrects lambda by the pasted area.
/// `images` float [B, C, H, W] is mixed in place; `labels` int64 [B]; returns the soft
/// targets float [B, num_classes] (rows sum to 1). With both alphas 0 returns one-hot.
torch::Tensor mix_batch_(torch::Tensor& images, const torch::Tensor& labels, int64_t num_classes,
                         double mixup_alpha, double cutmix_alpha, Rng& rng);

/// The per-sample pipeline of the loader. Train: [random resized crop | resize + crop with
/// padding], flip, color jitter, RandAugment, normalise, random erasing. Eval: resize +
/// normalise.
class ImageTransform {
 public:
  /// `image_size` 0 keeps the native size; `mean`/`std` per channel (or 1 value).
  ImageTransform(AugmentOptions augment, int64_t image_size, std::vector<double> mean, std::vector<double> std,
                 bool train);
  /// uint8 [H, W, C] -> float32 [C, S, S] (S = image_size or native).
  torch::Tensor operator()(const torch::Tensor& image, Rng& rng) const;
  bool train() const { return train_; }

 private:
  AugmentOptions augment_;
  int64_t image_size_;
  std::vector<double> mean_, std_;
  bool train_;
};

}  // namespace ewa::datasets::image
