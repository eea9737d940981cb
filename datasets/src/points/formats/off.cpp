// Point format "off": OFF meshes; the vertices, or `mesh_samples` points sampled on the
// surface (area-weighted, seeded by the file name) for classification.
#include <functional>

#include "ewa/datasets/points/modelnet.h"
#include "format_util.h"

namespace ewa::datasets::fmt {
namespace {
bool detect_off(const std::string& path) { return file_with_ext(path, {".off"}); }
std::vector<std::string> list_off(const std::string& root) { return list_files(root, detect_off); }
CloudScene load_off(const std::string& path, const CloudReadOptions& o) {
  auto mesh = read_off(path);
  CloudScene s;
  if (o.mesh_samples > 0) {
    const uint64_t seed = std::hash<std::string>{}(fs::path(path).filename().string());
    s.cloud = sample_mesh_surface(mesh, o.mesh_samples, seed);
  } else {
    s.cloud.coord = mesh.vertices;
  }
  return s;
}
}  // namespace
extern const CloudFormat kOff = {"off", "OFF meshes (vertices, or surface samples for classification)", detect_off,
                                 list_off, load_off};
}  // namespace ewa::datasets::fmt
