// The point-format table, open_cloud(), scene listing, label files, and the helpers the
// format files share (formats/format_util.h). One format = one formats/<name>.cpp + one line
// in kFormats below.
#include "ewa/datasets/points/cloud_formats.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <fstream>
#include <set>

#include "ewa/datasets/bounded_io.h"
#include "ewa/datasets/natural_sort.h"
#include "ewa/datasets/points/npy.h"
#include "formats/format_util.h"
#include "util.h"

namespace ewa::datasets {

using namespace detail;

namespace fmt {
// Defined one per file in formats/<name>.cpp.
extern const CloudFormat kPly, kPcd, kNpy, kModelNetTxt, kText, kOff, kRoomH5, kModelNetH5, kPointNetH5, kS3disRoom,
    kPointcept;
}  // namespace fmt

const std::vector<const CloudFormat*>& cloud_formats() {
  // Detection order: the first format whose detect() accepts a path reads it.
  static const std::vector<const CloudFormat*> kFormats = {
      &fmt::kPly,         // .ply
      &fmt::kPcd,         // .pcd
      &fmt::kNpy,         // .npy [N,3+]
      &fmt::kModelNetTxt, // .txt with comma-separated x,y,z[,nx,ny,nz]
      &fmt::kText,        // .txt .xyz .pts .xyzrgb: x y z [r g b] [label]
      &fmt::kOff,         // .off meshes
      &fmt::kRoomH5,      // .h5 prepared rooms (coord, color, segment, instance)
      &fmt::kModelNetH5,  // .h5#k ModelNet40 2048-point shapes
      &fmt::kPointNetH5,  // .h5#k PointNet indoor3d blocks
      &fmt::kS3disRoom,   // Area_N/<room>/Annotations/*.txt
      &fmt::kPointcept,   // <room>/coord.npy ...
  };
  return kFormats;
}

std::string cloud_format_names() {
  std::string s;
  for (const auto* f : cloud_formats()) s += (s.empty() ? "" : ", ") + std::string(f->name);
  return s;
}

const CloudFormat& cloud_format(const std::string& name) {
  for (const auto* f : cloud_formats()) {
    if (name == f->name) return *f;
  }
  throw DataError("unknown point format '" + name + "' (known: " + cloud_format_names() + ")");
}

const CloudFormat* detect_cloud_format(const std::string& path) {
  for (const auto* f : cloud_formats()) {
    if (f->detect(path)) return f;
  }
  return nullptr;
}

CloudScene open_cloud(const std::string& path, const CloudReadOptions& options) {
  const auto item = fmt::split_item(path);
  if (!fs::exists(item.first)) bounded::fail(path, "no such file or folder");
  const CloudFormat* f = detect_cloud_format(path);
  if (f == nullptr) {
    bounded::fail(path, std::string(fs::is_directory(item.first) ? "a folder" : "a file") +
                            " in no known point format (formats: " + cloud_format_names() +
                            "; folders: an S3DIS room with Annotations/ or a Pointcept room with coord.npy)");
  }
  try {
    CloudScene s = f->load(path, options);
    s.format = f->name;
    return fmt::finish_scene(std::move(s), path, options);
  } catch (const DataError&) {
    throw;
  } catch (const std::bad_alloc&) {
    bounded::fail(path, "out of memory while reading");  // never the allocator's text
  } catch (const std::exception& e) {
    // LibTorch checks (c10::Error) and HDF5 wrappers: one line, no backtrace, naming the file.
    std::string m = one_line_error(e);
    if (m.find(item.first) == std::string::npos) m = item.first + ": " + m;
    throw DataError(m);
  }
}

std::vector<std::string> list_cloud_scenes(const std::string& root, const std::string& format) {
  if (!fs::is_directory(root)) bounded::fail(root, "not a folder");
  if (!format.empty()) return cloud_format(format).list(root);
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto* f : cloud_formats()) {
    for (auto& s : f->list(root)) {
      if (seen.insert(s).second) out.push_back(std::move(s));
    }
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return detail::natural_less(a, b); });
  return out;
}

namespace {
torch::Tensor read_point_labels_unchecked(const std::string& path, const std::string& role) {
  if (!fs::is_regular_file(path)) bounded::fail(path, "no such file");
  const std::string ext = to_lower(fs::path(path).extension().string());
  if (ext == ".npy") {
    auto a = read_npy(path);
    if (a.dim() == 2 && a.size(1) == 1) a = a.view({-1});
    if (a.dim() != 1) bounded::fail(path, "a label .npy must be [N] or [N,1]");
    if (a.is_floating_point()) {
      if (!torch::isfinite(a).all().item<bool>() || !a.eq(a.round()).all().item<bool>()) {
        bounded::fail(path, "labels are not all integers");
      }
    }
    return a.to(torch::kInt64);
  }
  if (ext == ".txt" || ext == ".label" || ext == ".labels") {
    const std::string text = read_whole_file(path);
    std::vector<int64_t> out;
    out.reserve(text.size() / 2);
    int64_t line = 0;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) eol = text.size();
      ++line;
      auto toks = split_ws(std::string_view(text).substr(pos, std::min<size_t>(eol - pos, 4096)));
      pos = eol + 1;
      if (toks.empty() || toks[0][0] == '#') continue;
      int64_t v = 0;
      if (!parse_int_token(toks.back(), v) || v < INT32_MIN || v > INT32_MAX) {
        bounded::fail(path, std::to_string(line) + ": not an integer label '" + toks.back().substr(0, 40) + "'");
      }
      out.push_back(v);
    }
    return torch::tensor(out, torch::kInt64);
  }
  const CloudFormat* f = detect_cloud_format(path);
  if (f == nullptr) {
    bounded::fail(path, "unknown label file type '" + ext + "' (.npy, .txt/.label/.labels, or a point cloud)");
  }
  CloudReadOptions o;
  CloudScene s = f->load(path, o);  // no dropping: labels stay in source order
  const std::vector<std::string> order =
      role == "gt" ? std::vector<std::string>{"gt", "label", "pred"} : std::vector<std::string>{"pred", "label", "gt"};
  for (const auto& k : order) {
    if (k == "label" && s.cloud.has_segment()) return s.cloud.segment;
    auto it = s.cloud.extra.find(k);
    if (k != "label" && it != s.cloud.extra.end()) {
      if (it->second.is_floating_point()) bounded::fail(path, "field '" + k + "' is not an integer field");
      return it->second.to(torch::kInt64).reshape({-1});
    }
  }
  bounded::fail(path, "has no label / pred / gt field to use as " + role);
}
}  // namespace

torch::Tensor read_point_labels(const std::string& path, const std::string& role) {
  try {
    return read_point_labels_unchecked(path, role);
  } catch (const DataError&) {
    throw;
  } catch (const std::bad_alloc&) {
    bounded::fail(path, "out of memory while reading");
  } catch (const std::exception& e) {
    std::string m = one_line_error(e);
    if (m.find(path) == std::string::npos) m = path + ": " + m;
    throw DataError(m);
  }
}

std::vector<ClassFileEntry> read_class_file(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) bounded::fail(path, "cannot open class file");
  if (size > (16u << 20)) bounded::fail(path, "class file of " + bounded::human_bytes(static_cast<int64_t>(size)) + " (limit 16 MB)");
  const std::string text = read_whole_file(path);
  std::vector<ClassFileEntry> out;
  int64_t line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    ++line;
    auto toks = split_ws(std::string_view(text).substr(pos, eol - pos));
    pos = eol + 1;
    if (toks.empty() || toks[0][0] == '#') continue;
    const std::string where = path + ":" + std::to_string(line);
    if (toks.size() != 1 && toks.size() != 4) {
      bounded::fail(where, "expected 'name' or 'name r g b', found " + std::to_string(toks.size()) + " fields");
    }
    ClassFileEntry e;
    e.name = toks[0];
    if (toks.size() == 4) {
      int* rgb[3] = {&e.r, &e.g, &e.b};
      for (int k = 0; k < 3; ++k) {
        int64_t v = -1;
        if (!parse_int_token(toks[static_cast<size_t>(k + 1)], v) || v < 0 || v > 255) {
          bounded::fail(where, "colour component '" + toks[static_cast<size_t>(k + 1)].substr(0, 20) +
                                   "' is not an integer in 0..255");
        }
        *rgb[k] = static_cast<int>(v);
      }
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) bounded::fail(path, "class file lists no classes");
  return out;
}

// ------------------------------------------------------------------ helpers of the formats

namespace fmt {

bool file_with_ext(const std::string& path, std::initializer_list<const char*> exts) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  const std::string ext = to_lower(fs::path(path).extension().string());
  for (const char* e : exts) {
    if (ext == e) return true;
  }
  return false;
}

std::vector<std::string> list_files(const std::string& root, bool (*keep)(const std::string&)) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it.depth() > 4) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && keep(it->path().string())) out.push_back(it->path().lexically_normal().string());
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return detail::natural_less(a, b); });
  return out;
}

std::vector<std::string> list_dirs(const std::string& root, bool (*keep)(const std::string&)) {
  std::vector<std::string> out;
  if (keep(root)) return {fs::path(root).lexically_normal().string()};
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_directory()) continue;
    if (it.depth() > 4) {
      it.disable_recursion_pending();
      continue;
    }
    if (keep(it->path().string())) {
      out.push_back(it->path().lexically_normal().string());
      it.disable_recursion_pending();
    }
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return detail::natural_less(a, b); });
  return out;
}

std::pair<std::string, int64_t> split_item(const std::string& path) {
  const size_t hash = path.rfind('#');
  if (hash == std::string::npos || hash + 1 >= path.size() || hash + 1 + 12 < path.size()) return {path, -1};
  int64_t k = 0;
  for (size_t i = hash + 1; i < path.size(); ++i) {
    if (path[i] < '0' || path[i] > '9') return {path, -1};
    k = k * 10 + (path[i] - '0');
  }
  return {path.substr(0, hash), k};
}

std::string head_bytes(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string s(max_bytes, '\0');
  in.read(s.data(), static_cast<std::streamsize>(max_bytes));
  s.resize(static_cast<size_t>(in.gcount()));
  return s;
}

CloudScene finish_scene(CloudScene s, const std::string& path, const CloudReadOptions& o) {
  PointCloudData& c = s.cloud;
  c.source = path;
  if (c.name.empty()) {
    fs::path p = fs::path(split_item(path).first).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    c.name = fs::is_directory(p) ? p.filename().string() : p.stem().string();
  }
  c.validate();
  // points of the source that `index` refers to (S3DIS rooms drop non-finite lines while
  // parsing: those are counted in non_finite but have no source position)
  s.source_points = c.size();
  s.non_finite += drop_non_finite_points(c, o.refuse_non_finite);
  if (c.size() == 0) {
    bounded::fail(path, s.non_finite > 0 ? "no finite points (" + std::to_string(s.non_finite) + " NaN/Inf dropped)"
                                         : std::string("no points"));
  }
  return s;
}

namespace {
// Canonical names of common field spellings (PLY/PCD writers disagree).
std::string canonical_field(const std::string& raw) {
  const std::string n = to_lower(raw);
  if (n == "r" || n == "diffuse_red") return "red";
  if (n == "g" || n == "diffuse_green") return "green";
  if (n == "b" || n == "diffuse_blue") return "blue";
  if (n == "class" || n == "scalar_label" || n == "semantic" || n == "category" || n == "semantic_label" ||
      n == "scalar_class")
    return "label";
  if (n == "ground_truth" || n == "scalar_gt" || n == "gt_label") return "gt";
  if (n == "prediction" || n == "scalar_pred" || n == "pred_label") return "pred";
  if (n == "conf" || n == "score" || n == "scalar_confidence" || n == "prob") return "confidence";
  return raw;
}
}  // namespace

CloudScene scene_from_fields(const PointFields& in, const CloudReadOptions& o) {
  PointFields f;
  f.width = in.width;
  f.height = in.height;
  f.source = in.source;
  for (const auto& n : in.names) {
    const std::string c = canonical_field(n);
    if (f.has(c)) continue;  // the first spelling wins
    f.names.push_back(c);
    f.fields[c] = in.fields.at(n);
  }
  FieldsToCloudOptions fo;
  fo.label_field = f.has(o.label_field) ? o.label_field : "";
  fo.use_label_map = !o.label_map.empty();
  if (fo.use_label_map) fo.label_map = o.label_map == "mosd" ? mosd_label_map() : parse_label_map(o.label_map);
  fo.drop_non_finite = false;  // finish_scene drops and counts
  CloudScene s;
  s.cloud = fields_to_cloud(f, fo);
  s.comments = in.comments;
  static const std::set<std::string> used = {"x",        "y",        "z",        "rgb",      "rgba",     "red",
                                             "green",    "blue",     "normal_x", "normal_y", "normal_z", "nx",
                                             "ny",       "nz",       "instance", "alpha",    "curvature"};
  for (const auto& n : f.names) {
    if (used.count(n) || n == fo.label_field) continue;
    const auto& t = f.fields.at(n);
    if (t.dim() == 1) s.cloud.extra[n] = t;
  }
  return s;
}

}  // namespace fmt
}  // namespace ewa::datasets
