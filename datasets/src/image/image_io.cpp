// Image file decoding/encoding through OpenCV (BGR <-> RGB handled here), or a clear error
// when the library was built without OpenCV.
#include "ewa/datasets/image/image_io.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
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

namespace {

uint32_t img_be16(const uint8_t* p) { return (uint32_t(p[0]) << 8) | p[1]; }
uint32_t img_be32(const uint8_t* p) { return (img_be16(p) << 16) | img_be16(p + 2); }
uint32_t img_le16(const uint8_t* p) { return (uint32_t(p[1]) << 8) | p[0]; }
uint32_t img_le32(const uint8_t* p) { return (img_le16(p + 2) << 16) | img_le16(p); }

[[noreturn]] void bad_image(const std::string& path, const std::string& why) {
  throw std::runtime_error("cannot decode image '" + path + "': " + why);
}

}  // namespace

ImageHeader probe_image(const uint8_t* data, size_t size, const std::string& path) {
  ImageHeader h;
  auto need = [&](size_t n, const char* what) {
    if (size < n) bad_image(path, std::string("truncated ") + what + " header (" + std::to_string(size) + " bytes)");
  };
  if (size == 0) bad_image(path, "the file is empty (truncated?)");
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) {
    need(24, "PNG");
    if (std::memcmp(data + 12, "IHDR", 4) != 0) bad_image(path, "PNG without an IHDR chunk first");
    h.format = "PNG";
    h.width = img_be32(data + 16);
    h.height = img_be32(data + 20);
  } else if (size >= 2 && data[0] == 'B' && data[1] == 'M') {
    need(26, "BMP");
    h.format = "BMP";
    if (img_le32(data + 14) == 12) {  // BITMAPCOREHEADER: 16-bit sizes
      h.width = img_le16(data + 18);
      h.height = img_le16(data + 20);
    } else {
      h.width = static_cast<int32_t>(img_le32(data + 18));
      h.height = static_cast<int32_t>(img_le32(data + 22));
      if (h.height < 0) h.height = -h.height;  // top-down rows
    }
  } else if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    h.format = "JPEG";
    size_t pos = 2;
    while (true) {
      while (pos < size && data[pos] == 0xFF && pos + 1 < size && data[pos + 1] == 0xFF) ++pos;  // fill bytes
      if (pos + 4 > size) bad_image(path, "truncated JPEG: no frame header (SOF) found");
      if (data[pos] != 0xFF) bad_image(path, "corrupt JPEG: no marker at byte " + std::to_string(pos));
      const uint8_t marker = data[pos + 1];
      if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // markers without a length
        pos += 2;
        continue;
      }
      if (marker == 0xD9 || marker == 0xDA) bad_image(path, "corrupt JPEG: scan data before the frame header (SOF)");
      const size_t len = img_be16(data + pos + 2);
      if (len < 2) bad_image(path, "corrupt JPEG: segment length " + std::to_string(len) + " at byte " + std::to_string(pos));
      const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (sof) {
        if (pos + 9 > size) bad_image(path, "truncated JPEG frame header");
        h.height = img_be16(data + pos + 5);
        h.width = img_be16(data + pos + 7);
        break;
      }
      pos += 2 + len;
    }
  } else {
    bad_image(path, "not a PNG, JPEG or BMP file (unknown signature)");
  }
  if (h.width <= 0 || h.height <= 0) {
    bad_image(path, std::string(h.format) + " header declares " + std::to_string(h.width) + " x " +
                        std::to_string(h.height) + " pixels");
  }
  if (h.width > kMaxImagePixels / h.height) {
    bad_image(path, std::string(h.format) + " image of " + std::to_string(h.width) + " x " + std::to_string(h.height) +
                        " pixels exceeds the limit of " + std::to_string(kMaxImagePixels) + " pixels");
  }
  return h;
}

namespace {
torch::Tensor decode_image_impl(const std::string& path, int64_t channels);
}  // namespace

torch::Tensor decode_image(const std::string& path, int64_t channels) {
  TORCH_CHECK(channels == 1 || channels == 3, "decode_image: channels must be 1 or 3, got ", channels);
  try {
    return decode_image_impl(path, channels);
  } catch (const std::bad_alloc&) {
    bad_image(path, "out of memory while decoding");
#ifdef EWA_HAVE_OPENCV
  } catch (const cv::Exception&) {  // OpenCV's text is not for users
    bad_image(path, "corrupt or unsupported image data");
#endif
  } catch (const c10::Error& e) {
    const std::string m = e.what_without_backtrace();
    if (m.find("not enough memory") == std::string::npos && m.find("can't allocate memory") == std::string::npos) throw;
    bad_image(path, "out of memory while decoding");
  }
}

namespace {
torch::Tensor decode_image_impl(const std::string& path, int64_t channels) {
#ifdef EWA_HAVE_OPENCV
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw std::runtime_error("image file not found: '" + path + "'");
  const auto file_bytes = std::filesystem::file_size(path, ec);
  if (ec) bad_image(path, "cannot read the file size: " + ec.message());
  if (file_bytes > kMaxImageFileBytes) {
    bad_image(path, "file of " + std::to_string(file_bytes) + " bytes exceeds the limit of " +
                        std::to_string(kMaxImageFileBytes) + " bytes");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(file_bytes));
  {
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!in || in.gcount() != static_cast<std::streamsize>(bytes.size())) bad_image(path, "cannot read the file");
  }
  probe_image(bytes.data(), bytes.size(), path);  // format and size checked before decoding
  cv::Mat mat;
  try {
    mat = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, bytes.data()),
                       channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
    mat.release();  // OpenCV's own message is not for users; the line below names the file
  }
  if (mat.empty() || mat.depth() != CV_8U || mat.channels() != channels) {
    bad_image(path, "corrupt or unsupported image data");
  }
  if (static_cast<int64_t>(mat.rows) * mat.cols > kMaxImagePixels) {  // e.g. a rotated EXIF JPEG
    bad_image(path, "decoded image exceeds the limit of " + std::to_string(kMaxImagePixels) + " pixels");
  }
  bytes = {};
  auto out = torch::empty({mat.rows, mat.cols, channels}, torch::kUInt8);
  // Convert straight into the tensor's memory (no third copy of the pixels).
  cv::Mat dst(mat.rows, mat.cols, CV_8UC(static_cast<int>(channels)), out.data_ptr<uint8_t>());
  if (channels == 3) {
    cv::cvtColor(mat, dst, cv::COLOR_BGR2RGB);
  } else {
    mat.copyTo(dst);
  }
  TORCH_CHECK(dst.data == out.data_ptr<uint8_t>(), "decode_image: OpenCV reallocated the output of '", path, "'");
  return out;
#else
  no_opencv("cannot decode image", path);
#endif
}
}  // namespace

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
