// Internal HDF5 helpers (C API): RAII file, dataset <-> tensor, global lock.
#include "h5_util.h"

#ifdef EWA_HAVE_HDF5
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "ewa/datasets/bounded_io.h"

namespace ewa::datasets::detail {

std::mutex& h5_mutex() {
  static std::mutex mu;
  return mu;
}

namespace {
/// HDF5 dimensions as int64 (-1 for values past INT64_MAX, refused by checked_product).
std::vector<int64_t> to_int64(const std::vector<hsize_t>& d) {
  std::vector<int64_t> out;
  for (hsize_t v : d) out.push_back(v > static_cast<hsize_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v));
  return out;
}

int64_t file_bytes(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

/// What one dataset of a file of `have` bytes may declare: 256x the file (compression) + 1 MB.
int64_t declared_bytes_limit(int64_t have) { return have * 256 + (int64_t{1} << 20); }

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
  return to_int64(d);
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
  const std::vector<int64_t> shape = to_int64(dims);
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
  const int64_t have = file_bytes(path_);
  const int64_t limit = declared_bytes_limit(have);
  const int64_t elem = static_cast<int64_t>(torch::elementSize(st));
  const int64_t need = bounded::checked_mul(numel, elem, path_, what + " size");
  if (need > limit) {
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
    const int64_t chunk_bytes = bounded::checked_mul(
        bounded::checked_product(to_int64(chunk), path_, what + " chunk"), static_cast<int64_t>(size), path_,
        what + " chunk size");
    const int64_t chunk_limit = std::max<int64_t>(limit, int64_t{16} << 20);
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

const torch::Tensor& H5Contents::at(const std::string& name) const {
  auto it = data.find(name);
  if (it == data.end()) bounded::fail(path, "no dataset '" + name + "'");
  return it->second;
}

namespace {

H5Contents read_from(const H5File& f, const std::vector<std::string>& read, const std::vector<std::string>& probe) {
  H5Contents c;
  c.path = f.path();
  for (const auto& n : probe) c.dims[n] = f.dims(n);
  for (const auto& n : read) {
    if (f.has(n)) c.data[n] = f.read(n);
  }
  return c;
}

H5Contents read_in_process(const std::string& path, const std::vector<std::string>& read,
                           const std::vector<std::string>& probe) {
  return read_from(H5File::open_read(path), read, probe);
}

// The reader child's protocol, over one Unix stream socket. A request: 'R' [path], [n u32][n
// names] to read, [n u32][n names] to probe (strings are [len u32][bytes]). Its answer: records
// of [tag u8][name], then for 'D' (dims) [ndim u32][ndim x i64], for 'T' (tensor) [dtype i32]
// [ndim u32][ndim x i64][bytes]; 'X' (error) [message]; 'V' (every dataset of kVetNames read
// cleanly); 'E' ends a complete answer.
struct ChannelClosed {};

struct Writer {
  int fd;
  void bytes(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      const ssize_t w = ::send(fd, c, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw ChannelClosed{};
      c += w;
      n -= static_cast<size_t>(w);
    }
  }
  template <class T>
  void pod(T v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    pod(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  void names(const std::vector<std::string>& v) {
    pod(static_cast<uint32_t>(v.size()));
    for (const auto& s : v) str(s);
  }
  void shape(const std::vector<int64_t>& d) {
    pod(static_cast<uint32_t>(d.size()));
    for (int64_t v : d) pod(v);
  }
};

// poll() for input on `fd` (EINTR retried): > 0 readable or closed, 0 after timeout_ms.
int poll_readable(int fd, int timeout_ms) {
  struct pollfd p {fd, POLLIN, 0};
  int r;
  while ((r = ::poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
  }
  return r;
}

struct Reader {
  int fd;
  const std::string& path;
  int timeout_ms;  // the longest the other side may stay silent (-1: no limit)
  void wait_readable() {
    if (timeout_ms >= 0 && poll_readable(fd, timeout_ms) == 0) {
      char s[32];
      std::snprintf(s, sizeof s, "%g", timeout_ms / 1000.0);
      throw H5CrashError(path + ": libhdf5 did not finish reading this file within " + s +
                         " s: a damaged or hostile HDF5 file (EWA_HDF5_TIMEOUT_S sets the limit)");
    }
  }
  bool bytes(void* p, size_t n) {  // false at a clean end of stream before any byte
    char* c = static_cast<char*>(p);
    size_t got = 0;
    while (got < n) {
      wait_readable();
      const ssize_t r = ::read(fd, c + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        if (got == 0) return false;
        bounded::fail(path, "the HDF5 reader process ended mid-record");
      }
      got += static_cast<size_t>(r);
    }
    return true;
  }
  template <class T>
  T pod() {
    T v{};
    if (!bytes(&v, sizeof v)) bounded::fail(path, "the HDF5 reader process ended mid-record");
    return v;
  }
  std::string str(size_t max) {
    const auto n = pod<uint32_t>();
    if (n > max) bounded::fail(path, "the HDF5 reader process sent a malformed record");
    std::string s(n, '\0');
    if (n > 0 && !bytes(s.data(), n)) bounded::fail(path, "the HDF5 reader process ended mid-record");
    return s;
  }
  std::vector<std::string> names() {
    const auto n = pod<uint32_t>();
    if (n > 64) bounded::fail(path, "the HDF5 reader process got a malformed request");
    std::vector<std::string> v(n);
    for (auto& s : v) s = str(4096);
    return v;
  }
  std::vector<int64_t> shape() {
    const auto n = pod<uint32_t>();
    if (n > 8) bounded::fail(path, "the HDF5 reader process sent a malformed record");
    std::vector<int64_t> d(n);
    for (auto& v : d) v = pod<int64_t>();
    return d;
  }
};

// How long the reader child may stay silent: EWA_HDF5_TIMEOUT_S, else 60 s + 1 s per 4 MB of
// file (a hang inside libhdf5 on a damaged file must not hang the program).
int reader_timeout_ms(int64_t bytes) {
  if (const char* env = std::getenv("EWA_HDF5_TIMEOUT_S")) {
    char* end = nullptr;
    const double s = std::strtod(env, &end);
    if (end != env && *end == '\0' && s > 0 && s < 1e6) return std::max(1, static_cast<int>(s * 1000));
    throw std::invalid_argument(std::string("EWA_HDF5_TIMEOUT_S='") + env + "' is not a number of seconds in (0, 1e6)");
  }
  return static_cast<int>(std::min<int64_t>(60'000 + bytes / (4 << 20) * 1000, 100'000'000));
}

// Every dataset name a reader of this library asks for: the child also reads the ones not
// asked for, so a file it read whole has been through every libhdf5 call a later in-process
// read of it can make.
const std::vector<std::string> kVetNames = {"coord", "color", "segment", "instance", "normal", "data", "label"};

// Files a child read completely, by identity (file_key()): read in this process from then on
// (under h5_mutex()).
std::set<FileKey>& vetted_files() {
  static std::set<FileKey> s;
  return s;
}

// For each request the child may grow by 512 MB plus 4x the file (what a reader of an
// uncompressed file needs): libhdf5 mallocs sizes it reads from the file (a local heap
// declaring 600 MB in a 4 KB file), and those allocations now fail in the child instead of
// growing it. The soft limit is set per request (raised or lowered, never past the hard one).
void cap_child_memory(const std::string& path) {
  uint64_t vm_pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%" SCNu64, &vm_pages) != 1) vm_pages = 0;
    std::fclose(f);
  }
  struct stat st {};
  const uint64_t file = ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  const uint64_t cap = vm_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) + (uint64_t{512} << 20) + 4 * file;
  struct rlimit rl {};
  if (vm_pages == 0 || getrlimit(RLIMIT_AS, &rl) != 0) return;
  rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? cap : std::min<uint64_t>(cap, rl.rlim_max);
  setrlimit(RLIMIT_AS, &rl);
}

// One request in the child; false when it failed (the child then exits: libhdf5's state is
// not trusted after an error).
bool serve(Writer& w, const std::string& path, const std::vector<std::string>& read,
           const std::vector<std::string>& probe) {
  cap_child_memory(path);
  try {
    const H5File f = H5File::open_read(path);
    H5Contents c = read_from(f, read, probe);  // its errors are the caller's
    bool vetted = true;
    try {  // the rest, to vet the file; its errors only keep the file out of vetted_files()
      for (const auto& n : kVetNames) {
        if (std::find(read.begin(), read.end(), n) == read.end() && f.has(n)) (void)f.read(n);
      }
    } catch (const std::exception&) {
      vetted = false;
    }
    for (const auto& [name, d] : c.dims) {
      w.pod('D');
      w.str(name);
      w.shape(d);
    }
    for (const auto& [name, t] : c.data) {
      w.pod('T');
      w.str(name);
      w.pod(static_cast<int32_t>(t.scalar_type()));
      w.shape(t.sizes().vec());
      w.bytes(t.data_ptr(), t.nbytes());
    }
    if (vetted) w.pod('V');
    w.pod('E');
    return true;
  } catch (const c10::Error& e) {
    w.pod('X');
    w.str(std::string(e.what_without_backtrace()).substr(0, 4000));
  } catch (const std::exception& e) {
    w.pod('X');
    w.str(std::string(e.what()).substr(0, 4000));
  }
  return false;
}

constexpr int kChildIdleMs = 5000;

// The child: answers one request after another until the parent closes its end (or exits) or
// a request fails; never returns (no atexit handlers or static destructors, libhdf5's included).
[[noreturn]] void child_loop(int fd) {
  // A crash in the child ends it by its signal: no crash handler of the parent (a sanitizer's
  // report, a fuzzer's input dump, a backtrace printer) runs for it.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) signal(sig, SIG_DFL);
  static const std::string kRequest = "HDF5 reader request";
  try {
    Reader in{fd, kRequest, -1};
    Writer out{fd};
    char tag = 0;
    for (;;) {
      // Idle for kChildIdleMs: exit, so a long-lived parent does not keep the copy-on-write
      // pages of its fork-time memory alive; the next read starts a new child.
      if (poll_readable(fd, kChildIdleMs) <= 0 || !in.bytes(&tag, 1) || tag != 'R') break;
      const std::string path = in.str(1 << 16);
      const auto read = in.names();
      const auto probe = in.names();
      if (!serve(out, path, read, probe)) break;  // (no malloc_trim: 8 ms per file; the idle exit frees)
    }
  } catch (...) {
  }
  _exit(0);
}

// This process's reader child (under h5_mutex()): started at the first isolated read and kept
// for the next ones (one fork for a folder of rooms, not one per file); stopped after a request
// that failed, crashed or timed out, and restarted by the next read. It exits by itself after
// kChildIdleMs without a request and when this process exits.
struct ReaderChild {
  pid_t pid = -1;
  int fd = -1;
  bool running() {  // also reaps a child that ended between requests
    int status = 0;
    if (pid >= 0 && waitpid(pid, &status, WNOHANG) == pid) {
      close(fd);
      pid = fd = -1;
    }
    return pid >= 0;
  }
  void start(const std::string& path) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      bounded::fail(path, std::string("cannot create a socket pair: ") + std::strerror(errno));
    }
    const pid_t p = fork();
    if (p < 0) {
      close(sv[0]);
      close(sv[1]);
      bounded::fail(path, std::string("cannot start the HDF5 reader process: ") + std::strerror(errno));
    }
    if (p == 0) {
      close(sv[0]);
      child_loop(sv[1]);
    }
    close(sv[1]);
    pid = p;
    fd = sv[0];
  }
  int stop(bool kill_it) {  // the child's wait status
    if (pid < 0) return 0;
    if (kill_it) kill(pid, SIGKILL);
    close(fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid = fd = -1;
    return status;
  }
};
ReaderChild& reader_child() {
  static auto* c = new ReaderChild;  // never destroyed: the child sees the socket close at exit
  return *c;
}

}  // namespace

bool file_key(const std::string& path, FileKey& key) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  key = FileKey{path, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<int64_t>(st.st_size),
                static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  return true;
}

bool file_settled(const FileKey& key) {
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  return now_ns - std::get<4>(key) > int64_t{2'000'000'000};
}

H5Contents h5_read(const std::string& path, const std::vector<std::string>& read, const std::vector<std::string>& probe) {
  std::lock_guard<std::mutex> lock(h5_mutex());  // also: no thread of ours is inside libhdf5 at fork
  const char* in_process = std::getenv("EWA_HDF5_IN_PROCESS");
  if (in_process && std::string(in_process) == "1") return read_in_process(path, read, probe);
  FileKey key;
  const bool have_key = file_key(path, key);
  if (have_key && vetted_files().count(key)) return read_in_process(path, read, probe);

  const int64_t bytes = have_key ? std::get<3>(key) : file_bytes(path);  // the size file_key() stat'ed
  const int timeout_ms = reader_timeout_ms(bytes);
  std::error_code ec;
  const std::string abs = std::filesystem::absolute(path, ec).string();  // the child keeps its first cwd
  ReaderChild& child = reader_child();
  struct KillUnlessDone {  // any way out of here but a finished answer stops the child
    ReaderChild& child;
    bool done = false;
    ~KillUnlessDone() {
      if (!done) child.stop(true);
    }
  } guard{child};
  Reader r{-1, path, timeout_ms};
  char tag = 0;
  for (int attempt = 0;; ++attempt) {
    if (!child.running()) child.start(path);
    r.fd = child.fd;
    try {
      Writer w{child.fd};
      w.pod('R');
      w.str(ec ? path : abs);
      w.names(read);
      w.names(probe);
      if (r.bytes(&tag, 1)) break;
    } catch (const ChannelClosed&) {
    }
    // Nothing came back: the child ended before it read the request (its idle exit crossed
    // this request) or libhdf5 crashed at once. A clean exit gets one fresh child.
    const int status = child.stop(false);
    if (WIFSIGNALED(status)) {
      guard.done = true;
      throw H5CrashError(path + ": libhdf5 crashed reading this file (signal " + std::to_string(WTERMSIG(status)) +
                         "): a damaged or hostile HDF5 file");
    }
    if (attempt > 0) bounded::fail(path, "the HDF5 reader process ended without an answer");
  }

  H5Contents c;
  c.path = path;
  const int64_t limit = declared_bytes_limit(bytes);  // as read()
  std::string error;
  bool complete = false, vetted = false;
  for (bool more = true; more; more = !complete && error.empty() && r.bytes(&tag, 1)) {
    if (tag == 'E') {
      complete = true;
    } else if (tag == 'V') {
      vetted = true;
    } else if (tag == 'X') {
      error = r.str(1 << 16);
    } else if (tag == 'D') {
      std::string name = r.str(4096);
      c.dims[name] = r.shape();
    } else if (tag == 'T') {
      std::string name = r.str(4096);
      const auto st = static_cast<torch::ScalarType>(r.pod<int32_t>());
      const auto shape = r.shape();
      const bool known = st == torch::kFloat32 || st == torch::kFloat64 || st == torch::kUInt8 || st == torch::kInt8 ||
                         st == torch::kInt16 || st == torch::kInt32 || st == torch::kInt64;
      if (!known) bounded::fail(path, "the HDF5 reader process sent a malformed record");
      const int64_t numel = bounded::checked_product(shape, path, "dataset '" + name + "' shape");
      const int64_t need = bounded::checked_mul(numel, static_cast<int64_t>(torch::elementSize(st)), path, "dataset size");
      if (need > limit) bounded::fail(path, "the HDF5 reader process sent a malformed record");
      auto t = torch::empty(shape, st);
      if (need > 0 && !r.bytes(t.data_ptr(), static_cast<size_t>(need))) {
        bounded::fail(path, "the HDF5 reader process ended mid-record");
      }
      c.data[name] = std::move(t);
    } else {
      bounded::fail(path, "the HDF5 reader process sent a malformed record");
    }
  }
  guard.done = true;
  if (complete) {  // the child serves the next read
    if (have_key && vetted && file_settled(key)) vetted_files().insert(key);
    return c;
  }
  const int status = child.stop(false);  // it exits after an error; a crash already ended it
  if (WIFSIGNALED(status)) {
    throw H5CrashError(path + ": libhdf5 crashed reading this file (signal " + std::to_string(WTERMSIG(status)) +
                       "): a damaged or hostile HDF5 file");
  }
  if (!error.empty()) {  // the child's message, kept to one line and naming the file as given
    for (size_t at; !ec && abs != path && (at = error.find(abs)) != std::string::npos;) error.replace(at, abs.size(), path);
    for (char& ch : error) {
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
    }
    if (error.find("not enough memory") != std::string::npos || error.find("bad_alloc") != std::string::npos) {
      bounded::fail(path, "out of memory while reading (the HDF5 reader process is capped at 512 MB + 4x the file)");
    }
    if (error.find(path) == std::string::npos) error = path + ": " + error;
    throw DataError(error);
  }
  bounded::fail(path, "the HDF5 reader process ended early (exit status " +
                          std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
}

}  // namespace ewa::datasets::detail
#endif
