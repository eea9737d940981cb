// safetensors writer/reader with full header validation (sizes, dtypes, offsets coverage).
#include "ewa/core/safetensors.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp assumes a little-endian host (the format is little-endian)"
#endif

namespace ewa::safetensors {
namespace {

struct DtypeEntry {
  const char* name;
  torch::ScalarType type;
  int64_t size;
};

const std::vector<DtypeEntry>& dtypes() {
  static const std::vector<DtypeEntry> table = {
      {"F32", torch::kFloat, 4}, {"F64", torch::kDouble, 8}, {"F16", torch::kHalf, 2},
      {"BF16", torch::kBFloat16, 2}, {"I64", torch::kLong, 8}, {"I32", torch::kInt, 4},
      {"I16", torch::kShort, 2}, {"I8", torch::kChar, 1}, {"U8", torch::kByte, 1},
      {"BOOL", torch::kBool, 1}};
  return table;
}

[[noreturn]] void fail(const std::string& source, const std::string& message) {
  throw SafetensorsError("safetensors file '" + source + "': " + message);
}

std::string known_dtypes() {
  std::string s;
  for (const auto& d : dtypes()) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, 8);
  return v;
}

/// Validates the JSON header against a data section of `data_bytes` bytes.
Header parse_header(const char* json, uint64_t n, uint64_t data_bytes, const std::string& source) {
  Header h;
  h.header_bytes = n;
  h.data_bytes = data_bytes;
  if (n == 0 || json[0] != '{') fail(source, "header does not start with a JSON object '{'");
  auto doc = nlohmann::json::parse(json, json + n, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) fail(source, "header is not valid JSON");
  if (!doc.is_object()) fail(source, "header is not a JSON object");
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) fail(source, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(source, "__metadata__ value of '" + m.key() + "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + key + "': ";
    if (!v.is_object()) fail(source, where + "entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail(source, where + "missing string 'dtype'");
    if (!v.contains("shape") || !v["shape"].is_array()) fail(source, where + "missing array 'shape'");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2) {
      fail(source, where + "missing 'data_offsets' [begin, end]");
    }
    TensorInfo info;
    info.name = key;
    info.dtype = v["dtype"].get<std::string>();
    const auto it_dtype = std::find_if(dtypes().begin(), dtypes().end(),
                                       [&](const DtypeEntry& d) { return info.dtype == d.name; });
    if (it_dtype == dtypes().end()) {
      fail(source, where + "unknown dtype '" + info.dtype + "' (known: " + known_dtypes() + ")");
    }
    uint64_t bytes = static_cast<uint64_t>(it_dtype->size);
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)) {
        fail(source, where + "shape entries must be non-negative integers");
      }
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && bytes > std::numeric_limits<uint64_t>::max() / dim) fail(source, where + "shape overflows");
      bytes *= dim;
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) fail(source, where + "shape overflows");
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const auto& o : v["data_offsets"]) {
      if (!o.is_number_unsigned()) fail(source, where + "data_offsets must be non-negative integers");
    }
    info.begin = v["data_offsets"][0].get<uint64_t>();
    info.end = v["data_offsets"][1].get<uint64_t>();
    if (info.begin > info.end || info.end > data_bytes) {
      fail(source, where + "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                       "] out of range of the " + std::to_string(data_bytes) + "-byte data section");
    }
    if (info.end - info.begin != bytes) {
      fail(source, where + "data_offsets span " + std::to_string(info.end - info.begin) + " bytes but dtype " +
                       info.dtype + " and shape need " + std::to_string(bytes));
    }
    h.tensors.push_back(std::move(info));
  }
  // The tensors must tile the data section exactly: no overlap, no gap, nothing left over.
  std::vector<const TensorInfo*> order;
  for (const auto& t : h.tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const TensorInfo* prev = nullptr;
  for (const auto* t : order) {
    if (t->begin < covered) fail(source, "tensors '" + prev->name + "' and '" + t->name + "' overlap");
    if (t->begin > covered) {
      fail(source, "gap in the data section before tensor '" + t->name + "' (bytes " + std::to_string(covered) +
                       " to " + std::to_string(t->begin) + " belong to no tensor)");
    }
    covered = t->end;
    prev = t;
  }
  if (covered != data_bytes) {
    fail(source, "data section has " + std::to_string(data_bytes) + " bytes but the tensors cover " +
                     std::to_string(covered));
  }
  std::sort(h.tensors.begin(), h.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return h;
}

/// Splits a file image into (header length, JSON pointer), checking the size fields.
uint64_t check_prefix(uint64_t file_bytes, const char* prefix, const std::string& source) {
  if (file_bytes < 8) {
    fail(source, "file has " + std::to_string(file_bytes) + " bytes, too short for the 8-byte header length");
  }
  const uint64_t n = read_u64_le(prefix);
  if (n > kMaxHeaderBytes) {
    fail(source, "header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderBytes) +
                     " bytes (corrupt or not a safetensors file)");
  }
  if (n > file_bytes - 8) {
    fail(source, "header length " + std::to_string(n) + " exceeds the file size (" + std::to_string(file_bytes) +
                     " bytes; truncated file?)");
  }
  return n;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string dtype_name(torch::ScalarType type) {
  for (const auto& d : dtypes()) {
    if (d.type == type) return d.name;
  }
  throw SafetensorsError(std::string("safetensors: unsupported tensor dtype ") + c10::toString(type) +
                         " (supported: " + known_dtypes() + ")");
}

torch::ScalarType scalar_type(const std::string& dtype) {
  for (const auto& d : dtypes()) {
    if (dtype == d.name) return d.type;
  }
  throw SafetensorsError("safetensors: unknown dtype '" + dtype + "' (known: " + known_dtypes() + ")");
}

int64_t dtype_size(const std::string& dtype) {
  for (const auto& d : dtypes()) {
    if (dtype == d.name) return d.size;
  }
  throw SafetensorsError("safetensors: unknown dtype '" + dtype + "' (known: " + known_dtypes() + ")");
}

std::string serialize(const TensorMap& tensors, const Metadata& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") throw SafetensorsError("safetensors: '__metadata__' is not a valid tensor name");
    if (!t.defined()) throw SafetensorsError("safetensors: tensor '" + name + "' is undefined");
    auto c = t.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(c.numel()) * static_cast<uint64_t>(c.element_size());
    header[name] = {{"dtype", dtype_name(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + json.size() + offset);
  const uint64_t n = json.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += json;
  for (const auto& c : data) out.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  return out;
}

Contents deserialize(const std::string& bytes, const std::string& source) {
  const uint64_t n = check_prefix(bytes.size(), bytes.data(), source);
  const uint64_t data_bytes = bytes.size() - 8 - n;
  Header h = parse_header(bytes.data() + 8, n, data_bytes, source);
  const char* data = bytes.data() + 8 + n;
  Contents out;
  out.metadata = std::move(h.metadata);
  for (const auto& info : h.tensors) {
    const auto type = scalar_type(info.dtype);
    const auto read_type = type == torch::kBool ? torch::kByte : type;  // any byte is a valid U8
    auto t = torch::empty(info.shape, torch::TensorOptions().dtype(read_type));
    if (info.end > info.begin) std::memcpy(t.data_ptr(), data + info.begin, info.end - info.begin);
    out.tensors[info.name] = type == torch::kBool ? t.ne(0) : t;
  }
  return out;
}

void save_file(const std::string& path, const TensorMap& tensors, const Metadata& metadata) {
  const std::string bytes = serialize(tensors, metadata);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw SafetensorsError("safetensors file '" + path + "': cannot open for writing");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw SafetensorsError("safetensors file '" + path + "': write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw SafetensorsError("safetensors file '" + path + "': cannot rename temporary file: " + ec.message());
}

Contents load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SafetensorsError("safetensors file '" + path + "': cannot open for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return deserialize(bytes, path);
}

Header read_header(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw SafetensorsError("safetensors file '" + path + "': cannot read: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SafetensorsError("safetensors file '" + path + "': cannot open for reading");
  char prefix[8] = {0};
  in.read(prefix, size >= 8 ? 8 : static_cast<std::streamsize>(size));
  const uint64_t n = check_prefix(size, prefix, path);
  std::string json(n, '\0');
  in.read(json.data(), static_cast<std::streamsize>(n));
  if (!in) fail(path, "cannot read the header");
  return parse_header(json.data(), n, size - 8 - n, path);
}

}  // namespace ewa::safetensors
