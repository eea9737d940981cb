// S3DIS raw reader: tolerant fast `x y z r g b` parser, room assembly with class / instance
// labels, alignment angles (v1.2 non-aligned), room listing, and prepare_s3dis.
#include "ewa/datasets/points/s3dis.h"

#include "ewa/datasets/points/room_cache.h"
#include "ewa/datasets/bounded_io.h"
#include "util.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <sstream>

namespace ewa::datasets {

using namespace detail;

const std::vector<std::string>& s3dis_class_names() {
  static const std::vector<std::string> names = {"ceiling", "floor", "wall",  "beam", "column",
                                                 "window",  "door",  "table", "chair", "sofa",
                                                 "bookcase", "board", "clutter"};
  return names;
}

namespace {

std::string hex_byte(unsigned char c) {
  static const char* d = "0123456789abcdef";
  std::string s = "0x";
  s += d[c >> 4];
  s += d[c & 15];
  return s;
}

bool numeric_char(char c) {
  return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E';
}

bool is_nan_or_inf_token(const std::string& tok) {
  std::string t = to_lower(tok);
  if (!t.empty() && (t[0] == '-' || t[0] == '+')) t = t.substr(1);
  return t == "nan" || t == "inf" || t == "infinity";
}

// Records a damaged line; only the first kKeptParseIssues are kept (counts stay exact).
void note_issue(XyzRgbText& out, ParseIssue issue) {
  if (static_cast<int64_t>(out.issues.size()) < kKeptParseIssues) out.issues.push_back(std::move(issue));
}

// Slow path for a line the fast path rejected: repair stray bytes, or skip.
void parse_line_slow(const char* b, const char* e, int64_t line_no, const std::string& file, XyzRgbText& out,
                     bool refuse_non_finite) {
  // A hostile line can be megabytes long: look at its first 256 bytes for the diagnosis.
  std::vector<std::string> toks = split_ws(std::string_view(b, static_cast<size_t>(std::min<ptrdiff_t>(e - b, 256))));
  if (toks.empty()) return;
  auto skip = [&](const std::string& why) {
    note_issue(out, {file, line_no, false, why});
    ++out.skipped_lines;
  };
  auto non_finite = [&](const std::string& why) {
    if (refuse_non_finite) bounded::fail(file + ":" + std::to_string(line_no), why);
    ++out.non_finite_lines;
    skip(why);
  };
  if (e - b > 256) return skip("line of " + std::to_string(e - b) + " bytes");
  double v[6];
  bool repaired = false;
  std::string repair_what;
  for (size_t c = 0; c < toks.size() && c < 6; ++c) {
    if (is_nan_or_inf_token(toks[c])) {
      if (c < 3) return non_finite("non-finite coordinate '" + toks[c] + "' in column " + std::to_string(c + 1));
      return skip("non-finite colour '" + toks[c] + "' in column " + std::to_string(c + 1));
    }
    if (parse_number_token(toks[c], v[c])) continue;
    std::string clean, stray;
    for (char ch : toks[c]) {
      if (numeric_char(ch)) clean += ch;
      else stray += (stray.empty() ? "" : ",") + hex_byte(static_cast<unsigned char>(ch));
    }
    if (stray.empty() || !parse_number_token(clean, v[c])) {
      return skip("unparsable token in column " + std::to_string(c + 1));
    }
    repaired = true;
    if (!repair_what.empty()) repair_what += "; ";
    repair_what += "stray byte " + stray + " in column " + std::to_string(c + 1);
  }
  if (toks.size() != 6) {
    return skip(std::to_string(toks.size()) + " columns, expected 6");
  }
  for (int c = 3; c < 6; ++c) {
    if (!(v[c] >= 0.0 && v[c] <= 255.0)) return skip("colour out of range in column " + std::to_string(c + 1));
  }
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(static_cast<float>(v[c]))) {  // 1e300 is a finite double but an inf float
      return non_finite("coordinate out of float range in column " + std::to_string(c + 1));
    }
  }
  for (int c = 0; c < 3; ++c) out.xyz.push_back(static_cast<float>(v[c]));
  for (int c = 3; c < 6; ++c) out.rgb.push_back(static_cast<uint8_t>(std::lround(v[c])));
  if (repaired) {
    note_issue(out, {file, line_no, true, repair_what});
    ++out.repaired_lines;
  }
}

}  // namespace

XyzRgbText parse_xyzrgb_text(std::string_view text, const std::string& file, bool refuse_non_finite) {
  XyzRgbText out;
  out.xyz.reserve(text.size() / 32 * 3 + 3);
  out.rgb.reserve(text.size() / 32 * 3 + 3);
  const char* p = text.data();
  const char* end = p + text.size();
  int64_t line_no = 0;
  double v[6];
  while (p < end) {
    ++line_no;
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (eol == nullptr) eol = end;
    // Fast path: exactly six clean numbers separated by blanks.
    int k = 0;
    bool ok = true;
    const char* q = p;
    while (true) {
      while (q < eol && is_space(*q)) ++q;
      if (q >= eol) break;
      if (k == 6) {
        ok = false;
        break;
      }
      const char* r = parse_number(q, eol, v[k]);
      if (r == nullptr || (r < eol && !is_space(*r))) {
        ok = false;
        break;
      }
      ++k;
      q = r;
    }
    if (ok && k == 0) {
      p = eol + 1;
      continue;  // blank line
    }
    if (ok && k == 6 && v[3] >= 0 && v[3] <= 255 && v[4] >= 0 && v[4] <= 255 && v[5] >= 0 && v[5] <= 255 &&
        std::isfinite(static_cast<float>(v[0])) && std::isfinite(static_cast<float>(v[1])) &&
        std::isfinite(static_cast<float>(v[2]))) {
      out.xyz.push_back(static_cast<float>(v[0]));
      out.xyz.push_back(static_cast<float>(v[1]));
      out.xyz.push_back(static_cast<float>(v[2]));
      out.rgb.push_back(static_cast<uint8_t>(v[3] + 0.5));
      out.rgb.push_back(static_cast<uint8_t>(v[4] + 0.5));
      out.rgb.push_back(static_cast<uint8_t>(v[5] + 0.5));
    } else {
      parse_line_slow(p, eol, line_no, file, out, refuse_non_finite);
    }
    p = eol + 1;
  }
  return out;
}

std::map<std::string, double> read_s3dis_alignment(const std::string& path) {
  std::map<std::string, double> out;
  std::string text = read_whole_file(path);
  std::istringstream in(text);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    auto toks = split_ws(t);
    double angle = 0;
    TORCH_CHECK(toks.size() == 2 && parse_number_token(toks[1], angle) && std::isfinite(angle), path, ":",
                line_no, ": expected '<room> <angle in degrees>', found '", t, "'");
    out[toks[0]] = angle;
  }
  return out;
}

namespace {

struct AnnotationFile {
  fs::path path;
  int64_t label = 0;
};

// Class of "<class>_<k>.txt" ("stairs_1" -> alias -> clutter), or an error naming the file.
int64_t annotation_label(const fs::path& file, const S3disReadOptions& opt) {
  std::string stem = file.stem().string();
  size_t us = stem.rfind('_');
  std::string cls = stem;
  if (us != std::string::npos && us + 1 < stem.size() &&
      stem.find_first_not_of("0123456789", us + 1) == std::string::npos) {
    cls = stem.substr(0, us);
  }
  auto alias = opt.class_aliases.find(cls);
  if (alias != opt.class_aliases.end()) cls = alias->second;
  for (size_t i = 0; i < opt.class_names.size(); ++i) {
    if (opt.class_names[i] == cls) return static_cast<int64_t>(i);
  }
  std::string known;
  for (const auto& c : opt.class_names) known += (known.empty() ? "" : ", ") + c;
  TORCH_CHECK(false, file.string(), ": unknown S3DIS class '", cls, "' (known: ", known, ")");
  return -1;
}

}  // namespace

S3disRoom read_s3dis_room(const std::string& room_dir, const S3disReadOptions& options) {
  fs::path room(room_dir);
  while (!room.empty() && room.filename().empty()) room = room.parent_path();  // trailing '/'
  TORCH_CHECK(fs::is_directory(room), "S3DIS room folder not found: ", room_dir);
  fs::path ann = room / "Annotations";
  TORCH_CHECK(fs::is_directory(ann), room.string(), ": missing Annotations folder (expected ", ann.string(),
              " with <class>_<k>.txt files)");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(ann)) {
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return natural_less(a.filename().string(), b.filename().string()); });
  TORCH_CHECK(!files.empty(), ann.string(), ": no annotation files (<class>_<k>.txt): empty room");
  std::vector<AnnotationFile> anns;
  for (const auto& f : files) anns.push_back({f, annotation_label(f, options)});

  std::vector<XyzRgbText> parsed(anns.size());
  std::vector<int64_t> bytes(anns.size(), 0);
  parallel_tasks(static_cast<int64_t>(anns.size()), options.threads, [&](int64_t i) {
    std::string text = read_whole_file(anns[i].path);
    bytes[i] = static_cast<int64_t>(text.size());
    parsed[i] = parse_xyzrgb_text(text, anns[i].path.string(), options.refuse_non_finite);
  });

  S3disRoom out;
  int64_t n = 0;
  for (size_t i = 0; i < anns.size(); ++i) {
    n += static_cast<int64_t>(parsed[i].xyz.size() / 3);
    out.bytes += bytes[i];
    out.repaired_lines += parsed[i].repaired_lines;
    out.skipped_lines += parsed[i].skipped_lines;
    out.non_finite_lines += parsed[i].non_finite_lines;
    for (const auto& is : parsed[i].issues) {
      if (static_cast<int64_t>(out.issues.size()) < kKeptParseIssues) out.issues.push_back(is);
    }
    out.annotation_files.push_back(anns[i].path.filename().string());
  }
  TORCH_CHECK(n > 0, room.string(), ": room has no valid points (", anns.size(), " annotation files)");
  auto coord = torch::empty({n, 3}, torch::kFloat32);
  auto color = torch::empty({n, 3}, torch::kUInt8);
  auto segment = torch::empty({n}, torch::kInt64);
  auto instance = torch::empty({n}, torch::kInt64);
  int64_t at = 0;
  for (size_t i = 0; i < anns.size(); ++i) {
    int64_t m = static_cast<int64_t>(parsed[i].xyz.size() / 3);
    if (m == 0) continue;
    std::memcpy(coord.data_ptr<float>() + at * 3, parsed[i].xyz.data(), sizeof(float) * 3 * m);
    std::memcpy(color.data_ptr<uint8_t>() + at * 3, parsed[i].rgb.data(), 3 * m);
    segment.narrow(0, at, m).fill_(anns[i].label);
    instance.narrow(0, at, m).fill_(static_cast<int64_t>(i));
    at += m;
  }

  if (options.apply_alignment) {
    fs::path area = room.parent_path();
    fs::path align = area / (area.filename().string() + "_alignmentAngle.txt");
    if (fs::is_regular_file(align)) {
      auto angles = read_s3dis_alignment(align.string());
      auto it = angles.find(room.filename().string());
      if (it != angles.end() && std::fmod(it->second, 360.0) != 0.0) {
        out.alignment_angle_deg = it->second;
        double th = -it->second * M_PI / 180.0;
        auto xy = coord.narrow(1, 0, 2).to(torch::kFloat64);  // [N,2]
        auto centre = (std::get<0>(xy.max(0)) + std::get<0>(xy.min(0))) / 2;  // [2]
        auto d = xy - centre;
        double c = std::cos(th), s = std::sin(th);
        auto rot = torch::tensor({c, s, -s, c}, torch::kFloat64).view({2, 2});  // rows: x', y' as d @ rot
        coord.narrow(1, 0, 2).copy_(d.matmul(rot) + centre);
      }
    }
  }

  out.cloud.coord = coord;
  out.cloud.color = color;
  out.cloud.segment = segment;
  out.cloud.instance = instance;
  out.cloud.name = room.parent_path().filename().string() + "/" + room.filename().string();
  out.cloud.source = room.string();
  return out;
}

std::vector<std::string> list_s3dis_rooms(const std::string& raw_root, const std::vector<int>& areas) {
  fs::path root(raw_root);
  TORCH_CHECK(fs::is_directory(root), "S3DIS root folder not found: ", raw_root);
  std::vector<std::string> rooms;
  std::vector<fs::path> area_dirs;
  for (const auto& e : fs::directory_iterator(root)) {
    std::string name = e.path().filename().string();
    int64_t num = 0;
    if (!e.is_directory() || !starts_with(name, "Area_") || !parse_int_token(name.substr(5), num)) continue;
    if (!areas.empty() && std::find(areas.begin(), areas.end(), static_cast<int>(num)) == areas.end()) continue;
    area_dirs.push_back(e.path());
  }
  for (const auto& a : area_dirs) {
    for (const auto& r : fs::directory_iterator(a)) {
      if (!r.is_directory()) continue;
      if (fs::is_directory(r.path() / "Annotations") ||
          fs::is_regular_file(r.path() / (r.path().filename().string() + ".txt"))) {
        rooms.push_back(r.path().string());
      }
    }
  }
  std::sort(rooms.begin(), rooms.end(), natural_less);
  return rooms;
}

S3disPrepareSummary prepare_s3dis(const std::string& raw_root, const std::string& out_root,
                                  const S3disPrepareOptions& options) {
  TORCH_CHECK(have_hdf5(), "prepare_s3dis writes HDF5 room files, but this build has no HDF5 ",
              "(install libhdf5-dev and configure with -DEWA_WITH_HDF5=ON)");
  auto rooms = list_s3dis_rooms(raw_root, options.areas);
  TORCH_CHECK(!rooms.empty(), raw_root, ": no S3DIS rooms found (expected Area_N/<room>/Annotations)");
  S3disPrepareSummary sum;
  sum.rooms = static_cast<int64_t>(rooms.size());
  std::mutex mu;
  int64_t done = 0;
  S3disReadOptions read = options.read;
  read.threads = 1;
  parallel_tasks(sum.rooms, options.threads, [&](int64_t i) {
    fs::path room(rooms[i]);
    std::string name = room.parent_path().filename().string() + "/" + room.filename().string();
    fs::path out = fs::path(out_root) / room.parent_path().filename() / (room.filename().string() + ".h5");
    S3disPrepareProgress prog;
    prog.room = name;
    std::string error;
    S3disRoom r;
    bool skipped = !options.overwrite && room_h5_valid(out.string());
    if (!skipped) {
      try {
        r = read_s3dis_room(room.string(), read);
        write_room_h5(out.string(), r.cloud);
      } catch (const std::exception& e) {
        error = one_line_error(e);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    if (skipped) {
      ++sum.rooms_skipped;
      prog.skipped = true;
    } else if (!error.empty()) {
      sum.failed.emplace_back(name, error);
    } else {
      ++sum.rooms_written;
      sum.points += r.cloud.size();
      prog.points = r.cloud.size();
      sum.repaired_lines += r.repaired_lines;
      sum.skipped_lines += r.skipped_lines;
      sum.non_finite_lines += r.non_finite_lines;
      for (const auto& is : r.issues) {
        if (static_cast<int64_t>(sum.issues.size()) < kKeptParseIssues) sum.issues.push_back(is);
      }
    }
    prog.done = ++done;
    prog.total = sum.rooms;
    if (options.progress) options.progress(prog);
  });
  return sum;
}

}  // namespace ewa::datasets
