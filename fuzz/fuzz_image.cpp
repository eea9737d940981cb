// libFuzzer harness: image decoding as image folders and Tiny-ImageNet use it (header probe,
// then OpenCV), in colour and in grayscale.
#include <cstddef>
#include <cstdint>

#include "ewa/datasets/image/image_io.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace img = ewa::datasets::image;
  const std::string path = ewa_fuzz::write_file("input.png", data, size);
  for (int64_t channels : {3, 1}) {
    ewa_fuzz::run("input.png", [&] {
      auto t = img::decode_image(path, channels);  // uint8 [H, W, C]
      if (t.dim() != 3 || t.size(2) != channels || t.size(0) * t.size(1) > img::kMaxImagePixels) std::abort();
    });
  }
  return 0;
}
