// Semantic-segmentation TrainTask and whole-split evaluation (see seg_task.h).
#include "ewa/pointcloud/seg_task.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "ewa/core/compat.h"
#include "ewa/core/progress.h"
#include "ewa/datasets/points/transforms.h"

namespace ewa::pointcloud {

using datasets::PointCloudData;

using datasets::mix_seed;

torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                                const torch::Tensor& class_weights) {
  auto valid = labels.ge(0);
  if (!valid.any().item<bool>()) return logits.sum() * 0.0;
  auto opts = torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-1);
  if (class_weights.defined()) opts = opts.weight(class_weights.to(logits.device(), logits.scalar_type()));
  return torch::nn::functional::cross_entropy(logits, labels, opts);
}

SceneInferenceOptions inference_options(const SemSegConfig& c, const std::string& mode, bool tta) {
  SceneInferenceOptions o;
  o.mode = mode;
  o.grid_size = c.data().grid_size();
  o.max_points = c.eval().max_points();
  o.fragments = c.eval().fragments();
  o.features = c.data().features();
  o.tta = tta;
  o.tta_scales = c.eval().tta_scales();
  o.tta_flip = c.eval().tta_flip();
  return o;
}

SegLogitsFn model_logits_fn(PointTransformer model, bool bf16) {
  return [model, bf16](const torch::Tensor& coord, const torch::Tensor& feat, const torch::Tensor& offset) mutable {
    torch::Device dev = torch::kCPU;
    for (const auto& p : model->parameters()) {
      dev = p.device();
      break;
    }
    model->eval();
    compat::AutocastGuard autocast(dev.type(), at::kBFloat16, bf16);
    return model->forward(coord.to(dev), feat.to(dev), offset.to(dev));
  };
}

SegEvaluation evaluate_scenes(const SceneSet& scenes, const SegLogitsFn& fn, const SceneInferenceOptions& o,
                              int64_t num_classes, int64_t max_scenes, bool progress) {
  const auto t0 = std::chrono::steady_clock::now();
  SegEvaluation ev;
  const int64_t n = max_scenes > 0 ? std::min(max_scenes, scenes.size()) : scenes.size();
  auto confusion = torch::zeros({num_classes, num_classes}, torch::kLong);
  std::unique_ptr<ProgressBar> bar;
  if (progress) bar = std::make_unique<ProgressBar>(n, "eval", "scene");
  for (int64_t i = 0; i < n; ++i) {
    PointCloudData scene = scenes.load(i);
    SceneInferenceStats st;
    auto logits = infer_scene_logits(scene, fn, o, &st);  // [N,K]
    TORCH_CHECK(logits.size(1) == num_classes, scene.source, ": the network gives ", logits.size(1),
                " classes, the data has ", num_classes);
    auto pred = logits.argmax(1);  // [N]
    confusion += confusion_matrix(pred, scene.segment, num_classes);
    ev.scenes.push_back(scene.name);
    ev.forwards += st.forwards;
    if (bar) bar->update(1);
  }
  if (bar) bar->finish();
  ev.metrics = metrics_from_confusion(confusion);
  ev.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ev;
}

// ------------------------------------------------------------------------------ SemSegTask

SemSegTask::SemSegTask(SemSegConfig config, SegSplits splits)
    : SemSegTask(config, std::move(splits),
          build_point_model(config.model().pt(), config.model().init_from())) {}

SemSegTask::SemSegTask(SemSegConfig config, SegSplits splits, PointTransformer model)
    : config_(std::move(config)), splits_(std::move(splits)), net_(std::move(model)) {
  if (!config_.data().class_weights().empty()) {
    class_weights_ = torch::tensor(config_.data().class_weights(), torch::kFloat);
  }
}

void SemSegTask::set_shard(int rank, int world_size) {
  rank_ = rank;
  world_ = std::max(1, world_size);
}

int64_t SemSegTask::batches_per_epoch() const {
  const int64_t total = splits_.train.size() * config_.data().loop();
  const int64_t per_rank = total / world_;
  const int64_t bs = config_.train().batch_size();
  return (per_rank + bs - 1) / bs;
}

void SemSegTask::begin_epoch(int64_t epoch, int64_t start_batch) {
  epoch_ = epoch;
  const int64_t scenes = splits_.train.size();
  const int64_t total = scenes * config_.data().loop();
  auto gen = datasets::make_point_generator(mix_seed(static_cast<uint64_t>(config_.run().seed()), 17,
                                                     static_cast<uint64_t>(epoch)));
  auto perm = torch::randperm(total, gen, torch::kLong).remainder(scenes);  // [total] scene ids
  const int64_t per_rank = total / world_;
  order_ = perm.narrow(0, rank_ * per_rank, per_rank).contiguous();
  pos_ = start_batch;
}

std::optional<Batch> SemSegTask::next_batch() {
  const int64_t bs = config_.train().batch_size();
  const int64_t first = pos_ * bs;
  if (!order_.defined() || first >= order_.size(0)) return std::nullopt;
  const int64_t count = std::min(bs, order_.size(0) - first);
  std::vector<torch::Tensor> coords, feats, labels;
  std::vector<int64_t> ends;
  int64_t total = 0;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t item = first + j;
    const int64_t scene = order_[item].item<int64_t>();
    // augmentation seed: (seed, epoch, global position of the item)
    const uint64_t global_pos = static_cast<uint64_t>(rank_ * order_.size(0) + item);
    auto gen = datasets::make_point_generator(
        mix_seed(static_cast<uint64_t>(config_.run().seed()), static_cast<uint64_t>(epoch_) + 1000, global_pos));
    PointCloudData sample = make_training_sample(splits_.train.load(scene), config_.data(), gen);
    coords.push_back(sample.coord.to(torch::kFloat));
    feats.push_back(make_features(sample, config_.data().features()));
    labels.push_back(sample.segment.to(torch::kLong));
    total += sample.size();
    ends.push_back(total);
  }
  ++pos_;
  Batch b;
  b.tensors["coord"] = torch::cat(coords, 0);  // [N,3]
  b.tensors["feat"] = torch::cat(feats, 0);    // [N,C]
  b.tensors["label"] = torch::cat(labels, 0);  // [N]
  b.tensors["offset"] = torch::tensor(ends, torch::kLong);  // [B]
  b.num_samples = count;
  return b;
}

StepOutput SemSegTask::training_step(const Batch& batch) {
  const auto& labels = batch.at("label");
  auto logits = net_->forward(batch.at("coord"), batch.at("feat"), batch.at("offset"));  // [N,K]
  StepOutput out;
  out.loss = segmentation_loss(logits.to(torch::kFloat), labels, class_weights_);
  auto aux = net_->aux_loss();
  if (aux.defined() && aux.requires_grad()) out.aux_losses["router"] = aux;
  {
    torch::NoGradGuard ng;
    auto valid = labels.ge(0);
    const double n = valid.sum().item<double>();
    if (n > 0) out.metrics["acc"] = logits.argmax(1).eq(labels).logical_and(valid).sum().item<double>() / n;
    out.metrics["points"] = static_cast<double>(labels.size(0));
  }
  return out;
}

std::map<std::string, double> SemSegTask::evaluate() {
  const auto& e = config_.eval();
  auto ev = evaluate_scenes(splits_.val, model_logits_fn(net_), inference_options(config_, e.mode_during_training(), false),
                            static_cast<int64_t>(config_.data().class_names().size()), e.max_scenes_during_training());
  return {{"val.miou", ev.metrics.miou}, {"val.macc", ev.metrics.macc}, {"val.oa", ev.metrics.oa}};
}

std::map<std::string, std::vector<double>> SemSegTask::routing_stats() { return net_->routing_stats(); }

}  // namespace ewa::pointcloud
