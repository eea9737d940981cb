// Deployed segmentation of one scene and its outputs: PLY with confidence, float16
// probabilities, JSON summary, class file (see segment.h).
#include "ewa/pointcloud/segment.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "ewa/datasets/points/npy.h"
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
  io.fragments = o.fragments;
  io.features = info.features;
  io.tta = o.tta;
  io.batch_points = o.batch_points;
  io.progress = o.progress;
  SegmentResult r;
  r.chunk_points = io.max_points > 0 ? io.max_points : kDefaultChunkPoints;
  auto logits = infer_scene_logits(cloud, model_logits_fn(model, o.bf16), io, &r.stats);  // [N,K]
  const int64_t k = logits.size(1);
  if (k != static_cast<int64_t>(info.class_names.size())) {
    throw std::runtime_error("the model gives " + std::to_string(k) + " classes, its metadata lists " +
                             std::to_string(info.class_names.size()));
  }
  // probabilities from the mean logits over every evaluation of the point
  auto prob = torch::softmax(logits, 1);  // [N,K]
  logits = torch::Tensor();
  auto best = prob.max(1);
  r.pred = std::get<1>(best).to(torch::kLong);
  r.confidence = std::get<0>(best).to(torch::kFloat);
  if (o.keep_probabilities) r.probabilities = prob;
  if (cloud.has_segment()) r.metrics = metrics_from_confusion(confusion_matrix(r.pred, cloud.segment, k));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

void write_prediction_ply(const std::string& path, const PointCloudData& cloud, const torch::Tensor& pred,
                          const torch::Tensor& confidence) {
  const int64_t n = cloud.size();
  TORCH_CHECK(pred.dim() == 1 && pred.size(0) == n, "write_prediction_ply: ", n, " points but ", pred.sizes(), " labels");
  std::vector<datasets::PlyColumn> cols = {{"pred", pred}};
  if (cloud.has_segment()) cols.push_back({"gt", cloud.segment});
  if (confidence.defined()) {
    TORCH_CHECK(confidence.is_floating_point() && confidence.numel() == n, "write_prediction_ply: confidence must be float [",
                n, "]");
    cols.push_back({"confidence", confidence});
  }
  // the one labelled-PLY writer of datasets; open_cloud reads pred / gt / confidence back as extra fields
  datasets::write_point_ply(path, cloud.coord, cloud.has_color() ? cloud.color : torch::Tensor(), cols, /*binary=*/true,
                            {"written by ewa-vision (ewa segment)"});
}

void write_probabilities_npy(const std::string& path, const PointCloudData& cloud, const torch::Tensor& probabilities,
                             int64_t source_points) {
  TORCH_CHECK(probabilities.dim() == 2 && probabilities.size(0) == cloud.size(), "write_probabilities_npy: ",
              cloud.size(), " points but probabilities ", probabilities.sizes());
  auto half = probabilities.to(torch::kHalf);  // [N,K]
  if (cloud.index.defined() && source_points != cloud.size()) {
    auto full = torch::full({source_points, probabilities.size(1)}, std::numeric_limits<float>::quiet_NaN(), torch::kHalf);
    full.index_copy_(0, cloud.index, half);
    half = full;  // [source_points,K]
  }
  datasets::write_npy(path, half);
}

int64_t peak_rss_bytes() {
  struct rusage u {};
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux: kilobytes
}

nlohmann::json segment_summary(const SegmentResult& r, const PointCloudData& cloud, const SegModelInfo& info,
                               const SegmentOptions& o, int64_t source_points) {
  nlohmann::json j;
  j["scene"] = cloud.name;
  j["input"] = cloud.source;
  j["points"] = cloud.size();
  j["source_points"] = source_points;
  j["classes"] = info.class_names;
  j["mode"] = o.mode;
  j["precision"] = o.bf16 ? "bf16" : "fp32";
  j["grid_size"] = o.grid_size >= 0 ? o.grid_size : info.grid_size;
  j["tta"] = o.tta;
  j["chunk_points"] = r.chunk_points;
  j["fragments"] = r.stats.fragments;
  j["augmentations"] = r.stats.augmentations;
  j["forwards"] = r.stats.forwards;
  j["chunks"] = r.stats.chunks;
  j["points_evaluated"] = r.stats.points_in;
  j["points_inherited"] = r.stats.inherited;
  j["seconds"] = r.seconds;
  j["peak_rss_bytes"] = peak_rss_bytes();
  const int64_t k = static_cast<int64_t>(info.class_names.size());
  auto counts = torch::bincount(r.pred, {}, k);
  nlohmann::json predicted = nlohmann::json::object();
  for (int64_t c = 0; c < k; ++c) predicted[info.class_names[static_cast<size_t>(c)]] = counts[c].item<int64_t>();
  j["predicted"] = predicted;
  j["mean_confidence"] = r.confidence.mean().item<double>();
  if (r.metrics) j["metrics"] = metrics_json(*r.metrics, info.class_names);
  return j;
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
