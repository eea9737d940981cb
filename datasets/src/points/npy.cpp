// NumPy .npy reader/writer and the Pointcept per-room folder reader.
#include "ewa/datasets/points/npy.h"

#include "ewa/datasets/bounded_io.h"
#include "util.h"

#include <cstring>

namespace ewa::datasets {

using namespace detail;

namespace {

// Value of `'key': value` in the npy header dict (string values without quotes).
std::string dict_value(const std::string& h, const std::string& key, const std::string& path) {
  size_t k = h.find("'" + key + "'");
  TORCH_CHECK(k != std::string::npos, path, ": .npy header has no '", key, "'");
  size_t colon = h.find(':', k);
  TORCH_CHECK(colon != std::string::npos, path, ": malformed .npy header");
  size_t a = colon + 1;
  while (a < h.size() && h[a] == ' ') ++a;
  if (a < h.size() && (h[a] == '\'' || h[a] == '"')) {
    size_t b = h.find(h[a], a + 1);
    TORCH_CHECK(b != std::string::npos, path, ": malformed .npy header");
    return h.substr(a + 1, b - a - 1);
  }
  if (a < h.size() && h[a] == '(') {
    size_t b = h.find(')', a);
    TORCH_CHECK(b != std::string::npos, path, ": malformed .npy shape");
    return h.substr(a, b - a + 1);
  }
  size_t b = h.find_first_of(",}", a);
  return trim(h.substr(a, b - a));
}

}  // namespace

torch::Tensor read_npy(const std::string& path) {
  std::string bytes = read_whole_file(path);
  TORCH_CHECK(bytes.size() >= 10 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0, path,
              ": not a .npy file (bad magic)");
  int major = static_cast<uint8_t>(bytes[6]);
  size_t hlen, hstart;
  if (major == 1) {
    hlen = static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
    hstart = 10;
  } else {
    TORCH_CHECK(major == 2 || major == 3, path, ": unsupported .npy version ", major);
    TORCH_CHECK(bytes.size() >= 12, path, ": truncated .npy header");
    hlen = 0;
    for (int i = 0; i < 4; ++i) hlen |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
    hstart = 12;
  }
  TORCH_CHECK(hstart + hlen <= bytes.size(), path, ": truncated .npy header");
  std::string h = bytes.substr(hstart, hlen);
  std::string descr = dict_value(h, "descr", path);
  std::string fortran = dict_value(h, "fortran_order", path);
  TORCH_CHECK(fortran == "False", path, ": fortran_order='", fortran.substr(0, 20), "' arrays are not supported (save C-order)");
  std::string shape_s = dict_value(h, "shape", path);
  std::vector<int64_t> shape;
  if (shape_s.size() < 2 || shape_s.front() != '(' || shape_s.back() != ')') {
    bounded::fail(path, "bad .npy shape '" + shape_s.substr(0, 40) + "'");
  }
  {
    std::string inner = shape_s.substr(1, shape_s.size() - 2);
    for (char& c : inner) if (c == ',') c = ' ';
    for (const auto& tok : split_ws(inner)) {
      int64_t v = 0;
      if (!parse_int_token(tok, v)) bounded::fail(path, "bad .npy shape '" + shape_s.substr(0, 80) + "'");
      if (v < 0) {
        bounded::fail(path, "negative dimension " + std::to_string(v) + " in .npy shape '" + shape_s.substr(0, 80) + "'");
      }
      shape.push_back(v);
    }
  }
  TORCH_CHECK(descr.size() >= 3, path, ": bad .npy dtype '", descr, "'");
  char order = descr[0];
  std::string code = descr.substr(1);
  torch::ScalarType st;
  int size;
  if (code == "f4") st = torch::kFloat32, size = 4;
  else if (code == "f8") st = torch::kFloat64, size = 8;
  else if (code == "f2") st = torch::kFloat16, size = 2;
  else if (code == "u1") st = torch::kUInt8, size = 1;
  else if (code == "i1") st = torch::kInt8, size = 1;
  else if (code == "b1") st = torch::kBool, size = 1;
  else if (code == "i2") st = torch::kInt16, size = 2;
  else if (code == "i4") st = torch::kInt32, size = 4;
  else if (code == "i8") st = torch::kInt64, size = 8;
  else {
    TORCH_CHECK(false, path, ": unsupported .npy dtype '", descr,
                "' (supported: <f2 <f4 <f8 |u1 |i1 |b1 <i2 <i4 <i8 and their '>' forms)");
  }
  TORCH_CHECK(order == '<' || order == '|' || order == '>' || order == '=', path, ": bad byte order in '", descr, "'");
  const int64_t n = bounded::checked_product(shape, path, ".npy shape '" + shape_s.substr(0, 80) + "'");
  size_t data_at = hstart + hlen;
  bounded::require_bytes(path, ".npy shape '" + shape_s.substr(0, 80) + "' element count", n, size,
                         static_cast<int64_t>(bytes.size() - data_at));
  auto t = torch::empty(shape, st);
  if (n > 0) {
    std::memcpy(t.data_ptr(), bytes.data() + data_at, static_cast<size_t>(n) * size);
    if (order == '>') byteswap_inplace(t.data_ptr(), n, size);
  }
  return t;
}

void write_npy(const std::string& path, const torch::Tensor& in) {
  torch::Tensor t = in.contiguous().cpu();
  std::string descr;
  switch (t.scalar_type()) {
    case torch::kFloat32: descr = "<f4"; break;
    case torch::kFloat64: descr = "<f8"; break;
    case torch::kFloat16: descr = "<f2"; break;
    case torch::kUInt8: descr = "|u1"; break;
    case torch::kInt8: descr = "|i1"; break;
    case torch::kBool: descr = "|b1"; break;
    case torch::kInt16: descr = "<i2"; break;
    case torch::kInt32: descr = "<i4"; break;
    case torch::kInt64: descr = "<i8"; break;
    default: TORCH_CHECK(false, path, ": cannot write dtype ", t.scalar_type(), " as .npy");
  }
  std::string shape = "(";
  for (int64_t d = 0; d < t.dim(); ++d) shape += std::to_string(t.size(d)) + (t.dim() == 1 ? "," : (d + 1 < t.dim() ? ", " : ""));
  shape += ")";
  std::string h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + h.size() + 1;
  h += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>((h.size() >> 8) & 0xff);
  out += h;
  out.append(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel() * t.element_size()));
  write_file_atomic(path, out);
}

namespace {
torch::Tensor per_point(torch::Tensor t, int64_t n, int64_t cols, const fs::path& file) {
  if (cols == 0 && t.dim() == 2 && t.size(1) == 1) t = t.view({-1});  // [N,1] -> [N]
  bool ok = cols == 0 ? (t.dim() == 1 && t.size(0) == n) : (t.dim() == 2 && t.size(0) == n && t.size(1) == cols);
  TORCH_CHECK(ok, file.string(), ": shape ", t.sizes(), ", expected [", n, cols ? "," + std::to_string(cols) : "",
              "]");
  return t;
}
}  // namespace

PointCloudData read_pointcept_room(const std::string& room_dir) {
  fs::path d(room_dir);
  TORCH_CHECK(fs::is_regular_file(d / "coord.npy"), room_dir, ": no coord.npy (not a Pointcept room folder)");
  PointCloudData c;
  auto coord = read_npy((d / "coord.npy").string());
  TORCH_CHECK(coord.dim() == 2 && coord.size(1) == 3 && coord.is_floating_point(), (d / "coord.npy").string(),
              ": expected float [N,3], found ", coord.scalar_type(), " ", coord.sizes());
  int64_t n = coord.size(0);
  c.coord = coord.to(torch::kFloat32);
  if (fs::is_regular_file(d / "color.npy")) {
    auto col = per_point(read_npy((d / "color.npy").string()), n, 3, d / "color.npy");
    c.color = col.is_floating_point() ? col.round().clamp(0, 255).to(torch::kUInt8) : col.clamp(0, 255).to(torch::kUInt8);
  }
  if (fs::is_regular_file(d / "normal.npy")) {
    c.normal = per_point(read_npy((d / "normal.npy").string()), n, 3, d / "normal.npy").to(torch::kFloat32);
  }
  for (auto [file, field] : {std::pair{"segment.npy", &PointCloudData::segment},
                             std::pair{"instance.npy", &PointCloudData::instance}}) {
    if (!fs::is_regular_file(d / file)) continue;
    auto t = per_point(read_npy((d / file).string()), n, 0, d / file);
    TORCH_CHECK(!t.is_floating_point(), (d / file).string(), ": expected an integer dtype, found ", t.scalar_type());
    c.*field = t.to(torch::kInt64);
  }
  c.name = d.parent_path().filename().string() + "/" + d.filename().string();
  c.source = room_dir;
  c.validate();  // non-finite points are kept: open_cloud() drops and counts them
  return c;
}

std::vector<std::string> list_pointcept_rooms(const std::string& root) {
  TORCH_CHECK(fs::is_directory(root), "Pointcept root folder not found: ", root);
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    if (it.depth() > 3) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory() && fs::is_regular_file(it->path() / "coord.npy")) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end(), natural_less);
  return out;
}

}  // namespace ewa::datasets
