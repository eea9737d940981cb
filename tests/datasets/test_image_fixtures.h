// Fixture writers shared by the image dataset tests: CIFAR-10/100 records, IDX files (plain
// and gzip), image folders and a Tiny-ImageNet layout, all generated from a pixel formula.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ewa/datasets/image/image_io.h"
#include "test_util.h"

namespace ewa::test::image_fixtures {

/// Pixel value of image i, channel c, row y, column x in every fixture.
inline uint8_t pixel(int64_t i, int64_t c, int64_t y, int64_t x) {
  return static_cast<uint8_t>((i * 37 + c * 71 + y * 5 + x * 3) % 256);
}

/// `n` CIFAR records of `label_bytes` label bytes (label of image i: byte k = (i + k) % mod).
inline std::string cifar_records(int64_t first, int64_t n, int label_bytes, std::vector<int> mods) {
  std::string out;
  for (int64_t i = first; i < first + n; ++i) {
    for (int k = 0; k < label_bytes; ++k) out.push_back(static_cast<char>((i + k) % mods[k]));
    for (int c = 0; c < 3; ++c) {
      for (int y = 0; y < 32; ++y) {
        for (int x = 0; x < 32; ++x) out.push_back(static_cast<char>(pixel(i, c, y, x)));
      }
    }
  }
  return out;
}

inline std::string be32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(v >> 24);
  s[1] = static_cast<char>(v >> 16);
  s[2] = static_cast<char>(v >> 8);
  s[3] = static_cast<char>(v);
  return s;
}

inline std::string idx_images(int64_t n, int64_t h, int64_t w, uint32_t magic = 0x00000803) {
  std::string s = be32(magic) + be32(static_cast<uint32_t>(n)) + be32(static_cast<uint32_t>(h)) +
                  be32(static_cast<uint32_t>(w));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) s.push_back(static_cast<char>(pixel(i, 0, y, x)));
    }
  }
  return s;
}

inline std::string idx_labels(int64_t n, int mod, uint32_t magic = 0x00000801) {
  std::string s = be32(magic) + be32(static_cast<uint32_t>(n));
  for (int64_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i % mod));
  return s;
}

inline void write_gz(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  gzFile f = gzopen(p.string().c_str(), "wb");
  ASSERT_NE(f, nullptr) << p;
  ASSERT_EQ(gzwrite(f, data.data(), static_cast<unsigned>(data.size())), static_cast<int>(data.size()));
  gzclose(f);
}

/// An RGB image [h, w, 3] from the pixel formula (image id i).
inline torch::Tensor make_rgb(int64_t i, int64_t h, int64_t w) {
  auto t = torch::empty({h, w, 3}, torch::kUInt8);
  auto a = t.accessor<uint8_t, 3>();
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      for (int64_t c = 0; c < 3; ++c) a[y][x][c] = pixel(i, c, y, x);
    }
  }
  return t;
}

}  // namespace ewa::test::image_fixtures
