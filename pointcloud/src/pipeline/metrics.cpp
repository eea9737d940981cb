// Confusion-matrix metrics of the 3D pipelines (see metrics.h).
#include "ewa/pointcloud/metrics.h"

#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

namespace ewa::pointcloud {

torch::Tensor confusion_matrix(const torch::Tensor& pred, const torch::Tensor& gt, int64_t num_classes,
                               int64_t ignore_index) {
  TORCH_CHECK(num_classes >= 1, "confusion_matrix: num_classes must be >= 1, got ", num_classes);
  TORCH_CHECK(pred.dim() == 1 && gt.dim() == 1 && pred.size(0) == gt.size(0),
              "confusion_matrix: pred and gt must be [N] with the same N, got ", pred.sizes(), " and ", gt.sizes());
  TORCH_CHECK(!pred.is_floating_point() && !gt.is_floating_point(), "confusion_matrix: labels must be integers");
  auto p = pred.to(torch::kCPU, torch::kLong);
  auto g = gt.to(torch::kCPU, torch::kLong);
  auto valid = g.ne(ignore_index).logical_and(g.ge(0));  // [N] bool
  p = p.masked_select(valid);
  g = g.masked_select(valid);
  if (g.numel() > 0) {
    TORCH_CHECK(g.max().item<int64_t>() < num_classes, "confusion_matrix: ground-truth label ",
                g.max().item<int64_t>(), " outside [0, ", num_classes, ")");
    TORCH_CHECK(p.min().item<int64_t>() >= 0 && p.max().item<int64_t>() < num_classes,
                "confusion_matrix: predicted label outside [0, ", num_classes, ")");
  }
  auto flat = torch::bincount(g * num_classes + p, {}, num_classes * num_classes);  // [K*K]
  return flat.view({num_classes, num_classes}).to(torch::kLong);                  // [K,K]
}

SegMetrics metrics_from_confusion(const torch::Tensor& confusion) {
  TORCH_CHECK(confusion.dim() == 2 && confusion.size(0) == confusion.size(1),
              "metrics_from_confusion: expected a square [K,K] matrix, got ", confusion.sizes());
  SegMetrics m;
  m.confusion = confusion.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t k = m.confusion.size(0);
  auto acc = m.confusion.accessor<int64_t, 2>();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double iou_sum = 0, acc_sum = 0, trace = 0;
  int64_t iou_n = 0, acc_n = 0;
  for (int64_t c = 0; c < k; ++c) {
    int64_t row = 0, col = 0;
    for (int64_t j = 0; j < k; ++j) {
      row += acc[c][j];
      col += acc[j][c];
    }
    const int64_t tp = acc[c][c];
    const int64_t uni = row + col - tp;
    m.gt_count.push_back(row);
    m.pred_count.push_back(col);
    m.total += row;
    trace += static_cast<double>(tp);
    m.iou.push_back(uni > 0 ? static_cast<double>(tp) / static_cast<double>(uni) : nan);
    m.acc.push_back(row > 0 ? static_cast<double>(tp) / static_cast<double>(row) : nan);
    if (uni > 0) {
      iou_sum += m.iou.back();
      ++iou_n;
    }
    if (row > 0) {
      acc_sum += m.acc.back();
      ++acc_n;
    }
  }
  m.miou = iou_n > 0 ? iou_sum / static_cast<double>(iou_n) : nan;
  m.macc = acc_n > 0 ? acc_sum / static_cast<double>(acc_n) : nan;
  m.oa = m.total > 0 ? trace / static_cast<double>(m.total) : nan;
  return m;
}

SegMetrics combine_folds(const std::vector<torch::Tensor>& confusions) {
  TORCH_CHECK(!confusions.empty(), "combine_folds: no confusion matrices");
  auto sum = confusions[0].to(torch::kCPU, torch::kLong).clone();
  for (size_t i = 1; i < confusions.size(); ++i) {
    TORCH_CHECK(confusions[i].sizes() == sum.sizes(), "combine_folds: fold ", i, " has shape ",
                confusions[i].sizes(), ", fold 0 has ", sum.sizes());
    sum += confusions[i].to(torch::kCPU, torch::kLong);
  }
  return metrics_from_confusion(sum);
}

namespace {
nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
std::string class_name(const std::vector<std::string>& names, size_t c) {
  return c < names.size() ? names[c] : "class_" + std::to_string(c);
}
}  // namespace

nlohmann::json metrics_json(const SegMetrics& m, const std::vector<std::string>& class_names) {
  nlohmann::json j;
  j["miou"] = num(m.miou);
  j["macc"] = num(m.macc);
  j["oa"] = num(m.oa);
  j["points"] = m.total;
  j["classes"] = nlohmann::json::array();
  for (size_t c = 0; c < m.iou.size(); ++c) {
    j["classes"].push_back({{"name", class_name(class_names, c)},
                            {"iou", num(m.iou[c])},
                            {"acc", num(m.acc[c])},
                            {"gt", m.gt_count[c]},
                            {"pred", m.pred_count[c]}});
  }
  nlohmann::json conf = nlohmann::json::array();
  const int64_t k = m.confusion.size(0);
  auto a = m.confusion.accessor<int64_t, 2>();
  for (int64_t r = 0; r < k; ++r) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t c = 0; c < k; ++c) row.push_back(a[r][c]);
    conf.push_back(row);
  }
  j["confusion"] = conf;
  return j;
}

std::string metrics_table(const SegMetrics& m, const std::vector<std::string>& class_names) {
  size_t w = 5;
  for (size_t c = 0; c < m.iou.size(); ++c) w = std::max(w, class_name(class_names, c).size());
  auto pct = [](double v) {
    std::ostringstream s;
    if (std::isfinite(v)) {
      s << std::fixed << std::setprecision(1) << 100.0 * v;
    } else {
      s << "-";
    }
    return s.str();
  };
  std::ostringstream o;
  o << std::left << std::setw(static_cast<int>(w)) << "class" << std::right << std::setw(8) << "IoU"
    << std::setw(8) << "Acc" << std::setw(12) << "gt" << std::setw(12) << "pred" << "\n";
  for (size_t c = 0; c < m.iou.size(); ++c) {
    o << std::left << std::setw(static_cast<int>(w)) << class_name(class_names, c) << std::right << std::setw(8)
      << pct(m.iou[c]) << std::setw(8) << pct(m.acc[c]) << std::setw(12) << m.gt_count[c] << std::setw(12)
      << m.pred_count[c] << "\n";
  }
  o << "mIoU " << pct(m.miou) << "  mAcc " << pct(m.macc) << "  OA " << pct(m.oa) << "  (" << m.total
    << " labelled points)\n";
  return o.str();
}

}  // namespace ewa::pointcloud
