// Point format "room_h5": prepared rooms of `ewa data prepare` (HDF5 coord / color /
// segment / instance [/ normal]).
#include "../h5_util.h"
#include "ewa/datasets/points/room_cache.h"
#include "format_util.h"

namespace ewa::datasets::fmt {

/// Dimensions of dataset `name` in an HDF5 file (empty when not HDF5 / absent / no HDF5).
std::vector<int64_t> h5_dims(const std::string& path, const std::string& name) {
#ifdef EWA_HAVE_HDF5
  try {
    return detail::h5_read(path, {}, {name}).dims.at(name);
  } catch (const detail::H5CrashError&) {
    throw;  // damaged, not "in no known format"
  } catch (const std::invalid_argument&) {
    throw;  // a bad EWA_HDF5_TIMEOUT_S
  } catch (const std::exception&) {
    return {};
  }
#else
  (void)path;
  (void)name;
  return {};
#endif
}

namespace {
bool detect_room_h5(const std::string& path) {
  if (split_item(path).second >= 0 || !file_with_ext(path, {".h5", ".hdf5"})) return false;
  // a prepared room has `coord`; without HDF5 claim every .h5 so the error names the build
  return !have_hdf5() || h5_dims(path, "coord").size() == 2;
}
std::vector<std::string> list_room_h5(const std::string& root) { return list_files(root, detect_room_h5); }
CloudScene load_room_h5(const std::string& path, const CloudReadOptions&) {
  CloudScene s;
  s.cloud = read_room_h5(path);
  s.cloud.name.clear();  // finish_scene names it after the file
  return s;
}
}  // namespace
extern const CloudFormat kRoomH5 = {"room_h5", "prepared rooms .h5 (ewa data prepare)", detect_room_h5, list_room_h5,
                                    load_room_h5};
}  // namespace ewa::datasets::fmt
