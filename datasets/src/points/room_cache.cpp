// Prepared room cache: one HDF5 file per room (coord/color/segment/instance [+normal]).
#include "ewa/datasets/points/room_cache.h"

#include "h5_util.h"
#include "util.h"

namespace ewa::datasets {

using namespace detail;

bool have_hdf5() {
#ifdef EWA_HAVE_HDF5
  return true;
#else
  return false;
#endif
}

#ifdef EWA_HAVE_HDF5
namespace {
torch::Tensor to_int16_checked(const torch::Tensor& t, const char* what, const std::string& path) {
  if (t.numel() == 0) return t.to(torch::kInt16);
  auto mn = t.min().item<int64_t>(), mx = t.max().item<int64_t>();
  TORCH_CHECK(mn >= -32768 && mx <= 32767, path, ": ", what, " values [", mn, ",", mx, "] do not fit int16");
  return t.to(torch::kInt16);
}
}  // namespace

void write_room_h5(const std::string& path, const PointCloudData& cloud) {
  cloud.validate();
  TORCH_CHECK(torch::isfinite(cloud.coord).all().item<bool>(), path,
              ": refusing to write non-finite (NaN/Inf) coordinates into a prepared room");
  fs::path out(path);
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  fs::path tmp = temp_sibling(out);
  torch::Tensor seg = cloud.has_segment() ? to_int16_checked(cloud.segment, "segment", path) : torch::Tensor();
  torch::Tensor ins = cloud.has_instance() ? to_int16_checked(cloud.instance, "instance", path) : torch::Tensor();
  try {
    std::lock_guard<std::mutex> lock(h5_mutex());
    H5File f = H5File::create(tmp.string());
    f.write("coord", cloud.coord);
    if (cloud.has_color()) f.write("color", cloud.color);
    if (seg.defined()) f.write("segment", seg);
    if (ins.defined()) f.write("instance", ins);
    if (cloud.has_normal()) f.write("normal", cloud.normal);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, out, ec);
  if (ec) {
    fs::remove(tmp, ec);
    TORCH_CHECK(false, "cannot rename into ", path);
  }
}

PointCloudData read_room_h5(const std::string& path) {
  PointCloudData c;
  {
    const H5Contents f = h5_read(path, {"coord", "color", "segment", "instance", "normal"});
    c.coord = f.at("coord").to(torch::kFloat32);
    if (f.has("color")) c.color = f.at("color");
    if (f.has("segment")) c.segment = f.at("segment").to(torch::kInt64);
    if (f.has("instance")) c.instance = f.at("instance").to(torch::kInt64);
    if (f.has("normal")) c.normal = f.at("normal").to(torch::kFloat32);
  }
  if (c.color.defined()) {
    TORCH_CHECK(c.color.scalar_type() == torch::kUInt8, path, ": 'color' must be uint8, found ", c.color.scalar_type());
  }
  fs::path p(path);
  c.name = p.parent_path().filename().string() + "/" + p.stem().string();
  c.source = path;
  c.validate();  // non-finite points are kept: open_cloud() drops and counts them
  return c;
}
#else
void write_room_h5(const std::string& path, const PointCloudData&) {
  TORCH_CHECK(false, "cannot write ", path, ": this build has no HDF5 (install libhdf5-dev and configure with "
              "-DEWA_WITH_HDF5=ON)");
}
PointCloudData read_room_h5(const std::string& path) {
  TORCH_CHECK(false, "cannot read ", path, ": this build has no HDF5 (install libhdf5-dev and configure with "
              "-DEWA_WITH_HDF5=ON)");
  return {};
}
#endif

bool room_h5_valid(const std::string& path) {
  if (!have_hdf5() || !fs::is_regular_file(path)) return false;
  try {
    return read_room_h5(path).size() > 0;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace ewa::datasets
