// Image file decoding/encoding through OpenCV (BGR <-> RGB handled here), or a clear error
// when the library was built without OpenCV.
#include "ewa/datasets/image/image_io.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#ifdef EWA_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace ewa::datasets::image {

#ifndef EWA_HAVE_OPENCV
namespace {
[[noreturn]] void no_opencv(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " '" + path +
                           "': this build has no OpenCV image decoding (install libopencv-dev and "
                           "configure with -DEWA_WITH_OPENCV=ON)");
}
}  // namespace
#endif

bool have_opencv() {
#ifdef EWA_HAVE_OPENCV
  return true;
#else
  return false;
#endif
}

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> exts = {".png", ".jpg", ".jpeg", ".bmp"};
  return exts;
}

bool has_image_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  const auto& exts = image_extensions();
  return std::find(exts.begin(), exts.end(), ext) != exts.end();
}

torch::Tensor decode_image(const std::string& path, int64_t channels) {
  TORCH_CHECK(channels == 1 || channels == 3, "decode_image: channels must be 1 or 3, got ", channels);
#ifdef EWA_HAVE_OPENCV
  if (!std::filesystem::is_regular_file(path)) throw std::runtime_error("image file not found: '" + path + "'");
  cv::Mat mat = cv::imread(path, channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
  if (mat.empty() || mat.depth() != CV_8U) {
    throw std::runtime_error("cannot decode image '" + path + "' (unreadable, corrupt or unsupported format)");
  }
  if (channels == 3) cv::cvtColor(mat, mat, cv::COLOR_BGR2RGB);
  if (!mat.isContinuous()) mat = mat.clone();
  auto out = torch::empty({mat.rows, mat.cols, channels}, torch::kUInt8);
  std::memcpy(out.data_ptr<uint8_t>(), mat.data, static_cast<size_t>(out.numel()));
  return out;
#else
  no_opencv("cannot decode image", path);
#endif
}

void write_image(const std::string& path, const torch::Tensor& image) {
  TORCH_CHECK(image.scalar_type() == torch::kUInt8, "write_image '", path, "': expected uint8, got ",
              image.scalar_type());
  auto img = image.dim() == 2 ? image.unsqueeze(2) : image;
  TORCH_CHECK(img.dim() == 3 && (img.size(2) == 1 || img.size(2) == 3), "write_image '", path,
              "': expected [H, W, C] with C 1 or 3, got ", image.sizes());
#ifdef EWA_HAVE_OPENCV
  img = img.contiguous();
  const int c = static_cast<int>(img.size(2));
  cv::Mat mat(static_cast<int>(img.size(0)), static_cast<int>(img.size(1)), CV_8UC(c), img.data_ptr<uint8_t>());
  cv::Mat bgr;
  if (c == 3) {
    cv::cvtColor(mat, bgr, cv::COLOR_RGB2BGR);
  } else {
    bgr = mat;
  }
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  bool ok = false;
  try {
    ok = cv::imwrite(path, bgr);
  } catch (const cv::Exception& e) {
    throw std::runtime_error("cannot write image '" + path + "': " + e.what());
  }
  if (!ok) throw std::runtime_error("cannot write image '" + path + "'");
#else
  no_opencv("cannot write image", path);
#endif
}

}  // namespace ewa::datasets::image
