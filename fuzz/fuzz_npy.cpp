// libFuzzer harness: .npy point arrays [N,C], through the shared point-format table
// (ewa::datasets::open_cloud, the reader of ewa train / segment / view).
#include <cstddef>
#include <cstdint>

#include "point_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ewa_fuzz_points::fuzz_cloud_file("input.npy", data, size);
}
