// Point format "pointcept": a Pointcept scene folder (coord.npy [color.npy segment.npy
// instance.npy normal.npy]).
#include "ewa/datasets/points/npy.h"
#include "format_util.h"

namespace ewa::datasets::fmt {
namespace {
bool detect_pointcept(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(path) / "coord.npy", ec);
}
std::vector<std::string> list_pointcept(const std::string& root) { return list_dirs(root, detect_pointcept); }
CloudScene load_pointcept(const std::string& path, const CloudReadOptions&) {
  CloudScene s;
  s.cloud = read_pointcept_room(path);
  s.cloud.name.clear();
  return s;
}
}  // namespace
extern const CloudFormat kPointcept = {"pointcept", "Pointcept scene folders (coord.npy, color.npy, segment.npy, ...)",
                                       detect_pointcept, list_pointcept, load_pointcept};
}  // namespace ewa::datasets::fmt
