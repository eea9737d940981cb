// Point format "s3dis_room": an S3DIS room folder (Annotations/<class>_<k>.txt, x y z r g b).
#include "ewa/datasets/points/s3dis.h"
#include "format_util.h"

namespace ewa::datasets::fmt {
namespace {
bool detect_s3dis_room(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(fs::path(path) / "Annotations", ec);
}
std::vector<std::string> list_s3dis(const std::string& root) { return list_dirs(root, detect_s3dis_room); }
CloudScene load_s3dis_room(const std::string& path, const CloudReadOptions& o) {
  S3disReadOptions ro;
  if (!o.class_names.empty()) ro.class_names = o.class_names;
  ro.refuse_non_finite = o.refuse_non_finite;
  ro.threads = 1;
  auto room = read_s3dis_room(path, ro);
  CloudScene s;
  s.cloud = std::move(room.cloud);
  s.issues = std::move(room.issues);
  s.damaged_lines = room.repaired_lines + room.skipped_lines;
  s.non_finite = room.non_finite_lines;
  s.class_names = ro.class_names;
  return s;
}
}  // namespace
extern const CloudFormat kS3disRoom = {"s3dis_room", "S3DIS room folders (Annotations/<class>_<k>.txt)",
                                       detect_s3dis_room, list_s3dis, load_s3dis_room};
}  // namespace ewa::datasets::fmt
