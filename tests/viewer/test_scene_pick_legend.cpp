// Scene-model tests of the prediction-checking features: legends per colour mode (counts,
// IoU, error and confidence bins, level-of-detail note), point descriptions, screen-space
// picking with analytic cameras, and loading `ewa segment`-style PLYs with confidence.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "ewa/datasets/points/pcd_ply.h"
#include "ewa/viewer/scene.h"
#include "test_util.h"

namespace ewa::viewer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Same labels as test_scene.cpp's hand scene:
//   gt:   0 0 0 1 1 2 2 2 2 -1
//   pred: 0 0 1 1 2 2 2 0 2  0
Scene legend_scene(int64_t max_points = 0) {
  std::vector<float> xyz;
  for (int i = 0; i < 10; ++i) xyz.insert(xyz.end(), {static_cast<float>(i), 0.5f * i, -1.0f + i});
  return Scene::from_arrays(xyz, {}, {0, 0, 0, 1, 1, 2, 2, 2, 2, -1}, {0, 0, 1, 1, 2, 2, 2, 0, 2, 0},
                            {0.f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 1.0f}, LabelTable::s3dis(),
                            max_points);
}

std::vector<std::string> row_names(const Legend& lg) {
  std::vector<std::string> out;
  for (const auto& r : lg.rows) out.push_back(r.name);
  return out;
}

TEST(SceneLegend, ClassRowsWithCountsAndIoU) {
  Scene s = legend_scene();
  Legend pred = s.legend(ColorMode::kPred);
  EXPECT_EQ(pred.title, "prediction");
  EXPECT_THAT(row_names(pred), ElementsAre("ceiling", "floor", "wall"));  // classes present only
  EXPECT_EQ(pred.rows[0].value, "4  IoU 0.500");
  EXPECT_EQ(pred.rows[0].color, LabelTable::s3dis().colors[0]);
  Legend gt = s.legend(ColorMode::kGt);
  EXPECT_EQ(gt.title, "ground truth");
  EXPECT_EQ(gt.rows[2].value, "4  IoU 0.600");
  EXPECT_THAT(gt.notes, ElementsAre("OA 0.667  mIoU 0.478", "10 points"));
  s.set_class_visible(1, false);
  EXPECT_THAT(s.legend(ColorMode::kPred).rows[1].value, HasSubstr("hidden"));
  // Without ground truth: counts only, no IoU, no OA note.
  Scene p = Scene::from_arrays({0, 0, 0, 1, 1, 1}, {}, {}, {8, 8}, {}, LabelTable::s3dis());
  Legend only = p.legend(ColorMode::kPred);
  ASSERT_EQ(only.rows.size(), 1u);
  EXPECT_EQ(only.rows[0].name, "chair");
  EXPECT_EQ(only.rows[0].value, "2");
  EXPECT_THAT(only.notes, ElementsAre("2 points"));
  EXPECT_THROW(p.legend(ColorMode::kError), std::invalid_argument);
}

TEST(SceneLegend, ErrorAndConfidenceCounts) {
  Scene s = legend_scene();
  Legend err = s.legend(ColorMode::kError);
  ASSERT_EQ(err.rows.size(), 3u);
  EXPECT_EQ(err.rows[0].name, "correct");
  EXPECT_EQ(err.rows[0].value, "6 (66.7%)");
  EXPECT_EQ(err.rows[1].name, "wrong");
  EXPECT_EQ(err.rows[1].value, "3 (33.3%)");
  EXPECT_EQ(err.rows[2].name, "unlabelled");
  EXPECT_EQ(err.rows[2].value, "1");
  // Error colours in the legend are the colours of the points.
  auto c = s.point_color(ColorMode::kError, 2);
  EXPECT_EQ(err.rows[1].color, (Rgb8{static_cast<uint8_t>(std::lround(c[0] * 255)),
                                     static_cast<uint8_t>(std::lround(c[1] * 255)),
                                     static_cast<uint8_t>(std::lround(c[2] * 255))}));

  Legend conf = s.legend(ColorMode::kConfidence);
  EXPECT_THAT(row_names(conf), ElementsAre("0.8-1.0", "0.6-0.8", "0.4-0.6", "0.2-0.4", "0.0-0.2"));
  for (const auto& r : conf.rows) EXPECT_EQ(r.value, "2 (20.0%)") << r.name;
  EXPECT_NE(conf.rows.front().color, conf.rows.back().color);
  // Mean over all points 4.6 / 10; over the wrong points 2, 4, 7: (0.2 + 0.4 + 0.7) / 3.
  EXPECT_EQ(conf.notes.at(0), "mean 0.460, on wrong points 0.433");
}

TEST(SceneLegend, SubsampleCountInTheNotes) {
  Scene s = legend_scene(4);
  EXPECT_EQ(s.legend(ColorMode::kRgb).notes.back(), "display: 4 of 10 points");
  EXPECT_EQ(s.legend(ColorMode::kRgb).title, "height");  // no colour in this scene
  EXPECT_TRUE(s.legend(ColorMode::kRgb).rows.empty());
}

TEST(ScenePick, ColorsOfMatchesColors) {
  Scene s = legend_scene();
  for (ColorMode m : s.available_modes()) {
    auto all = s.colors(m);
    auto some = s.colors_of(m, {9, 2, 2});
    ASSERT_EQ(some.size(), 9u);
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(some[static_cast<size_t>(k)], all[27 + static_cast<size_t>(k)]);
      EXPECT_EQ(some[3 + static_cast<size_t>(k)], all[6 + static_cast<size_t>(k)]);
    }
  }
  EXPECT_THROW(s.colors_of(ColorMode::kGt, {10}), std::out_of_range);
}

TEST(ScenePick, DescribesTheRealPoint) {
  Scene s = legend_scene(3);  // a display subsample does not change what a point is
  EXPECT_EQ(s.describe_point(7), "point 7 (7.000, 3.500, 6.000)  gt wall  pred ceiling (wrong)  confidence 0.700");
  EXPECT_EQ(s.describe_point(0, "\n"), "point 0 (0.000, 0.000, -1.000)\ngt ceiling\npred ceiling (right)\nconfidence 0.000");
  EXPECT_THAT(s.describe_point(9), HasSubstr("gt unlabelled  pred ceiling  confidence 1.000"));
  PointInfo p = s.point_info(4);
  EXPECT_EQ(p.gt, 1);
  EXPECT_EQ(p.pred, 2);
  EXPECT_FLOAT_EQ(p.confidence, 0.4f);
  EXPECT_EQ(p.xyz, (std::array<float, 3>{4.f, 2.f, 3.f}));
  EXPECT_THROW(s.point_info(10), std::out_of_range);
  Scene bare = Scene::from_arrays({1, 2, 3}, {}, {}, {}, {}, LabelTable::s3dis());
  EXPECT_EQ(bare.describe_point(0), "point 0 (1.000, 2.000, 3.000)");
}

TEST(ScenePick, NearestToCameraUnderTheCursor) {
  // Identity clip matrix: NDC = (x, y, z); a 100x100 viewport puts (0, 0) at pixel (50, 50).
  std::array<float, 16> id{};
  id[0] = id[5] = id[10] = id[15] = 1.f;
  Scene s = Scene::from_arrays({0.f, 0.f, 0.5f,    // 0: centre, behind point 1
                                0.f, 0.f, -0.2f,   // 1: centre, nearest
                                0.5f, 0.5f, 0.f,   // 2: pixel (75, 25)
                                0.f, 0.f, 3.f},    // 3: beyond the far plane
                               {}, {}, {}, {}, LabelTable::s3dis());
  const std::vector<int64_t> all = {0, 1, 2, 3};
  EXPECT_EQ(s.pick(id, 100, 100, 50, 50, 3, all), 1);
  EXPECT_EQ(s.pick(id, 100, 100, 52, 48, 3, all), 1);
  EXPECT_EQ(s.pick(id, 100, 100, 75, 25, 3, all), 2);
  EXPECT_EQ(s.pick(id, 100, 100, 10, 90, 3, all), -1);
  EXPECT_EQ(s.pick(id, 100, 100, 50, 50, 3, {0, 2, 3}), 0);  // only displayed points are candidates
  EXPECT_EQ(s.pick(id, 100, 100, 50, 50, 3, {3}), -1);
  EXPECT_EQ(s.pick(id, 100, 100, 55, 50, 3, all), -1);  // 5 px away, radius 3
  EXPECT_EQ(s.pick(id, 100, 100, 55, 50, 6, all), 1);
  // Perspective divide (w = z): a point behind the camera is never picked.
  std::array<float, 16> persp{};
  persp[0] = persp[5] = 1.f;
  persp[11] = 1.f;  // row 3, column 2: w = z
  Scene q = Scene::from_arrays({0.2f, 0.f, 2.f, 0.f, 0.f, -1.f}, {}, {}, {}, {}, LabelTable::s3dis());
  EXPECT_EQ(q.pick(persp, 100, 100, 55, 50, 2, {0, 1}), 0);  // x / w = 0.1 -> pixel 55
  EXPECT_EQ(q.pick(persp, 100, 100, 50, 50, 2, {1}), -1);
}

// `ewa segment`-style PLYs through the project's writer: label (prediction), gt, confidence.
class SegmentPly : public ::testing::TestWithParam<bool> {};

TEST_P(SegmentPly, PredictionGtAndConfidence) {
  test::TempDir tmp;
  auto coord = torch::tensor({0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f}).view({4, 3});
  auto pred = torch::tensor({0, 7, 8, 8}, torch::kInt32);
  auto gt = torch::tensor({0, 7, 7, -1}, torch::kInt32);
  auto conf = torch::tensor({0.9f, 0.75f, 0.25f, 0.5f});
  datasets::write_labelled_ply(tmp.str("seg.ply"), coord, {}, pred, gt, GetParam(), {"label=pred"},
                               {{"confidence", conf}});
  SceneInputs in;
  in.cloud_path = tmp.str("seg.ply");
  Scene s = Scene::load(in);
  EXPECT_EQ(s.pred(), (std::vector<int32_t>{0, 7, 8, 8}));
  EXPECT_EQ(s.gt(), (std::vector<int32_t>{0, 7, 7, -1}));
  EXPECT_EQ(s.confidence(), (std::vector<float>{0.9f, 0.75f, 0.25f, 0.5f}));
  EXPECT_EQ(s.metrics().correct, 2);
  EXPECT_EQ(s.describe_point(2), "point 2 (0.000, 1.000, 0.000)  gt table  pred chair (wrong)  confidence 0.250");

  // Two files: ground truth in one, prediction + confidence in the other.
  datasets::write_labelled_ply(tmp.str("gt.ply"), coord, {}, gt, {}, GetParam());
  datasets::write_labelled_ply(tmp.str("pred.ply"), coord, {}, pred, {}, GetParam(), {"label=pred"},
                               {{"confidence", conf}});
  SceneInputs two;
  two.cloud_path = tmp.str("gt.ply");
  two.pred_path = tmp.str("pred.ply");
  Scene t = Scene::load(two);
  EXPECT_EQ(t.gt(), (std::vector<int32_t>{0, 7, 7, -1}));
  EXPECT_EQ(t.pred(), (std::vector<int32_t>{0, 7, 8, 8}));
  EXPECT_EQ(t.confidence(), (std::vector<float>{0.9f, 0.75f, 0.25f, 0.5f}));
}

INSTANTIATE_TEST_SUITE_P(AsciiAndBinary, SegmentPly, ::testing::Values(false, true));

TEST(ScenePickSource, PicksAreNumberedByTheirRowInTheFile) {
  // Organised scans carry NaN points; they are dropped on load, and a picked point is
  // reported by its row in the file (where its labels are in a source-order .npy).
  test::TempDir tmp;
  const float nan = std::nanf("");
  auto coord = torch::tensor({nan, nan, nan, 1.f, 0.f, 0.f, nan, nan, nan, 0.f, 1.f, 0.f}).view({4, 3});
  datasets::write_labelled_ply(tmp.str("org.ply"), coord, {}, torch::tensor({0, 7, 0, 8}, torch::kInt32));
  SceneInputs in;
  in.cloud_path = tmp.str("org.ply");
  Scene s = Scene::load(in);
  ASSERT_EQ(s.num_points(), 2);
  EXPECT_EQ(s.source_index(0), 1);
  EXPECT_EQ(s.source_index(1), 3);
  EXPECT_EQ(s.point_info(1).source_index, 3);
  EXPECT_EQ(s.describe_point(1), "point 3 (0.000, 1.000, 0.000)  gt chair");
}

TEST(SegmentPlyFields, PredLabelConfidenceNames) {
  // The field names of the output: x y z r g b pred label(gt) confidence.
  test::TempDir tmp;
  test::write_file(tmp.path() / "out.ply",
                   "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                   "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty int pred\n"
                   "property int label\nproperty float confidence\nend_header\n"
                   "0 0 0 10 20 30 8 7 0.3\n1 0 0 10 20 30 7 7 0.9\n2 0 0 10 20 30 1 1 1\n");
  SceneInputs in;
  in.cloud_path = tmp.str("out.ply");
  Scene s = Scene::load(in);
  EXPECT_EQ(s.pred(), (std::vector<int32_t>{8, 7, 1}));
  EXPECT_EQ(s.gt(), (std::vector<int32_t>{7, 7, 1}));
  EXPECT_EQ(s.confidence(), (std::vector<float>{0.3f, 0.9f, 1.f}));
  EXPECT_TRUE(s.mode_available(ColorMode::kError));
  EXPECT_EQ(s.legend(ColorMode::kError).rows[1].value, "1 (33.3%)");
}

}  // namespace
}  // namespace ewa::viewer
