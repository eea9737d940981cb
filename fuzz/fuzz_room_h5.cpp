// libFuzzer harness: prepared HDF5 rooms through the library's reader (open_cloud, format
// room_h5: coord / color / segment / instance), and the many-shape HDF5 formats (item #0).
// libhdf5 itself parses the container; the harness checks what our reader makes of it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ewa/datasets/points/cloud_formats.h"
#include "point_fuzz.h"

// libhdf5 1.10 leaks its metadata-cache entries when H5Dopen2 fails on a corrupt object
// header (stack: H5Dopen2 -> H5O_protect -> H5C_protect -> H5FL_reg_malloc), inside the
// library; LeakSanitizer ignores allocations made by libhdf5 itself, ours stay checked.
extern "C" const char* __lsan_default_suppressions() { return "leak:libhdf5_serial.so\n"; }

// libhdf5 mallocs some sizes it reads from the file before checking them against the file
// (H5C_protect: a metadata entry declaring 3.5e18 bytes). glibc returns NULL for those and
// libhdf5 fails cleanly; ASan's default aborts instead, which is not what a user would see.
// Our own code allocates with new / LibTorch, which ASan and -malloc_limit_mb still check.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

#ifdef EWA_HAVE_HDF5
// libhdf5 allocates its metadata cache (~1 MB, zeroed) on every file open and, with its default
// free-list limits, hands it back to the allocator on close; under ASan every such block is a
// fresh mmap, 150 page faults and a munmap, which made this harness run at ~80 inputs/s. With
// no limits libhdf5 reuses its own blocks (what it does for small ones anyway): 6x the
// executions per second, the same reader code. libhdf5 is not ASan-instrumented either way.
// (herr_t H5set_free_list_limits(int, int, int, int, int, int) from <H5public.h>; -1 = none.)
extern "C" int H5set_free_list_limits(int, int, int, int, int, int);
[[maybe_unused]] static const int kHdf5FreeLists = H5set_free_list_limits(-1, -1, -1, -1, -1, -1);
#endif

#ifdef EWA_LIBFUZZER
// The readers open HDF5 files in a forked child (libhdf5 1.10.8 crashes on some damaged files):
// ~3 inputs/s under ASan, and the child's coverage never reaches libFuzzer. The fuzzer reads
// in-process, so libhdf5's own crashes stop it (README "Robustness": run it with -fork=1
// -ignore_crashes=1 and replay the crashes through the replay test, which reads isolated).
[[maybe_unused]] static const int kInProcess = setenv("EWA_HDF5_IN_PROCESS", "1", /*overwrite=*/0);
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ewa_fuzz::write_file("input.h5", data, size);
  ewa_fuzz_points::run("input.h5", [&] {
    auto s = ewa::datasets::open_cloud(path);
    if (s.cloud.size() == 0 || !torch::isfinite(s.cloud.coord).all().item<bool>()) std::abort();
  });
  ewa_fuzz_points::run("input.h5", [&] {
    auto s = ewa::datasets::open_cloud(path + "#0");
    if (s.cloud.size() == 0) std::abort();
  });
  return 0;
}
