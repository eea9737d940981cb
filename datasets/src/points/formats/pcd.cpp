// Point format "pcd": PCD ascii / binary / binary_compressed (LZF), every field kept.
#include "format_util.h"

namespace ewa::datasets::fmt {
namespace {
bool detect_pcd(const std::string& path) { return file_with_ext(path, {".pcd"}); }
std::vector<std::string> list_pcd(const std::string& root) { return list_files(root, detect_pcd); }
CloudScene load_pcd(const std::string& path, const CloudReadOptions& o) { return scene_from_fields(read_pcd(path), o); }
}  // namespace
extern const CloudFormat kPcd = {"pcd", "PCD: ascii, binary, binary_compressed", detect_pcd, list_pcd, load_pcd};
}  // namespace ewa::datasets::fmt
