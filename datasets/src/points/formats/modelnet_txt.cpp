// Point format "modelnet_txt": ModelNet normal_resampled shapes, `x,y,z[,nx,ny,nz]` per line.
#include "ewa/datasets/points/modelnet.h"
#include "format_util.h"

namespace ewa::datasets::fmt {
bool detect_modelnet_txt(const std::string& path);  // text.cpp (shares the line sniffing)
namespace {
std::vector<std::string> list_modelnet_txt(const std::string& root) { return list_files(root, detect_modelnet_txt); }
CloudScene load_modelnet_txt(const std::string& path, const CloudReadOptions& o) {
  CloudScene s;
  s.cloud = read_modelnet_txt(path, o.max_points);
  return s;
}
}  // namespace
extern const CloudFormat kModelNetTxt = {"modelnet_txt", "ModelNet normal_resampled .txt: x,y,z[,nx,ny,nz]",
                                         detect_modelnet_txt, list_modelnet_txt, load_modelnet_txt};
}  // namespace ewa::datasets::fmt
