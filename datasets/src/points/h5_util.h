// Internal HDF5 helpers (C API) for the points readers: RAII file handles, typed dataset
// read/write to tensors, and one process-wide lock (Debian's libhdf5 is not thread-safe).
#pragma once

#ifdef EWA_HAVE_HDF5
#include <hdf5.h>

#include <torch/torch.h>

#include <mutex>
#include <string>
#include <vector>

namespace ewa::datasets::detail {

/// Serialises every HDF5 call of this library.
std::mutex& h5_mutex();

/// An open HDF5 file (closed on destruction). Opening silences HDF5's own error printing.
class H5File {
 public:
  static H5File open_read(const std::string& path);
  static H5File create(const std::string& path);  ///< truncates
  H5File(H5File&& o) noexcept : id_(o.id_), path_(std::move(o.path_)) { o.id_ = -1; }
  H5File(const H5File&) = delete;
  ~H5File();
  hid_t id() const { return id_; }
  const std::string& path() const { return path_; }
  bool has(const std::string& name) const;
  /// Dimensions of a dataset without reading it (empty when absent or unreadable).
  std::vector<int64_t> dims(const std::string& name) const;
  /// Reads a numeric dataset to a tensor of the matching dtype (uint16 -> int32,
  /// uint32/uint64 -> int64, float16 -> float32). Throws naming path and dataset.
  torch::Tensor read(const std::string& name) const;
  /// Writes a contiguous tensor (float32/64, uint8, int8/16/32/64, bool as uint8).
  void write(const std::string& name, const torch::Tensor& t) const;

 private:
  H5File(hid_t id, std::string path) : id_(id), path_(std::move(path)) {}
  hid_t id_ = -1;
  std::string path_;
};

}  // namespace ewa::datasets::detail
#endif
