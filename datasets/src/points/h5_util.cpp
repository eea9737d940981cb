// Internal HDF5 helpers (C API): RAII file, dataset <-> tensor, global lock.
#include "h5_util.h"

#ifdef EWA_HAVE_HDF5
#include <algorithm>
#include <filesystem>
#include <vector>

#include "ewa/datasets/bounded_io.h"

namespace ewa::datasets::detail {

std::mutex& h5_mutex() {
  static std::mutex mu;
  return mu;
}

namespace {
struct Closer {
  hid_t id;
  herr_t (*fn)(hid_t);
  ~Closer() {
    if (id >= 0) fn(id);
  }
};
}  // namespace

H5File H5File::open_read(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  TORCH_CHECK(id >= 0, "cannot open HDF5 file ", path);
  return H5File(id, path);
}

H5File H5File::create(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  TORCH_CHECK(id >= 0, "cannot create HDF5 file ", path);
  return H5File(id, path);
}

H5File::~H5File() {
  if (id_ >= 0) H5Fclose(id_);
}

bool H5File::has(const std::string& name) const {
  return H5Lexists(id_, name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<int64_t> H5File::dims(const std::string& name) const {
  if (!has(name)) return {};
  hid_t ds = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
  if (ds < 0) return {};
  Closer c1{ds, H5Dclose};
  hid_t space = H5Dget_space(ds);
  if (space < 0) return {};
  Closer c2{space, H5Sclose};
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0 || rank > 8) return {};
  std::vector<hsize_t> d(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space, d.data(), nullptr);
  std::vector<int64_t> out;
  for (hsize_t v : d) out.push_back(v > static_cast<hsize_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v));
  return out;
}

torch::Tensor H5File::read(const std::string& name) const {
  TORCH_CHECK(has(name), path_, ": no dataset '", name, "'");
  hid_t ds = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
  TORCH_CHECK(ds >= 0, path_, ": cannot open dataset '", name, "'");
  Closer c1{ds, H5Dclose};
  hid_t space = H5Dget_space(ds);
  Closer c2{space, H5Sclose};
  int rank = H5Sget_simple_extent_ndims(space);
  TORCH_CHECK(rank >= 0 && rank <= 8, path_, ": dataset '", name, "' has unsupported rank");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  std::vector<int64_t> shape;
  for (hsize_t d : dims) shape.push_back(d > static_cast<hsize_t>(INT64_MAX) ? -1 : static_cast<int64_t>(d));
  const std::string what = "dataset '" + name + "'";
  const int64_t numel = bounded::checked_product(shape, path_, what + " shape");
  hid_t ftype = H5Dget_type(ds);
  Closer c3{ftype, H5Tclose};
  H5T_class_t cls = H5Tget_class(ftype);
  size_t size = H5Tget_size(ftype);
  // The file's element size also sizes libhdf5's conversion buffer (numel x size): a type that
  // declares 4 GB per value would make H5Dread allocate that from a 4 KB file. Numbers are
  // 1/2/4/8-byte integers and 2/4/8-byte floats (h5py writes float16 as a 2-byte float).
  const bool int_size = size == 1 || size == 2 || size == 4 || size == 8;
  const bool float_size = size == 2 || size == 4 || size == 8;
  if ((cls == H5T_INTEGER && !int_size) || (cls == H5T_FLOAT && !float_size)) {
    bounded::fail(path_, what + " has a " + std::to_string(size) + "-byte " +
                             (cls == H5T_FLOAT ? "float" : "integer") + " type (expected 1, 2, 4 or 8 bytes)");
  }
  torch::ScalarType st;
  hid_t mtype;
  if (cls == H5T_FLOAT) {
    st = size == 8 ? torch::kFloat64 : torch::kFloat32;
    mtype = size == 8 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
  } else if (cls == H5T_INTEGER) {
    bool sign = H5Tget_sign(ftype) == H5T_SGN_2;
    if (size == 1) {
      st = sign ? torch::kInt8 : torch::kUInt8;
      mtype = sign ? H5T_NATIVE_INT8 : H5T_NATIVE_UINT8;
    } else if (size == 2) {
      st = sign ? torch::kInt16 : torch::kInt32;
      mtype = sign ? H5T_NATIVE_INT16 : H5T_NATIVE_INT32;
    } else if (size == 4 && sign) {
      st = torch::kInt32;
      mtype = H5T_NATIVE_INT32;
    } else {
      st = torch::kInt64;
      mtype = H5T_NATIVE_INT64;
    }
  } else {
    TORCH_CHECK(false, path_, ": dataset '", name, "' is not numeric");
  }
  // The declared shape must be plausible for the file: a chunked/compressed dataset can
  // declare terabytes in a few bytes. Allow 256x the file size (+1 MB) before allocating.
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(path_, ec);
  const int64_t have = ec ? 0 : static_cast<int64_t>(file_bytes);
  const int64_t elem = static_cast<int64_t>(torch::elementSize(st));
  const int64_t need = bounded::checked_mul(numel, elem, path_, what + " size");
  if (need > have * 256 + (int64_t{1} << 20)) {
    bounded::fail(path_, what + " declares " + std::to_string(numel) + " values (" + bounded::human_bytes(need) +
                             ") but the file holds " + bounded::human_bytes(have));
  }
  // A chunked dataset's chunk is read whole (and inflated whole when compressed): its declared
  // size is bounded like the data, with room for chunks larger than small data (16 MB).
  hid_t dcpl = H5Dget_create_plist(ds);
  Closer c4{dcpl, H5Pclose};
  if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(static_cast<size_t>(rank > 0 ? rank : 1), 0);
    const int crank = H5Pget_chunk(dcpl, rank, chunk.data());
    if (crank != rank) bounded::fail(path_, what + " has an unreadable chunk layout");
    int64_t chunk_bytes = static_cast<int64_t>(size);
    for (int i = 0; i < crank; ++i) {
      const int64_t c = chunk[static_cast<size_t>(i)] > static_cast<hsize_t>(INT64_MAX)
                            ? -1
                            : static_cast<int64_t>(chunk[static_cast<size_t>(i)]);
      if (c < 0) bounded::fail(path_, what + " declares a chunk dimension that overflows");
      chunk_bytes = bounded::checked_mul(chunk_bytes, c, path_, what + " chunk size");
    }
    const int64_t chunk_limit = std::max<int64_t>(have * 256 + (int64_t{1} << 20), int64_t{16} << 20);
    if (chunk_bytes > chunk_limit) {
      bounded::fail(path_, what + " declares chunks of " + bounded::human_bytes(chunk_bytes) + " but the file holds " +
                               bounded::human_bytes(have));
    }
  }
  auto t = torch::empty(shape, st);
  if (t.numel() > 0) {
    TORCH_CHECK(H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) >= 0, path_,
                ": cannot read dataset '", name, "'");
  }
  return t;
}

void H5File::write(const std::string& name, const torch::Tensor& in) const {
  torch::Tensor t = in.scalar_type() == torch::kBool ? in.to(torch::kUInt8) : in;
  t = t.contiguous().cpu();
  hid_t mtype;
  switch (t.scalar_type()) {
    case torch::kFloat32: mtype = H5T_NATIVE_FLOAT; break;
    case torch::kFloat64: mtype = H5T_NATIVE_DOUBLE; break;
    case torch::kUInt8: mtype = H5T_NATIVE_UINT8; break;
    case torch::kInt8: mtype = H5T_NATIVE_INT8; break;
    case torch::kInt16: mtype = H5T_NATIVE_INT16; break;
    case torch::kInt32: mtype = H5T_NATIVE_INT32; break;
    case torch::kInt64: mtype = H5T_NATIVE_INT64; break;
    default: TORCH_CHECK(false, path_, ": cannot write dtype ", t.scalar_type(), " to HDF5 dataset '", name, "'");
  }
  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  Closer c1{space, H5Sclose};
  hid_t ds = H5Dcreate2(id_, name.c_str(), mtype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  TORCH_CHECK(ds >= 0, path_, ": cannot create dataset '", name, "'");
  Closer c2{ds, H5Dclose};
  if (t.numel() > 0) {
    TORCH_CHECK(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) >= 0, path_,
                ": cannot write dataset '", name, "'");
  }
}

}  // namespace ewa::datasets::detail
#endif
