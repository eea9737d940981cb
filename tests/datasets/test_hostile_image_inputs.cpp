// Hostile inputs for the image-classification readers (issue #16): IDX (plain and gzip, with
// counts that overflow, huge declared sizes and a gzip bomb), CIFAR batches and image files
// (oversized, truncated, unknown formats). Each runs in a child with a 512 MB address-space
// budget and a 10 s alarm and must end with one clean line naming the file.
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "ewa/datasets/image/image_io.h"
#include "ewa/datasets/image/readers.h"
#include "hostile_util.h"
#include "test_image_fixtures.h"
#include "test_util.h"

namespace {

namespace fx = ewa::test::image_fixtures;
namespace img = ewa::datasets::image;
using ewa::test::fails_cleanly;
using ewa::test::run_limited;

std::string idx_header(uint32_t magic, std::vector<uint32_t> dims) {
  std::string s = fx::be32(magic);
  for (uint32_t d : dims) s += fx::be32(d);
  return s;
}

TEST(HostileIdx, CountsAndDeclaredSizesAreCheckedFirst) {
  ewa::test::TempDir tmp;
  struct Case {
    std::string name, bytes;
    bool gz, images;
  };
  const std::vector<Case> cases = {
      {"n_max", idx_header(0x803, {0xFFFFFFFFu, 28, 28}) + std::string(100, '\0'), false, true},
      {"n_max.gz", idx_header(0x803, {0xFFFFFFFFu, 65536, 65536}) + std::string(100, '\0'), true, true},
      {"dims_zero", idx_header(0x803, {10, 0, 28}), false, true},
      {"dims_big", idx_header(0x803, {1, 70000, 28}), false, true},
      {"dims_negative", idx_header(0x803, {1, 0x80000000u, 28}), false, true},
      {"labels_max", idx_header(0x801, {0xFFFFFFFFu}) + "abc", false, false},
      {"labels_max.gz", idx_header(0x801, {0xFFFFFFFFu}) + "abc", true, false},
      {"short.gz", idx_header(0x803, {3, 2, 2}).substr(0, 9), true, true},
      {"trailing", idx_header(0x801, {2}) + "abcd", false, false},
      {"trailing.gz", idx_header(0x801, {2}) + "abcd", true, false},
      {"wrong_magic", idx_header(0x0D03, {1, 1, 1}) + "a", false, true},
  };
  for (const auto& c : cases) {
    const auto path = tmp.path() / c.name;
    if (c.gz) {
      fx::write_gz(path, c.bytes);
    } else {
      ewa::test::write_file(path, c.bytes);
    }
    auto run = run_limited([&] {
      if (c.images) {
        img::read_idx_images(path.string());
      } else {
        img::read_idx_labels(path.string());
      }
    });
    EXPECT_TRUE(fails_cleanly(run, path.string())) << c.name;
  }
  // A corrupt gzip stream (bytes flipped in the middle of the deflate data).
  fx::write_gz(tmp.path() / "good.gz", fx::idx_images(40, 8, 8));
  std::string gz = ewa::test::read_file(tmp.path() / "good.gz");
  for (size_t i = 20; i < gz.size() - 10; i += 7) gz[i] = static_cast<char>(gz[i] ^ 0xA5);
  ewa::test::write_file(tmp.path() / "corrupt.gz", gz);
  EXPECT_TRUE(fails_cleanly(run_limited([&] { img::read_idx_images(tmp.str("corrupt.gz")); }), "corrupt.gz"));
}

TEST(HostileIdx, GzipBombIsNotInflatedBeyondTheDeclaredSize) {
  ewa::test::TempDir tmp;
  // 1000 images of 28 x 28 declared (784 kB), followed by 320 MB of zeros (~320 kB of gzip):
  // the old reader inflated everything before looking at the header.
  const std::string path = tmp.str("bomb-images-idx3-ubyte.gz");
  gzFile f = gzopen(path.c_str(), "wb1");
  ASSERT_NE(f, nullptr);
  const std::string head = idx_header(0x803, {1000, 28, 28});
  gzwrite(f, head.data(), static_cast<unsigned>(head.size()));
  const std::string zeros(1 << 20, '\0');
  for (int i = 0; i < 320; ++i) gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size()));
  gzclose(f);
  auto run = run_limited([&] { img::read_idx_images(path); });
  EXPECT_TRUE(fails_cleanly(run, path));
  EXPECT_NE(run.message.find("trailing data"), std::string::npos) << run.message;
  // The same header with exactly the declared payload reads fine.
  fx::write_gz(tmp.path() / "ok.gz", head + std::string(1000 * 28 * 28, '\x07'));
  auto t = img::read_idx_images(tmp.str("ok.gz"));
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{1000, 28, 28, 1}));
  EXPECT_EQ(t[999][27][27][0].item<int64_t>(), 7);
}

TEST(HostileCifar, DamagedBatchesFailWithOneLine) {
  ewa::test::TempDir tmp;
  const std::pair<std::string, std::string> cases[] = {
      {"", "empty"},
      {fx::cifar_records(0, 2, 1, {10}) + "xyz", "partial record"},
      {std::string(1, '\x63') + std::string(3072, '\0'), "label 99"},
  };
  for (const auto& [bytes, what] : cases) {
    ewa::test::write_file(tmp.path() / "test_batch.bin", bytes);
    EXPECT_TRUE(fails_cleanly(run_limited([&] { img::read_cifar10(tmp.str(), false); }), tmp.str())) << what;
  }
  ewa::test::write_file(tmp.path() / "test.bin", fx::cifar_records(0, 1, 2, {20, 100}) + "a");
  EXPECT_TRUE(fails_cleanly(run_limited([&] { img::read_cifar100(tmp.str(), false); }), "test.bin"));
}

std::string png_header(uint32_t w, uint32_t h) {
  std::string s("\x89PNG\r\n\x1a\n", 8);
  s += fx::be32(13) + "IHDR" + fx::be32(w) + fx::be32(h) + std::string("\x08\x02\x00\x00\x00", 5) + fx::be32(0);
  return s;
}

TEST(HostileImages, OversizedAndDamagedImagesFailBeforeDecoding) {
  if (!img::have_opencv()) GTEST_SKIP() << "built without OpenCV";
  ewa::test::TempDir tmp;
  std::string bmp = "BM" + std::string(12, '\0') + std::string("\x28\x00\x00\x00", 4) +
                    std::string("\x00\x00\x01\x00", 4) + std::string("\x00\x00\x01\x00", 4);  // 65536 x 65536
  std::string jpeg("\xFF\xD8\xFF\xC0\x00\x11\x08\xFF\xFF\xFF\xFF\x03", 12);  // SOF0 65535 x 65535
  const std::pair<std::string, std::string> cases[] = {
      {png_header(100000, 100000), "exceeds the limit"},
      {png_header(0, 5), "0 x 5"},
      {png_header(1u << 31, 1), "exceeds the limit"},
      {bmp, "exceeds the limit"},
      {jpeg, "exceeds the limit"},
      {std::string("\xFF\xD8\xFF\xE0\x00\x02", 6), "no frame header"},
      {png_header(4, 4), "corrupt"},  // header only, no pixel data
      {"GIF89a....", "not a PNG, JPEG or BMP"},
      {"", "truncated"},
  };
  int i = 0;
  for (const auto& [bytes, why] : cases) {
    const std::string path = tmp.str("bad" + std::to_string(i++) + ".png");
    ewa::test::write_file(path, bytes);
    auto run = run_limited([&] { img::decode_image(path, 3); });
    EXPECT_TRUE(fails_cleanly(run, path)) << why;
    EXPECT_NE(run.message.find(why), std::string::npos) << run.message;
    EXPECT_EQ(run.message.find("OpenCV"), std::string::npos) << run.message;
  }
  // A real image still decodes, in colour and grayscale.
  img::write_image(tmp.str("ok.png"), fx::make_rgb(3, 5, 7));
  EXPECT_TRUE(img::decode_image(tmp.str("ok.png"), 3).equal(fx::make_rgb(3, 5, 7)));
  EXPECT_EQ(img::decode_image(tmp.str("ok.png"), 1).sizes(), (std::vector<int64_t>{5, 7, 1}));
  auto h = img::probe_image(reinterpret_cast<const uint8_t*>(png_header(640, 480).data()), 33, "x.png");
  EXPECT_EQ(std::string(h.format), "PNG");
  EXPECT_EQ(h.width, 640);
  EXPECT_EQ(h.height, 480);
}

}  // namespace
