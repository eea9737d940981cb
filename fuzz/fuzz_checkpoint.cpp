// libFuzzer harness: training checkpoints ("EWACKPT1" | size | CRC32 | torch archive). An
// input that starts with the magic is used as the whole file (header checks); any other input
// is wrapped in a valid header with its CRC, so the fuzzer reaches the archive reader, the
// metadata checks and the model/optimizer loading behind the checksum.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "ewa/core/checkpoint.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string file;
  if (size >= 8 && std::memcmp(data, "EWACKPT1", 8) == 0) {
    file.assign(reinterpret_cast<const char*>(data), size);
  } else {
    const uint64_t n = size;
    const uint32_t crc = static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), data, static_cast<uInt>(size)));
    file.assign("EWACKPT1", 8);
    file.append(reinterpret_cast<const char*>(&n), 8);
    file.append(reinterpret_cast<const char*>(&crc), 4);
    file.append(reinterpret_cast<const char*>(data), size);
  }
  const std::string path =
      ewa_fuzz::write_file("input.ckpt", reinterpret_cast<const uint8_t*>(file.data()), file.size());
  // One load per input (the archive reader dominates the cost): with an optimizer (resume: the
  // training weights and the EMA state) for even sizes, weights only (eval/export: the EMA when
  // present) for odd ones. read_checkpoint_state is the same reader without the model.
  const bool weights_only = size % 2 == 1;
  ewa_fuzz::run("input.ckpt", [&] {
    // The model and optimizer of the seed corpus (tests/data/fuzz/corpus/checkpoint).
    torch::manual_seed(0);
    torch::nn::Sequential model(torch::nn::Linear(4, 3), torch::nn::LayerNorm(torch::nn::LayerNormOptions({3})));
    torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
    ewa::load_checkpoint(path, *model, weights_only ? nullptr : &opt);
  });
  return 0;
}
