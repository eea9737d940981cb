// Internal HDF5 helpers (C API) for the points readers: RAII file handles, typed dataset
// read/write to tensors, and one process-wide lock (Debian's libhdf5 is not thread-safe).
#pragma once

#ifdef EWA_HAVE_HDF5
#include <hdf5.h>

#include <torch/torch.h>

#include "ewa/datasets/bounded_io.h"

#include <map>
#include <mutex>
#include <string>
#include <tuple>
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

/// What h5_read() returns: the dimensions of the `probe` datasets (empty when absent or
/// unreadable) and the contents of the `read` datasets that exist.
struct H5Contents {
  std::string path;
  std::map<std::string, std::vector<int64_t>> dims;
  std::map<std::string, torch::Tensor> data;
  bool has(const std::string& name) const { return data.count(name) > 0; }
  /// The dataset `name`; throws "<path>: no dataset '<name>'" when the file has none.
  const torch::Tensor& at(const std::string& name) const;
};

/// A file's identity: path, device, inode, size, modification time (ns).
using FileKey = std::tuple<std::string, uint64_t, uint64_t, int64_t, int64_t>;
/// Fills `key` for `path`; false when the file cannot be stat'ed.
bool file_key(const std::string& path, FileKey& key);
/// The file was last modified more than 2 s ago (git's racy-file rule): only then may a cache
/// trust its identity, since an in-place rewrite of the same size within the file system's
/// timestamp granularity keeps it; once trusted, any later rewrite gets a newer time. A time
/// in the future (clock skew) is not settled.
bool file_settled(const FileKey& key);

/// libhdf5 crashed on the file (h5_read's child was killed by a signal) or hung (the child sent
/// nothing for EWA_HDF5_TIMEOUT_S, default 60 s + 1 s per 4 MB of file). Format detection lets
/// this one through, so the user learns the file is damaged, not that its format is unknown.
class H5CrashError : public DataError {
 public:
  using DataError::DataError;
};

/// Every read of an HDF5 file goes through here (takes h5_mutex()). Debian's libhdf5 1.10
/// crashes (SIGSEGV) on some damaged files, so the first read of a file happens in a forked
/// reader child that reads every dataset this library ever asks for and sends the requested
/// ones back over a socket; a child killed by a signal or silent past the timeout (then killed)
/// becomes one clean H5CrashError. The child serves one file after another (it is replaced after
/// a failed read and exits after 5 s idle). A file a child read whole is read in this process
/// from then on while it is unchanged (same path, inode, size and modification time), when it
/// was settled (file_settled()) at that read.
/// EWA_HDF5_IN_PROCESS=1 always reads in this process (for a debugger or sanitizer).
H5Contents h5_read(const std::string& path, const std::vector<std::string>& read,
                   const std::vector<std::string>& probe = {});

}  // namespace ewa::datasets::detail
#endif
