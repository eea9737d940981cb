// Point format "npy": one .npy array [N,C] of x y z, then r g b (C >= 6; 0..1 or 0..255),
// then label (C = 4 or >= 7), then pred (C >= 8). Pointcept room files are format "pointcept".
#include <sstream>

#include "../util.h"
#include "ewa/datasets/bounded_io.h"
#include "ewa/datasets/points/npy.h"
#include "format_util.h"

namespace ewa::datasets::fmt {
namespace {
bool detect_npy(const std::string& path) {
  if (!file_with_ext(path, {".npy"})) return false;
  // coord.npy / color.npy ... inside a Pointcept room belong to that room
  return !fs::is_regular_file(fs::path(path).parent_path() / "coord.npy");
}
std::vector<std::string> list_npy(const std::string& root) { return list_files(root, detect_npy); }
CloudScene load_npy(const std::string& path, const CloudReadOptions&) {
  auto a = read_npy(path);
  if (a.dim() != 2 || a.size(1) < 3) {
    std::ostringstream s;
    s << "expected an array [N,C] with C >= 3 (x y z [r g b] [label] [pred]), found shape " << a.sizes();
    bounded::fail(path, s.str());
  }
  const int64_t cols = a.size(1);
  auto f = a.to(torch::kFloat64);  // [N,C]
  CloudScene s;
  PointCloudData& c = s.cloud;
  c.coord = f.narrow(1, 0, 3).to(torch::kFloat32).contiguous();  // [N,3]
  auto int_col = [&](int64_t k, const char* what) {
    auto col = f.select(1, k);  // [N]
    auto ok = torch::isfinite(col).logical_and(col.eq(col.round()));
    if (!ok.all().item<bool>()) bounded::fail(path, std::string("column ") + std::to_string(k) + " (" + what + ") holds non-integer values");
    return col.to(torch::kInt64).contiguous();
  };
  if (cols >= 6) {
    auto rgb = f.narrow(1, 3, 3).nan_to_num(0.0, 0.0, 0.0);  // [N,3]
    if (rgb.numel() > 0 && rgb.max().item<double>() <= 1.0) rgb = rgb * 255.0;  // [0,1] colours
    c.color = rgb.round().clamp(0, 255).to(torch::kUInt8).contiguous();
  }
  if (cols == 4) c.segment = int_col(3, "label");
  if (cols >= 7) c.segment = int_col(6, "label");
  if (cols >= 8) c.extra["pred"] = int_col(7, "pred");
  return s;
}
}  // namespace
extern const CloudFormat kNpy = {"npy", ".npy [N,C]: x y z [r g b] [label] [pred]", detect_npy, list_npy, load_npy};
}  // namespace ewa::datasets::fmt
