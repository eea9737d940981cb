// Scene lists and loaders for every segmentation data format, single-scene reading for
// `ewa segment`, input features and the training-sample recipe (see scene_data.h).
#include "ewa/pointcloud/scene_data.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "ewa/datasets/natural_sort.h"
#include "ewa/datasets/points/cloud_formats.h"
#include "ewa/datasets/points/npy.h"
#include "ewa/datasets/points/pcd_ply.h"
#include "ewa/datasets/points/room_cache.h"
#include "ewa/datasets/points/s3dis.h"
#include "ewa/datasets/points/transforms.h"
#include "ewa/pointcloud/ops.h"

namespace fs = std::filesystem;

namespace ewa::pointcloud {

using datasets::PointCloudData;

std::vector<std::string> default_s3dis_classes() { return datasets::s3dis_class_names(); }

std::vector<std::string> seg_data_formats() {
  std::vector<std::string> f = {"s3dis_raw", "s3dis_cache", "pointnet_h5", "pointcept", "labelled_folder", "synth_rooms"};
  for (const auto* t : datasets::cloud_formats()) {
    if (std::find(f.begin(), f.end(), t->name) == f.end()) f.push_back(t->name);
  }
  return f;
}

int64_t feature_channels(const std::vector<std::string>& features) {
  return 3 * static_cast<int64_t>(features.size());
}

int64_t SegDataOptions::feature_channels() const { return pointcloud::feature_channels(features()); }

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

namespace {

using datasets::natural_less;

/// `*` (any run of characters, '/' included) and `?` (one character).
bool glob_match(const std::string& pat, const std::string& text) {
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (p < pat.size() && (pat[p] == '?' || pat[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pat.size() && pat[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

/// Area number from a path component "Area_N" (0 when none).
int64_t area_of(const std::string& path) {
  static const std::regex re("Area_([0-9]+)");
  std::smatch m;
  if (!std::regex_search(path, m, re)) return 0;
  const std::string d = m[1].str();
  return d.size() > 9 ? -1 : std::atoll(d.c_str());  // an absurd area number matches no area
}

bool in_list(const std::vector<int64_t>& v, int64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

/// Train: train_areas (or every area != test_area); val: test_area.
void split_by_area(const std::vector<SceneSet::Entry>& all, const SegDataOptions& o, int64_t test_area,
                   std::vector<SceneSet::Entry>& train, std::vector<SceneSet::Entry>& val) {
  for (const auto& e : all) {
    const int64_t a = area_of(e.name.empty() ? e.path : e.name);
    if (a == test_area) {
      val.push_back(e);
    } else if (o.train_areas().empty() ? a != 0 : in_list(o.train_areas(), a)) {
      train.push_back(e);
    }
  }
}

/// Files (or Pointcept room folders) under root selected by patterns (relative to root).
std::vector<std::string> select_paths(const std::vector<std::string>& candidates, const std::string& root,
                                      const std::vector<std::string>& patterns, const std::string& key) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& pat : patterns) {
    const bool wild = pat.find_first_of("*?") != std::string::npos;
    bool any = false;
    if (!wild) {
      fs::path p = fs::path(pat).is_absolute() ? fs::path(pat) : fs::path(root) / pat;
      if (!fs::exists(p)) {
        throw std::runtime_error("data." + key + ": '" + pat + "' not found under " + root);
      }
      const std::string s = p.lexically_normal().string();
      if (seen.insert(s).second) out.push_back(s);
      continue;
    }
    for (const auto& c : candidates) {
      const std::string rel = fs::path(c).lexically_relative(fs::path(root).lexically_normal()).generic_string();
      if (glob_match(pat, rel)) {
        any = true;
        if (seen.insert(c).second) out.push_back(c);
      }
    }
    if (!any) throw std::runtime_error("data." + key + ": pattern '" + pat + "' matches nothing under " + root);
  }
  return out;
}

std::string scene_name(const std::string& path, const std::string& root) {
  fs::path rel = fs::path(path).lexically_normal().lexically_relative(fs::path(root).lexically_normal());
  if (rel.empty() || rel.string().rfind("..", 0) == 0) rel = fs::path(path).filename();
  rel.replace_extension();
  return rel.generic_string();
}

/// Checks labels against the class count (error naming the source).
void check_labels(const PointCloudData& c, int64_t num_classes) {
  if (!c.has_segment() || c.segment.numel() == 0) return;
  const int64_t mx = c.segment.max().item<int64_t>();
  const int64_t mn = c.segment.min().item<int64_t>();
  if (mx >= num_classes || mn < -1) {
    throw std::runtime_error(c.source + ": label " + std::to_string(mx >= num_classes ? mx : mn) +
                             " outside [0, " + std::to_string(num_classes) +
                             ") (-1 = ignore); check data.class_names / data.label_map");
  }
}

/// Logs what a reader noticed: the first few damaged lines, then a count; dropped points.
void report_scene_issues(const datasets::CloudScene& s) {
  for (const auto& issue : s.issues) spdlog::warn("{}", issue.to_string());
  const int64_t more = s.damaged_lines - static_cast<int64_t>(s.issues.size());
  if (more > 0) spdlog::warn("{}: {} more damaged lines", s.cloud.source, more);
  if (s.non_finite > 0) spdlog::warn("{}: {} points with non-finite coordinates dropped", s.cloud.source, s.non_finite);
}

}  // namespace

// ------------------------------------------------------------------------------ SceneSet

struct SceneSet::Shared {
  std::mutex mutex;
  std::map<int64_t, PointCloudData> cache;
};

SceneSet::SceneSet(const SegDataOptions& options, std::vector<Entry> entries,
                   std::shared_ptr<const datasets::PointNetIndoor3d> pointnet)
    : options_(options), entries_(std::move(entries)), shared_(std::make_shared<Shared>()), pointnet_(std::move(pointnet)) {}

void SceneSet::truncate(int64_t n) {
  if (n < size()) entries_.resize(static_cast<size_t>(n));
}

PointCloudData SceneSet::load(int64_t i) const {
  if (options_.cache()) {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    auto it = shared_->cache.find(i);
    if (it != shared_->cache.end()) return it->second;
  }
  const Entry& e = entry(i);
  PointCloudData c;
  if (e.block >= 0) {
    TORCH_CHECK(pointnet_ != nullptr, "SceneSet: pointnet block without data");
    auto d = pointnet_->data.select(0, e.block);  // [P,9]
    c.coord = d.slice(1, 0, 3).contiguous();
    c.color = (d.slice(1, 3, 6) * 255.0).round().clamp(0, 255).to(torch::kUInt8).contiguous();
    c.segment = pointnet_->label.select(0, e.block).contiguous();
    c.source = e.path + " (block " + std::to_string(e.block) + ")";
    datasets::drop_non_finite_points(c);
  } else {  // every other layout: one scene through the shared format table
    datasets::CloudReadOptions ro;
    ro.label_field = options_.label_field();
    ro.label_map = options_.label_map();
    ro.class_names = options_.class_names();
    auto scene = datasets::open_cloud(e.path, ro);
    report_scene_issues(scene);
    c = std::move(scene.cloud);
    if (!c.has_segment()) {
      throw std::runtime_error(e.path + ": no labels (for PLY/PCD set data.label_field; found no field '" +
                               options_.label_field() + "')");
    }
  }
  c.name = e.name;
  if (c.source.empty()) c.source = e.path;
  if (!c.has_segment()) throw std::runtime_error(c.source + ": scene has no labels");
  if (c.size() == 0) throw std::runtime_error(c.source + ": scene has no points");
  check_labels(c, static_cast<int64_t>(options_.class_names().size()));
  if (options_.cache()) {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->cache.emplace(i, c);
  }
  return c;
}

// ------------------------------------------------------------------------------ splits

SegSplits make_seg_splits(const SegDataOptions& o, int64_t test_area) {
  const std::string& root = o.root();
  if (!fs::exists(root)) throw std::runtime_error("data.root: " + root + " does not exist");
  std::vector<SceneSet::Entry> train, val;
  std::shared_ptr<const datasets::PointNetIndoor3d> pointnet;
  std::string fmt = o.format();
  if (fmt == "synth_rooms") {  // prepared cache when *.h5 exist, else the raw layout
    fmt = "s3dis_raw";
    for (const auto& f : fs::recursive_directory_iterator(root)) {
      if (f.is_regular_file() && lower_ext(f.path()) == ".h5") {
        fmt = "s3dis_cache";
        break;
      }
    }
  }
  if (fmt == "s3dis_raw" || fmt == "s3dis_cache") {
    std::vector<SceneSet::Entry> all;
    for (const auto& p : datasets::list_cloud_scenes(root, fmt == "s3dis_raw" ? "s3dis_room" : "room_h5")) {
      all.push_back({scene_name(p, root), p, -1});
    }
    split_by_area(all, o, test_area, train, val);
  } else if (fmt == "pointnet_h5") {
    auto data = std::make_shared<datasets::PointNetIndoor3d>(datasets::read_pointnet_indoor3d(root));
    for (int64_t b = 0; b < data->data.size(0); ++b) {
      const int64_t a = data->areas[static_cast<size_t>(b)];
      SceneSet::Entry e{data->rooms[static_cast<size_t>(b)] + "#" + std::to_string(b), root, b};
      if (a == test_area) {
        val.push_back(e);
      } else if (o.train_areas().empty() || in_list(o.train_areas(), a)) {
        train.push_back(e);
      }
    }
    pointnet = data;
  } else {  // pointcept, labelled_folder (PLY + PCD), or any format of the table by name
    std::vector<std::string> candidates;
    if (fmt == "labelled_folder") {
      candidates = datasets::list_cloud_scenes(root, "ply");
      for (auto& p : datasets::list_cloud_scenes(root, "pcd")) candidates.push_back(std::move(p));
      std::sort(candidates.begin(), candidates.end(), natural_less);
    } else {
      candidates = datasets::list_cloud_scenes(root, fmt);
    }
    // One spelling per file: select_paths() normalises explicit names, so the candidates must
    // be normalised too (a root like "x/../data" would otherwise put val scenes in train).
    for (auto& c : candidates) c = fs::path(c).lexically_normal().string();
    const bool by_area = fmt != "labelled_folder" && o.val_files().empty();
    if (by_area) {
      std::vector<SceneSet::Entry> all;
      for (const auto& c : candidates) all.push_back({scene_name(c, root), c, -1});
      split_by_area(all, o, test_area, train, val);
    } else {
      auto val_paths = select_paths(candidates, root, o.val_files(), "val_files");
      std::set<std::string> val_set(val_paths.begin(), val_paths.end());
      std::vector<std::string> train_paths;
      if (o.train_files().empty()) {
        for (const auto& c : candidates) {
          if (!val_set.count(c)) train_paths.push_back(c);
        }
      } else {
        train_paths = select_paths(candidates, root, o.train_files(), "train_files");
      }
      for (const auto& p : train_paths) {
        if (val_set.count(p)) throw std::runtime_error("data: " + p + " is in both train_files and val_files");
        train.push_back({scene_name(p, root), p, -1});
      }
      for (const auto& p : val_paths) val.push_back({scene_name(p, root), p, -1});
    }
  }
  if (train.empty()) {
    throw std::runtime_error("data: no training scenes under " + root + " (format " + o.format() +
                             ", test_area " + std::to_string(test_area) + ")");
  }
  if (val.empty()) {
    throw std::runtime_error("data: no validation scenes under " + root + " (format " + o.format() +
                             ", test_area " + std::to_string(test_area) + ")");
  }
  return SegSplits{SceneSet(o, std::move(train), pointnet), SceneSet(o, std::move(val), pointnet)};
}

// ------------------------------------------------------------------------------ single scene

PointCloudData read_scene_file(const std::string& path, const SceneReadSpec& spec, int64_t* source_points) {
  datasets::CloudReadOptions ro;
  ro.label_field = spec.label_field;
  ro.label_map = spec.label_map;  // S3DIS rooms: the standard classes (labels dropped below when the model differs)
  auto scene = datasets::open_cloud(path, ro);
  report_scene_issues(scene);
  PointCloudData c = std::move(scene.cloud);
  if (!scene.class_names.empty() && scene.class_names != spec.class_names) c.segment = torch::Tensor();
  if (source_points) *source_points = scene.source_points;
  if (c.size() == 0) throw std::runtime_error(path + ": no (finite) points");
  if (c.has_segment()) {
    const int64_t k = static_cast<int64_t>(spec.class_names.size());
    const int64_t mx = c.segment.max().item<int64_t>();
    if (mx >= k || c.segment.min().item<int64_t>() < -1) {
      spdlog::warn("{}: labels outside the model's {} classes; ground truth ignored", path, k);
      c.segment = torch::Tensor();
    } else if (mx < 0) {
      c.segment = torch::Tensor();  // nothing labelled
    }
  }
  return c;
}

// ------------------------------------------------------------------------------ features

torch::Tensor make_features(const PointCloudData& c, const std::vector<std::string>& features) {
  std::vector<torch::Tensor> parts;
  for (const auto& f : features) {
    if (f == "xyz") {
      parts.push_back(c.coord.to(torch::kFloat));
    } else if (f == "rgb") {
      if (!c.has_color()) throw std::runtime_error(c.source + ": feature rgb requested but the scene has no colour");
      parts.push_back(c.color.to(torch::kFloat) / 255.0);
    } else if (f == "normal") {
      if (!c.has_normal()) throw std::runtime_error(c.source + ": feature normal requested but the scene has no normals");
      parts.push_back(c.normal.to(torch::kFloat));
    } else {
      throw std::runtime_error("unknown feature '" + f + "' (xyz, rgb, normal)");
    }
  }
  return torch::cat(parts, 1).contiguous();  // [N, 3 * features]
}

torch::Tensor shift_to_origin(const torch::Tensor& coord) {
  if (coord.size(0) == 0) return coord;
  return coord - std::get<0>(coord.min(0, /*keepdim=*/true));  // [N,3]
}

PointCloudData make_training_sample(PointCloudData c, const SegDataOptions& o, at::Generator& gen) {
  const auto& t = o.transforms();
  if (t.centre_shift()) datasets::centre_shift(c, true);
  if (t.scale().size() == 2) datasets::random_scale(c, t.scale()[0], t.scale()[1], t.anisotropic_scale(), gen);
  if (t.flip_p() > 0) datasets::random_flip(c, t.flip_p(), gen);
  if (t.rotate_z_deg() > 0) datasets::random_rotate_z(c, t.rotate_z_deg() * M_PI / 180.0, gen);
  if (t.jitter_sigma() > 0) datasets::random_jitter(c, t.jitter_sigma(), t.jitter_clip(), gen);
  if (c.has_color()) {
    if (t.auto_contrast_p() > 0) datasets::chromatic_auto_contrast(c, t.auto_contrast_p(), -1.0, gen);
    if (t.color_translation_p() > 0) {
      datasets::chromatic_translation(c, t.color_translation_p(), t.color_translation_ratio(), gen);
    }
    if (t.color_jitter_p() > 0) datasets::chromatic_jitter(c, t.color_jitter_p(), t.color_jitter_std(), gen);
  }
  if (t.dropout_ratio() > 0) datasets::random_dropout(c, t.dropout_ratio(), t.dropout_p(), gen);
  if (o.grid_size() > 0) {
    auto offset = torch::full({1}, c.size(), torch::kLong);
    auto g = ops::grid_sample(c.coord, offset, o.grid_size(), ops::GridSampleMode::kTrain, gen);
    c = datasets::select_points(c, g.fragments.at(0));
  }
  if (o.max_points() > 0 && c.size() > o.max_points()) {
    const int64_t pick = torch::randint(c.size(), {1}, gen, torch::kLong).item<int64_t>();
    auto centre = c.coord[pick].clone();  // [3]
    auto idx = ops::sphere_crop(c.coord, centre, o.max_points());
    c = datasets::select_points(c, idx);
  }
  c.coord = shift_to_origin(c.coord);
  return c;
}

}  // namespace ewa::pointcloud
