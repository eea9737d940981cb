// Point format "ply": PLY ascii / binary little or big endian, the `vertex` element (list
// properties skipped), every scalar field kept.
#include "format_util.h"

namespace ewa::datasets::fmt {
namespace {
bool detect_ply(const std::string& path) { return file_with_ext(path, {".ply"}); }
std::vector<std::string> list_ply(const std::string& root) { return list_files(root, detect_ply); }
CloudScene load_ply(const std::string& path, const CloudReadOptions& o) {
  auto s = scene_from_fields(read_ply(path), o);
  return s;
}
}  // namespace
extern const CloudFormat kPly = {"ply", "PLY: ascii, binary little/big endian; list properties skipped", detect_ply,
                                 list_ply, load_ply};
}  // namespace ewa::datasets::fmt
