// Point format "pointnet_h5": PointNet indoor3d_sem_seg blocks (`data` [B,P,9], `label`
// [B,P]); scene k of a file is "file.h5#k".
#include "format_util.h"

namespace ewa::datasets::fmt {
std::vector<int64_t> h5_dims(const std::string& path, const std::string& name);  // room_h5.cpp
std::vector<std::string> h5_items(const std::string& root, bool (*is_file)(const std::string&));
CloudScene h5_block(const std::string& path, int64_t channels);  // modelnet_h5.cpp

namespace {
bool pointnet_h5_file(const std::string& path) {
  if (!file_with_ext(path, {".h5", ".hdf5"})) return false;
  auto d = h5_dims(path, "data");
  return d.size() == 3 && d[2] == 9;
}
bool detect_pointnet_h5(const std::string& path) { return pointnet_h5_file(split_item(path).first); }
std::vector<std::string> list_pointnet_h5(const std::string& root) { return h5_items(root, pointnet_h5_file); }
CloudScene load_pointnet_h5(const std::string& path, const CloudReadOptions&) { return h5_block(path, 9); }
}  // namespace
extern const CloudFormat kPointNetH5 = {"pointnet_h5", "PointNet indoor3d HDF5 blocks (data [B,P,9]); scene k = file.h5#k",
                                        detect_pointnet_h5, list_pointnet_h5, load_pointnet_h5};
}  // namespace ewa::datasets::fmt
