// Point format "modelnet_h5": ModelNet40 HDF5 files (`data` [B,P,3], `label`, optional
// `normal`); scene k of a file is "file.h5#k".
#include "../h5_util.h"

#include <mutex>

#include "ewa/datasets/bounded_io.h"
#include "format_util.h"

namespace ewa::datasets::fmt {
std::vector<int64_t> h5_dims(const std::string& path, const std::string& name);  // room_h5.cpp
std::vector<std::string> h5_items(const std::string& root, bool (*is_file)(const std::string&));
CloudScene h5_block(const std::string& path, int64_t channels);

namespace {
bool modelnet_h5_file(const std::string& path) {
  if (!file_with_ext(path, {".h5", ".hdf5"})) return false;
  auto d = h5_dims(path, "data");
  return d.size() == 3 && d[2] == 3;
}
bool detect_modelnet_h5(const std::string& path) {
  auto item = split_item(path);
  return modelnet_h5_file(item.first);
}
std::vector<std::string> list_modelnet_h5(const std::string& root) { return h5_items(root, modelnet_h5_file); }
CloudScene load_modelnet_h5(const std::string& path, const CloudReadOptions&) { return h5_block(path, 3); }
}  // namespace

std::vector<std::string> h5_items(const std::string& root, bool (*is_file)(const std::string&)) {
  std::vector<std::string> out;
  for (const auto& f : list_files(root, is_file)) {
    const auto d = h5_dims(f, "data");
    for (int64_t k = 0; k < (d.empty() ? 0 : d[0]); ++k) out.push_back(f + "#" + std::to_string(k));
  }
  return out;
}

#ifdef EWA_HAVE_HDF5
namespace {
// The datasets of the last file h5_block read, while that file is unchanged (same identity):
// the items of a file (file.h5#0, #1, ... as `ewa data info FOLDER` lists them) then read it
// once instead of once per item (a 100 MB ModelNet file: 0.05 s per item). Only a settled
// file is kept (detail::file_settled: not modified in the last 2 s).
struct BlockFile {
  detail::FileKey key;
  torch::Tensor data, label, normal;
};
BlockFile read_block_file(const std::string& file) {
  static std::mutex mutex;
  static BlockFile last;
  BlockFile b;
  const bool keyed = detail::file_key(file, b.key);
  std::lock_guard<std::mutex> lock(mutex);
  if (keyed && last.data.defined() && last.key == b.key) return last;
  const auto h = detail::h5_read(file, {"data", "label", "normal"});
  b.data = h.at("data");
  if (h.has("label")) b.label = h.at("label");
  if (h.has("normal")) b.normal = h.at("normal");
  last = keyed && detail::file_settled(b.key) ? b : BlockFile{};
  return b;
}
}  // namespace
#endif

// Shape / block k of `data` [B,P,C] (+ `label` [B] or [B,P], `normal` [B,P,3]). The item's
// tensors are copies (the file's tensors stay cached for the next item).
CloudScene h5_block(const std::string& path, int64_t channels) {
  auto [file, k] = split_item(path);
#ifdef EWA_HAVE_HDF5
  CloudScene s;
  const BlockFile f = read_block_file(file);
  const torch::Tensor &d = f.data, &l = f.label, &n = f.normal;
  if (d.dim() != 3 || d.size(2) != channels) bounded::fail(file, "'data' is not [B,P," + std::to_string(channels) + "]");
  if (k < 0) k = 0;
  if (k >= d.size(0)) {
    bounded::fail(file, "item #" + std::to_string(k) + " out of range (" + std::to_string(d.size(0)) + " items)");
  }
  auto block = d.select(0, k).to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true);  // [P,C]
  s.cloud.coord = block.narrow(1, 0, 3).contiguous();
  if (channels == 9) {  // PointNet indoor3d: x y z (block) r g b (0..1) X Y Z (room-normalised)
    s.cloud.color = (block.narrow(1, 3, 3) * 255.0).nan_to_num(0, 0, 0).round().clamp(0, 255).to(torch::kUInt8).contiguous();
  }
  if (n.defined() && n.sizes() == d.sizes()) {
    s.cloud.normal = n.select(0, k).to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true).contiguous();
  }
  if (l.defined() && !l.is_floating_point() && l.size(0) == d.size(0)) {
    auto lk = l.select(0, k).reshape({-1}).to(torch::kInt64, /*non_blocking=*/false, /*copy=*/true);
    if (lk.numel() == d.size(1)) s.cloud.segment = lk.contiguous();               // per point
    else if (lk.numel() == 1) s.cloud.extra["shape_label"] = lk.expand({d.size(1)}).contiguous();  // per shape
  }
  s.cloud.name = fs::path(file).stem().string() + "#" + std::to_string(k);
  return s;
#else
  (void)channels;
  bounded::fail(file, "this build has no HDF5 (install libhdf5-dev, -DEWA_WITH_HDF5=ON)");
#endif
}

extern const CloudFormat kModelNetH5 = {"modelnet_h5", "ModelNet40 HDF5 (data [B,P,3]); scene k = file.h5#k",
                                        detect_modelnet_h5, list_modelnet_h5, load_modelnet_h5};
}  // namespace ewa::datasets::fmt
