// Image file decoding/encoding for the 2D pipeline (OpenCV when built with it, a clear error
// naming the build option otherwise). Images are uint8 tensors in HWC layout.
#pragma once

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ewa::datasets::image {

/// True when the library was built with OpenCV (EWA_WITH_OPENCV), i.e. decode_image works.
bool have_opencv();

/// Lower-case extensions (with dot) accepted in image folders: .png .jpg .jpeg .bmp.
const std::vector<std::string>& image_extensions();

/// True when `path` has one of image_extensions() (case-insensitive).
bool has_image_extension(const std::string& path);

/// Largest image decode_image() accepts (width x height; 2^26 = 67 Mpx, 201 MB as RGB), and
/// the largest image file it reads.
inline constexpr int64_t kMaxImagePixels = int64_t(1) << 26;
inline constexpr uint64_t kMaxImageFileBytes = uint64_t(1) << 28;

/// Format ("PNG", "JPEG", "BMP") and size of an image from its first bytes.
struct ImageHeader {
  const char* format = "";
  int64_t width = 0;
  int64_t height = 0;
};

/// Reads the header of the PNG, JPEG or BMP file image `data` (`size` bytes) without
/// decoding it. Throws std::runtime_error naming `path` for another or a damaged format,
/// a size <= 0, or more than kMaxImagePixels pixels.
ImageHeader probe_image(const uint8_t* data, size_t size, const std::string& path);

/// Decodes a PNG, JPEG or BMP file into uint8 [H, W, C] with C = `channels` (1 = grayscale,
/// 3 = RGB order). The header is checked first (probe_image), so an oversized image fails
/// with one line before any pixel is allocated. Throws std::runtime_error naming `path` when
/// it is missing or cannot be decoded, and when the build has no OpenCV.
torch::Tensor decode_image(const std::string& path, int64_t channels = 3);

/// Writes `image` (uint8 [H, W, C], C in {1, 3}, RGB order; or [H, W]) to `path`; the format
/// follows the extension. Throws naming `path` on failure or without OpenCV.
void write_image(const std::string& path, const torch::Tensor& image);

}  // namespace ewa::datasets::image
