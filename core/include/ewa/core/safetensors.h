// safetensors reader/writer (https://github.com/huggingface/safetensors): u64 little-endian
// header length, JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {..}},
// raw little-endian data. Malformed files are rejected with an error naming the file.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ewa::safetensors {

/// A malformed or unreadable safetensors file; what() names the file and the problem.
class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using TensorMap = std::map<std::string, torch::Tensor>;
using Metadata = std::map<std::string, std::string>;

/// One header entry. Offsets are relative to the start of the data section.
struct TensorInfo {
  std::string name;
  std::string dtype;           ///< F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
  int64_t numel() const;
};

/// A validated header: tensors sorted by name, metadata, section sizes in bytes.
struct Header {
  std::vector<TensorInfo> tensors;
  Metadata metadata;
  uint64_t header_bytes = 0;  ///< JSON length N (file = 8 + N + data_bytes)
  uint64_t data_bytes = 0;
};

/// Contents of a file: tensors (CPU, contiguous) by name, and the __metadata__ map.
struct Contents {
  TensorMap tensors;
  Metadata metadata;
};

/// Largest accepted JSON header (as the reference implementation: 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

/// safetensors dtype name of a LibTorch dtype; throws SafetensorsError for others.
std::string dtype_name(torch::ScalarType type);
/// LibTorch dtype of a safetensors dtype name; throws SafetensorsError for unknown names.
torch::ScalarType scalar_type(const std::string& dtype);
/// Bytes per element of a safetensors dtype name.
int64_t dtype_size(const std::string& dtype);

/// Serialises tensors (any device/layout; copied to CPU contiguous) in name order with the
/// header padded by spaces to a multiple of 8 bytes.
std::string serialize(const TensorMap& tensors, const Metadata& metadata = {});
/// Parses a whole file image; `source` names it in errors.
Contents deserialize(const std::string& bytes, const std::string& source);

/// Writes `path` (via a temporary file renamed into place).
void save_file(const std::string& path, const TensorMap& tensors, const Metadata& metadata = {});
/// Reads and validates `path`.
Contents load_file(const std::string& path);
/// Reads and validates only the header of `path` (the data is not read).
Header read_header(const std::string& path);

}  // namespace ewa::safetensors
