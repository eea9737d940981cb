// Image augmentation kernels on uint8 HWC buffers (raw-pointer loops over one small image,
// run inside the loader's worker threads), normalisation, random erasing, mixup/cutmix.
#include "ewa/datasets/image/augment.h"

#include <torch/nn/functional/upsampling.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace ewa::datasets::image {

namespace {
constexpr double kPi = 3.14159265358979323846;

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline uint8_t clamp_u8(double v) { return static_cast<uint8_t>(std::min(255.0, std::max(0.0, std::nearbyint(v)))); }

void check_image(const torch::Tensor& img, const char* op) {
  TORCH_CHECK(img.dim() == 3 && img.scalar_type() == torch::kUInt8 && (img.size(2) == 1 || img.size(2) == 3), op,
              ": expected a uint8 [H, W, C] image with C 1 or 3, got ", img.scalar_type(), " ", img.sizes());
}

/// Blend out = ratio * img + (1 - ratio) * degenerate (per element).
torch::Tensor blend(const torch::Tensor& img, const torch::Tensor& degenerate, double ratio) {
  auto out = torch::empty_like(img);
  const uint8_t* a = img.data_ptr<uint8_t>();
  const uint8_t* b = degenerate.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  const int64_t n = img.numel();
  for (int64_t i = 0; i < n; ++i) o[i] = clamp_u8(ratio * a[i] + (1.0 - ratio) * b[i]);
  return out;
}

/// ITU-R 601 luma per pixel, uint8 [H, W].
std::vector<uint8_t> grayscale(const torch::Tensor& img) {
  const int64_t hw = img.size(0) * img.size(1), c = img.size(2);
  const uint8_t* p = img.data_ptr<uint8_t>();
  std::vector<uint8_t> g(static_cast<size_t>(hw));
  for (int64_t i = 0; i < hw; ++i) {
    g[i] = c == 1 ? p[i] : clamp_u8(0.299 * p[3 * i] + 0.587 * p[3 * i + 1] + 0.114 * p[3 * i + 2]);
  }
  return g;
}

torch::Tensor adjust_brightness(const torch::Tensor& img, double f) { return blend(img, torch::zeros_like(img), f); }

torch::Tensor adjust_saturation(const torch::Tensor& img, double f) {
  if (img.size(2) == 1) return img.clone();
  auto g = grayscale(img);
  auto deg = torch::empty_like(img);
  uint8_t* d = deg.data_ptr<uint8_t>();
  for (size_t i = 0; i < g.size(); ++i) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = g[i];
  return blend(img, deg, f);
}

torch::Tensor adjust_contrast(const torch::Tensor& img, double f) {
  auto g = grayscale(img);
  double mean = 0;
  for (uint8_t v : g) mean += v;
  mean /= std::max<size_t>(1, g.size());
  return blend(img, torch::full_like(img, static_cast<int64_t>(clamp_u8(mean))), f);
}

torch::Tensor adjust_sharpness(const torch::Tensor& img, double f) {
  // Degenerate = 3x3 smoothing [1 1 1; 1 5 1; 1 1 1] / 13 inside, original on the border (PIL).
  const int64_t h = img.size(0), w = img.size(1), c = img.size(2);
  auto deg = img.clone();
  const uint8_t* s = img.data_ptr<uint8_t>();
  uint8_t* d = deg.data_ptr<uint8_t>();
  for (int64_t y = 1; y + 1 < h; ++y) {
    for (int64_t x = 1; x + 1 < w; ++x) {
      for (int64_t k = 0; k < c; ++k) {
        int sum = 0;
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) sum += s[((y + dy) * w + (x + dx)) * c + k] * (dy == 0 && dx == 0 ? 5 : 1);
        }
        d[(y * w + x) * c + k] = clamp_u8(sum / 13.0);
      }
    }
  }
  return blend(img, deg, f);
}

/// Nearest-neighbour affine warp with zero fill: output pixel centre p maps to source
/// a * (p - centre) + centre + t (a = 2x2 row-major inverse matrix).
torch::Tensor warp_affine(const torch::Tensor& img, const std::array<double, 4>& a, double cx, double cy, double tx,
                          double ty) {
  const int64_t h = img.size(0), w = img.size(1), c = img.size(2);
  auto out = torch::zeros_like(img);
  const uint8_t* s = img.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  for (int64_t y = 0; y < h; ++y) {
    const double py = y + 0.5 - cy;
    for (int64_t x = 0; x < w; ++x) {
      const double px = x + 0.5 - cx;
      const double sx = a[0] * px + a[1] * py + cx + tx, sy = a[2] * px + a[3] * py + cy + ty;
      const auto ix = static_cast<int64_t>(std::floor(sx)), iy = static_cast<int64_t>(std::floor(sy));
      if (ix < 0 || iy < 0 || ix >= w || iy >= h) continue;
      std::memcpy(o + (y * w + x) * c, s + (iy * w + ix) * c, static_cast<size_t>(c));
    }
  }
  return out;
}

torch::Tensor posterize(const torch::Tensor& img, int bits) {
  const uint8_t mask = static_cast<uint8_t>(~((1u << (8 - bits)) - 1u) & 0xFFu);
  auto out = img.clone();
  uint8_t* o = out.data_ptr<uint8_t>();
  for (int64_t i = 0; i < out.numel(); ++i) o[i] &= mask;
  return out;
}

torch::Tensor solarize(const torch::Tensor& img, double threshold) {
  auto out = img.clone();
  uint8_t* o = out.data_ptr<uint8_t>();
  for (int64_t i = 0; i < out.numel(); ++i) {
    if (o[i] >= threshold) o[i] = static_cast<uint8_t>(255 - o[i]);
  }
  return out;
}

torch::Tensor autocontrast(const torch::Tensor& img) {
  const int64_t hw = img.size(0) * img.size(1), c = img.size(2);
  auto out = img.clone();
  uint8_t* o = out.data_ptr<uint8_t>();
  for (int64_t k = 0; k < c; ++k) {
    int lo = 255, hi = 0;
    for (int64_t i = 0; i < hw; ++i) {
      lo = std::min<int>(lo, o[i * c + k]);
      hi = std::max<int>(hi, o[i * c + k]);
    }
    if (hi <= lo) continue;
    const double scale = 255.0 / (hi - lo);
    for (int64_t i = 0; i < hw; ++i) o[i * c + k] = clamp_u8((o[i * c + k] - lo) * scale);
  }
  return out;
}

torch::Tensor equalize(const torch::Tensor& img) {
  // PIL ImageOps.equalize per channel.
  const int64_t hw = img.size(0) * img.size(1), c = img.size(2);
  auto out = img.clone();
  uint8_t* o = out.data_ptr<uint8_t>();
  for (int64_t k = 0; k < c; ++k) {
    std::array<int64_t, 256> hist{};
    for (int64_t i = 0; i < hw; ++i) ++hist[o[i * c + k]];
    int last = 255;
    while (last > 0 && hist[last] == 0) --last;
    const int64_t step = (hw - hist[last]) / 255;
    if (step == 0) continue;
    std::array<uint8_t, 256> lut{};
    int64_t n = step / 2;
    for (int v = 0; v < 256; ++v) {
      lut[v] = static_cast<uint8_t>(std::min<int64_t>(255, n / step));
      n += hist[v];
    }
    for (int64_t i = 0; i < hw; ++i) o[i * c + k] = lut[o[i * c + k]];
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- Rng

Rng Rng::for_sample(uint64_t seed, int64_t epoch, int64_t index, uint64_t stream) {
  uint64_t s = splitmix(seed ^ 0x243f6a8885a308d3ULL);
  s = splitmix(s ^ static_cast<uint64_t>(epoch));
  s = splitmix(s ^ static_cast<uint64_t>(index));
  return Rng(splitmix(s ^ stream));
}

uint64_t Rng::next_u64() {
  state_ += 0x9e3779b97f4a7c15ULL;
  uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

int64_t Rng::randint(int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  const auto span = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int64_t>(next_u64() % span);
}

double Rng::normal() {
  double u1 = uniform();
  while (u1 <= 0) u1 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * kPi * uniform());
}

double Rng::gamma(double shape) {
  TORCH_CHECK(shape > 0, "gamma shape must be > 0");
  if (shape < 1) return gamma(shape + 1) * std::pow(uniform() + 1e-300, 1.0 / shape);
  // Marsaglia & Tsang (2000).
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = uniform();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u + 1e-300) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v;
  }
}

double Rng::beta(double a, double b) {
  const double x = gamma(a), y = gamma(b);
  return x + y > 0 ? x / (x + y) : 0.5;
}

// ---------------------------------------------------------------- statistics and op list

NormStats default_norm_stats(const std::string& dataset) {
  if (dataset == "fashion_mnist") return {{0.2860}, {0.3530}};
  if (dataset == "mnist") return {{0.1307}, {0.3081}};
  if (dataset == "cifar10") return {{0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}};
  if (dataset == "cifar100") return {{0.5071, 0.4865, 0.4409}, {0.2673, 0.2564, 0.2762}};
  if (dataset == "tiny_imagenet") return {{0.4802, 0.4481, 0.3975}, {0.2302, 0.2265, 0.2262}};
  if (dataset == "imagenet" || dataset == "image_folder") return {{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};
  throw std::invalid_argument("no default mean/std for dataset '" + dataset +
                              "' (known: fashion_mnist, mnist, cifar10, cifar100, tiny_imagenet, imagenet, "
                              "image_folder); set data.mean and data.std");
}

const std::vector<std::string>& rand_augment_op_names() {
  static const std::vector<std::string> names = {"Identity",   "ShearX",     "ShearY",   "TranslateX", "TranslateY",
                                                 "Rotate",     "Brightness", "Color",    "Contrast",   "Sharpness",
                                                 "Posterize",  "Solarize",   "AutoContrast", "Equalize"};
  return names;
}

// ---------------------------------------------------------------- geometric ops

torch::Tensor hflip(const torch::Tensor& image) {
  check_image(image, "hflip");
  auto img = image.contiguous();
  const int64_t h = img.size(0), w = img.size(1), c = img.size(2);
  auto out = torch::empty_like(img);
  const uint8_t* s = img.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) std::memcpy(o + (y * w + x) * c, s + (y * w + (w - 1 - x)) * c, c);
  }
  return out;
}

torch::Tensor random_crop_with_padding(const torch::Tensor& image, int64_t padding, Rng& rng) {
  check_image(image, "random_crop_with_padding");
  TORCH_CHECK(padding >= 0, "crop_padding must be >= 0");
  auto img = image.contiguous();
  const int64_t h = img.size(0), w = img.size(1), c = img.size(2);
  const int64_t oy = rng.randint(0, 2 * padding) - padding, ox = rng.randint(0, 2 * padding) - padding;
  auto out = torch::zeros_like(img);
  const uint8_t* s = img.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  const int64_t x0 = std::max<int64_t>(0, -ox), x1 = std::min<int64_t>(w, w - ox);  // output columns with a source
  if (x1 <= x0) return out;
  for (int64_t y = 0; y < h; ++y) {
    const int64_t sy = y + oy;
    if (sy < 0 || sy >= h) continue;
    std::memcpy(o + (y * w + x0) * c, s + (sy * w + x0 + ox) * c, static_cast<size_t>((x1 - x0) * c));
  }
  return out;
}

torch::Tensor resize(const torch::Tensor& image, int64_t out_h, int64_t out_w) {
  check_image(image, "resize");
  TORCH_CHECK(out_h > 0 && out_w > 0, "resize: bad size ", out_h, "x", out_w);
  if (image.size(0) == out_h && image.size(1) == out_w) return image.contiguous();
  namespace F = torch::nn::functional;
  const bool shrink = out_h < image.size(0) || out_w < image.size(1);
  auto x = image.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32);  // [1, C, H, W]
  auto y = F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{out_h, out_w})
                                 .mode(torch::kBilinear)
                                 .align_corners(false)
                                 .antialias(shrink));
  return y.round_().clamp_(0, 255).to(torch::kUInt8).squeeze(0).permute({1, 2, 0}).contiguous();  // [h, w, C]
}

torch::Tensor random_resized_crop(const torch::Tensor& image, int64_t out_h, int64_t out_w, double min_scale,
                                  double max_scale, double min_ratio, double max_ratio, Rng& rng) {
  check_image(image, "random_resized_crop");
  const int64_t h = image.size(0), w = image.size(1);
  const double area = static_cast<double>(h * w);
  const double lr0 = std::log(min_ratio), lr1 = std::log(max_ratio);
  int64_t ch = h, cw = w, top = 0, left = 0;
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    const double target = area * rng.uniform(min_scale, max_scale);
    const double ratio = std::exp(rng.uniform(lr0, lr1));
    const auto tw = static_cast<int64_t>(std::llround(std::sqrt(target * ratio)));
    const auto th = static_cast<int64_t>(std::llround(std::sqrt(target / ratio)));
    if (tw > 0 && th > 0 && tw <= w && th <= h) {
      ch = th;
      cw = tw;
      top = rng.randint(0, h - th);
      left = rng.randint(0, w - tw);
      found = true;
    }
  }
  if (!found) {  // centre crop at the clamped aspect ratio
    const double in_ratio = static_cast<double>(w) / h;
    if (in_ratio < min_ratio) {
      cw = w;
      ch = std::max<int64_t>(1, std::llround(w / min_ratio));
    } else if (in_ratio > max_ratio) {
      ch = h;
      cw = std::max<int64_t>(1, std::llround(h * max_ratio));
    }
    top = (h - ch) / 2;
    left = (w - cw) / 2;
  }
  auto crop = image.slice(0, top, top + ch).slice(1, left, left + cw).contiguous();  // [ch, cw, C]
  return resize(crop, out_h, out_w);
}

// ---------------------------------------------------------------- photometric ops

torch::Tensor color_jitter(const torch::Tensor& image, double strength, Rng& rng) {
  check_image(image, "color_jitter");
  if (strength <= 0) return image;
  auto img = image.contiguous();
  std::array<int, 3> order = {0, 1, 2};
  for (int i = 2; i > 0; --i) std::swap(order[i], order[rng.randint(0, i)]);
  const double lo = std::max(0.0, 1 - strength), hi = 1 + strength;
  for (int op : order) {
    const double f = rng.uniform(lo, hi);
    img = op == 0 ? adjust_brightness(img, f) : op == 1 ? adjust_contrast(img, f) : adjust_saturation(img, f);
  }
  return img;
}

torch::Tensor rand_augment_op(const torch::Tensor& image, int64_t op, double m, bool negate) {
  check_image(image, "rand_augment_op");
  TORCH_CHECK(op >= 0 && op < static_cast<int64_t>(rand_augment_op_names().size()), "rand_augment_op: op ", op,
              " out of range");
  auto img = image.contiguous();
  const double frac = std::min(30.0, std::max(0.0, m)) / 30.0;  // torchvision: 31 magnitude bins
  const double sign = negate ? -1.0 : 1.0;
  const double h = static_cast<double>(img.size(0)), w = static_cast<double>(img.size(1));
  switch (op) {
    case 0: return img.clone();
    case 1: {  // ShearX about the origin
      const double s = sign * 0.3 * frac;
      return warp_affine(img, {1, -s, 0, 1}, 0, 0, 0, 0);
    }
    case 2: {
      const double s = sign * 0.3 * frac;
      return warp_affine(img, {1, 0, -s, 1}, 0, 0, 0, 0);
    }
    case 3: return warp_affine(img, {1, 0, 0, 1}, 0, 0, -sign * frac * 150.0 / 331.0 * w, 0);
    case 4: return warp_affine(img, {1, 0, 0, 1}, 0, 0, 0, -sign * frac * 150.0 / 331.0 * h);
    case 5: {  // Rotate about the centre by sign * 30 deg * frac
      const double a = sign * 30.0 * frac * kPi / 180.0, co = std::cos(a), si = std::sin(a);
      return warp_affine(img, {co, si, -si, co}, w / 2, h / 2, 0, 0);
    }
    case 6: return adjust_brightness(img, 1 + sign * 0.9 * frac);
    case 7: return adjust_saturation(img, 1 + sign * 0.9 * frac);
    case 8: return adjust_contrast(img, 1 + sign * 0.9 * frac);
    case 9: return adjust_sharpness(img, 1 + sign * 0.9 * frac);
    case 10: return posterize(img, 8 - static_cast<int>(std::nearbyint(frac * 4)));
    case 11: return solarize(img, 255.0 * (1 - frac));
    case 12: return autocontrast(img);
    default: return equalize(img);
  }
}

torch::Tensor rand_augment(const torch::Tensor& image, int64_t n, double m, Rng& rng) {
  auto img = image;
  const auto n_ops = static_cast<int64_t>(rand_augment_op_names().size());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t op = rng.randint(0, n_ops - 1);
    const bool negate = rng.bernoulli(0.5);
    img = rand_augment_op(img, op, m, negate);
  }
  return img;
}

// ---------------------------------------------------------------- float stage

torch::Tensor normalize_image(const torch::Tensor& image, const std::vector<double>& mean,
                              const std::vector<double>& std) {
  check_image(image, "normalize_image");
  auto img = image.contiguous();
  const int64_t h = img.size(0), w = img.size(1), c = img.size(2);
  TORCH_CHECK(mean.size() == std.size() && (mean.size() == 1 || static_cast<int64_t>(mean.size()) == c),
              "normalisation: mean/std have ", mean.size(), "/", std.size(), " values for ", c, "-channel images");
  std::vector<float> scale(c), bias(c);
  for (int64_t k = 0; k < c; ++k) {
    const double m = mean[mean.size() == 1 ? 0 : k], s = std[std.size() == 1 ? 0 : k];
    TORCH_CHECK(s > 0, "normalisation: std must be > 0");
    scale[k] = static_cast<float>(1.0 / (255.0 * s));
    bias[k] = static_cast<float>(-m / s);
  }
  auto out = torch::empty({c, h, w}, torch::kFloat32);
  const uint8_t* s = img.data_ptr<uint8_t>();
  float* o = out.data_ptr<float>();
  const int64_t hw = h * w;
  for (int64_t k = 0; k < c; ++k) {
    float* ok = o + k * hw;
    for (int64_t i = 0; i < hw; ++i) ok[i] = s[i * c + k] * scale[k] + bias[k];
  }
  return out;
}

void random_erasing_(torch::Tensor& image, double p, Rng& rng) {
  TORCH_CHECK(image.dim() == 3 && image.scalar_type() == torch::kFloat32 && image.is_contiguous(),
              "random_erasing_: expected a contiguous float [C, H, W] tensor");
  if (p <= 0 || !rng.bernoulli(p)) return;
  const int64_t c = image.size(0), h = image.size(1), w = image.size(2);
  const double area = static_cast<double>(h * w), lr0 = std::log(0.3), lr1 = std::log(1 / 0.3);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(0.02, 1.0 / 3.0);
    const double ratio = std::exp(rng.uniform(lr0, lr1));
    const auto eh = static_cast<int64_t>(std::llround(std::sqrt(target * ratio)));
    const auto ew = static_cast<int64_t>(std::llround(std::sqrt(target / ratio)));
    if (eh <= 0 || ew <= 0 || eh >= h || ew >= w) continue;
    const int64_t top = rng.randint(0, h - eh), left = rng.randint(0, w - ew);
    float* o = image.data_ptr<float>();
    for (int64_t k = 0; k < c; ++k) {
      for (int64_t y = top; y < top + eh; ++y) {
        for (int64_t x = left; x < left + ew; ++x) o[(k * h + y) * w + x] = static_cast<float>(rng.normal());
      }
    }
    return;
  }
}

torch::Tensor mix_batch_(torch::Tensor& images, const torch::Tensor& labels, int64_t num_classes, double mixup_alpha,
                         double cutmix_alpha, Rng& rng) {
  TORCH_CHECK(images.dim() == 4 && images.is_floating_point(), "mix_batch_: images must be float [B, C, H, W]");
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0), "mix_batch_: labels must be int64 [B]");
  TORCH_CHECK(num_classes > 0, "mix_batch_: num_classes must be > 0");
  auto onehot = torch::zeros({labels.size(0), num_classes}, torch::kFloat32);
  onehot.scatter_(1, labels.to(torch::kInt64).unsqueeze(1), 1.0f);  // [B, K]
  const bool use_mixup = mixup_alpha > 0, use_cutmix = cutmix_alpha > 0;
  if (!use_mixup && !use_cutmix) return onehot;
  const bool cutmix = use_cutmix && (!use_mixup || rng.bernoulli(0.5));
  double lam = rng.beta(cutmix ? cutmix_alpha : mixup_alpha, cutmix ? cutmix_alpha : mixup_alpha);
  auto flipped = images.flip({0});
  if (cutmix) {
    const int64_t h = images.size(2), w = images.size(3);
    const double cut = std::sqrt(1 - lam);
    const auto cut_h = static_cast<int64_t>(h * cut), cut_w = static_cast<int64_t>(w * cut);
    const int64_t cy = rng.randint(0, h - 1), cx = rng.randint(0, w - 1);
    const int64_t y0 = std::clamp<int64_t>(cy - cut_h / 2, 0, h), y1 = std::clamp<int64_t>(cy + cut_h / 2, 0, h);
    const int64_t x0 = std::clamp<int64_t>(cx - cut_w / 2, 0, w), x1 = std::clamp<int64_t>(cx + cut_w / 2, 0, w);
    if (y1 > y0 && x1 > x0) {
      images.slice(2, y0, y1).slice(3, x0, x1).copy_(flipped.slice(2, y0, y1).slice(3, x0, x1));
    }
    lam = 1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(h * w);
  } else {
    images.mul_(lam).add_(flipped, 1 - lam);
  }
  return onehot.mul(static_cast<float>(lam)).add_(onehot.flip({0}), static_cast<float>(1 - lam));
}

// ---------------------------------------------------------------- ImageTransform

ImageTransform::ImageTransform(AugmentOptions augment, int64_t image_size, std::vector<double> mean,
                               std::vector<double> std, bool train)
    : augment_(augment), image_size_(image_size), mean_(std::move(mean)), std_(std::move(std)), train_(train) {
  TORCH_CHECK(image_size_ >= 0, "image_size must be >= 0");
  TORCH_CHECK(!mean_.empty() && mean_.size() == std_.size(), "ImageTransform: mean and std need the same (>0) length");
  TORCH_CHECK(augment_.rrc_min_scale() > 0 && augment_.rrc_min_scale() <= 1, "rrc_min_scale must be in (0, 1]");
  TORCH_CHECK(augment_.randaugment_m() >= 0 && augment_.randaugment_m() <= 30, "randaugment_m must be in [0, 30]");
}

torch::Tensor ImageTransform::operator()(const torch::Tensor& image, Rng& rng) const {
  check_image(image, "ImageTransform");
  torch::Tensor img = image.contiguous();
  const int64_t oh = image_size_ > 0 ? image_size_ : img.size(0), ow = image_size_ > 0 ? image_size_ : img.size(1);
  if (train_ && augment_.random_resized_crop()) {
    img = random_resized_crop(img, oh, ow, augment_.rrc_min_scale(), 1.0, 3.0 / 4.0, 4.0 / 3.0, rng);
  } else {
    img = resize(img, oh, ow);
  }
  if (train_) {
    if (augment_.crop_padding() > 0) img = random_crop_with_padding(img, augment_.crop_padding(), rng);
    if (augment_.hflip() && rng.bernoulli(0.5)) img = hflip(img);
    if (augment_.color_jitter() > 0) img = color_jitter(img, augment_.color_jitter(), rng);
    if (augment_.randaugment_n() > 0) {
      img = rand_augment(img, augment_.randaugment_n(), static_cast<double>(augment_.randaugment_m()), rng);
    }
  }
  auto out = normalize_image(img, mean_, std_);  // [C, oh, ow]
  if (train_ && augment_.random_erasing() > 0) random_erasing_(out, augment_.random_erasing(), rng);
  return out;
}

}  // namespace ewa::datasets::image
