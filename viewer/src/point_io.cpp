// Point-file readers of the viewer: PLY, PCD (incl. LZF binary_compressed), .npy, text
// columns and S3DIS room folders, all producing a RawCloud. Errors name the file.
#include "point_io.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ewa::viewer::detail {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> split_ws(const std::string& line) {
  std::istringstream is(line);
  std::vector<std::string> out;
  std::string tok;
  while (is >> tok) out.push_back(tok);
  return out;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Canonical role of a field name: "x","y","z","r","g","b","label","gt","pred","confidence" or "".
std::string canonical(const std::string& raw) {
  std::string n = lower(raw);
  if (n == "x" || n == "y" || n == "z") return n;
  if (n == "red" || n == "r" || n == "diffuse_red") return "r";
  if (n == "green" || n == "g" || n == "diffuse_green") return "g";
  if (n == "blue" || n == "b" || n == "diffuse_blue") return "b";
  if (n == "label" || n == "class" || n == "scalar_label" || n == "semantic" || n == "category" ||
      n == "semantic_label" || n == "scalar_class")
    return "label";
  if (n == "gt" || n == "ground_truth" || n == "scalar_gt" || n == "gt_label") return "gt";
  if (n == "pred" || n == "prediction" || n == "scalar_pred" || n == "pred_label") return "pred";
  if (n == "confidence" || n == "conf" || n == "score" || n == "scalar_confidence" || n == "prob")
    return "confidence";
  return "";
}

// Scalar types shared by PLY and PCD.
enum class Ty { i8, u8, i16, u16, i32, u32, i64, u64, f32, f64 };

int ty_size(Ty t) {
  switch (t) {
    case Ty::i8: case Ty::u8: return 1;
    case Ty::i16: case Ty::u16: return 2;
    case Ty::i32: case Ty::u32: case Ty::f32: return 4;
    default: return 8;
  }
}
bool ty_is_float(Ty t) { return t == Ty::f32 || t == Ty::f64; }

bool ply_type(const std::string& s, Ty* t) {
  static const std::map<std::string, Ty> m = {
      {"char", Ty::i8},     {"int8", Ty::i8},     {"uchar", Ty::u8},   {"uint8", Ty::u8},
      {"short", Ty::i16},   {"int16", Ty::i16},   {"ushort", Ty::u16}, {"uint16", Ty::u16},
      {"int", Ty::i32},     {"int32", Ty::i32},   {"uint", Ty::u32},   {"uint32", Ty::u32},
      {"float", Ty::f32},   {"float32", Ty::f32}, {"double", Ty::f64}, {"float64", Ty::f64},
      {"int64", Ty::i64},   {"uint64", Ty::u64}};
  auto it = m.find(s);
  if (it == m.end()) return false;
  *t = it->second;
  return true;
}

template <typename T>
T load_as(const uint8_t* p, bool swap) {
  uint8_t buf[sizeof(T)];
  std::memcpy(buf, p, sizeof(T));
  if (swap) std::reverse(buf, buf + sizeof(T));
  T v;
  std::memcpy(&v, buf, sizeof(T));
  return v;
}

double load_scalar(const uint8_t* p, Ty t, bool swap) {
  switch (t) {
    case Ty::i8: return static_cast<int8_t>(*p);
    case Ty::u8: return *p;
    case Ty::i16: return load_as<int16_t>(p, swap);
    case Ty::u16: return load_as<uint16_t>(p, swap);
    case Ty::i32: return load_as<int32_t>(p, swap);
    case Ty::u32: return load_as<uint32_t>(p, swap);
    case Ty::i64: return static_cast<double>(load_as<int64_t>(p, swap));
    case Ty::u64: return static_cast<double>(load_as<uint64_t>(p, swap));
    case Ty::f32: return load_as<float>(p, swap);
    case Ty::f64: return load_as<double>(p, swap);
  }
  return 0;
}

// Collects values per canonical role, then finalises into a RawCloud.
struct Sink {
  std::string path;
  int64_t n = 0;
  std::vector<float> xyz;
  std::vector<float> rgbf;  // raw colour values
  bool has_rgb = false, rgb_float = false;
  std::map<std::string, std::vector<int32_t>> ints;
  std::vector<float> conf;

  void init(int64_t count, const std::vector<std::string>& roles, bool colour_is_float) {
    n = count;
    xyz.assign(static_cast<size_t>(n) * 3, 0.f);
    bool has[3] = {false, false, false};
    for (const auto& r : roles) {
      if (r == "x") has[0] = true;
      if (r == "y") has[1] = true;
      if (r == "z") has[2] = true;
      if (r == "r" || r == "g" || r == "b") has_rgb = true;
      if (r == "label" || r == "gt" || r == "pred") ints[r].assign(static_cast<size_t>(n), 0);
      if (r == "confidence") conf.assign(static_cast<size_t>(n), 0.f);
    }
    if (!(has[0] && has[1] && has[2])) fail(path, "no x/y/z fields");
    if (has_rgb) rgbf.assign(static_cast<size_t>(n) * 3, 0.f);
    rgb_float = colour_is_float;
  }

  void put(int64_t i, const std::string& role, double v) {
    size_t k = static_cast<size_t>(i);
    if (role.empty()) return;
    switch (role[0]) {
      case 'x': xyz[k * 3] = static_cast<float>(v); return;
      case 'y': xyz[k * 3 + 1] = static_cast<float>(v); return;
      case 'z': xyz[k * 3 + 2] = static_cast<float>(v); return;
      case 'r': rgbf[k * 3] = static_cast<float>(v); return;
      case 'g': if (role == "g") { rgbf[k * 3 + 1] = static_cast<float>(v); return; } break;
      case 'b': rgbf[k * 3 + 2] = static_cast<float>(v); return;
      case 'c': conf[k] = static_cast<float>(v); return;
      default: break;
    }
    auto& vec = ints.at(role);
    if (!std::isfinite(v) || v != std::floor(v))
      fail(path, "field '" + role + "' of point " + std::to_string(i) + " is not an integer (" +
                     std::to_string(v) + ")");
    vec[k] = static_cast<int32_t>(v);
  }

  RawCloud finish() {
    RawCloud c;
    c.n = n;
    c.xyz = std::move(xyz);
    if (has_rgb) {
      float mx = 0.f;
      for (float v : rgbf) mx = std::max(mx, v);
      float scale = (rgb_float && mx <= 1.0f) ? 255.f : 1.f;
      c.rgb.resize(rgbf.size());
      for (size_t k = 0; k < rgbf.size(); ++k)
        c.rgb[k] = static_cast<uint8_t>(std::clamp(std::lround(rgbf[k] * scale), 0L, 255L));
    }
    c.ints = std::move(ints);
    c.confidence = std::move(conf);
    return c;
  }
};

// ------------------------------------------------------------------ PLY
struct PlyProp {
  std::string name;
  Ty type = Ty::f32;
  bool is_list = false;
  Ty count_type = Ty::u8;
};
struct PlyElement {
  std::string name;
  int64_t count = 0;
  std::vector<PlyProp> props;
};

RawCloud read_ply(const std::string& path) {
  std::string data = read_all(path);
  std::istringstream hs(data);
  std::string line;
  std::getline(hs, line);
  if (line.rfind("ply", 0) != 0) fail(path, "not a PLY file (missing 'ply' magic)");
  std::string format;
  std::vector<PlyElement> elements;
  std::vector<std::string> comments;
  size_t header_end = std::string::npos;
  while (std::getline(hs, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto tok = split_ws(line);
    if (tok.empty()) continue;
    if (tok[0] == "format") {
      if (tok.size() < 2) fail(path, "bad format line");
      format = tok[1];
    } else if (tok[0] == "comment" || tok[0] == "obj_info") {
      comments.push_back(line.size() > tok[0].size() + 1 ? line.substr(tok[0].size() + 1) : "");
    } else if (tok[0] == "element") {
      if (tok.size() < 3) fail(path, "bad element line '" + line + "'");
      elements.push_back({tok[1], std::stoll(tok[2]), {}});
    } else if (tok[0] == "property") {
      if (elements.empty()) fail(path, "property before any element");
      PlyProp p;
      if (tok.size() >= 5 && tok[1] == "list") {
        p.is_list = true;
        if (!ply_type(tok[2], &p.count_type) || !ply_type(tok[3], &p.type))
          fail(path, "unknown PLY type in '" + line + "'");
        p.name = tok[4];
      } else if (tok.size() >= 3) {
        if (!ply_type(tok[1], &p.type)) fail(path, "unknown PLY type in '" + line + "'");
        p.name = tok[2];
      } else {
        fail(path, "bad property line '" + line + "'");
      }
      elements.back().props.push_back(p);
    } else if (tok[0] == "end_header") {
      header_end = static_cast<size_t>(hs.tellg());
      break;
    }
  }
  if (header_end == std::string::npos) fail(path, "PLY header has no end_header");
  bool ascii = format == "ascii";
  bool swap = format == "binary_big_endian";
  if (!ascii && !swap && format != "binary_little_endian")
    fail(path, "unsupported PLY format '" + format + "'");

  Sink sink;
  sink.path = path;
  bool found = false;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data.data()) + header_end;
  const uint8_t* end = reinterpret_cast<const uint8_t*>(data.data()) + data.size();
  std::istringstream as(ascii ? data.substr(header_end) : std::string());
  for (const auto& el : elements) {
    bool is_vertex = el.name == "vertex";
    std::vector<std::string> roles;
    bool colour_float = false;
    for (const auto& pr : el.props) {
      std::string r = pr.is_list ? "" : canonical(pr.name);
      if ((r == "r" || r == "g" || r == "b") && ty_is_float(pr.type)) colour_float = true;
      roles.push_back(r);
    }
    if (is_vertex) {
      sink.init(el.count, roles, colour_float);
      found = true;
    }
    for (int64_t i = 0; i < el.count; ++i) {
      for (size_t j = 0; j < el.props.size(); ++j) {
        const auto& pr = el.props[j];
        if (ascii) {
          double v;
          int64_t cnt = 1;
          if (pr.is_list) {
            if (!(as >> v)) fail(path, "truncated ascii data in element '" + el.name + "'");
            cnt = static_cast<int64_t>(v);
          }
          for (int64_t c = 0; c < cnt; ++c) {
            if (!(as >> v))
              fail(path, "truncated ascii data at " + el.name + " " + std::to_string(i) + " of " +
                             std::to_string(el.count));
            if (is_vertex && !pr.is_list) sink.put(i, roles[j], v);
          }
        } else {
          int64_t cnt = 1;
          if (pr.is_list) {
            if (p + ty_size(pr.count_type) > end) fail(path, "truncated binary data");
            cnt = static_cast<int64_t>(load_scalar(p, pr.count_type, swap));
            p += ty_size(pr.count_type);
          }
          if (p + cnt * ty_size(pr.type) > end)
            fail(path, "truncated binary data at " + el.name + " " + std::to_string(i) + " of " +
                           std::to_string(el.count));
          if (is_vertex && !pr.is_list) sink.put(i, roles[j], load_scalar(p, pr.type, swap));
          p += cnt * ty_size(pr.type);
        }
      }
    }
    if (is_vertex) break;  // later elements (faces) are not needed
  }
  if (!found) fail(path, "PLY file has no 'vertex' element");
  RawCloud c = sink.finish();
  c.comments = std::move(comments);
  return c;
}

// ------------------------------------------------------------------ PCD
RawCloud read_pcd(const std::string& path) {
  std::string data = read_all(path);
  std::istringstream hs(data);
  std::string line;
  std::vector<std::string> fields, types, comments;
  std::vector<int> sizes, counts;
  int64_t width = -1, height = 1, points = -1;
  std::string format;
  size_t data_start = std::string::npos;
  while (std::getline(hs, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto tok = split_ws(line);
    if (tok.empty()) continue;
    if (tok[0][0] == '#') {
      comments.push_back(line.substr(1));
      continue;
    }
    std::string key = tok[0];
    std::vector<std::string> rest(tok.begin() + 1, tok.end());
    if (key == "FIELDS" || key == "COLUMNS") fields = rest;
    else if (key == "SIZE") for (auto& s : rest) sizes.push_back(std::stoi(s));
    else if (key == "TYPE") types = rest;
    else if (key == "COUNT") for (auto& s : rest) counts.push_back(std::stoi(s));
    else if (key == "WIDTH" && !rest.empty()) width = std::stoll(rest[0]);
    else if (key == "HEIGHT" && !rest.empty()) height = std::stoll(rest[0]);
    else if (key == "POINTS" && !rest.empty()) points = std::stoll(rest[0]);
    else if (key == "DATA" && !rest.empty()) {
      format = rest[0];
      data_start = static_cast<size_t>(hs.tellg());
      break;
    }
  }
  if (data_start == std::string::npos || fields.empty()) fail(path, "not a PCD file (no FIELDS/DATA)");
  if (counts.empty()) counts.assign(fields.size(), 1);
  if (sizes.size() != fields.size() || types.size() != fields.size() || counts.size() != fields.size())
    fail(path, "PCD header FIELDS/SIZE/TYPE/COUNT lengths differ");
  if (points < 0) points = width * height;
  int64_t n = points;

  // Per field: type, roles ("rgb" packed colour handled specially).
  std::vector<Ty> ty(fields.size());
  std::vector<std::string> roles(fields.size());
  std::vector<std::string> sink_roles;
  int rgb_field = -1;
  std::vector<int64_t> offset(fields.size());
  int64_t point_size = 0;
  for (size_t f = 0; f < fields.size(); ++f) {
    char t = types[f].empty() ? 'F' : static_cast<char>(std::toupper(types[f][0]));
    int s = sizes[f];
    if (t == 'F') ty[f] = s == 8 ? Ty::f64 : Ty::f32;
    else if (t == 'U') ty[f] = s == 1 ? Ty::u8 : s == 2 ? Ty::u16 : s == 4 ? Ty::u32 : Ty::u64;
    else if (t == 'I') ty[f] = s == 1 ? Ty::i8 : s == 2 ? Ty::i16 : s == 4 ? Ty::i32 : Ty::i64;
    else fail(path, "unknown PCD TYPE '" + types[f] + "'");
    if (ty_size(ty[f]) != s) fail(path, "PCD SIZE " + std::to_string(s) + " does not fit TYPE " + types[f]);
    std::string lf = lower(fields[f]);
    if ((lf == "rgb" || lf == "rgba") && counts[f] == 1 && s == 4) {
      rgb_field = static_cast<int>(f);
      roles[f] = "";
      sink_roles.push_back("r");
    } else {
      roles[f] = counts[f] == 1 ? canonical(fields[f]) : "";
      sink_roles.push_back(roles[f]);
    }
    offset[f] = point_size;
    point_size += static_cast<int64_t>(s) * counts[f];
  }
  Sink sink;
  sink.path = path;
  sink.init(n, sink_roles, false);

  auto put_rgb = [&](int64_t i, const uint8_t* p) {
    uint32_t packed;
    std::memcpy(&packed, p, 4);  // PCD stores the float's bit pattern little endian
    sink.rgbf[static_cast<size_t>(i) * 3] = static_cast<float>((packed >> 16) & 0xff);
    sink.rgbf[static_cast<size_t>(i) * 3 + 1] = static_cast<float>((packed >> 8) & 0xff);
    sink.rgbf[static_cast<size_t>(i) * 3 + 2] = static_cast<float>(packed & 0xff);
  };

  const uint8_t* base = reinterpret_cast<const uint8_t*>(data.data()) + data_start;
  size_t avail = data.size() - data_start;
  if (format == "ascii") {
    std::istringstream as(data.substr(data_start));
    for (int64_t i = 0; i < n; ++i) {
      for (size_t f = 0; f < fields.size(); ++f) {
        for (int c = 0; c < counts[f]; ++c) {
          std::string tok;
          if (!(as >> tok))
            fail(path, "truncated ascii data at point " + std::to_string(i) + " of " + std::to_string(n));
          if (c != 0) continue;
          if (static_cast<int>(f) == rgb_field) {
            uint32_t packed;
            if (types[f] == "F") {
              float fv = std::strtof(tok.c_str(), nullptr);  // packed colours may be denormal
              std::memcpy(&packed, &fv, 4);
            } else {
              packed = static_cast<uint32_t>(std::stoul(tok));
            }
            uint8_t b4[4];
            std::memcpy(b4, &packed, 4);
            put_rgb(i, b4);
          } else if (!roles[f].empty()) {
            char* endp = nullptr;
            double v = std::strtod(tok.c_str(), &endp);
            if (endp == tok.c_str()) fail(path, "point " + std::to_string(i) + ": not a number '" + tok + "'");
            sink.put(i, roles[f], v);
          }
        }
      }
    }
  } else if (format == "binary") {
    if (avail < static_cast<size_t>(n * point_size))
      fail(path, "truncated binary data: " + std::to_string(avail) + " bytes for " + std::to_string(n) +
                     " points of " + std::to_string(point_size) + " bytes");
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* pt = base + i * point_size;
      for (size_t f = 0; f < fields.size(); ++f) {
        if (static_cast<int>(f) == rgb_field) put_rgb(i, pt + offset[f]);
        else if (!roles[f].empty()) sink.put(i, roles[f], load_scalar(pt + offset[f], ty[f], false));
      }
    }
  } else if (format == "binary_compressed") {
    if (avail < 8) fail(path, "truncated binary_compressed header");
    uint32_t csize, usize;
    std::memcpy(&csize, base, 4);
    std::memcpy(&usize, base + 4, 4);
    if (avail < 8 + static_cast<size_t>(csize)) fail(path, "truncated binary_compressed data");
    if (usize != static_cast<uint64_t>(n * point_size))
      fail(path, "binary_compressed size " + std::to_string(usize) + " != points*point size " +
                     std::to_string(n * point_size));
    std::vector<uint8_t> raw(usize);
    try {
      lzf_decompress(base + 8, csize, raw.data(), usize);
    } catch (const std::exception& e) {
      fail(path, e.what());
    }
    // Field-major layout: all values of field 0, then field 1, ...
    for (size_t f = 0; f < fields.size(); ++f) {
      const uint8_t* col = raw.data() + offset[f] * n;
      int64_t stride = static_cast<int64_t>(sizes[f]) * counts[f];
      if (static_cast<int>(f) == rgb_field) {
        for (int64_t i = 0; i < n; ++i) put_rgb(i, col + i * stride);
      } else if (!roles[f].empty()) {
        for (int64_t i = 0; i < n; ++i) sink.put(i, roles[f], load_scalar(col + i * stride, ty[f], false));
      }
    }
  } else {
    fail(path, "unsupported PCD DATA '" + format + "'");
  }
  RawCloud c = sink.finish();
  c.comments = std::move(comments);
  return c;
}

// ------------------------------------------------------------------ text columns / npy
RawCloud from_columns(const std::string& path, int64_t n, int64_t cols, const std::vector<double>& v) {
  if (cols < 3) fail(path, "needs at least 3 columns (x y z), found " + std::to_string(cols));
  std::vector<std::string> roles = {"x", "y", "z"};
  if (cols >= 6) roles.insert(roles.end(), {"r", "g", "b"});
  if (cols == 4 || cols >= 7) roles.push_back("label");
  if (cols >= 8) roles.push_back("pred");
  Sink sink;
  sink.path = path;
  sink.init(n, roles, true);
  for (int64_t i = 0; i < n; ++i)
    for (size_t j = 0; j < roles.size(); ++j) {
      size_t col = roles.size() == 4 && j == 3 ? 3 : j;
      sink.put(i, roles[j], v[static_cast<size_t>(i * cols) + col]);
    }
  return sink.finish();
}

RawCloud read_text(const std::string& path, std::vector<double>* values_out = nullptr,
                   int64_t* cols_out = nullptr) {
  std::ifstream in(path);
  if (!in) fail(path, "cannot open file");
  std::vector<double> v;
  int64_t cols = -1, n = 0;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto tok = split_ws(line);
    if (tok.empty() || tok[0][0] == '#') continue;
    if (cols < 0) cols = static_cast<int64_t>(tok.size());
    if (static_cast<int64_t>(tok.size()) != cols)
      fail(path, "line " + std::to_string(lineno) + " has " + std::to_string(tok.size()) +
                     " columns, expected " + std::to_string(cols));
    for (auto& t : tok) {
      try {
        v.push_back(std::stod(t));
      } catch (const std::exception&) {
        fail(path, "line " + std::to_string(lineno) + ": not a number '" + t + "'");
      }
    }
    ++n;
  }
  if (n == 0) fail(path, "no points");
  if (values_out) {
    *values_out = std::move(v);
    *cols_out = cols;
    return {};
  }
  return from_columns(path, n, cols, v);
}

// S3DIS room folder: Annotations/<class>_<k>.txt (x y z r g b); class ids by the standard
// 13-class order; unknown names (e.g. "stairs") map to clutter as in the usual preprocessing.
RawCloud read_s3dis_room(const std::string& dir) {
  static const std::vector<std::string> names = {"ceiling", "floor", "wall",  "beam",     "column",
                                                 "window",  "door",  "table", "chair",    "sofa",
                                                 "bookcase", "board", "clutter"};
  fs::path ann = fs::path(dir) / "Annotations";
  if (!fs::is_directory(ann)) fail(dir, "a folder but not an S3DIS room (no Annotations/ inside)");
  std::vector<fs::path> files;
  for (auto& e : fs::directory_iterator(ann))
    if (e.path().extension() == ".txt") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) fail(ann.string(), "no <class>_<k>.txt files");
  RawCloud out;
  out.class_names = names;
  auto& lab = out.ints["label"];
  for (const auto& f : files) {
    std::string stem = f.stem().string();
    std::string cls = stem.substr(0, stem.rfind('_'));
    auto it = std::find(names.begin(), names.end(), cls);
    int id = it == names.end() ? 12 : static_cast<int>(it - names.begin());
    std::vector<double> v;
    int64_t cols = 0;
    read_text(f.string(), &v, &cols);
    if (cols < 6) fail(f.string(), "expected x y z r g b columns, found " + std::to_string(cols));
    int64_t n = static_cast<int64_t>(v.size()) / cols;
    for (int64_t i = 0; i < n; ++i) {
      for (int c = 0; c < 3; ++c) out.xyz.push_back(static_cast<float>(v[i * cols + c]));
      for (int c = 3; c < 6; ++c)
        out.rgb.push_back(static_cast<uint8_t>(std::clamp(std::lround(v[i * cols + c]), 0L, 255L)));
      lab.push_back(id);
    }
    out.n += n;
  }
  return out;
}

}  // namespace

std::string lower_ext(const std::string& path) { return lower(fs::path(path).extension().string()); }

void lzf_decompress(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_len) {
  size_t ip = 0, op = 0;
  while (ip < in_len) {
    unsigned ctrl = in[ip++];
    if (ctrl < 32) {  // literal run of ctrl+1 bytes
      size_t len = ctrl + 1;
      if (ip + len > in_len || op + len > out_len) throw std::runtime_error("corrupt LZF data (literal)");
      std::memcpy(out + op, in + ip, len);
      ip += len;
      op += len;
    } else {  // back reference
      size_t len = ctrl >> 5;
      if (len == 7) {
        if (ip >= in_len) throw std::runtime_error("corrupt LZF data (length)");
        len += in[ip++];
      }
      len += 2;
      if (ip >= in_len) throw std::runtime_error("corrupt LZF data (offset)");
      size_t back = ((ctrl & 0x1f) << 8) + in[ip++] + 1;
      if (back > op || op + len > out_len) throw std::runtime_error("corrupt LZF data (reference)");
      for (size_t k = 0; k < len; ++k, ++op) out[op] = out[op - back];  // may overlap
    }
  }
  if (op != out_len)
    throw std::runtime_error("corrupt LZF data: " + std::to_string(op) + " bytes decoded, expected " +
                             std::to_string(out_len));
}

NpyArray read_npy(const std::string& path) {
  std::string d = read_all(path);
  if (d.size() < 10 || d.compare(0, 6, "\x93NUMPY") != 0) fail(path, "not a .npy file (bad magic)");
  int major = static_cast<uint8_t>(d[6]);
  size_t hlen, hstart;
  if (major == 1) {
    hlen = static_cast<uint8_t>(d[8]) | (static_cast<uint8_t>(d[9]) << 8);
    hstart = 10;
  } else {
    if (d.size() < 12) fail(path, "truncated .npy header");
    uint32_t h;
    std::memcpy(&h, d.data() + 8, 4);
    hlen = h;
    hstart = 12;
  }
  if (hstart + hlen > d.size()) fail(path, "truncated .npy header");
  std::string header = d.substr(hstart, hlen);
  auto field = [&](const std::string& key) {
    auto k = header.find("'" + key + "'");
    if (k == std::string::npos) fail(path, ".npy header lacks '" + key + "'");
    return header.substr(header.find(':', k) + 1);
  };
  NpyArray a;
  std::string descr = field("descr");
  auto q1 = descr.find('\''), q2 = descr.find('\'', q1 + 1);
  a.descr = descr.substr(q1 + 1, q2 - q1 - 1);
  bool fortran = field("fortran_order").find("True") < field("fortran_order").find(',');
  std::string shp = field("shape");
  shp = shp.substr(shp.find('(') + 1, shp.find(')') - shp.find('(') - 1);
  std::istringstream ss(shp);
  std::string item;
  while (std::getline(ss, item, ','))
    if (item.find_first_not_of(" ") != std::string::npos) a.shape.push_back(std::stoll(item));
  int64_t count = 1;
  for (auto s : a.shape) count *= s;
  if (a.descr.size() < 3) fail(path, "unsupported .npy dtype '" + a.descr + "'");
  char endian = a.descr[0], kind = a.descr[1];
  int size = std::stoi(a.descr.substr(2));
  bool swap = endian == '>';
  Ty t;
  if (kind == 'f' && size == 4) t = Ty::f32;
  else if (kind == 'f' && size == 8) t = Ty::f64;
  else if (kind == 'i' || kind == 'u') {
    static const Ty is[] = {Ty::i8, Ty::i16, Ty::i32, Ty::i64}, us[] = {Ty::u8, Ty::u16, Ty::u32, Ty::u64};
    int k = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : size == 8 ? 3 : -1;
    if (k < 0) fail(path, "unsupported .npy dtype '" + a.descr + "'");
    t = kind == 'i' ? is[k] : us[k];
  } else if (kind == 'b' && size == 1) t = Ty::u8;
  else fail(path, "unsupported .npy dtype '" + a.descr + "' (need int/uint/float)");
  size_t start = hstart + hlen;
  if (d.size() - start < static_cast<size_t>(count) * size)
    fail(path, "truncated .npy data: expected " + std::to_string(count) + " values");
  a.data.resize(static_cast<size_t>(count));
  const uint8_t* p = reinterpret_cast<const uint8_t*>(d.data()) + start;
  for (int64_t i = 0; i < count; ++i) a.data[static_cast<size_t>(i)] = load_scalar(p + i * size, t, swap);
  if (fortran && a.shape.size() == 2) {  // column-major -> row-major
    std::vector<double> r(a.data.size());
    int64_t R = a.shape[0], C = a.shape[1];
    for (int64_t i = 0; i < R; ++i)
      for (int64_t j = 0; j < C; ++j) r[static_cast<size_t>(i * C + j)] = a.data[static_cast<size_t>(j * R + i)];
    a.data = std::move(r);
  } else if (fortran && a.shape.size() > 2) {
    fail(path, "fortran-ordered .npy arrays of rank > 2 are not supported");
  }
  return a;
}

RawCloud read_point_file(const std::string& path) {
  if (!fs::exists(path)) fail(path, "no such file or directory");
  if (fs::is_directory(path)) return read_s3dis_room(path);
  std::string ext = lower_ext(path);
  if (ext == ".ply") return read_ply(path);
  if (ext == ".pcd") return read_pcd(path);
  if (ext == ".txt" || ext == ".xyz" || ext == ".pts" || ext == ".xyzrgb") return read_text(path);
  if (ext == ".npy") {
    NpyArray a = read_npy(path);
    if (a.shape.size() != 2)
      fail(path, "point .npy must be [N, 3+] (x y z [r g b] [label]), got rank " + std::to_string(a.shape.size()));
    return from_columns(path, a.shape[0], a.shape[1], a.data);
  }
  fail(path, "unknown point file type '" + ext +
                 "' (supported: .ply .pcd .npy .txt .xyz .pts, or an S3DIS room folder)");
}

std::vector<int32_t> read_label_file(const std::string& path, const std::string& role) {
  if (!fs::exists(path)) fail(path, "no such file");
  std::string ext = lower_ext(path);
  std::vector<int32_t> out;
  if (ext == ".npy") {
    NpyArray a = read_npy(path);
    if (!(a.shape.size() == 1 || (a.shape.size() == 2 && a.shape[1] == 1)))
      fail(path, "label .npy must be [N] or [N,1], got " + std::to_string(a.shape.size()) + "-D shape");
    out.reserve(a.data.size());
    for (size_t i = 0; i < a.data.size(); ++i) {
      double v = a.data[i];
      if (!std::isfinite(v) || v != std::floor(v))
        fail(path, "label " + std::to_string(i) + " is not an integer (" + std::to_string(v) + ")");
      out.push_back(static_cast<int32_t>(v));
    }
    return out;
  }
  if (ext == ".txt" || ext == ".label" || ext == ".labels") {
    std::ifstream in(path);
    std::string line;
    int64_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      auto tok = split_ws(line);
      if (tok.empty() || tok[0][0] == '#') continue;
      try {
        size_t used = 0;
        long v = std::stol(tok.back(), &used);
        if (used != tok.back().size()) throw std::invalid_argument("x");
        out.push_back(static_cast<int32_t>(v));
      } catch (const std::exception&) {
        fail(path, "line " + std::to_string(lineno) + ": not an integer label '" + tok.back() + "'");
      }
    }
    return out;
  }
  if (ext == ".ply" || ext == ".pcd") {
    RawCloud c = read_point_file(path);
    std::vector<std::string> order = role == "gt" ? std::vector<std::string>{"gt", "label", "pred"}
                                                  : std::vector<std::string>{"pred", "label", "gt"};
    for (const auto& k : order)
      if (c.ints.count(k)) return c.ints[k];
    fail(path, "has no label/pred/gt field to use as " + role);
  }
  fail(path, "unknown label file type '" + ext + "' (supported: .npy .txt .label .ply .pcd)");
}

}  // namespace ewa::viewer::detail
