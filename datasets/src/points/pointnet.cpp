// PointNet indoor3d_sem_seg_hdf5_data reader (blocks of S3DIS rooms in HDF5).
#include "ewa/datasets/points/pointnet.h"

#include "h5_util.h"
#include "util.h"

namespace ewa::datasets {

using namespace detail;

namespace detail {
// Resolves a path listed in an index file: against dir, its parent, then by file name.
fs::path resolve_listed(const fs::path& dir, const std::string& listed, const fs::path& index_file) {
  fs::path p(listed);
  if (p.is_absolute() && fs::exists(p)) return p;
  for (const fs::path& c : {dir / p, dir.parent_path() / p, dir / p.filename()}) {
    if (fs::exists(c)) return c;
  }
  TORCH_CHECK(false, index_file.string(), ": listed file '", listed, "' not found under ", dir.string());
  return {};
}
}  // namespace detail

PointNetIndoor3d read_pointnet_indoor3d(const std::string& dir_s, const std::vector<int>& areas) {
#ifndef EWA_HAVE_HDF5
  TORCH_CHECK(false, "cannot read ", dir_s, ": this build has no HDF5 (install libhdf5-dev, -DEWA_WITH_HDF5=ON)");
  (void)areas;
  return {};
#else
  fs::path dir(dir_s);
  fs::path index = dir / "all_files.txt";
  TORCH_CHECK(fs::is_regular_file(index), dir_s, ": no all_files.txt (not an indoor3d_sem_seg_hdf5_data folder)");
  std::vector<torch::Tensor> datas, labels;
  for (const auto& listed : read_lines(index)) {
    fs::path f = resolve_listed(dir, listed, index);
    const H5Contents h = h5_read(f.string(), {"data", "label"});
    auto d = h.at("data");
    auto l = h.at("label");
    TORCH_CHECK(d.dim() == 3 && d.size(2) == 9, f.string(), ": 'data' has shape ", d.sizes(), ", expected [B,P,9]");
    if (l.dim() == 3 && l.size(2) == 1) l = l.squeeze(2);
    TORCH_CHECK(l.dim() == 2 && l.size(0) == d.size(0) && l.size(1) == d.size(1), f.string(), ": 'label' has shape ",
                l.sizes(), ", expected [", d.size(0), ",", d.size(1), "]");
    TORCH_CHECK(!l.is_floating_point(), f.string(), ": 'label' must be integer");
    datas.push_back(d.to(torch::kFloat32));
    labels.push_back(l.to(torch::kInt64));
  }
  TORCH_CHECK(!datas.empty(), index.string(), ": lists no files");
  PointNetIndoor3d out;
  out.data = torch::cat(datas, 0);
  out.label = torch::cat(labels, 0);
  int64_t b = out.data.size(0);
  fs::path rooms_file = dir / "room_filelist.txt";
  if (fs::is_regular_file(rooms_file)) {
    out.rooms = read_lines(rooms_file);
    TORCH_CHECK(static_cast<int64_t>(out.rooms.size()) == b, rooms_file.string(), ": ", out.rooms.size(),
                " lines but the h5 files hold ", b, " blocks");
  } else {
    out.rooms.assign(static_cast<size_t>(b), "");
  }
  for (const auto& r : out.rooms) {
    int64_t a = 0;
    if (starts_with(r, "Area_")) {
      size_t us = r.find('_', 5);
      if (!parse_int_token(r.substr(5, us == std::string::npos ? std::string::npos : us - 5), a)) a = 0;
    }
    out.areas.push_back(static_cast<int>(a));
  }
  if (!areas.empty()) {
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < b; ++i) {
      if (std::find(areas.begin(), areas.end(), out.areas[i]) != areas.end()) keep.push_back(i);
    }
    auto idx = torch::tensor(keep, torch::kInt64);
    out.data = out.data.index_select(0, idx);
    out.label = out.label.index_select(0, idx);
    std::vector<std::string> rooms;
    std::vector<int> ar;
    for (auto i : keep) {
      rooms.push_back(out.rooms[i]);
      ar.push_back(out.areas[i]);
    }
    out.rooms = std::move(rooms);
    out.areas = std::move(ar);
  }
  return out;
#endif
}

}  // namespace ewa::datasets
