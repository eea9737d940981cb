// PCD (ascii/binary/binary_compressed) and PLY (ascii/binary) readers keeping every field,
// LZF decompression, label maps, field -> PointCloudData conversion, and the PLY writer.
#include "ewa/datasets/points/pcd_ply.h"

#include "ewa/datasets/bounded_io.h"
#include "util.h"

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace ewa::datasets {

using namespace detail;

const torch::Tensor& PointFields::get(const std::string& name) const {
  auto it = fields.find(name);
  if (it == fields.end()) {
    std::string have;
    for (const auto& n : names) have += (have.empty() ? "" : " ") + n;
    TORCH_CHECK(false, source, ": no field '", name, "' (fields: ", have, ")");
  }
  return it->second;
}

std::vector<uint8_t> lzf_decompress(const uint8_t* in, size_t in_size, size_t out_size) {
  // Positions are indices, not pointers: an empty output has no buffer to point into.
  std::vector<uint8_t> out(out_size);
  size_t ip = 0;
  size_t op = 0;
  while (ip < in_size) {
    unsigned ctrl = in[ip++];
    if (ctrl < 32) {  // literal run of ctrl+1 bytes
      size_t len = ctrl + 1;
      TORCH_CHECK(len <= in_size - ip, "LZF: literal run past the end of the input");
      TORCH_CHECK(len <= out_size - op, "LZF: output larger than the declared size");
      std::memcpy(out.data() + op, in + ip, len);
      op += len;
      ip += len;
    } else {  // back reference
      size_t len = ctrl >> 5;
      TORCH_CHECK(ip < in_size, "LZF: truncated back reference");
      if (len == 7) {
        len += in[ip++];
        TORCH_CHECK(ip < in_size, "LZF: truncated back reference");
      }
      size_t off = ((ctrl & 0x1f) << 8) + in[ip++] + 1;
      len += 2;
      TORCH_CHECK(off <= op, "LZF: back reference before the output start");
      TORCH_CHECK(len <= out_size - op, "LZF: output larger than the declared size");
      for (size_t i = 0; i < len; ++i) out[op + i] = out[op - off + i];  // may overlap
      op += len;
    }
  }
  TORCH_CHECK(op == out_size, "LZF: decompressed ", op, " bytes, expected ", out_size);
  return out;
}

namespace {

struct FieldSpec {
  std::string name;
  char type = 'F';  // F, I, U
  int size = 4;
  int64_t count = 1;
  int list_size = 0;  // PLY list property (skipped): bytes of its count; 0 = scalar
  char list_type = 'U';
};

// Bytes of one record of scalar fields (overflow-checked; counts come from the header).
int64_t record_bytes(const std::vector<FieldSpec>& specs, const std::string& path) {
  int64_t rec = 0;
  for (const auto& f : specs) {
    if (f.list_size > 0) continue;
    rec = bounded::checked_add(rec, bounded::checked_mul(f.size, f.count, path, "field '" + f.name + "' COUNT"), path,
                               "record size");
  }
  return rec;
}

// Values per row of an ascii file (lists excluded).
int64_t values_per_row(const std::vector<FieldSpec>& specs, const std::string& path) {
  int64_t per = 0;
  for (const auto& f : specs) {
    if (f.list_size == 0) per = bounded::checked_add(per, f.count, path, "values per point");
  }
  return per;
}

// Storage dtype with the same byte size, and the final widened dtype.
torch::ScalarType raw_dtype(const FieldSpec& f, const std::string& path) {
  if (f.type == 'F' && f.size == 4) return torch::kFloat32;
  if (f.type == 'F' && f.size == 8) return torch::kFloat64;
  if (f.type == 'U' && f.size == 1) return torch::kUInt8;
  if (f.type == 'I' && f.size == 1) return torch::kInt8;
  if ((f.type == 'I' || f.type == 'U') && f.size == 2) return torch::kInt16;
  if ((f.type == 'I' || f.type == 'U') && f.size == 4) return torch::kInt32;
  if ((f.type == 'I' || f.type == 'U') && f.size == 8) return torch::kInt64;
  TORCH_CHECK(false, path, ": unsupported field type ", f.type, f.size, " for '", f.name, "'");
  return torch::kFloat32;
}

torch::Tensor widen(torch::Tensor t, const FieldSpec& f) {
  if (f.type == 'U' && f.size == 2) return t.to(torch::kInt32).bitwise_and(0xFFFF);
  if (f.type == 'U' && f.size == 4) return t.to(torch::kInt64).bitwise_and(static_cast<int64_t>(0xFFFFFFFF));
  return t;
}

torch::Tensor shaped(torch::Tensor t, int64_t n, int64_t count) {
  return count == 1 ? t.view({n}) : t.view({n, count});  // [N] or [N,count]
}

// Fills `out` from array-of-structs records (record = sum of field bytes).
void from_records(const uint8_t* data, int64_t n, const std::vector<FieldSpec>& specs, bool swap,
                  PointFields& out, const std::string& path) {
  int64_t rec = record_bytes(specs, path);
  int64_t at = 0;
  for (const auto& f : specs) {
    int64_t bytes = f.size * f.count;
    auto t = torch::empty({n * f.count}, raw_dtype(f, path));
    auto* dst = static_cast<uint8_t*>(t.data_ptr());
    for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * bytes, data + i * rec + at, static_cast<size_t>(bytes));
    if (swap) byteswap_inplace(dst, n * f.count, f.size);
    at += bytes;
    if (f.name == "_") continue;  // PCL padding
    out.fields[f.name] = shaped(widen(t, f), n, f.count);
    out.names.push_back(f.name);
  }
}

// Parses ascii rows: each line holds all values of one point.
void from_ascii(const char* p, const char* end, int64_t n, const std::vector<FieldSpec>& specs, PointFields& out,
                const std::string& path, int64_t first_line) {
  int64_t per = values_per_row(specs, path);
  bool has_list = false;
  for (const auto& f : specs) has_list = has_list || f.list_size > 0;
  // Every value takes at least 2 bytes ("0 " / "0\n"): bound n*per by the bytes present
  // before allocating anything.
  bounded::require_bytes(path, "point count", n, bounded::checked_mul(per, 2, path, "values per point"),
                         static_cast<int64_t>(end - p) + 1);
  std::vector<double> vals(static_cast<size_t>(n * per));
  int64_t row = 0, line = first_line;
  while (p < end && row < n) {
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (eol == nullptr) eol = end;
    auto toks = split_ws(std::string_view(p, static_cast<size_t>(eol - p)));
    p = eol + 1;
    if (toks.empty()) {
      ++line;
      continue;
    }
    if (has_list) {  // PLY rows with list properties: keep the scalars, skip each list
      std::vector<std::string> kept;
      size_t t = 0;
      for (const auto& f : specs) {
        if (f.list_size == 0) {
          for (int64_t c = 0; c < f.count && t < toks.size(); ++c) kept.push_back(toks[t++]);
          continue;
        }
        int64_t k = -1;
        if (t >= toks.size() || !parse_int_token(toks[t], k) || k < 0 ||
            k > static_cast<int64_t>(toks.size() - t - 1)) {
          bounded::fail(path, std::to_string(line) + ": bad count of list property '" + f.name + "'");
        }
        t += static_cast<size_t>(k) + 1;
      }
      if (t != toks.size()) kept.push_back("");  // wrong value count, reported below
      toks = std::move(kept);
    }
    if (static_cast<int64_t>(toks.size()) != per) {
      bounded::fail(path, std::to_string(line) + ": " + std::to_string(toks.size()) + " values, expected " +
                              std::to_string(per));
    }
    for (int64_t k = 0; k < per; ++k) {
      if (!parse_number_token(toks[k], vals[row * per + k])) {
        bounded::fail(path, std::to_string(line) + ": bad number '" + toks[k].substr(0, 40) + "'");
      }
    }
    ++row;
    ++line;
  }
  TORCH_CHECK(row == n, path, ": ", row, " data lines, header announces ", n, " points");
  auto all = torch::from_blob(vals.data(), {n, per}, torch::kFloat64);  // [N,per]
  int64_t at = 0;
  for (const auto& f : specs) {
    if (f.list_size > 0) continue;
    auto col = all.narrow(1, at, f.count).contiguous();
    at += f.count;
    if (f.name == "_") continue;
    torch::ScalarType st = raw_dtype(f, path);
    if (f.type == 'U' && f.size == 2) st = torch::kInt32;
    if (f.type == 'U' && f.size == 4) st = torch::kInt64;
    torch::Tensor t;
    if (f.type == 'F' && f.size == 4 && (f.name == "rgb" || f.name == "rgba")) {
      t = col.to(torch::kFloat32);  // packed colour written as a float value
    } else {
      t = col.to(st);
    }
    out.fields[f.name] = shaped(t, n, f.count);
    out.names.push_back(f.name);
  }
}

}  // namespace

PointFields read_pcd(const std::string& path) {
  std::string bytes = read_whole_file(path);
  PointFields out;
  out.source = path;
  std::vector<FieldSpec> specs;
  std::vector<std::string> sizes, types, counts;
  int64_t points = -1;
  std::string data_kind;
  size_t pos = 0;
  int64_t line = 0;
  while (pos < bytes.size()) {
    size_t eol = bytes.find('\n', pos);
    if (eol == std::string::npos) eol = bytes.size();
    std::string l = trim(std::string_view(bytes).substr(pos, eol - pos));
    pos = eol + 1;
    ++line;
    if (!l.empty() && l[0] == '#' && out.comments.size() < 64) out.comments.push_back(trim(std::string_view(l).substr(1)));
    if (l.empty() || l[0] == '#') continue;
    auto toks = split_ws(l);
    std::string key = toks[0];
    toks.erase(toks.begin());
    if (key == "FIELDS") {
      for (const auto& t : toks) specs.push_back({t});
    } else if (key == "SIZE") {
      sizes = toks;
    } else if (key == "TYPE") {
      types = toks;
    } else if (key == "COUNT") {
      counts = toks;
    } else if (key == "WIDTH") {
      TORCH_CHECK(toks.size() == 1 && parse_int_token(toks[0], out.width), path, ":", line, ": bad WIDTH");
    } else if (key == "HEIGHT") {
      TORCH_CHECK(toks.size() == 1 && parse_int_token(toks[0], out.height), path, ":", line, ": bad HEIGHT");
    } else if (key == "POINTS") {
      TORCH_CHECK(toks.size() == 1 && parse_int_token(toks[0], points), path, ":", line, ": bad POINTS");
    } else if (key == "DATA") {
      TORCH_CHECK(toks.size() == 1, path, ":", line, ": bad DATA line");
      data_kind = toks[0];
      break;
    } else if (key == "VERSION" || key == "VIEWPOINT") {
      continue;
    } else {
      TORCH_CHECK(false, path, ":", line, ": unknown PCD header key '", key, "'");
    }
  }
  TORCH_CHECK(!data_kind.empty(), path, ": no DATA line (not a PCD file?)");
  TORCH_CHECK(!specs.empty() && sizes.size() == specs.size() && types.size() == specs.size() &&
                  (counts.empty() || counts.size() == specs.size()),
              path, ": FIELDS/SIZE/TYPE/COUNT lengths differ");
  for (size_t i = 0; i < specs.size(); ++i) {
    int64_t s = 0, c = 1;
    TORCH_CHECK(parse_int_token(sizes[i], s) && (s == 1 || s == 2 || s == 4 || s == 8) && types[i].size() == 1, path,
                ": bad SIZE/TYPE for ", specs[i].name);
    if (!counts.empty()) {
      TORCH_CHECK(parse_int_token(counts[i], c), path, ": bad COUNT for ", specs[i].name);
      bounded::require_count(path, "COUNT of field '" + specs[i].name + "'", c);
      if (c < 1) bounded::fail(path, "COUNT of field '" + specs[i].name + "' is 0");
    }
    specs[i].size = static_cast<int>(s);
    specs[i].type = types[i][0];
    specs[i].count = c;
    raw_dtype(specs[i], path);
  }
  bounded::require_count(path, "WIDTH", out.width);
  bounded::require_count(path, "HEIGHT", out.height);
  const int64_t wh = bounded::checked_mul(out.width, out.height, path, "WIDTH x HEIGHT");
  if (points < 0) points = wh;
  bounded::require_count(path, "POINTS", points);
  TORCH_CHECK(wh == points, path, ": WIDTH*HEIGHT=", wh, " but POINTS=", points);
  int64_t n = points;
  const int64_t rec = record_bytes(specs, path);
  const uint8_t* data = reinterpret_cast<const uint8_t*>(bytes.data()) + std::min(pos, bytes.size());
  size_t avail = bytes.size() - std::min(pos, bytes.size());
  if (data_kind == "ascii") {
    from_ascii(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + avail, n, specs, out, path,
               line + 1);
  } else if (data_kind == "binary") {
    bounded::require_bytes(path, "point count", n, rec, static_cast<int64_t>(avail));
    from_records(data, n, specs, false, out, path);
  } else if (data_kind == "binary_compressed") {
    if (avail < 8) bounded::fail(path, "truncated binary_compressed header");
    uint32_t csize, usize;
    std::memcpy(&csize, data, 4);
    std::memcpy(&usize, data + 4, 4);
    if (avail - 8 < csize) {
      bounded::fail(path, "compressed block of " + std::to_string(csize) + " bytes but only " +
                              std::to_string(avail - 8) + " present");
    }
    const int64_t need = bounded::checked_mul(n, rec, path, "point count x record size");
    if (static_cast<int64_t>(usize) != need) {
      bounded::fail(path, "uncompressed size " + std::to_string(usize) + " != points*record " + std::to_string(need));
    }
    // LZF expands at most ~88x (a 3-byte back reference yields 264 bytes): refuse a declared
    // size the compressed bytes cannot produce before allocating it.
    bounded::require_inflation(path, "declared uncompressed size", usize, csize, 100);
    std::vector<uint8_t> raw;
    try {
      raw = lzf_decompress(data + 8, csize, usize);
    } catch (const c10::Error& e) {
      bounded::fail(path, e.msg());
    }
    // Struct-of-arrays: each field's values for all points, in field order.
    size_t at = 0;
    for (const auto& f : specs) {
      int64_t bytes_f = n * f.size * f.count;
      auto t = torch::empty({n * f.count}, raw_dtype(f, path));
      if (bytes_f > 0) std::memcpy(t.data_ptr(), raw.data() + at, static_cast<size_t>(bytes_f));
      at += static_cast<size_t>(bytes_f);
      if (f.name == "_") continue;
      out.fields[f.name] = shaped(widen(t, f), n, f.count);
      out.names.push_back(f.name);
    }
  } else {
    TORCH_CHECK(false, path, ": unknown DATA kind '", data_kind, "' (ascii, binary, binary_compressed)");
  }
  return out;
}

namespace {
struct PlyProp {
  std::string name;
  FieldSpec spec;       // scalar type
  bool list = false;
  FieldSpec count_spec; // list count type
};
struct PlyElement {
  std::string name;
  int64_t count = 0;
  std::vector<PlyProp> props;
};

FieldSpec ply_type(const std::string& t, const std::string& path) {
  if (t == "char" || t == "int8") return {"", 'I', 1};
  if (t == "uchar" || t == "uint8") return {"", 'U', 1};
  if (t == "short" || t == "int16") return {"", 'I', 2};
  if (t == "ushort" || t == "uint16") return {"", 'U', 2};
  if (t == "int" || t == "int32") return {"", 'I', 4};
  if (t == "uint" || t == "uint32") return {"", 'U', 4};
  if (t == "float" || t == "float32") return {"", 'F', 4};
  if (t == "double" || t == "float64") return {"", 'F', 8};
  TORCH_CHECK(false, path, ": unknown PLY property type '", t, "'");
  return {};
}

// A PLY list count of `size` bytes, signed ('I') or unsigned; a negative count comes back
// negative (and is then refused by the bounded cursor, never used to move backwards).
int64_t read_count(const uint8_t* p, int size, char type, bool big) {
  uint64_t v = 0;
  for (int i = 0; i < size; ++i) v |= static_cast<uint64_t>(p[big ? size - 1 - i : i]) << (8 * i);
  if (type == 'I' && size < 8 && (v >> (8 * size - 1)) != 0) return static_cast<int64_t>(v) - (int64_t{1} << (8 * size));
  return static_cast<int64_t>(v);
}
}  // namespace

PointFields read_ply(const std::string& path) {
  std::string bytes = read_whole_file(path);
  TORCH_CHECK(starts_with(bytes, "ply"), path, ": not a PLY file (no 'ply' magic)");
  size_t pos = 0;
  std::string format;
  std::vector<PlyElement> elems;
  int64_t line = 0;
  bool ended = false;
  std::vector<std::string> comments;
  while (pos < bytes.size()) {
    size_t eol = bytes.find('\n', pos);
    if (eol == std::string::npos) eol = bytes.size();
    std::string l = trim(std::string_view(bytes).substr(pos, eol - pos));
    pos = eol + 1;
    ++line;
    auto toks = split_ws(l);
    if (toks.empty()) continue;
    if (toks[0] == "end_header") {
      ended = true;
      break;
    }
    if (toks[0] == "comment" || toks[0] == "obj_info") {
      if (comments.size() < 64) comments.push_back(trim(std::string_view(l).substr(toks[0].size())));
      continue;
    }
    if (toks[0] == "format") {
      TORCH_CHECK(toks.size() >= 2, path, ":", line, ": bad format line");
      format = toks[1];
    } else if (toks[0] == "element") {
      TORCH_CHECK(toks.size() == 3, path, ":", line, ": bad element line");
      PlyElement e;
      e.name = toks[1];
      TORCH_CHECK(parse_int_token(toks[2], e.count) && e.count >= 0, path, ":", line, ": bad element count");
      elems.push_back(e);
    } else if (toks[0] == "property") {
      TORCH_CHECK(!elems.empty(), path, ":", line, ": property before any element");
      PlyProp p;
      if (toks.size() == 5 && toks[1] == "list") {
        p.list = true;
        p.count_spec = ply_type(toks[2], path);
        p.spec = ply_type(toks[3], path);
        p.name = toks[4];
      } else {
        TORCH_CHECK(toks.size() == 3, path, ":", line, ": bad property line");
        p.spec = ply_type(toks[1], path);
        p.name = toks[2];
      }
      p.spec.name = p.name;
      elems.back().props.push_back(p);
    }
  }
  TORCH_CHECK(ended, path, ": no end_header");
  TORCH_CHECK(format == "ascii" || format == "binary_little_endian" || format == "binary_big_endian", path,
              ": unsupported PLY format '", format, "'");
  bool big = format == "binary_big_endian";
  PointFields out;
  out.source = path;
  out.comments = std::move(comments);
  const char* p = bytes.data() + std::min(pos, bytes.size());
  const char* end = bytes.data() + bytes.size();
  for (const auto& e : elems) {
    bool has_list = false;
    for (const auto& pr : e.props) has_list = has_list || pr.list;
    if (e.name == "vertex") {
      std::vector<FieldSpec> specs;
      for (const auto& pr : e.props) {
        FieldSpec f = pr.spec;
        if (pr.list) {
          f.list_size = pr.count_spec.size;
          f.list_type = pr.count_spec.type;
        }
        specs.push_back(f);
      }
      out.width = e.count;
      out.height = 1;
      if (format == "ascii") {
        from_ascii(p, end, e.count, specs, out, path, line + 1);
        return out;
      }
      const int64_t rec = record_bytes(specs, path);
      if (!has_list) {
        bounded::require_bytes(path, "vertex count", e.count, rec, end - p);
        from_records(reinterpret_cast<const uint8_t*>(p), e.count, specs, big, out, path);
        return out;
      }
      // Lists in the vertex element: copy the scalars of each row into packed records
      // (each row takes at least rec + its list counts, so the buffer is bounded by the file).
      int64_t min_row = rec;
      for (const auto& f : specs) min_row += f.list_size;
      bounded::require_bytes(path, "vertex count", e.count, min_row, end - p);
      std::vector<uint8_t> packed(static_cast<size_t>(e.count * rec));
      bounded::ByteCursor cur(p, end - p, path);
      std::vector<FieldSpec> scalars;
      for (const auto& f : specs) {
        if (f.list_size == 0) scalars.push_back(f);
      }
      for (int64_t i = 0; i < e.count; ++i) {
        uint8_t* w = packed.data() + i * rec;
        for (const auto& f : specs) {
          if (f.list_size == 0) {
            std::memcpy(w, cur.skip(f.size, "vertex data"), static_cast<size_t>(f.size));
            w += f.size;
            continue;
          }
          int64_t k = read_count(cur.skip(f.list_size, "vertex list count"), f.list_size, f.list_type, big);
          cur.skip_items(k, f.size, "vertex list '" + f.name + "'");
        }
      }
      from_records(packed.data(), e.count, scalars, big, out, path);
      return out;
    }
    // Skip an element that precedes the vertices.
    if (format == "ascii") {
      for (int64_t i = 0; i < e.count && p < end; ++i) {
        const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
        p = eol ? eol + 1 : end;
      }
    } else {
      bounded::ByteCursor cur(p, end - p, path);
      int64_t min_row = 0;
      for (const auto& pr : e.props) min_row += pr.list ? pr.count_spec.size : pr.spec.size;
      bounded::require_bytes(path, "element '" + e.name + "' count", e.count, min_row, cur.left());
      if (e.props.empty()) continue;  // nothing stored per row (a huge count must not spin)
      for (int64_t i = 0; i < e.count; ++i) {
        for (const auto& pr : e.props) {
          if (pr.list) {
            int64_t k = read_count(cur.skip(pr.count_spec.size, "element '" + e.name + "'"), pr.count_spec.size,
                                   pr.count_spec.type, big);
            cur.skip_items(k, pr.spec.size, "list of element '" + e.name + "'");
          } else {
            cur.skip(pr.spec.size, "element '" + e.name + "'");
          }
        }
      }
      p += cur.offset();
    }
  }
  TORCH_CHECK(false, path, ": no 'vertex' element");
  return out;
}

PointFields read_point_fields(const std::string& path) {
  std::string ext = to_lower(fs::path(path).extension().string());
  if (ext == ".pcd") return read_pcd(path);
  if (ext == ".ply") return read_ply(path);
  TORCH_CHECK(false, path, ": unknown point-cloud extension '", ext, "' (.pcd or .ply)");
  return {};
}

LabelMap parse_label_map(const std::string& spec) {
  LabelMap m;
  std::string s = spec;
  for (char& c : s) if (c == ',' || c == ';') c = ' ';
  for (const auto& item : split_ws(s)) {
    size_t colon = item.rfind(':');
    TORCH_CHECK(colon != std::string::npos, "label map: '", item, "' is not 'lo-hi:target'");
    std::string range = item.substr(0, colon);
    LabelRule r;
    TORCH_CHECK(parse_int_token(item.substr(colon + 1), r.target), "label map: bad target in '", item, "'");
    size_t dash = range.find('-', 1);
    bool ok;
    if (dash == std::string::npos) {
      ok = parse_int_token(range, r.lo);
      r.hi = r.lo;
    } else {
      ok = parse_int_token(range.substr(0, dash), r.lo);
      std::string hi = range.substr(dash + 1);
      r.hi = LLONG_MAX;
      if (!hi.empty()) ok = ok && parse_int_token(hi, r.hi);
    }
    TORCH_CHECK(ok && r.lo <= r.hi, "label map: bad range in '", item, "'");
    m.rules.push_back(r);
  }
  TORCH_CHECK(!m.rules.empty(), "label map: empty specification");
  return m;
}

LabelMap mosd_label_map() { return parse_label_map("0:-1,1-9:0,20-:1"); }

torch::Tensor apply_label_map(const torch::Tensor& labels, const LabelMap& map) {
  TORCH_CHECK(!labels.is_floating_point(), "apply_label_map: labels must be integer, found ", labels.scalar_type());
  auto l = labels.to(torch::kInt64);
  auto out = torch::full_like(l, map.fallback);
  auto done = torch::zeros_like(l, torch::kBool);
  for (const auto& r : map.rules) {
    auto m = l.ge(r.lo).logical_and(l.le(r.hi)).logical_and(done.logical_not());
    out.masked_fill_(m, r.target);
    done.logical_or_(m);
  }
  return out;
}

namespace {
torch::Tensor first_field(const PointFields& f, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (f.has(n)) return f.fields.at(n);
  }
  return {};
}

torch::Tensor unpack_rgb(const torch::Tensor& packed) {
  torch::Tensor bits;
  if (packed.scalar_type() == torch::kFloat32) bits = packed.contiguous().view(torch::kInt32).to(torch::kInt64);
  else bits = packed.to(torch::kInt64);
  auto r = bits.bitwise_right_shift(16).bitwise_and(255);
  auto g = bits.bitwise_right_shift(8).bitwise_and(255);
  auto b = bits.bitwise_and(255);
  return torch::stack({r, g, b}, 1).to(torch::kUInt8);  // [N,3]
}

torch::Tensor as_color(const torch::Tensor& c) {
  if (c.scalar_type() == torch::kUInt8) return c;
  if (c.is_floating_point() && c.numel() > 0 && c.max().item<double>() <= 1.0) return (c * 255).round().clamp(0, 255).to(torch::kUInt8);
  return c.to(torch::kFloat64).round().clamp(0, 255).to(torch::kUInt8);
}
}  // namespace

PointCloudData fields_to_cloud(const PointFields& f, const FieldsToCloudOptions& options) {
  PointCloudData c;
  c.source = f.source;
  c.name = fs::path(f.source).stem().string();
  c.coord = torch::stack({f.get("x").to(torch::kFloat32), f.get("y").to(torch::kFloat32), f.get("z").to(torch::kFloat32)},
                         1);  // [N,3]
  if (auto packed = first_field(f, {"rgb", "rgba"}); packed.defined()) {
    c.color = unpack_rgb(packed);
  } else if (f.has("red") && f.has("green") && f.has("blue")) {
    c.color = torch::stack({as_color(f.get("red")), as_color(f.get("green")), as_color(f.get("blue"))}, 1);  // [N,3]
  }
  if (f.has("normal_x") && f.has("normal_y") && f.has("normal_z")) {
    c.normal = torch::stack({f.get("normal_x"), f.get("normal_y"), f.get("normal_z")}, 1).to(torch::kFloat32);
  } else if (f.has("nx") && f.has("ny") && f.has("nz")) {
    c.normal = torch::stack({f.get("nx"), f.get("ny"), f.get("nz")}, 1).to(torch::kFloat32);
  }
  if (!options.label_field.empty() && f.has(options.label_field)) {
    auto l = f.get(options.label_field);
    TORCH_CHECK(!l.is_floating_point() || l.eq(l.round()).all().item<bool>(), f.source, ": label field '",
                options.label_field, "' holds non-integer values");
    l = l.to(torch::kInt64).reshape({-1});
    c.segment = options.use_label_map ? apply_label_map(l, options.label_map) : l;
  }
  if (f.has("instance")) c.instance = f.get("instance").to(torch::kInt64).reshape({-1});
  if (options.drop_non_finite || options.refuse_non_finite) drop_non_finite_points(c, options.refuse_non_finite);
  return c;
}

void write_point_ply(const std::string& path, const torch::Tensor& coord_in, const torch::Tensor& color_in,
                     const std::vector<PlyColumn>& columns, bool binary, const std::vector<std::string>& comments) {
  TORCH_CHECK(coord_in.dim() == 2 && coord_in.size(1) == 3, path, ": coord must be [N,3], found ", coord_in.sizes());
  const int64_t n = coord_in.size(0);
  auto coord = coord_in.to(torch::kFloat32).contiguous().cpu();
  torch::Tensor color = color_in.defined() && color_in.numel() > 0 ? color_in : torch::full({n, 3}, 128, torch::kUInt8);
  TORCH_CHECK(color.sizes() == coord.sizes() && color.scalar_type() == torch::kUInt8, path,
              ": color must be uint8 [N,3]");
  color = color.contiguous().cpu();
  // every column as 4-byte values: int32 or float32
  std::vector<torch::Tensor> cols;
  std::vector<bool> is_float;
  std::string props;
  for (const auto& c : columns) {
    TORCH_CHECK(!c.name.empty() && c.name.find_first_of(" \t\r\n") == std::string::npos, path,
                ": bad PLY column name '", c.name, "'");
    TORCH_CHECK(c.values.defined() && c.values.numel() == n, path, ": column ", c.name, " must have ", n, " values");
    const bool f = c.values.is_floating_point();
    cols.push_back(c.values.reshape({-1}).to(f ? torch::kFloat32 : torch::kInt32).contiguous().cpu());
    is_float.push_back(f);
    props += std::string("property ") + (f ? "float " : "int ") + c.name + "\n";
  }
  std::string out = "ply\nformat " + std::string(binary ? "binary_little_endian" : "ascii") + " 1.0\n";
  for (const auto& c : comments) {
    std::string line = c;
    for (char& ch : line) if (ch == '\n' || ch == '\r') ch = ' ';
    out += "comment " + line + "\n";
  }
  out += "element vertex " + std::to_string(n) +
         "\nproperty float x\nproperty float y\nproperty float z\nproperty uchar red\n"
         "property uchar green\nproperty uchar blue\n" + props + "end_header\n";
  if (binary) {
    const int64_t rec = 12 + 3 + 4 * static_cast<int64_t>(cols.size());
    const size_t base = out.size();
    out.resize(base + static_cast<size_t>(rec * n));
    if (n > 0) {
      // Interleave the columns with tensor copies into an [N, rec] byte matrix (no per-point loop).
      auto bytes = torch::from_blob(out.data() + base, {n, rec}, torch::kUInt8);
      bytes.narrow(1, 0, 12).copy_(coord.view(torch::kUInt8).view({n, 12}));
      bytes.narrow(1, 12, 3).copy_(color);
      for (size_t k = 0; k < cols.size(); ++k) {
        bytes.narrow(1, 15 + 4 * static_cast<int64_t>(k), 4).copy_(cols[k].view(torch::kUInt8).view({n, 4}));
      }
    }
  } else {
    const float* xyz = coord.data_ptr<float>();
    const uint8_t* rgb = color.data_ptr<uint8_t>();
    char buf[160];
    for (int64_t i = 0; i < n; ++i) {
      int len = std::snprintf(buf, sizeof(buf), "%.9g %.9g %.9g %d %d %d", xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2],
                              rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
      out.append(buf, static_cast<size_t>(len));
      for (size_t k = 0; k < cols.size(); ++k) {
        len = is_float[k] ? std::snprintf(buf, sizeof(buf), " %.9g", static_cast<double>(cols[k].data_ptr<float>()[i]))
                          : std::snprintf(buf, sizeof(buf), " %d", cols[k].data_ptr<int32_t>()[i]);
        out.append(buf, static_cast<size_t>(len));
      }
      out += '\n';
    }
  }
  write_file_atomic(path, out);
}

void write_labelled_ply(const std::string& path, const torch::Tensor& coord, const torch::Tensor& color,
                        const torch::Tensor& label, const torch::Tensor& gt, bool binary,
                        const std::vector<std::string>& comments,
                        const std::vector<std::pair<std::string, torch::Tensor>>& float_fields) {
  TORCH_CHECK(coord.dim() == 2 && coord.size(1) == 3, path, ": coord must be [N,3], found ", coord.sizes());
  const int64_t n = coord.size(0);
  TORCH_CHECK(label.defined() && label.numel() == n && !label.is_floating_point(), path, ": label must be integer [",
              n, "]");
  std::vector<PlyColumn> cols = {{"label", label}};
  if (gt.defined() && gt.numel() > 0) {
    TORCH_CHECK(gt.numel() == n && !gt.is_floating_point(), path, ": gt must be integer [", n, "]");
    cols.push_back({"gt", gt});
  }
  for (const auto& [name, values] : float_fields) {
    TORCH_CHECK(values.defined(), path, ": field '", name, "' holds no values");
    cols.push_back({name, values.to(torch::kFloat32)});
  }
  write_point_ply(path, coord, color, cols, binary, comments);
}

}  // namespace ewa::datasets
