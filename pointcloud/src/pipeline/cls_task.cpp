// Point-cloud classification TrainTask, shape loading and voting evaluation (see cls_task.h).
#include "ewa/pointcloud/cls_task.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>

#include "ewa/datasets/points/cloud_formats.h"
#include "ewa/datasets/points/modelnet.h"
#include "ewa/datasets/points/transforms.h"

namespace fs = std::filesystem;

namespace ewa::pointcloud {

using datasets::mix_seed;

namespace {

/// Centres every shape on its centroid and scales it into the unit sphere. pts [n,P,3].
torch::Tensor normalise_shapes(const torch::Tensor& pts) {
  auto c = pts - pts.mean(1, /*keepdim=*/true);                                     // [n,P,3]
  auto r = std::get<0>(c.norm(2, {2}).max(1, /*keepdim=*/true)).clamp_min(1e-12);  // [n,1]
  return (c / r.unsqueeze(2)).contiguous();                                         // [n,P,3]
}

}  // namespace

ShapeSet load_shapes(const ClsDataOptions& o, const std::string& split) {
  if (!fs::exists(o.root())) throw std::runtime_error("data.root: " + o.root() + " does not exist");
  ShapeSet s;
  const int64_t p = o.num_points();
  const bool want_normal = o.features().size() == 2;
  if (o.format() == "modelnet_h5") {
    auto h = datasets::read_modelnet_h5(o.root(), split);
    if (h.points.size(1) < p) {
      throw std::runtime_error(o.root() + ": shapes have " + std::to_string(h.points.size(1)) +
                               " points, data.num_points is " + std::to_string(p));
    }
    s.points = h.points.narrow(1, 0, p).contiguous();
    if (want_normal) {
      if (!h.normal.defined()) throw std::runtime_error(o.root() + ": feature normal requested but the files have no `normal`");
      s.normal = h.normal.narrow(1, 0, p).contiguous();
    }
    s.label = h.label;
    s.class_names = h.class_names;
  } else if (o.format() == "modelnet_resampled") {
    s.class_names = datasets::read_modelnet_class_names(o.root());
    auto entries = datasets::list_modelnet_resampled(o.root(), split);
    if (entries.empty()) throw std::runtime_error(o.root() + ": no shapes in split '" + split + "'");
    std::vector<torch::Tensor> pts, nrm;
    std::vector<int64_t> labels;
    datasets::CloudReadOptions ro;
    ro.max_points = p;
    for (const auto& e : entries) {
      auto c = datasets::open_cloud(e.path, ro).cloud;  // non-finite rows dropped
      if (c.size() < p) {
        throw std::runtime_error(e.path + ": " + std::to_string(c.size()) + " points, data.num_points is " +
                                 std::to_string(p));
      }
      pts.push_back(c.coord);
      if (want_normal) {
        if (!c.has_normal()) throw std::runtime_error(e.path + ": feature normal requested but the file has 3 columns");
        nrm.push_back(c.normal);
      }
      labels.push_back(e.label);
      s.names.push_back(e.id);
    }
    s.points = torch::stack(pts);
    if (want_normal) s.normal = torch::stack(nrm);
    s.label = torch::tensor(labels, torch::kLong);
  } else {  // off_folder: <root>/<class>/<split>/*.off
    std::vector<std::string> classes;
    for (const auto& d : fs::directory_iterator(o.root())) {
      if (d.is_directory()) classes.push_back(d.path().filename().string());
    }
    std::sort(classes.begin(), classes.end());
    if (!o.class_names().empty()) classes = o.class_names();
    s.class_names = classes;
    std::vector<torch::Tensor> pts, nrm;
    std::vector<int64_t> labels;
    for (size_t k = 0; k < classes.size(); ++k) {
      const fs::path dir = fs::path(o.root()) / classes[k] / split;
      if (!fs::is_directory(dir)) continue;
      std::vector<fs::path> files;
      for (const auto& f : fs::directory_iterator(dir)) {
        if (f.is_regular_file() && f.path().extension() == ".off") files.push_back(f.path());
      }
      std::sort(files.begin(), files.end());
      datasets::CloudReadOptions ro;
      ro.mesh_samples = p;  // area-weighted surface samples, seeded by the file name
      for (const auto& f : files) {
        auto c = datasets::open_cloud(f.string(), ro).cloud;
        pts.push_back(c.coord);
        if (want_normal) nrm.push_back(c.normal);
        labels.push_back(static_cast<int64_t>(k));
        s.names.push_back(classes[k] + "/" + f.stem().string());
      }
    }
    if (pts.empty()) throw std::runtime_error(o.root() + ": no <class>/" + split + "/*.off meshes");
    s.points = torch::stack(pts);
    if (want_normal) s.normal = torch::stack(nrm);
    s.label = torch::tensor(labels, torch::kLong);
  }
  if (!o.class_names().empty()) {
    if (o.class_names().size() < s.class_names.size() && o.format() != "off_folder") {
      throw std::runtime_error("data.class_names: " + std::to_string(o.class_names().size()) + " names, the dataset has " +
                               std::to_string(s.class_names.size()) + " classes");
    }
    s.class_names = o.class_names();
  }
  if (!torch::isfinite(s.points).all().item<bool>()) {
    throw std::runtime_error(o.root() + ": non-finite coordinates in split '" + split + "'");
  }
  s.points = normalise_shapes(s.points.to(torch::kFloat));
  return s;
}

// ------------------------------------------------------------------------------ ClsTask

ClsTask::ClsTask(PointClsConfig config, ShapeSet train, ShapeSet val)
    : ClsTask(config, std::move(train), std::move(val),
          build_point_model(config.model().pt(), config.model().init_from())) {}

ClsTask::ClsTask(PointClsConfig config, ShapeSet train, ShapeSet val, PointTransformer model)
    : config_(std::move(config)), train_(std::move(train)), val_(std::move(val)), net_(std::move(model)) {
  class_names_ = train_.class_names;
  const int64_t k = static_cast<int64_t>(class_names_.size());
  if (net_->options().num_classes() != k) {
    throw std::runtime_error("model.pt.num_classes is " + std::to_string(net_->options().num_classes()) +
                             " but the dataset has " + std::to_string(k) + " classes");
  }
  if (train_.size() == 0) throw std::runtime_error("data: no training shapes under " + config_.data().root());
  if (val_.size() == 0) throw std::runtime_error("data: no validation shapes under " + config_.data().root());
}

void ClsTask::set_shard(int rank, int world_size) {
  rank_ = rank;
  world_ = std::max(1, world_size);
}

int64_t ClsTask::batches_per_epoch() const {
  const int64_t per_rank = train_.size() / world_;
  const int64_t bs = config_.train().batch_size();
  return (per_rank + bs - 1) / bs;
}

void ClsTask::begin_epoch(int64_t epoch, int64_t start_batch) {
  epoch_ = epoch;
  auto gen = datasets::make_point_generator(mix_seed(static_cast<uint64_t>(config_.run().seed()), 29,
                                                     static_cast<uint64_t>(epoch)));
  auto perm = torch::randperm(train_.size(), gen, torch::kLong);
  const int64_t per_rank = train_.size() / world_;
  order_ = perm.narrow(0, rank_ * per_rank, per_rank).contiguous();
  pos_ = start_batch;
}

std::optional<Batch> ClsTask::next_batch() {
  const int64_t bs = config_.train().batch_size();
  const int64_t first = pos_ * bs;
  if (!order_.defined() || first >= order_.size(0)) return std::nullopt;
  int64_t b = std::min(bs, order_.size(0) - first);
  auto idx = order_.narrow(0, first, b);
  if (b == 1) {
    // BatchNorm cannot train on a batch of one (training-set size % batch size == 1, or a
    // single shape, or batch_size 1): pair it with the next shape of the epoch's order
    // (wrapping to the first; itself when alone).
    idx = torch::cat({idx, order_.narrow(0, (first + 1) % order_.size(0), 1)});  // [2]
    b = 2;
  }
  auto gen = datasets::make_point_generator(mix_seed(static_cast<uint64_t>(config_.run().seed()),
                                                     static_cast<uint64_t>(epoch_) + 1000,
                                                     static_cast<uint64_t>(rank_ * 1000003 + pos_)));
  ++pos_;
  const auto& t = config_.data().transforms();
  auto pts = train_.points.index_select(0, idx);  // [b,P,3]
  torch::Tensor nrm = train_.normal.defined() ? train_.normal.index_select(0, idx) : torch::Tensor();
  const int64_t p = pts.size(1);
  if (t.shuffle()) {
    auto perm = torch::randperm(p, gen, torch::kLong);
    pts = pts.index_select(1, perm);
    if (nrm.defined()) nrm = nrm.index_select(1, perm);
  }
  if (t.rotate_z_deg() > 0) {
    auto ang = (torch::rand({b}, gen) * 2 - 1) * (t.rotate_z_deg() * M_PI / 180.0);  // [b]
    auto c = ang.cos(), s = ang.sin();
    auto z = torch::zeros_like(c), one = torch::ones_like(c);
    auto rot = torch::stack({c, -s, z, s, c, z, z, z, one}, 1).view({b, 3, 3});  // [b,3,3]
    pts = torch::bmm(pts, rot.transpose(1, 2));                                    // [b,P,3]
    if (nrm.defined()) nrm = torch::bmm(nrm, rot.transpose(1, 2));
  }
  if (t.scale().size() == 2) {
    auto sc = torch::rand({b, 1, 3}, gen) * (t.scale()[1] - t.scale()[0]) + t.scale()[0];  // [b,1,3]
    pts = pts * sc;
  }
  if (t.translate() > 0) pts = pts + (torch::rand({b, 1, 3}, gen) * 2 - 1) * t.translate();
  if (t.jitter_sigma() > 0) {
    pts = pts + (torch::randn(pts.sizes(), gen) * t.jitter_sigma()).clamp(-t.jitter_clip(), t.jitter_clip());
  }
  auto coord = pts.reshape({b * p, 3}).contiguous();  // [b*P,3]
  auto feat = nrm.defined() ? torch::cat({coord, nrm.reshape({b * p, 3})}, 1) : coord;  // [b*P,C]
  Batch batch;
  batch.tensors["coord"] = coord;
  batch.tensors["feat"] = feat.contiguous();
  batch.tensors["offset"] = torch::arange(1, b + 1, torch::kLong) * p;  // [b]
  batch.tensors["label"] = train_.label.index_select(0, idx);             // [b]
  batch.num_samples = b;
  return batch;
}

StepOutput ClsTask::training_step(const Batch& batch) {
  auto logits = net_->forward(batch.at("coord"), batch.at("feat"), batch.at("offset"));  // [B,K]
  StepOutput out;
  out.loss = smoothed_cross_entropy(logits.to(torch::kFloat), batch.at("label"), config_.train().label_smoothing());
  auto aux = net_->aux_loss();
  if (aux.defined() && aux.requires_grad()) out.aux_losses["router"] = aux;
  torch::NoGradGuard ng;
  out.metrics["top1"] = logits.argmax(1).eq(batch.at("label")).to(torch::kDouble).mean().item<double>();
  return out;
}

ClsEvaluation ClsTask::evaluate_shapes(const ShapeSet& shapes, int64_t votes) {
  torch::NoGradGuard ng;
  const auto t0 = std::chrono::steady_clock::now();
  net_->eval();
  torch::Device dev = torch::kCPU;
  for (const auto& p : net_->parameters()) {
    dev = p.device();
    break;
  }
  const int64_t k = static_cast<int64_t>(class_names_.size());
  const int64_t n = shapes.size();
  const int64_t p = shapes.points.size(1);
  const int64_t bs = std::max<int64_t>(1, config_.train().batch_size());
  const auto& vs = config_.eval().vote_scale();
  auto gen = datasets::make_point_generator(mix_seed(static_cast<uint64_t>(config_.run().seed()), 31, 0));
  auto pred = torch::empty({n}, torch::kLong);
  for (int64_t s = 0; s < n; s += bs) {
    const int64_t b = std::min(bs, n - s);
    auto pts0 = shapes.points.narrow(0, s, b);  // [b,P,3]
    torch::Tensor sum;
    for (int64_t v = 0; v < votes; ++v) {
      auto pts = pts0;
      if (v > 0) pts = pts * (torch::rand({b, 1, 3}, gen) * (vs[1] - vs[0]) + vs[0]);
      auto coord = pts.reshape({b * p, 3}).contiguous();
      auto feat = shapes.normal.defined() ? torch::cat({coord, shapes.normal.narrow(0, s, b).reshape({b * p, 3})}, 1)
                                          : coord;
      auto offset = torch::arange(1, b + 1, torch::kLong) * p;
      auto logits = net_->forward(coord.to(dev), feat.contiguous().to(dev), offset.to(dev)).to(torch::kCPU, torch::kFloat);
      sum = sum.defined() ? sum + logits : logits;  // [b,K]
    }
    pred.narrow(0, s, b).copy_(sum.argmax(1));
  }
  ClsEvaluation ev;
  ev.metrics = metrics_from_confusion(confusion_matrix(pred, shapes.label, k));
  ev.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ev;
}

std::map<std::string, double> ClsTask::evaluate() {
  auto ev = evaluate_shapes(val_, config_.eval().voting());
  return {{"val.oa", ev.metrics.oa}, {"val.macc", ev.metrics.macc}};
}

std::map<std::string, std::vector<double>> ClsTask::routing_stats() { return net_->routing_stats(); }

}  // namespace ewa::pointcloud
