// Seeded point-cloud augmentations and normalisations (tensor ops, CPU generator).
#include "ewa/datasets/points/transforms.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace ewa::datasets {

namespace {
double uniform(double lo, double hi, at::Generator& gen) {
  return lo + (hi - lo) * torch::rand({1}, gen, torch::kFloat64).item<double>();
}
bool coin(double p, at::Generator& gen) { return p >= 1.0 || (p > 0 && uniform(0, 1, gen) < p); }
void require_coord(const PointCloudData& c, const char* who) {
  TORCH_CHECK(c.coord.defined() && c.coord.dim() == 2 && c.coord.size(1) == 3, who, ": ", c.source,
              " has no coord [N,3]");
}
}  // namespace

at::Generator make_point_generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = 1469598103934665603ULL;
  for (uint64_t v : {a, b, c}) {
    h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    h *= 1099511628211ULL;
  }
  return h;
}

void centre_shift(PointCloudData& c, bool apply_z) {
  require_coord(c, "centre_shift");
  if (c.size() == 0) return;
  auto mn = std::get<0>(c.coord.min(0)), mx = std::get<0>(c.coord.max(0));  // [3]
  auto shift = (mn + mx) / 2;
  shift[2] = apply_z ? mn[2] : torch::zeros({}, shift.options());
  c.coord = c.coord - shift;
}

void random_scale(PointCloudData& c, double lo, double hi, bool anisotropic, at::Generator& gen) {
  require_coord(c, "random_scale");
  TORCH_CHECK(lo > 0 && lo <= hi, "random_scale: need 0 < lo <= hi");
  auto s = torch::rand({anisotropic ? 3 : 1}, gen, torch::kFloat32) * (hi - lo) + lo;  // [3] or [1]
  c.coord = c.coord * s;
}

void random_flip(PointCloudData& c, double p, at::Generator& gen) {
  require_coord(c, "random_flip");
  auto sign = torch::ones({3}, torch::kFloat32);
  for (int axis = 0; axis < 2; ++axis) {
    if (coin(p, gen)) sign[axis] = -1.0f;
  }
  c.coord = c.coord * sign;
  if (c.has_normal()) c.normal = c.normal * sign;
}

void random_jitter(PointCloudData& c, double sigma, double clip, at::Generator& gen) {
  require_coord(c, "random_jitter");
  auto noise = (torch::randn(c.coord.sizes(), gen, torch::kFloat32) * sigma).clamp(-clip, clip);
  c.coord = c.coord + noise;
}

void random_rotate_z(PointCloudData& c, double max_angle, at::Generator& gen) {
  require_coord(c, "random_rotate_z");
  if (c.size() == 0) return;
  double th = uniform(-max_angle, max_angle, gen);
  double co = std::cos(th), si = std::sin(th);
  // Row vectors: p' = p @ R^T with R = [[co,-si,0],[si,co,0],[0,0,1]].
  auto rt = torch::tensor({co, si, 0.0, -si, co, 0.0, 0.0, 0.0, 1.0}, torch::kFloat32).view({3, 3});
  auto centre = (std::get<0>(c.coord.min(0)) + std::get<0>(c.coord.max(0))) / 2;  // [3]
  centre[2] = 0;
  c.coord = (c.coord - centre).matmul(rt) + centre;
  if (c.has_normal()) c.normal = c.normal.matmul(rt);
}

void chromatic_auto_contrast(PointCloudData& c, double p, double blend, at::Generator& gen) {
  if (!c.has_color() || !coin(p, gen)) return;
  auto col = c.color.to(torch::kFloat32);
  auto lo = std::get<0>(col.min(0, true)), hi = std::get<0>(col.max(0, true));  // [1,3]
  auto scale = 255.0 / (hi - lo).clamp_min(1.0);
  auto contrast = (col - lo) * scale;
  double b = blend < 0 ? uniform(0, 1, gen) : blend;
  c.color = ((1 - b) * col + b * contrast).round().clamp(0, 255).to(torch::kUInt8);
}

void chromatic_translation(PointCloudData& c, double p, double ratio, at::Generator& gen) {
  if (!c.has_color() || !coin(p, gen)) return;
  auto tr = (torch::rand({1, 3}, gen, torch::kFloat32) - 0.5) * 2 * 255 * ratio;  // [1,3]
  c.color = (c.color.to(torch::kFloat32) + tr).round().clamp(0, 255).to(torch::kUInt8);
}

void chromatic_jitter(PointCloudData& c, double p, double std, at::Generator& gen) {
  if (!c.has_color() || !coin(p, gen)) return;
  auto noise = torch::randn(c.color.sizes(), gen, torch::kFloat32) * (std * 255);
  c.color = (c.color.to(torch::kFloat32) + noise).round().clamp(0, 255).to(torch::kUInt8);
}

void random_dropout(PointCloudData& c, double ratio, double p, at::Generator& gen) {
  require_coord(c, "random_dropout");
  TORCH_CHECK(ratio >= 0 && ratio < 1, "random_dropout: ratio must be in [0,1)");
  if (c.size() == 0 || !coin(p, gen)) return;
  int64_t keep = std::max<int64_t>(1, static_cast<int64_t>(std::llround(c.size() * (1 - ratio))));
  auto idx = std::get<0>(torch::randperm(c.size(), gen, torch::kInt64).narrow(0, 0, keep).sort());
  c = select_points(c, idx);
}

torch::Tensor normalized_color(const PointCloudData& c, bool signed_range) {
  TORCH_CHECK(c.has_color(), "normalized_color: ", c.source, " has no colour");
  auto f = c.color.to(torch::kFloat32);
  return signed_range ? f / 127.5 - 1 : f / 255.0;
}

void normalize_coord(PointCloudData& c) {
  require_coord(c, "normalize_coord");
  if (c.size() == 0) return;
  auto centred = c.coord - c.coord.mean(0, true);
  auto r = centred.norm(2, 1).max().clamp_min(1e-12);
  c.coord = centred / r;
}

}  // namespace ewa::datasets
