// Segmentation / classification metrics from a confusion matrix: mIoU, mAcc, OA, per-class
// IoU and accuracy; 6-fold combination (sum of confusions = sum of intersections and unions).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ewa::pointcloud {

/// Confusion matrix: pred [N] and gt [N] integer tensors (any integer dtype, same N);
/// points with gt == ignore_index (or gt < 0) are skipped. Labels must lie in
/// [0, num_classes) (a prediction or gt outside throws). Returns int64 [K,K], rows = gt,
/// columns = prediction.
torch::Tensor confusion_matrix(const torch::Tensor& pred, const torch::Tensor& gt, int64_t num_classes,
                               int64_t ignore_index = -1);

/// Metrics of one confusion matrix.
struct SegMetrics {
  torch::Tensor confusion;       ///< int64 [K,K], rows gt, columns prediction
  std::vector<double> iou;       ///< per class: TP / (TP + FP + FN); NaN when the union is empty
  std::vector<double> acc;       ///< per class: TP / (TP + FN) (recall); NaN without gt points
  std::vector<int64_t> gt_count;    ///< points per gt class
  std::vector<int64_t> pred_count;  ///< points per predicted class
  double miou = 0;  ///< mean IoU over classes with a non-empty union
  double macc = 0;  ///< mean accuracy over classes with gt points
  double oa = 0;    ///< overall accuracy = trace / total (NaN when no labelled point)
  int64_t total = 0;  ///< labelled points counted
};

/// Derives every metric from `confusion` (int64 [K,K]).
SegMetrics metrics_from_confusion(const torch::Tensor& confusion);

/// 6-fold (or any k-fold) protocol: intersections and unions summed over folds, i.e. the
/// metrics of the summed confusion matrices (all [K,K]).
SegMetrics combine_folds(const std::vector<torch::Tensor>& confusions);

/// JSON: {"miou", "macc", "oa", "points", "classes": [{"name", "iou", "acc", "gt", "pred"}],
/// "confusion": [[...]]}. NaN values are written as null.
nlohmann::json metrics_json(const SegMetrics& m, const std::vector<std::string>& class_names);

/// A fixed-width text table: class, IoU, Acc, gt points, predicted points; then mIoU/mAcc/OA.
std::string metrics_table(const SegMetrics& m, const std::vector<std::string>& class_names);

}  // namespace ewa::pointcloud
