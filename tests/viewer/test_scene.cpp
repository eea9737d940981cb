// Scene-model tests: colours per mode, error mask, metrics vs hand-computed IoU, class
// toggles, display subsample, and clear rejection of bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "ewa/viewer/scene.h"
#include "test_util.h"
#include "viewer_fixtures.h"

namespace ewa::viewer {
namespace {

using ::testing::HasSubstr;

// Ten points on a line; gt/pred chosen so the confusion is easy to work out by hand.
//   gt:   0 0 0 1 1 2 2 2 2 -1
//   pred: 0 0 1 1 2 2 2 0 2  0
Scene hand_scene(int64_t max_points = 0) {
  std::vector<float> xyz;
  std::vector<uint8_t> rgb;
  for (int i = 0; i < 10; ++i) {
    xyz.insert(xyz.end(), {static_cast<float>(i), 0.5f * i, -1.0f + i});
    rgb.insert(rgb.end(), {static_cast<uint8_t>(10 * i), 20, 30});
  }
  return Scene::from_arrays(xyz, rgb, {0, 0, 0, 1, 1, 2, 2, 2, 2, -1}, {0, 0, 1, 1, 2, 2, 2, 0, 2, 0},
                            {0.f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 1.0f}, LabelTable::s3dis(),
                            max_points);
}

std::array<float, 3> color_at(const std::vector<float>& c, size_t i) { return {c[i * 3], c[i * 3 + 1], c[i * 3 + 2]}; }

std::array<float, 3> pal(int cls) {
  auto c = LabelTable::s3dis().colors[static_cast<size_t>(cls)];
  return {c[0] / 255.f, c[1] / 255.f, c[2] / 255.f};
}

TEST(LabelTable, S3disHasThirteenStandardClasses) {
  auto t = LabelTable::s3dis();
  ASSERT_EQ(t.size(), 13);
  EXPECT_EQ(t.names.front(), "ceiling");
  EXPECT_EQ(t.names[8], "chair");
  EXPECT_EQ(t.names.back(), "clutter");
  std::set<Rgb8> distinct(t.colors.begin(), t.colors.end());
  EXPECT_EQ(distinct.size(), 13u);
}

TEST(LabelTable, ClassFileWithAndWithoutColours) {
  test::TempDir tmp;
  test::write_file(tmp.path() / "cls.txt", "# my classes\nground 10 20 30\n\ntree\ncar 255 0 0\n");
  auto t = LabelTable::from_file(tmp.str("cls.txt"));
  ASSERT_EQ(t.size(), 3);
  EXPECT_EQ(t.names[1], "tree");
  EXPECT_EQ(t.colors[0], (Rgb8{10, 20, 30}));
  EXPECT_EQ(t.colors[2], (Rgb8{255, 0, 0}));
  EXPECT_NE(t.colors[1], t.colors[0]);
  test::write_file(tmp.path() / "bad.txt", "ground 10 20\n");
  try {
    LabelTable::from_file(tmp.str("bad.txt"));
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("bad.txt:1"));
  }
  test::write_file(tmp.path() / "bad2.txt", "ground 10 20 300\n");
  EXPECT_THROW(LabelTable::from_file(tmp.str("bad2.txt")), std::runtime_error);
  EXPECT_THROW(LabelTable::from_spec(tmp.str("missing.txt")), std::runtime_error);
}

TEST(Scene, ColoursPerMode) {
  Scene s = hand_scene();
  ASSERT_EQ(s.num_points(), 10);
  EXPECT_EQ(s.available_modes().size(), 5u);
  EXPECT_EQ(s.default_mode(), ColorMode::kPred);
  auto gt = s.colors(ColorMode::kGt);
  auto pred = s.colors(ColorMode::kPred);
  auto err = s.colors(ColorMode::kError);
  auto rgb = s.colors(ColorMode::kRgb);
  auto conf = s.colors(ColorMode::kConfidence);
  ASSERT_EQ(gt.size(), 30u);
  const std::vector<int> g = {0, 0, 0, 1, 1, 2, 2, 2, 2, -1}, p = {0, 0, 1, 1, 2, 2, 2, 0, 2, 0};
  for (size_t i = 0; i < 10; ++i) {
    if (g[i] >= 0) {
      EXPECT_EQ(color_at(gt, i), pal(g[i])) << i;
    }
    EXPECT_EQ(color_at(pred, i), pal(p[i])) << i;
    EXPECT_FLOAT_EQ(rgb[i * 3], 10.f * i / 255.f);
    EXPECT_FLOAT_EQ(rgb[i * 3 + 2], 30.f / 255.f);
  }
  // Unlabelled ground truth is dim grey, and so is its error colour.
  auto dim = color_at(gt, 9);
  EXPECT_EQ(dim[0], dim[1]);
  EXPECT_LT(dim[0], 0.4f);
  EXPECT_EQ(color_at(err, 9), dim);
  // Error: correct points share one grey, wrong ones are red.
  auto grey = color_at(err, 0), red = color_at(err, 2);
  EXPECT_EQ(grey[0], grey[1]);
  EXPECT_GT(grey[0], 0.4f);
  EXPECT_GT(red[0], 0.8f);
  EXPECT_LT(red[1], 0.2f);
  for (size_t i : {0, 1, 3, 5, 6, 8}) EXPECT_EQ(color_at(err, i), grey) << i;
  for (size_t i : {2, 4, 7}) EXPECT_EQ(color_at(err, i), red) << i;
  // Confidence: the colormap changes monotonically in brightness from 0 to 1.
  auto lum = [&](size_t i) { return conf[i * 3] + conf[i * 3 + 1] + conf[i * 3 + 2]; };
  for (size_t i = 1; i < 10; ++i) EXPECT_GT(lum(i), lum(i - 1) - 1e-6f) << i;
  EXPECT_NE(color_at(conf, 0), color_at(conf, 9));
  for (float v : conf) {
    EXPECT_GE(v, 0.f);
    EXPECT_LE(v, 1.f);
  }
}

TEST(Scene, ModesNeedTheirData) {
  Scene s = Scene::from_arrays({0, 0, 0, 1, 1, 1}, {}, {}, {3, 4}, {}, LabelTable::s3dis());
  EXPECT_FALSE(s.mode_available(ColorMode::kGt));
  EXPECT_FALSE(s.mode_available(ColorMode::kError));
  EXPECT_THROW(s.colors(ColorMode::kError), std::invalid_argument);
  EXPECT_THROW(s.error_mask(), std::invalid_argument);
  EXPECT_TRUE(std::isnan(s.metrics().miou));
  EXPECT_EQ(s.metrics().classes[3].pred_count, 1);
  // rgb without colours: height-shaded grey, brighter higher up.
  auto c = s.colors(ColorMode::kRgb);
  EXPECT_EQ(c[0], c[1]);
  EXPECT_GT(c[3], c[0]);
  EXPECT_THROW(parse_color_mode("rainbow"), std::invalid_argument);
  EXPECT_EQ(parse_color_mode("error"), ColorMode::kError);
}

TEST(Scene, ErrorMask) {
  auto m = hand_scene().error_mask();
  std::vector<uint8_t> expect = {kCorrect, kCorrect, kWrong,   kCorrect, kWrong,
                                 kCorrect, kCorrect, kWrong,   kCorrect, kUnlabelled};
  EXPECT_EQ(m, expect);
}

TEST(Scene, MetricsMatchHandComputedIoU) {
  Scene s = hand_scene();
  const Metrics& m = s.metrics();
  ASSERT_TRUE(m.has_iou);
  EXPECT_EQ(m.evaluated, 9);
  EXPECT_EQ(m.correct, 6);
  EXPECT_DOUBLE_EQ(m.overall_accuracy, 6.0 / 9.0);
  // class 0: tp 2, fp 1 (point 7), fn 1 (point 2); class 1: tp 1, fp 1, fn 1; class 2: tp 3, fp 1, fn 1
  EXPECT_EQ(m.classes[0].tp, 2);
  EXPECT_EQ(m.classes[0].fp, 1);
  EXPECT_EQ(m.classes[0].fn, 1);
  EXPECT_DOUBLE_EQ(m.classes[0].iou, 0.5);
  EXPECT_DOUBLE_EQ(m.classes[1].iou, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.classes[2].iou, 0.6);
  for (int c = 3; c < 13; ++c) EXPECT_TRUE(std::isnan(m.classes[static_cast<size_t>(c)].iou)) << c;
  EXPECT_DOUBLE_EQ(m.miou, (0.5 + 1.0 / 3.0 + 0.6) / 3.0);
  EXPECT_EQ(m.classes[0].gt_count, 3);
  EXPECT_EQ(m.classes[2].gt_count, 4);
  EXPECT_EQ(m.classes[0].pred_count, 4);  // includes the prediction on the unlabelled point
  EXPECT_EQ(m.classes[1].pred_count, 2);
  std::string table = s.metrics_table();
  EXPECT_THAT(table, HasSubstr("chair"));
  EXPECT_THAT(table, HasSubstr("0.600"));
}

TEST(Scene, ClassTogglesFilterTheModeLabel) {
  Scene s = hand_scene();
  EXPECT_EQ(s.display_indices(ColorMode::kGt).size(), 10u);
  s.set_class_visible(2, false);
  EXPECT_FALSE(s.class_visible(2));
  // gt == 2 at points 5..8; the unlabelled point 9 stays.
  EXPECT_EQ(s.display_indices(ColorMode::kGt), (std::vector<int64_t>{0, 1, 2, 3, 4, 9}));
  EXPECT_EQ(s.display_indices(ColorMode::kError), (std::vector<int64_t>{0, 1, 2, 3, 4, 9}));
  // pred == 2 at points 4, 5, 6, 8
  EXPECT_EQ(s.display_indices(ColorMode::kPred), (std::vector<int64_t>{0, 1, 2, 3, 7, 9}));
  s.set_all_visible(false);
  EXPECT_EQ(s.display_indices(ColorMode::kGt), (std::vector<int64_t>{9}));
  s.set_all_visible(true);
  EXPECT_EQ(s.display_indices(ColorMode::kPred).size(), 10u);
  EXPECT_THROW(s.set_class_visible(13, false), std::out_of_range);
}

TEST(Scene, BoundsIgnoreNaN) {
  float nan = std::nanf("");
  Scene s = Scene::from_arrays({1, 2, 3, nan, nan, nan, -1, 5, 0}, {}, {}, {}, {}, LabelTable::s3dis());
  EXPECT_EQ(s.bounds_min(), (std::array<float, 3>{-1, 2, 0}));
  EXPECT_EQ(s.bounds_max(), (std::array<float, 3>{1, 5, 3}));
  EXPECT_EQ(s.display_indices(ColorMode::kRgb), (std::vector<int64_t>{0, 2}));
}

TEST(Scene, DeterministicSubsampleWithNote) {
  std::vector<float> xyz;
  for (int i = 0; i < 1000; ++i) xyz.insert(xyz.end(), {float(i), 0.f, 0.f});
  Scene a = Scene::from_arrays(xyz, {}, {}, {}, {}, LabelTable::s3dis(), 100);
  Scene b = Scene::from_arrays(xyz, {}, {}, {}, {}, LabelTable::s3dis(), 100);
  ASSERT_TRUE(a.subsampled());
  EXPECT_EQ(a.subsample().size(), 100u);
  EXPECT_EQ(a.subsample(), b.subsample());
  EXPECT_TRUE(std::is_sorted(a.subsample().begin(), a.subsample().end()));
  EXPECT_EQ(std::set<int64_t>(a.subsample().begin(), a.subsample().end()).size(), 100u);
  EXPECT_LT(a.subsample().front(), 100);  // spread over the cloud, not the first 100
  EXPECT_GT(a.subsample().back(), 900);
  EXPECT_EQ(a.subsample_note(), "showing 100 of 1,000 points (display subsample; metrics use all points)");
  EXPECT_EQ(a.display_indices(ColorMode::kRgb).size(), 100u);
  a.set_max_points(0);
  EXPECT_FALSE(a.subsampled());
  EXPECT_EQ(a.subsample_note(), "");
}

TEST(Scene, LabelsOutsideThePaletteAreRejected) {
  try {
    Scene::from_arrays({0, 0, 0, 1, 1, 1}, {}, {0, 13}, {}, {}, LabelTable::s3dis(), 0, "room.ply");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("room.ply"));
    EXPECT_THAT(e.what(), HasSubstr("outside the palette of 13 classes"));
    EXPECT_THAT(e.what(), HasSubstr("max label 13"));
  }
  EXPECT_THROW(Scene::from_arrays({0, 0, 0}, {}, {}, {0, 1}, {}, LabelTable::s3dis()), std::runtime_error);
}

}  // namespace
}  // namespace ewa::viewer
