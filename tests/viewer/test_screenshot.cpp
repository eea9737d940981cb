// End-to-end `ewa view --screenshot` under Xvfb: renders a small labelled room in pred and
// error modes and checks the PNG (size, not blank, expected palette colours present).
#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "ewa/viewer/scene.h"
#include "ewa/viewer/window.h"
#include "test_util.h"
#include "viewer_fixtures.h"

namespace ewa::viewer {
namespace {

struct Png {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // [h*w*3]
};

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

// Minimal PNG decoder: 8-bit RGB or RGBA, non-interlaced (what Open3D writes).
Png decode_png(const std::string& bytes) {
  const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() < 8 || std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) != 0) throw std::runtime_error("not a PNG");
  Png img;
  int channels = 0;
  std::string idat;
  for (size_t p = 8; p + 8 <= bytes.size();) {
    uint32_t len = be32(d + p);
    std::string type(bytes, p + 4, 4);
    const uint8_t* body = d + p + 8;
    if (type == "IHDR") {
      img.width = static_cast<int>(be32(body));
      img.height = static_cast<int>(be32(body + 4));
      if (body[8] != 8 || body[12] != 0) throw std::runtime_error("unsupported PNG depth/interlace");
      channels = body[9] == 2 ? 3 : body[9] == 6 ? 4 : 0;
      if (channels == 0) throw std::runtime_error("unsupported PNG colour type");
    } else if (type == "IDAT") {
      idat.append(reinterpret_cast<const char*>(body), len);
    }
    p += 12 + len;
  }
  const size_t stride = static_cast<size_t>(img.width) * channels;
  std::vector<uint8_t> raw((stride + 1) * static_cast<size_t>(img.height));
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK ||
      raw_len != raw.size())
    throw std::runtime_error("bad PNG data");
  std::vector<uint8_t> cur(stride), prev(stride, 0);
  img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
  for (int y = 0; y < img.height; ++y) {
    const uint8_t* line = raw.data() + y * (stride + 1);
    uint8_t f = line[0];
    for (size_t x = 0; x < stride; ++x) {
      int a = x >= static_cast<size_t>(channels) ? cur[x - channels] : 0, b = prev[x],
          c = x >= static_cast<size_t>(channels) ? prev[x - channels] : 0;
      int pred = 0;
      if (f == 1) pred = a;
      else if (f == 2) pred = b;
      else if (f == 3) pred = (a + b) / 2;
      else if (f == 4) {
        int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
        pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
      }
      cur[x] = static_cast<uint8_t>(line[1 + x] + pred);
    }
    for (int x = 0; x < img.width; ++x)
      for (int k = 0; k < 3; ++k) img.rgb[(static_cast<size_t>(y) * img.width + x) * 3 + k] = cur[x * channels + k];
    std::swap(cur, prev);
  }
  return img;
}

int64_t count_near(const Png& img, std::array<int, 3> c, int tol) {
  int64_t n = 0;
  for (size_t i = 0; i < img.rgb.size(); i += 3)
    if (std::abs(img.rgb[i] - c[0]) <= tol && std::abs(img.rgb[i + 1] - c[1]) <= tol && std::abs(img.rgb[i + 2] - c[2]) <= tol)
      ++n;
  return n;
}

// A small room: floor (z=0), two walls, a table top and a chair block, with a prediction that
// mislabels part of the table as chair.
void write_room(const std::string& ply, const std::string& pred_npy) {
  std::vector<test::FixturePoint> pts;
  std::vector<int> pred;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  auto add = [&](int n, int cls, auto pos) {
    for (int i = 0; i < n; ++i) {
      auto p = pos(u(rng), u(rng));
      pts.push_back({p[0], p[1], p[2], 120, 110, 100, cls, cls});
      pred.push_back(cls == 7 && p[0] > 2.0f ? 8 : cls);
    }
  };
  add(3000, 1, [](float a, float b) { return std::array<float, 3>{4 * a, 3 * b, 0.f}; });        // floor
  add(2000, 2, [](float a, float b) { return std::array<float, 3>{4 * a, 3.f, 2.5f * b}; });     // wall
  add(1500, 2, [](float a, float b) { return std::array<float, 3>{0.f, 3 * b, 2.5f * a}; });
  add(1500, 7, [](float a, float b) { return std::array<float, 3>{1 + 2 * a, 1 + b, 0.8f}; });  // table
  add(800, 8, [](float a, float b) { return std::array<float, 3>{1.2f + 0.5f * a, 0.3f + 0.5f * b, 0.45f}; });
  test::write_ply(ply, pts, true, false);
  test::write_label_npy(pred_npy, pred);
}

class Screenshot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gui_available()) GTEST_SKIP() << "built without the viewer GUI (EWA_BUILD_VIEWER=OFF or Open3D missing)";
    if (std::system("command -v xvfb-run >/dev/null 2>&1") != 0) GTEST_SKIP() << "xvfb-run not installed";
  }
  test::CommandResult view(const std::string& args) {
    return test::run_command("xvfb-run -a -s '-screen 0 1280x1024x24' '" + std::string(EWA_CLI_PATH) + "' view " + args);
  }
};

TEST_F(Screenshot, PredAndErrorModes) {
  test::TempDir tmp;
  write_room(tmp.str("room.ply"), tmp.str("room_pred.npy"));
  std::string common = tmp.str("room.ply") + " --pred " + tmp.str("room_pred.npy") + " --width 320 --height 240 --point-size 4";

  auto r = view(common + " --mode pred --screenshot " + tmp.str("pred.png"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  Png img = decode_png(test::read_file(tmp.path() / "pred.png"));
  EXPECT_EQ(img.width, 320);
  EXPECT_EQ(img.height, 240);
  int64_t total = static_cast<int64_t>(img.width) * img.height;
  int64_t background = count_near(img, {255, 255, 255}, 3);
  EXPECT_GT(total - background, total / 20) << "image is (nearly) blank";
  // Palette colours of floor, wall, table and chair are all visible.
  for (int cls : {1, 2, 7, 8}) {
    auto c = LabelTable::s3dis().colors[static_cast<size_t>(cls)];
    EXPECT_GT(count_near(img, {c[0], c[1], c[2]}, 12), 20) << "class " << cls << " colour missing";
  }
  EXPECT_LT(count_near(img, {158, 158, 158}, 12), 50);  // no error-mode grey (beyond edge blends)

  r = view(common + " --mode error --screenshot " + tmp.str("error.png"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  Png err = decode_png(test::read_file(tmp.path() / "error.png"));
  EXPECT_EQ(err.width, 320);
  EXPECT_EQ(err.height, 240);
  int64_t grey = count_near(err, {158, 158, 158}, 12), red = count_near(err, {230, 26, 26}, 12);
  EXPECT_GT(grey, 200);
  EXPECT_GT(red, 20);
  EXPECT_GT(grey, red);  // most points are correct
  EXPECT_LT(count_near(err, {0, 0, 255}, 12), 20);  // no floor palette colour in error mode
}

TEST_F(Screenshot, BadInputFailsCleanly) {
  test::TempDir tmp;
  write_room(tmp.str("room.ply"), tmp.str("room_pred.npy"));
  test::write_label_npy(tmp.str("short.npy"), {1, 2, 3});
  auto r = view(tmp.str("room.ply") + " --pred " + tmp.str("short.npy") + " --screenshot " + tmp.str("x.png"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("short.npy"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("3 labels"), std::string::npos) << r.err;
  r = view(tmp.str("room.ply") + " --mode error --screenshot " + tmp.str("y.png"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("not available"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ewa::viewer
