// libFuzzer harness: IDX image and label files (MNIST / Fashion-MNIST), plain or gzip
// (the reader detects gzip by its magic), through read_idx_images / read_idx_labels.
#include <cstddef>
#include <cstdint>

#include "ewa/datasets/image/readers.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ewa_fuzz::write_file("input.idx", data, size);
  ewa_fuzz::run("input.idx", [&] {
    auto images = ewa::datasets::image::read_idx_images(path);  // uint8 [N, H, W, 1]
    if (images.dim() != 4 || images.size(3) != 1) std::abort();
  });
  ewa_fuzz::run("input.idx", [&] {
    auto labels = ewa::datasets::image::read_idx_labels(path);  // int64 [N]
    if (labels.dim() != 1) std::abort();
  });
  return 0;
}
