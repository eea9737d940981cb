// Point format "text": whitespace-separated `x y z [r g b] [label]` per line (3, 4 = xyz
// label, 6, 7 columns; the first valid line fixes the count). Damaged lines are counted and
// the first few kept; memory grows with the valid points only.
#include <cmath>
#include <cstring>

#include "../util.h"
#include "ewa/datasets/bounded_io.h"
#include "format_util.h"

namespace ewa::datasets::fmt {
namespace {

// Up to 8 numbers of one line; -1 when a token is not a number or there are more than 8.
int text_line_numbers(const char* p, const char* eol, double* v) {
  int k = 0;
  while (true) {
    while (p < eol && (detail::is_space(*p) || *p == ',')) ++p;
    if (p >= eol) return k;
    if (k == 8) return -1;
    const char* r = detail::parse_number(p, eol, v[k]);
    if (r == nullptr || (r < eol && !detail::is_space(*r) && *r != ',')) {
      // nan / inf spellings (dropped later as non-finite points, not damaged lines)
      const char* q = p;
      while (q < eol && !detail::is_space(*q) && *q != ',') ++q;
      if (q - p > 10 || !detail::parse_number_token(std::string_view(p, static_cast<size_t>(q - p)), v[k])) return -1;
      r = q;
    }
    ++k;
    p = r;
  }
}

// First non-empty, non-comment line of the file head: its column count and separators.
bool text_head(const std::string& path, int* cols, bool* commas) {
  const std::string h = head_bytes(path, 4096);
  size_t pos = 0;
  while (pos < h.size()) {
    size_t eol = h.find('\n', pos);
    if (eol == std::string::npos) eol = h.size();
    const char* b = h.data() + pos;
    const char* e = h.data() + eol;
    pos = eol + 1;
    while (b < e && detail::is_space(*b)) ++b;
    if (b == e || *b == '#' || *b == '/') continue;
    double v[8];
    *cols = text_line_numbers(b, e, v);
    *commas = std::memchr(b, ',', static_cast<size_t>(e - b)) != nullptr;
    return *cols >= 3;
  }
  return false;
}

}  // namespace

bool detect_text_cloud(const std::string& path) {
  if (!file_with_ext(path, {".txt", ".xyz", ".pts", ".xyzrgb", ".asc"})) return false;
  int cols = 0;
  bool commas = false;
  return text_head(path, &cols, &commas) && !commas && (cols == 3 || cols == 4 || cols == 6 || cols == 7);
}

bool detect_modelnet_txt(const std::string& path) {
  if (!file_with_ext(path, {".txt"})) return false;
  int cols = 0;
  bool commas = false;
  return text_head(path, &cols, &commas) && commas && (cols == 3 || cols == 6);
}

namespace {
// Listing skips the annotation files of S3DIS rooms (they are scenes of format s3dis_room).
bool listed_text_cloud(const std::string& path) {
  return fs::path(path).parent_path().filename() != "Annotations" && detect_text_cloud(path);
}
std::vector<std::string> list_text(const std::string& root) { return list_files(root, listed_text_cloud); }

CloudScene load_text(const std::string& path, const CloudReadOptions& o) {
  const std::string text = detail::read_whole_file(path);
  CloudScene s;
  std::vector<float> xyz;
  std::vector<uint8_t> rgb;
  std::vector<int64_t> label;
  int cols = -1;
  int64_t line = 0;
  const char* p = text.data();
  const char* end = p + text.size();
  auto damaged = [&](const std::string& why) {
    ++s.damaged_lines;
    if (static_cast<int64_t>(s.issues.size()) < kKeptParseIssues) s.issues.push_back({path, line, false, why});
  };
  while (p < end && (o.max_points <= 0 || static_cast<int64_t>(xyz.size()) / 3 < o.max_points)) {
    ++line;
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (eol == nullptr) eol = end;
    const char* b = p;
    p = eol + 1;
    while (b < eol && detail::is_space(*b)) ++b;
    if (b == eol || *b == '#') continue;
    double v[8];
    const int k = text_line_numbers(b, eol, v);
    if (k < 0) {
      damaged("not a line of numbers");
      continue;
    }
    if (cols < 0) {
      if (k != 3 && k != 4 && k != 6 && k != 7) {
        damaged(std::to_string(k) + " columns (x y z [r g b] [label]: 3, 4, 6 or 7)");
        continue;
      }
      cols = k;
    }
    if (k != cols) {
      damaged(std::to_string(k) + " columns, expected " + std::to_string(cols));
      continue;
    }
    const int lab_col = cols == 4 ? 3 : (cols == 7 ? 6 : -1);
    if (cols >= 6 && !(v[3] >= 0 && v[3] <= 255 && v[4] >= 0 && v[4] <= 255 && v[5] >= 0 && v[5] <= 255)) {
      damaged("colour outside [0,255]");
      continue;
    }
    if (lab_col >= 0 && !(v[lab_col] == std::floor(v[lab_col]) && std::fabs(v[lab_col]) < 1e15)) {
      damaged("label is not an integer");
      continue;
    }
    for (int c = 0; c < 3; ++c) xyz.push_back(static_cast<float>(v[c]));  // NaN/Inf: finish_scene drops
    if (cols >= 6) {
      for (int c = 3; c < 6; ++c) rgb.push_back(static_cast<uint8_t>(v[c] + 0.5));
    }
    if (lab_col >= 0) label.push_back(static_cast<int64_t>(v[lab_col]));
  }
  const int64_t n = static_cast<int64_t>(xyz.size() / 3);
  if (n == 0) {
    bounded::fail(path, "no points (" + std::to_string(s.damaged_lines) + " damaged lines" +
                            (s.issues.empty() ? "" : "; first: " + s.issues[0].to_string()) + ")");
  }
  s.cloud.coord = torch::from_blob(xyz.data(), {n, 3}, torch::kFloat32).clone();  // [N,3]
  if (!rgb.empty()) s.cloud.color = torch::from_blob(rgb.data(), {n, 3}, torch::kUInt8).clone();
  if (!label.empty()) s.cloud.segment = torch::tensor(label, torch::kInt64);
  return s;
}
}  // namespace

extern const CloudFormat kText = {"text", "text .txt/.xyz/.pts: x y z [r g b] [label] per line", detect_text_cloud,
                                  list_text, load_text};
}  // namespace ewa::datasets::fmt
