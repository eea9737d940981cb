// Segmentation metrics on a hand-computed confusion matrix, ignored / absent classes, and the
// 6-fold combination (intersections and unions summed over folds).
#include <gtest/gtest.h>

#include <cmath>

#include "ewa/pointcloud/metrics.h"

namespace ewa::pointcloud {
namespace {

TEST(PipelineMetrics, HandComputedConfusion) {
  auto gt = torch::tensor({0, 0, 0, 1, 1, 2, 2, -1}, torch::kLong);
  auto pred = torch::tensor({0, 0, 1, 1, 2, 2, 2, 0}, torch::kLong);
  auto conf = confusion_matrix(pred, gt, 3);
  auto expect = torch::tensor({2, 1, 0, 0, 1, 1, 0, 0, 2}, torch::kLong).view({3, 3});
  EXPECT_TRUE(torch::equal(conf, expect)) << conf;
  auto m = metrics_from_confusion(conf);
  EXPECT_NEAR(m.iou[0], 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.iou[1], 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.iou[2], 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.miou, 5.0 / 9.0, 1e-12);
  EXPECT_NEAR(m.acc[0], 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.acc[1], 0.5, 1e-12);
  EXPECT_NEAR(m.acc[2], 1.0, 1e-12);
  EXPECT_NEAR(m.macc, 13.0 / 18.0, 1e-12);
  EXPECT_NEAR(m.oa, 5.0 / 7.0, 1e-12);
  EXPECT_EQ(m.total, 7);
  EXPECT_EQ(m.gt_count, (std::vector<int64_t>{3, 2, 2}));
  EXPECT_EQ(m.pred_count, (std::vector<int64_t>{2, 2, 3}));
  auto j = metrics_json(m, {"a", "b", "c"});
  EXPECT_EQ(j["classes"][1]["name"], "b");
  EXPECT_EQ(j["confusion"][0][1], 1);
  EXPECT_NE(metrics_table(m, {"a", "b", "c"}).find("mIoU 55.6"), std::string::npos);
}

TEST(PipelineMetrics, AbsentClassIsExcludedFromMeans) {
  auto gt = torch::tensor({0, 0, 1}, torch::kLong);
  auto pred = torch::tensor({0, 1, 1}, torch::kLong);
  auto m = metrics_from_confusion(confusion_matrix(pred, gt, 4));  // classes 2 and 3 absent
  EXPECT_TRUE(std::isnan(m.iou[2]) && std::isnan(m.iou[3]));
  EXPECT_TRUE(std::isnan(m.acc[3]));
  EXPECT_NEAR(m.miou, (0.5 + 0.5) / 2.0, 1e-12);
  EXPECT_NEAR(m.macc, (0.5 + 1.0) / 2.0, 1e-12);
  auto j = metrics_json(m, {});
  EXPECT_TRUE(j["classes"][3]["iou"].is_null());
}

TEST(PipelineMetrics, LabelsOutOfRangeThrow) {
  EXPECT_THROW(confusion_matrix(torch::tensor({0}, torch::kLong), torch::tensor({3}, torch::kLong), 3), c10::Error);
  EXPECT_THROW(confusion_matrix(torch::tensor({5}, torch::kLong), torch::tensor({1}, torch::kLong), 3), c10::Error);
  EXPECT_THROW(confusion_matrix(torch::tensor({0, 1}, torch::kLong), torch::tensor({1}, torch::kLong), 3), c10::Error);
}

TEST(PipelineMetrics, SixFoldSumsIntersectionsAndUnions) {
  // fold A: class 1 tiny and wrong; fold B: class 1 large and right
  auto a = torch::tensor({10, 0, 1, 0}, torch::kLong).view({2, 2});
  auto b = torch::tensor({10, 0, 0, 90}, torch::kLong).view({2, 2});
  auto m = combine_folds({a, b});
  // class 1: I = 90, U = 1 + 90 = 91; class 0: I = 20, U = 21
  EXPECT_NEAR(m.iou[1], 90.0 / 91.0, 1e-12);
  EXPECT_NEAR(m.iou[0], 20.0 / 21.0, 1e-12);
  const double mean_of_folds = (metrics_from_confusion(a).miou + metrics_from_confusion(b).miou) / 2.0;
  EXPECT_GT(std::abs(m.miou - mean_of_folds), 0.1);  // not the mean of per-fold mIoUs
  EXPECT_THROW(combine_folds({a, torch::zeros({3, 3}, torch::kLong)}), c10::Error);
}

}  // namespace
}  // namespace ewa::pointcloud
