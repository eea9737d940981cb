// Legend raster tests (no display needed): the legend box holds the swatch colours and text
// ink, grows with its rows, truncates long class lists; paste clips and hconcat separates.
#include <gtest/gtest.h>

#include <cstdlib>

#include "ewa/viewer/legend_image.h"

namespace ewa::viewer {
namespace {

int64_t count_color(const RgbImage& im, Rgb8 c, int tol) {
  int64_t n = 0;
  for (size_t i = 0; i < im.data.size(); i += 3)
    if (std::abs(im.data[i] - c[0]) <= tol && std::abs(im.data[i + 1] - c[1]) <= tol &&
        std::abs(im.data[i + 2] - c[2]) <= tol)
      ++n;
  return n;
}

int64_t count_dark(const RgbImage& im) {
  int64_t n = 0;
  for (size_t i = 0; i < im.data.size(); i += 3)
    if (im.data[i] < 80 && im.data[i + 1] < 80 && im.data[i + 2] < 80) ++n;
  return n;
}

Legend three_rows() {
  Legend lg;
  lg.title = "errors (gt vs pred)";
  lg.rows = {{{158, 158, 158}, "correct", "6 (66.7%)"}, {{230, 26, 26}, "wrong", "3 (33.3%)"}, {{64, 64, 64}, "unlabelled", "1"}};
  lg.notes = {"OA 0.667  mIoU 0.478", "10 points"};
  return lg;
}

TEST(LegendImage, SwatchesAndTextAreDrawn) {
  if (!overlay_text_available()) GTEST_SKIP() << "built without OpenCV: legends are not drawn";
  RgbImage im = render_legend(three_rows(), 1.0);
  ASSERT_FALSE(im.empty());
  EXPECT_GT(im.width, 100);
  EXPECT_GT(im.height, 60);
  EXPECT_GT(count_color(im, {230, 26, 26}, 2), 80);    // the red swatch (>= 9x9 pixels)
  EXPECT_GT(count_color(im, {158, 158, 158}, 2), 80);  // the grey swatch
  EXPECT_GT(count_dark(im), 150);                      // title, names, values, notes
  EXPECT_GT(count_color(im, {248, 248, 248}, 0), static_cast<int64_t>(im.width) * im.height / 3);  // paper
  // Bigger scale, bigger box; more rows, taller box; max_rows truncates.
  RgbImage big = render_legend(three_rows(), 2.0);
  EXPECT_GT(big.width, im.width * 3 / 2);
  Legend more = three_rows();
  for (int k = 0; k < 10; ++k) more.rows.push_back({{0, 0, 255}, "class " + std::to_string(k), "1"});
  RgbImage tall = render_legend(more, 1.0);
  EXPECT_GT(tall.height, im.height + 8 * 10);
  RgbImage cut = render_legend(more, 1.0, 4);
  EXPECT_LT(cut.height, tall.height);
  EXPECT_GT(cut.height, im.height);  // 4 rows + the "... 9 more classes" line
  // A text box is one line high and carries ink.
  RgbImage canvas(300, 60, {255, 255, 255});
  int h = draw_text_box(canvas, "point 7  gt wall  pred ceiling (wrong)", 5, 5, 1.0);
  EXPECT_EQ(h, text_box_height(1.0));
  EXPECT_GT(count_dark(canvas), 100);
}

TEST(LegendImage, PasteClipsAndHconcatSeparates) {
  RgbImage src(10, 10, {1, 2, 3});
  src.at(3, 3)[0] = 99;
  RgbImage dst(5, 5, {255, 255, 255});
  paste(dst, src, -3, -3);
  EXPECT_EQ(dst.at(0, 0)[0], 99);
  EXPECT_EQ(dst.at(4, 4)[2], 3);
  paste(dst, src, 100, 100);  // fully outside: nothing
  RgbImage a(4, 3, {10, 10, 10}), b(5, 3, {20, 20, 20});
  RgbImage ab = hconcat({a, b}, 2, {90, 90, 90});
  EXPECT_EQ(ab.width, 11);
  EXPECT_EQ(ab.height, 3);
  EXPECT_EQ(ab.at(3, 1)[0], 10);
  EXPECT_EQ(ab.at(4, 1)[0], 90);
  EXPECT_EQ(ab.at(5, 1)[0], 90);
  EXPECT_EQ(ab.at(6, 1)[0], 20);
  EXPECT_THROW(hconcat({a, RgbImage(2, 2)}), std::invalid_argument);
}

}  // namespace
}  // namespace ewa::viewer
