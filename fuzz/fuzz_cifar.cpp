// libFuzzer harness: CIFAR-10 (3073-byte records) and CIFAR-100 (3074-byte records) binary
// batches, read as the test split of a folder holding only the fuzzed file.
#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "ewa/datasets/image/readers.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace img = ewa::datasets::image;
  static const std::string dir10 = ewa_fuzz::scratch_dir() + "/cifar10";
  static const std::string dir100 = ewa_fuzz::scratch_dir() + "/cifar100";
  std::filesystem::create_directories(dir10);
  std::filesystem::create_directories(dir100);
  ewa_fuzz::write_file("cifar10/test_batch.bin", data, size);
  ewa_fuzz::write_file("cifar100/test.bin", data, size);
  ewa_fuzz::run("test_batch.bin", [&] {
    auto ds = img::read_cifar10(dir10, /*train=*/false);
    if (ds->size() > 0) ds->get(0);
  });
  ewa_fuzz::run("test.bin", [&] {
    torch::Tensor coarse;
    auto ds = img::read_cifar100(dir100, /*train=*/false, "fine", &coarse);
    if (ds->size() > 0) ds->get(ds->size() - 1);
  });
  return 0;
}
