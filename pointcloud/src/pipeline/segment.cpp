// Deployed segmentation of one scene and its PLY / npy / class-file outputs (see segment.h).
#include "ewa/pointcloud/segment.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "ewa/datasets/points/pcd_ply.h"
#include "ewa/pointcloud/seg_task.h"

namespace fs = std::filesystem;

namespace ewa::pointcloud {

using datasets::PointCloudData;

SegmentResult segment_cloud(PointTransformer& model, const SegModelInfo& info, const PointCloudData& cloud,
                            const SegmentOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  SceneInferenceOptions io;
  io.mode = o.mode;
  io.grid_size = o.grid_size >= 0 ? o.grid_size : info.grid_size;
  io.max_points = o.max_points >= 0 ? o.max_points : info.eval_max_points;
  io.features = info.features;
  io.tta = o.tta;
  io.batch_points = o.batch_points;
  SegmentResult r;
  auto logits = infer_scene_logits(cloud, model_logits_fn(model), io, &r.stats);  // [N,K]
  const int64_t k = logits.size(1);
  if (k != static_cast<int64_t>(info.class_names.size())) {
    throw std::runtime_error("the model gives " + std::to_string(k) + " classes, its metadata lists " +
                             std::to_string(info.class_names.size()));
  }
  // confidence from the mean logits over the augmentations
  const double augs = o.tta ? static_cast<double>(io.tta_scales.size() * (io.tta_flip ? 4 : 1)) : 1.0;
  auto prob = torch::softmax(logits / augs, 1);  // [N,K]
  auto best = prob.max(1);
  r.pred = std::get<1>(best).to(torch::kLong);
  r.confidence = std::get<0>(best).to(torch::kFloat);
  if (cloud.has_segment()) r.metrics = metrics_from_confusion(confusion_matrix(r.pred, cloud.segment, k));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

void write_prediction_ply(const std::string& path, const PointCloudData& cloud, const torch::Tensor& pred) {
  const int64_t n = cloud.size();
  TORCH_CHECK(pred.dim() == 1 && pred.size(0) == n, "write_prediction_ply: ", n, " points but ", pred.sizes(), " labels");
  // the one labelled-PLY writer of datasets; "label=pred" tells `ewa view` the labels are predictions
  datasets::write_labelled_ply(path, cloud.coord, cloud.has_color() ? cloud.color : torch::Tensor(), pred,
                               cloud.has_segment() ? cloud.segment : torch::Tensor(), /*binary=*/true,
                               {"written by ewa-vision (ewa segment)", "label=pred"});
}

torch::Tensor prediction_in_source_order(const PointCloudData& cloud, const torch::Tensor& pred, int64_t source_points) {
  if (!cloud.index.defined()) return pred.to(torch::kLong);
  auto out = torch::full({source_points}, -1, torch::kLong);
  out.index_copy_(0, cloud.index, pred.to(torch::kLong));
  return out;
}

void write_class_file(const std::string& path, const SegModelInfo& info) {
  std::string text = "# classes of the model (index = label): name r g b\n";
  for (size_t i = 0; i < info.class_names.size(); ++i) {
    const auto& c = info.palette.at(i);
    text += info.class_names[i] + " " + std::to_string(c[0]) + " " + std::to_string(c[1]) + " " + std::to_string(c[2]) + "\n";
  }
  const fs::path tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    out << text;
    if (!out) throw std::runtime_error(path + ": cannot write");
  }
  fs::rename(tmp, path);
}

}  // namespace ewa::pointcloud
