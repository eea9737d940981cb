// Image file decoding/encoding for the 2D pipeline (OpenCV when built with it, a clear error
// naming the build option otherwise). Images are uint8 tensors in HWC layout.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

namespace ewa::datasets::image {

/// True when the library was built with OpenCV (EWA_WITH_OPENCV), i.e. decode_image works.
bool have_opencv();

/// Lower-case extensions (with dot) accepted in image folders: .png .jpg .jpeg .bmp.
const std::vector<std::string>& image_extensions();

/// True when `path` has one of image_extensions() (case-insensitive).
bool has_image_extension(const std::string& path);

/// Decodes an image file into uint8 [H, W, C] with C = `channels` (1 = grayscale, 3 = RGB
/// order). Throws std::runtime_error naming `path` when it is missing or cannot be decoded,
/// and when the build has no OpenCV.
torch::Tensor decode_image(const std::string& path, int64_t channels = 3);

/// Writes `image` (uint8 [H, W, C], C in {1, 3}, RGB order; or [H, W]) to `path`; the format
/// follows the extension. Throws naming `path` on failure or without OpenCV.
void write_image(const std::string& path, const torch::Tensor& image);

}  // namespace ewa::datasets::image
