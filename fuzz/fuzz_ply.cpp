// libFuzzer harness: PLY (ascii, binary little/big endian, list properties), through the shared point-format table
// (ewa::datasets::open_cloud, the reader of ewa train / segment / view).
#include <cstddef>
#include <cstdint>

#include "ewa/datasets/points/cloud_formats.h"
#include "point_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ewa_fuzz::write_file("input.ply", data, size);
  ewa_fuzz_points::run("input.ply", [&] {
    ewa::datasets::CloudReadOptions o;
    auto s = ewa::datasets::open_cloud(path, o);
    const auto& c = s.cloud;
    // the contract of open_cloud: float32 [N,3] finite coordinates, N > 0
    if (c.coord.dim() != 2 || c.coord.size(1) != 3 || c.size() == 0) std::abort();
    if (!torch::isfinite(c.coord).all().item<bool>()) std::abort();
  });
  return 0;
}
