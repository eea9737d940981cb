// End-to-end `ewa view --screenshot` under Xvfb: renders a small labelled room in pred and
// error modes, side by side, with the legend burned in, and with --pick, and checks the PNG
// pixels (size, not blank, palette colours, red errors, legend box, two halves). With xdotool,
// also drives the interactive window: clicks pick points, keys recolour, save and close.
#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "ewa/datasets/points/pcd_ply.h"
#include "ewa/viewer/legend_image.h"
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

// The same room as `ewa segment` writes it (through the project's PLY writer): label =
// prediction (part of the table predicted chair), gt, and a confidence that is low on the
// wrong points. Also writes the ground truth and the prediction as two separate files.
void write_segment_room(const test::TempDir& tmp) {
  write_room(tmp.str("src.ply"), tmp.str("src_pred.npy"));
  SceneInputs in;
  in.cloud_path = tmp.str("src.ply");
  in.pred_path = tmp.str("src_pred.npy");
  Scene s = Scene::load(in);
  const int64_t n = s.num_points();
  auto coord = torch::from_blob(const_cast<float*>(s.xyz().data()), {n, 3}, torch::kFloat32).clone();
  auto color = torch::from_blob(const_cast<uint8_t*>(s.rgb().data()), {n, 3}, torch::kUInt8).clone();
  auto gt = torch::from_blob(const_cast<int32_t*>(s.gt().data()), {n}, torch::kInt32).clone();
  auto pred = torch::from_blob(const_cast<int32_t*>(s.pred().data()), {n}, torch::kInt32).clone();
  auto conf = torch::where(gt.eq(pred), torch::full({n}, 0.9f), torch::full({n}, 0.35f));
  datasets::write_labelled_ply(tmp.str("seg.ply"), coord, color, pred, gt, true, {"label=pred"}, {{"confidence", conf}});
  datasets::write_labelled_ply(tmp.str("gt.ply"), coord, color, gt, {}, true);
  datasets::write_labelled_ply(tmp.str("pred.ply"), coord, color, pred, {}, true, {"label=pred"},
                               {{"confidence", conf}});
}

// Pixels of `img` in the rectangle [x0, x1) x [y0, y1) near colour c.
int64_t count_near_in(const Png& img, std::array<int, 3> c, int tol, int x0, int y0, int x1, int y1) {
  int64_t n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const uint8_t* p = &img.rgb[(static_cast<size_t>(y) * img.width + x) * 3];
      if (std::abs(p[0] - c[0]) <= tol && std::abs(p[1] - c[1]) <= tol && std::abs(p[2] - c[2]) <= tol) ++n;
    }
  return n;
}

int64_t count_dark_in(const Png& img, int x0, int y0, int x1, int y1) {
  int64_t n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const uint8_t* p = &img.rgb[(static_cast<size_t>(y) * img.width + x) * 3];
      if (p[0] < 80 && p[1] < 80 && p[2] < 80) ++n;
    }
  return n;
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
  std::string common =
      tmp.str("room.ply") + " --pred " + tmp.str("room_pred.npy") + " --width 320 --height 240 --point-size 4 --no-legend";

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

TEST_F(Screenshot, ErrorModeHasRedPointsAndTheLegendBurnedIn) {
  test::TempDir tmp;
  write_segment_room(tmp);
  const std::string common = tmp.str("seg.ply") + " --color error --width 480 --height 360 --point-size 4 --screenshot ";
  auto r = view(common + tmp.str("legend.png"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  r = view(common + tmp.str("plain.png") + " --no-legend");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  Png with = decode_png(test::read_file(tmp.path() / "legend.png"));
  Png without = decode_png(test::read_file(tmp.path() / "plain.png"));
  ASSERT_EQ(with.width, 480);
  ASSERT_EQ(without.height, 360);
  // Wrong points (the table part predicted chair) are red, right ones grey.
  EXPECT_GT(count_near(without, {230, 26, 26}, 12), 20);
  EXPECT_GT(count_near(without, {158, 158, 158}, 12), 200);
  // The legend sits in the top-left corner: its paper colour (248) and text ink are there only
  // with the legend (the background is pure white, the points are grey / red).
  if (!overlay_text_available()) GTEST_SKIP() << "built without OpenCV: no legend in screenshots";
  const int lx = with.width / 2, ly = with.height / 3;
  EXPECT_GT(count_near_in(with, {248, 248, 248}, 0, 0, 0, lx, ly), 2000);
  EXPECT_LT(count_near_in(without, {248, 248, 248}, 0, 0, 0, lx, ly), 100);  // point edge blends only
  EXPECT_GT(count_dark_in(with, 0, 0, lx, ly), count_dark_in(without, 0, 0, lx, ly) + 150);
  // Outside the legend corner the two images are the same picture.
  EXPECT_EQ(count_near_in(with, {230, 26, 26}, 12, lx, 0, with.width, with.height),
            count_near_in(without, {230, 26, 26}, 12, lx, 0, with.width, with.height));
}

// Non-background pixels in the columns [x0, x1).
int64_t content_in(const Png& img, int x0, int x1) {
  return static_cast<int64_t>(x1 - x0) * img.height - count_near_in(img, {255, 255, 255}, 3, x0, 0, x1, img.height);
}

TEST_F(Screenshot, SideBySideShowsGroundTruthAndPredictionHalves) {
  test::TempDir tmp;
  write_segment_room(tmp);
  auto r = view(tmp.str("seg.ply") + " --side-by-side --no-legend --width 640 --height 240 --point-size 4 --screenshot " +
                tmp.str("sbs.png"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  Png img = decode_png(test::read_file(tmp.path() / "sbs.png"));
  ASSERT_EQ(img.width, 640);
  ASSERT_EQ(img.height, 240);
  const int w0 = (640 - 2) / 2;  // left pane, 2-pixel separator, right pane
  const int64_t half = static_cast<int64_t>(w0) * img.height;
  EXPECT_GT(content_in(img, 0, w0), half / 20) << "left half is (nearly) blank";
  EXPECT_GT(content_in(img, w0 + 2, 640), half / 20) << "right half is (nearly) blank";
  EXPECT_EQ(count_near_in(img, {90, 90, 90}, 0, w0, 0, w0 + 2, img.height), 2 * img.height);  // separator
  // Same camera, so the same places: the table is all table on the left (ground truth), and
  // partly chair on the right (prediction).
  auto table = LabelTable::s3dis().colors[7], chair = LabelTable::s3dis().colors[8];
  const int64_t table_l = count_near_in(img, {table[0], table[1], table[2]}, 12, 0, 0, w0, img.height);
  const int64_t table_r = count_near_in(img, {table[0], table[1], table[2]}, 12, w0 + 2, 0, 640, img.height);
  const int64_t chair_l = count_near_in(img, {chair[0], chair[1], chair[2]}, 12, 0, 0, w0, img.height);
  const int64_t chair_r = count_near_in(img, {chair[0], chair[1], chair[2]}, 12, w0 + 2, 0, 640, img.height);
  EXPECT_GT(table_l, table_r + 50);
  EXPECT_GT(chair_r, chair_l + 50);
  // Without both labels the view is refused with a clear message.
  r = view(tmp.str("gt.ply") + " --side-by-side --screenshot " + tmp.str("x.png"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("needs ground truth and prediction"), std::string::npos) << r.err;

  // Two files (ground truth, prediction) give the same picture as the one combined file.
  r = view(tmp.str("gt.ply") + " " + tmp.str("pred.ply") +
           " --side-by-side --no-legend --width 640 --height 240 --point-size 4 --screenshot " + tmp.str("two.png"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  Png two = decode_png(test::read_file(tmp.path() / "two.png"));
  EXPECT_EQ(two.rgb, img.rgb);
  // With legends: one per pane, each in its pane's top-left corner.
  if (!overlay_text_available()) return;
  r = view(tmp.str("seg.ply") + " --side-by-side --width 640 --height 240 --screenshot " + tmp.str("sbs_legend.png"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  Png lg = decode_png(test::read_file(tmp.path() / "sbs_legend.png"));
  EXPECT_GT(count_near_in(lg, {248, 248, 248}, 0, 0, 0, w0 / 2, 120), 500);
  EXPECT_GT(count_near_in(lg, {248, 248, 248}, 0, w0 + 2, 0, w0 + 2 + w0 / 2, 120), 500);
}

TEST_F(Screenshot, PickReportsTheRealPointUnderThePixel) {
  test::TempDir tmp;
  write_segment_room(tmp);
  const std::string common = tmp.str("seg.ply") + " --color pred --no-legend --width 320 --height 240 --point-size 4";
  auto r = view(common + " --screenshot " + tmp.str("pred.png"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  Png img = decode_png(test::read_file(tmp.path() / "pred.png"));
  // The centroid of the table-coloured pixels lies on the (convex) correctly predicted part of
  // the table top, which is nearer to the camera than the floor below it.
  auto table = LabelTable::s3dis().colors[7];
  double sx = 0, sy = 0;
  int64_t n = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = &img.rgb[(static_cast<size_t>(y) * img.width + x) * 3];
      if (std::abs(p[0] - table[0]) <= 3 && std::abs(p[1] - table[1]) <= 3 && std::abs(p[2] - table[2]) <= 3) {
        sx += x;
        sy += y;
        ++n;
      }
    }
  ASSERT_GT(n, 50);
  const std::string at = std::to_string(static_cast<int>(sx / n)) + "," + std::to_string(static_cast<int>(sy / n));
  // --max-points: the pick is a real point of the cloud, with its labels and confidence.
  r = view(common + " --max-points 5000 --pick " + at + " --pick 1,1 --screenshot " + tmp.str("picked.png"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("pick " + at + ": point "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("gt table  pred table (right)  confidence 0.900"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pick 1,1: no point"), std::string::npos) << r.out;
  Png picked = decode_png(test::read_file(tmp.path() / "picked.png"));
  if (overlay_text_available()) {  // the marker ring and the description box
    EXPECT_GT(count_dark_in(picked, 0, 0, 320, 240), count_dark_in(img, 0, 0, 320, 240) + 30);
  }
  // --pick is for screenshots; in the window one clicks.
  r = view(common + " --pick 5,5");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--pick needs --screenshot"), std::string::npos) << r.err;
  r = view(common + " --pick 500,5 --screenshot " + tmp.str("y.png"));
  EXPECT_EQ(r.status, 2);
}

// The interactive window, driven through X like a user would: a click picks a point (printed on
// stdout), key 4 switches to error mode, S saves a screenshot of what is shown, L hides the
// legend, Q closes the window (exit status 0). Under Xvfb the window's pixels are drawn at 3/4
// width (software GL presentation), but events use real window coordinates, as here.
TEST_F(Screenshot, KeysAndClicksDriveTheWindow) {
  if (std::system("command -v xdotool >/dev/null 2>&1") != 0) GTEST_SKIP() << "xdotool not installed";
  test::TempDir tmp;
  write_segment_room(tmp);
  const std::string script = tmp.str("drive.sh");
  {
    std::ofstream f(script);
    f << "set -u\ncd '" << tmp.path().string() << "'\n"
      << "'" << EWA_CLI_PATH << "' view seg.ply --width 800 --height 600 --point-size 6 & P=$!\n"
      << "W=$(timeout 60 xdotool search --sync --name 'ewa view' | head -n 1)\n"
      << "[ -n \"$W\" ] || { echo 'no window'; kill $P; exit 3; }\n"
      << "sleep 4; xdotool windowfocus --sync \"$W\"; sleep 1\n"
      // The pane is at least the left half of the window; click around its middle.
      << "for xy in '200 300' '160 300' '240 300' '200 260' '200 340'; do\n"
      << "  set -- $xy; xdotool mousemove --window \"$W\" $1 $2 click 1; sleep 1\n"
      << "done\n"
      << "xdotool key 4; sleep 2; xdotool key s; sleep 4; xdotool key l; sleep 1; xdotool key q\n"
      << "timeout 30 sh -c \"while kill -0 $P 2>/dev/null; do sleep 0.2; done\" || { echo 'Q did not close'; kill $P; exit 4; }\n"
      << "wait $P\n";
  }
  auto r = test::run_command("timeout 150 xvfb-run -a -s '-screen 0 1280x1024x24' sh '" + script + "'");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  // At least one click landed on a point: its row, labels and confidence are printed.
  EXPECT_NE(r.out.find("point "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  gt "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("confidence 0."), std::string::npos) << r.out;
  // Key 4 then S: the saved screenshot shows error mode (red wrong points, grey right ones).
  ASSERT_TRUE(std::filesystem::exists(tmp.path() / "ewa_view_error_0.png")) << r.out << r.err;
  Png shot = decode_png(test::read_file(tmp.path() / "ewa_view_error_0.png"));
  EXPECT_GT(count_near(shot, {230, 26, 26}, 12), 20);
  EXPECT_GT(count_near(shot, {158, 158, 158}, 12), 200);
}

}  // namespace
}  // namespace ewa::viewer
