// Scene model: loading and label resolution, validation, colour modes, visibility,
// deterministic display subsample and per-class metrics.
#include "ewa/viewer/scene.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>

#include "ewa/datasets/points/cloud_formats.h"

namespace ewa::viewer {

namespace {

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return v < 0 ? "-" + s : s;
}

constexpr std::array<float, 3> kDim = {0.25f, 0.25f, 0.25f};
constexpr std::array<float, 3> kCorrectGrey = {0.62f, 0.62f, 0.62f};
constexpr std::array<float, 3> kWrongRed = {0.90f, 0.10f, 0.10f};

// Five anchors of viridis; linear interpolation in between.
std::array<float, 3> colormap(float t) {
  static const float a[5][3] = {{0.267f, 0.005f, 0.329f}, {0.229f, 0.322f, 0.546f}, {0.128f, 0.567f, 0.551f},
                                {0.369f, 0.789f, 0.383f}, {0.993f, 0.906f, 0.144f}};
  if (!std::isfinite(t)) t = 0.f;
  t = std::clamp(t, 0.f, 1.f) * 4.f;
  int k = std::min(3, static_cast<int>(t));
  float f = t - static_cast<float>(k);
  return {a[k][0] + f * (a[k + 1][0] - a[k][0]), a[k][1] + f * (a[k + 1][1] - a[k][1]),
          a[k][2] + f * (a[k + 1][2] - a[k][2])};
}

}  // namespace

ColorMode parse_color_mode(const std::string& s) {
  if (s == "rgb") return ColorMode::kRgb;
  if (s == "gt") return ColorMode::kGt;
  if (s == "pred") return ColorMode::kPred;
  if (s == "error") return ColorMode::kError;
  if (s == "confidence") return ColorMode::kConfidence;
  throw std::invalid_argument("unknown colour mode '" + s + "' (rgb|gt|pred|error|confidence)");
}

const char* color_mode_name(ColorMode m) {
  switch (m) {
    case ColorMode::kRgb: return "rgb";
    case ColorMode::kGt: return "gt";
    case ColorMode::kPred: return "pred";
    case ColorMode::kError: return "error";
    case ColorMode::kConfidence: return "confidence";
  }
  return "?";
}

namespace {
// int64 [N] tensor -> vector (labels beyond int32 become -2: outside every class table).
std::vector<int32_t> label_vector(const torch::Tensor& t) {
  if (!t.defined() || t.numel() == 0) return {};
  auto v = t.reshape({-1}).to(torch::kInt64);
  v = torch::where(v.gt(INT32_MAX).logical_or(v.lt(INT32_MIN)), torch::full_like(v, -2), v).to(torch::kInt32).contiguous();
  return std::vector<int32_t>(v.data_ptr<int32_t>(), v.data_ptr<int32_t>() + v.numel());
}
}  // namespace

Scene Scene::load(const SceneInputs& in) {
  LabelTable table = LabelTable::from_spec(in.classes);
  // Every point format goes through the shared datasets table (the viewer parses no file).
  datasets::CloudReadOptions ro;
  ro.label_field = "label";
  datasets::CloudScene scene = datasets::open_cloud(in.cloud_path, ro);
  const datasets::PointCloudData& cloud = scene.cloud;
  const int64_t n = cloud.size();
  auto extra = [&](const char* k) {
    auto it = cloud.extra.find(k);
    return it == cloud.extra.end() ? torch::Tensor() : it->second;
  };
  std::vector<int32_t> label = label_vector(cloud.segment);
  std::vector<int32_t> gt, pred;
  if (auto t = extra("gt"); t.defined() && !t.is_floating_point()) gt = label_vector(t);
  if (auto t = extra("pred"); t.defined() && !t.is_floating_point()) pred = label_vector(t);
  // A lone `label` field is ground truth, unless the file also carries `gt` (it is then the
  // prediction, as `ewa segment` writes), a header comment says "label=pred", or only --gt
  // was given.
  bool label_is_pred = !gt.empty() || (!in.gt_path.empty() && in.pred_path.empty());
  for (const auto& c : scene.comments)
    if (c.find("label=pred") != std::string::npos) label_is_pred = true;
  if (!label.empty()) {
    if (label_is_pred && pred.empty()) pred = std::move(label);
    else if (!label_is_pred && gt.empty()) gt = std::move(label);
  }
  // Label files index the source points; keep the rows of the points that were read.
  auto from_file = [&](const std::string& file, const char* role, const char* what) {
    torch::Tensor t = datasets::read_point_labels(file, role);
    const int64_t expect = scene.source_points;
    if (t.numel() != expect)
      throw std::runtime_error(file + ": " + what + " file has " + with_commas(t.numel()) + " labels but the cloud " +
                               in.cloud_path + " has " + with_commas(expect) + " points");
    if (cloud.index.defined() && cloud.index.numel() == n && n != expect) t = t.index_select(0, cloud.index);
    return label_vector(t);
  };
  if (!in.pred_path.empty()) pred = from_file(in.pred_path, "pred", "prediction");
  if (!in.gt_path.empty()) gt = from_file(in.gt_path, "gt", "ground-truth");
  auto xyz_t = cloud.coord.to(torch::kFloat32).contiguous();
  std::vector<float> xyz(xyz_t.data_ptr<float>(), xyz_t.data_ptr<float>() + xyz_t.numel());
  std::vector<uint8_t> rgb;
  if (cloud.has_color()) {
    auto c = cloud.color.contiguous();
    rgb.assign(c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + c.numel());
  }
  auto float_vector = [](const torch::Tensor& t) {
    auto c = t.to(torch::kFloat32).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  };
  std::vector<float> confidence;
  if (auto t = extra("confidence"); t.defined()) confidence = float_vector(t);
  // A prediction given as a point cloud (an `ewa segment` PLY next to the ground-truth file)
  // brings its confidence along; it is kept in source order like the labels.
  if (!in.pred_path.empty()) {
    const datasets::CloudFormat* f = datasets::detect_cloud_format(in.pred_path);
    if (f != nullptr && (std::string(f->name) == "ply" || std::string(f->name) == "pcd")) {
      datasets::CloudScene ps = f->load(in.pred_path, datasets::CloudReadOptions{});
      auto it = ps.cloud.extra.find("confidence");
      if (it != ps.cloud.extra.end() && it->second.numel() == scene.source_points) {
        torch::Tensor t = it->second.reshape({-1});
        if (cloud.index.defined() && cloud.index.numel() == n && n != scene.source_points) t = t.index_select(0, cloud.index);
        confidence = float_vector(t);
      }
    }
  }
  Scene out = from_arrays(std::move(xyz), std::move(rgb), std::move(gt), std::move(pred), std::move(confidence),
                          std::move(table), in.max_points, in.cloud_path);
  if (cloud.index.defined() && cloud.index.numel() == n && n != scene.source_points) {
    auto idx = cloud.index.to(torch::kInt64).contiguous();
    out.source_index_.assign(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + n);
  }
  return out;
}

Scene Scene::from_arrays(std::vector<float> xyz, std::vector<uint8_t> rgb, std::vector<int32_t> gt,
                         std::vector<int32_t> pred, std::vector<float> confidence, LabelTable table,
                         int64_t max_points, const std::string& source) {
  Scene s;
  s.source_ = source;
  if (xyz.size() % 3 != 0)
    throw std::runtime_error(source + ": coordinate array size " + std::to_string(xyz.size()) +
                             " is not a multiple of 3");
  s.n_ = static_cast<int64_t>(xyz.size() / 3);
  s.xyz_ = std::move(xyz);
  s.rgb_ = std::move(rgb);
  s.gt_ = std::move(gt);
  s.pred_ = std::move(pred);
  s.confidence_ = std::move(confidence);
  s.table_ = std::move(table);
  s.validate_and_finish(max_points);
  return s;
}

void Scene::validate_and_finish(int64_t max_points) {
  if (n_ == 0) throw std::runtime_error(source_ + ": the cloud has no points");
  if (table_.size() == 0) throw std::runtime_error(source_ + ": empty class table");
  auto check_size = [&](size_t got, size_t per, const char* what) {
    if (got != 0 && got != static_cast<size_t>(n_) * per)
      throw std::runtime_error(source_ + ": " + what + " has " + with_commas(static_cast<int64_t>(got / per)) +
                               " entries but the cloud has " + with_commas(n_) + " points");
  };
  check_size(rgb_.size(), 3, "colour");
  check_size(gt_.size(), 1, "ground truth");
  check_size(pred_.size(), 1, "prediction");
  check_size(confidence_.size(), 1, "confidence");
  auto check_range = [&](const std::vector<int32_t>& v, const char* what) {
    int64_t bad = 0, first = -1;
    int32_t worst = 0;
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i] >= table_.size()) {
        if (bad++ == 0) first = static_cast<int64_t>(i);
        worst = std::max(worst, v[i]);
      }
    if (bad > 0)
      throw std::runtime_error(source_ + ": " + with_commas(bad) + " " + what + " labels are outside the palette of " +
                               std::to_string(table_.size()) + " classes (first at point " + std::to_string(first) +
                               ", max label " + std::to_string(worst) +
                               "); pass a class file with --classes FILE");
  };
  check_range(gt_, "ground-truth");
  check_range(pred_, "prediction");

  bmin_ = {std::numeric_limits<float>::max(), std::numeric_limits<float>::max(), std::numeric_limits<float>::max()};
  bmax_ = {std::numeric_limits<float>::lowest(), std::numeric_limits<float>::lowest(),
           std::numeric_limits<float>::lowest()};
  for (int64_t i = 0; i < n_; ++i)
    for (int c = 0; c < 3; ++c) {
      float v = xyz_[static_cast<size_t>(i * 3 + c)];
      if (!std::isfinite(v)) continue;  // organised clouds carry NaN for missing depth
      bmin_[c] = std::min(bmin_[c], v);
      bmax_[c] = std::max(bmax_[c], v);
    }
  if (bmin_[0] > bmax_[0]) throw std::runtime_error(source_ + ": no finite point coordinates");
  visible_.assign(static_cast<size_t>(table_.size()), 1);

  // Metrics over all points.
  int C = table_.size();
  metrics_ = Metrics{};
  metrics_.classes.assign(static_cast<size_t>(C), ClassStats{});
  metrics_.has_iou = has_gt() && has_pred();
  for (int64_t i = 0; i < n_; ++i) {
    int32_t g = has_gt() ? gt_[static_cast<size_t>(i)] : -1;
    int32_t p = has_pred() ? pred_[static_cast<size_t>(i)] : -1;
    if (g >= 0) metrics_.classes[static_cast<size_t>(g)].gt_count++;
    if (p >= 0) metrics_.classes[static_cast<size_t>(p)].pred_count++;
    if (!metrics_.has_iou || g < 0) continue;
    metrics_.evaluated++;
    if (p == g) {
      metrics_.correct++;
      metrics_.classes[static_cast<size_t>(g)].tp++;
    } else {
      metrics_.classes[static_cast<size_t>(g)].fn++;
      if (p >= 0) metrics_.classes[static_cast<size_t>(p)].fp++;
    }
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  int used = 0;
  for (auto& c : metrics_.classes) {
    int64_t uni = c.tp + c.fp + c.fn;
    c.iou = (metrics_.has_iou && uni > 0) ? static_cast<double>(c.tp) / static_cast<double>(uni) : nan;
    if (!std::isnan(c.iou)) {
      sum += c.iou;
      ++used;
    }
  }
  metrics_.miou = used > 0 ? sum / used : nan;
  metrics_.overall_accuracy = metrics_.evaluated > 0
                                  ? static_cast<double>(metrics_.correct) / static_cast<double>(metrics_.evaluated)
                                  : nan;
  set_max_points(max_points);
}

void Scene::set_max_points(int64_t max_points) {
  if (max_points < 0) throw std::invalid_argument("max_points must be >= 0");
  if (max_points == 0 || n_ <= max_points) {
    subsample_.resize(static_cast<size_t>(n_));
    std::iota(subsample_.begin(), subsample_.end(), int64_t{0});
    return;
  }
  // Partial Fisher-Yates with a fixed seed: the same cloud always shows the same points.
  std::vector<int64_t> idx(static_cast<size_t>(n_));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  std::mt19937_64 rng(0x5eedf00dULL);
  for (int64_t k = 0; k < max_points; ++k) {
    std::uniform_int_distribution<int64_t> pick(k, n_ - 1);
    std::swap(idx[static_cast<size_t>(k)], idx[static_cast<size_t>(pick(rng))]);
  }
  idx.resize(static_cast<size_t>(max_points));
  std::sort(idx.begin(), idx.end());
  subsample_ = std::move(idx);
}

std::string Scene::subsample_note() const {
  if (!subsampled()) return "";
  return "showing " + with_commas(static_cast<int64_t>(subsample_.size())) + " of " + with_commas(n_) +
         " points (display subsample; metrics use all points)";
}

std::vector<ColorMode> Scene::available_modes() const {
  std::vector<ColorMode> m = {ColorMode::kRgb};
  if (has_gt()) m.push_back(ColorMode::kGt);
  if (has_pred()) m.push_back(ColorMode::kPred);
  if (has_gt() && has_pred()) m.push_back(ColorMode::kError);
  if (has_confidence()) m.push_back(ColorMode::kConfidence);
  return m;
}

bool Scene::mode_available(ColorMode m) const {
  auto a = available_modes();
  return std::find(a.begin(), a.end(), m) != a.end();
}

ColorMode Scene::default_mode() const {
  return has_pred() ? ColorMode::kPred : has_gt() ? ColorMode::kGt : ColorMode::kRgb;
}

std::array<float, 3> Scene::label_color(int32_t label) const {
  if (label < 0 || label >= table_.size()) return kDim;
  const auto& c = table_.colors[static_cast<size_t>(label)];
  return {c[0] / 255.f, c[1] / 255.f, c[2] / 255.f};
}

std::vector<uint8_t> Scene::error_mask() const {
  if (!(has_gt() && has_pred())) throw std::invalid_argument(source_ + ": error mask needs ground truth and prediction");
  std::vector<uint8_t> m(static_cast<size_t>(n_));
  for (size_t i = 0; i < m.size(); ++i) {
    if (gt_[i] < 0 || pred_[i] < 0) m[i] = kUnlabelled;
    else m[i] = gt_[i] == pred_[i] ? kCorrect : kWrong;
  }
  return m;
}

std::array<float, 3> Scene::point_color(ColorMode mode, int64_t idx) const {
  const size_t i = static_cast<size_t>(idx);
  switch (mode) {
    case ColorMode::kRgb:
      if (has_rgb()) return {rgb_[i * 3] / 255.f, rgb_[i * 3 + 1] / 255.f, rgb_[i * 3 + 2] / 255.f};
      {
        float span = std::max(bmax_[2] - bmin_[2], 1e-6f);
        float t = std::isfinite(xyz_[i * 3 + 2]) ? (xyz_[i * 3 + 2] - bmin_[2]) / span : 0.f;
        float g = 0.35f + 0.5f * t;
        return {g, g, g};
      }
    case ColorMode::kGt: return label_color(gt_[i]);
    case ColorMode::kPred: return label_color(pred_[i]);
    case ColorMode::kError:
      if (gt_[i] < 0 || pred_[i] < 0) return kDim;
      return gt_[i] == pred_[i] ? kCorrectGrey : kWrongRed;
    case ColorMode::kConfidence: return colormap(confidence_[i]);
  }
  return kDim;
}

std::vector<float> Scene::colors_of(ColorMode mode, const std::vector<int64_t>& idx) const {
  if (!mode_available(mode))
    throw std::invalid_argument(source_ + ": colour mode '" + color_mode_name(mode) +
                                "' needs data this scene lacks");
  std::vector<float> out(idx.size() * 3);
  for (size_t k = 0; k < idx.size(); ++k) {
    if (idx[k] < 0 || idx[k] >= n_) throw std::out_of_range("point index " + std::to_string(idx[k]) + " out of range");
    auto c = point_color(mode, idx[k]);
    out[k * 3] = c[0];
    out[k * 3 + 1] = c[1];
    out[k * 3 + 2] = c[2];
  }
  return out;
}

std::vector<float> Scene::colors(ColorMode mode) const {
  std::vector<int64_t> all(static_cast<size_t>(n_));
  std::iota(all.begin(), all.end(), int64_t{0});
  return colors_of(mode, all);
}

void Scene::set_class_visible(int cls, bool visible) {
  if (cls < 0 || cls >= table_.size())
    throw std::out_of_range("class " + std::to_string(cls) + " outside [0, " + std::to_string(table_.size()) + ")");
  visible_[static_cast<size_t>(cls)] = visible ? 1 : 0;
}

bool Scene::class_visible(int cls) const {
  return cls >= 0 && cls < table_.size() && visible_[static_cast<size_t>(cls)] != 0;
}

void Scene::set_all_visible(bool visible) { std::fill(visible_.begin(), visible_.end(), visible ? 1 : 0); }

int32_t Scene::mode_label(ColorMode mode, int64_t i) const {
  size_t k = static_cast<size_t>(i);
  if (mode == ColorMode::kPred) return pred_[k];
  if (has_gt()) return gt_[k];
  if (has_pred()) return pred_[k];
  return -1;
}

std::vector<int64_t> Scene::display_indices(ColorMode mode) const {
  bool any_hidden = std::find(visible_.begin(), visible_.end(), 0) != visible_.end();
  bool labelled = mode == ColorMode::kPred ? has_pred() : (has_gt() || has_pred());
  std::vector<int64_t> out;
  out.reserve(subsample_.size());
  for (int64_t i : subsample_) {
    const float* p = &xyz_[static_cast<size_t>(i) * 3];
    if (!std::isfinite(p[0]) || !std::isfinite(p[1]) || !std::isfinite(p[2])) continue;
    if (any_hidden && labelled) {
      int32_t l = mode_label(mode, i);
      if (l >= 0 && !visible_[static_cast<size_t>(l)]) continue;
    }
    out.push_back(i);
  }
  return out;
}

namespace {
std::string fixed3(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", v);
  return buf;
}
Rgb8 to_rgb8(const std::array<float, 3>& c) {
  auto b = [](float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.f, 1.f) * 255.f)); };
  return {b(c[0]), b(c[1]), b(c[2])};
}
std::string percent(int64_t part, int64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), " (%.1f%%)", whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return buf;
}
}  // namespace

Legend Scene::legend(ColorMode mode) const {
  if (!mode_available(mode))
    throw std::invalid_argument(source_ + ": colour mode '" + color_mode_name(mode) + "' needs data this scene lacks");
  Legend lg;
  const Metrics& m = metrics_;
  switch (mode) {
    case ColorMode::kRgb: lg.title = has_rgb() ? "colour" : "height"; break;
    case ColorMode::kGt:
    case ColorMode::kPred: {
      const bool gt = mode == ColorMode::kGt;
      lg.title = gt ? "ground truth" : "prediction";
      for (int c = 0; c < table_.size(); ++c) {
        const ClassStats& cs = m.classes[static_cast<size_t>(c)];
        const int64_t count = gt ? cs.gt_count : cs.pred_count;
        if (count == 0 && !(m.has_iou && cs.gt_count + cs.pred_count > 0)) continue;
        LegendRow r{table_.colors[static_cast<size_t>(c)], table_.names[static_cast<size_t>(c)], with_commas(count)};
        if (m.has_iou) r.value += "  IoU " + fixed3(cs.iou);
        if (!class_visible(c)) r.value += "  hidden";
        lg.rows.push_back(std::move(r));
      }
      break;
    }
    case ColorMode::kError: {
      lg.title = "errors (gt vs pred)";
      int64_t unl = n_ - m.evaluated;
      lg.rows.push_back({to_rgb8(kCorrectGrey), "correct", with_commas(m.correct) + percent(m.correct, m.evaluated)});
      lg.rows.push_back({to_rgb8(kWrongRed), "wrong", with_commas(m.evaluated - m.correct) +
                                                          percent(m.evaluated - m.correct, m.evaluated)});
      if (unl > 0) lg.rows.push_back({to_rgb8(kDim), "unlabelled", with_commas(unl)});
      break;
    }
    case ColorMode::kConfidence: {
      lg.title = "confidence";
      int64_t bins[5] = {0, 0, 0, 0, 0};
      double sum = 0, sum_wrong = 0;
      int64_t wrong = 0;
      for (size_t i = 0; i < confidence_.size(); ++i) {
        float c = std::isfinite(confidence_[i]) ? std::clamp(confidence_[i], 0.f, 1.f) : 0.f;
        bins[std::min(4, static_cast<int>(c * 5.f))]++;
        sum += c;
        if (m.has_iou && gt_[i] >= 0 && pred_[i] >= 0 && gt_[i] != pred_[i]) {
          sum_wrong += c;
          ++wrong;
        }
      }
      for (int b = 4; b >= 0; --b) {
        char name[32];
        std::snprintf(name, sizeof(name), "%.1f-%.1f", b * 0.2, (b + 1) * 0.2);
        lg.rows.push_back({to_rgb8(colormap((static_cast<float>(b) + 0.5f) / 5.f)), name,
                           with_commas(bins[b]) + percent(bins[b], n_)});
      }
      lg.notes.push_back("mean " + fixed3(sum / static_cast<double>(n_)) +
                         (wrong > 0 ? ", on wrong points " + fixed3(sum_wrong / static_cast<double>(wrong)) : ""));
      break;
    }
  }
  if (m.has_iou && mode != ColorMode::kRgb)
    lg.notes.push_back("OA " + fixed3(m.overall_accuracy) + "  mIoU " + fixed3(m.miou));
  if (subsampled())
    lg.notes.push_back("display: " + with_commas(static_cast<int64_t>(subsample_.size())) + " of " + with_commas(n_) +
                       " points");
  else
    lg.notes.push_back(with_commas(n_) + " points");
  return lg;
}

PointInfo Scene::point_info(int64_t i) const {
  if (i < 0 || i >= n_) throw std::out_of_range("point " + std::to_string(i) + " outside [0, " + std::to_string(n_) + ")");
  const size_t k = static_cast<size_t>(i);
  PointInfo p;
  p.index = i;
  p.source_index = source_index(i);
  p.xyz = {xyz_[k * 3], xyz_[k * 3 + 1], xyz_[k * 3 + 2]};
  p.has_gt = has_gt();
  p.has_pred = has_pred();
  p.has_confidence = has_confidence();
  if (p.has_gt) p.gt = gt_[k];
  if (p.has_pred) p.pred = pred_[k];
  if (p.has_confidence) p.confidence = confidence_[k];
  return p;
}

std::string Scene::describe_point(int64_t i, const std::string& sep) const {
  PointInfo p = point_info(i);
  auto name = [this](int32_t l) {
    return l < 0 ? std::string("unlabelled") : table_.names[static_cast<size_t>(l)];
  };
  char xyz[96];
  std::snprintf(xyz, sizeof(xyz), " (%.3f, %.3f, %.3f)", p.xyz[0], p.xyz[1], p.xyz[2]);
  std::string s = "point " + with_commas(p.source_index) + xyz;
  if (p.has_gt) s += sep + "gt " + name(p.gt);
  if (p.has_pred) s += sep + "pred " + name(p.pred);
  if (p.has_gt && p.has_pred && p.gt >= 0 && p.pred >= 0) s += p.gt == p.pred ? " (right)" : " (wrong)";
  if (p.has_confidence) s += sep + "confidence " + fixed3(p.confidence);
  return s;
}

int64_t Scene::pick(const std::array<float, 16>& m, int width, int height, float px, float py, float radius_px,
                    const std::vector<int64_t>& candidates) const {
  if (width <= 0 || height <= 0) return -1;
  const float r2 = radius_px * radius_px;
  int64_t best = -1;
  float best_depth = std::numeric_limits<float>::max();
  for (int64_t i : candidates) {
    if (i < 0 || i >= n_) continue;
    const float* p = &xyz_[static_cast<size_t>(i) * 3];
    // Column-major: clip = M * (x, y, z, 1).
    const float cx = m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12];
    const float cy = m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13];
    const float cz = m[2] * p[0] + m[6] * p[1] + m[10] * p[2] + m[14];
    const float cw = m[3] * p[0] + m[7] * p[1] + m[11] * p[2] + m[15];
    if (!(cw > 0.f)) continue;  // behind the camera (or NaN)
    const float nz = cz / cw;
    if (nz < -1.f || nz > 1.f) continue;  // outside the near/far planes
    const float sx = (cx / cw * 0.5f + 0.5f) * static_cast<float>(width);
    const float sy = (0.5f - cy / cw * 0.5f) * static_cast<float>(height);
    const float dx = sx - px, dy = sy - py;
    if (dx * dx + dy * dy > r2) continue;
    if (nz < best_depth) {
      best_depth = nz;
      best = i;
    }
  }
  return best;
}

std::string Scene::metrics_table() const {
  std::ostringstream os;
  os << std::left << std::setw(14) << "class" << std::right << std::setw(12) << "gt points" << std::setw(12)
     << "pred points" << std::setw(9) << "IoU" << "\n";
  for (int c = 0; c < table_.size(); ++c) {
    const auto& s = metrics_.classes[static_cast<size_t>(c)];
    os << std::left << std::setw(14) << table_.names[static_cast<size_t>(c)] << std::right << std::setw(12)
       << (has_gt() ? with_commas(s.gt_count) : "-") << std::setw(12) << (has_pred() ? with_commas(s.pred_count) : "-");
    if (std::isnan(s.iou)) os << std::setw(9) << "-";
    else os << std::setw(9) << std::fixed << std::setprecision(3) << s.iou;
    os << "\n";
  }
  if (metrics_.has_iou)
    os << "overall accuracy " << std::fixed << std::setprecision(4) << metrics_.overall_accuracy << ", mIoU "
       << metrics_.miou << " over " << with_commas(metrics_.evaluated) << " labelled points\n";
  return os.str();
}

}  // namespace ewa::viewer
