// ImageClassificationTask: ViT + image loader + soft-target loss for the training engine.
#include "ewa/vision2d/task.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "ewa/core/collapse.h"
#include "ewa/core/model_io.h"
#include "ewa/core/safetensors.h"
#include "ewa/datasets/image/augment.h"

namespace ewa::vision2d {

img::ImageDataSpec data_spec(const ImageClassificationConfig& cfg) {
  const auto& d = cfg.data();
  img::ImageDataSpec s;
  s.dataset = d.dataset();
  s.root = d.root();
  s.val_root = d.val_root();
  s.val_fraction = d.val_fraction();
  s.train_limit = d.train_limit();
  s.eval_limit = d.eval_limit();
  s.cifar100_labels = d.cifar100_labels();
  s.cache = d.cache();
  s.on_bad_image = d.on_bad_image();
  s.seed = static_cast<uint64_t>(cfg.run().seed());
  return s;
}

img::NormStats norm_stats(const ImageClassificationConfig& cfg) {
  const auto& d = cfg.data();
  if (!d.mean().empty()) return {d.mean(), d.std()};
  img::NormStats s = img::default_norm_stats(d.dataset());
  if (cfg.model().vit().in_chans() == 1 && s.mean.size() == 3) {  // as the loader does for gray images
    s.mean = {(s.mean[0] + s.mean[1] + s.mean[2]) / 3};
    s.std = {(s.std[0] + s.std[1] + s.std[2]) / 3};
  }
  return s;
}

img::ImageLoaderOptions loader_options(const ImageClassificationConfig& cfg, bool train) {
  const auto& d = cfg.data();
  const auto& a = d.augment();
  img::AugmentOptions aug;
  aug.crop_padding(a.crop_padding())
      .random_resized_crop(a.random_resized_crop())
      .rrc_min_scale(a.rrc_min_scale())
      .hflip(a.hflip())
      .randaugment_n(a.randaugment_n())
      .randaugment_m(a.randaugment_m())
      .color_jitter(a.color_jitter())
      .random_erasing(a.random_erasing())
      .mixup_alpha(a.mixup_alpha())
      .cutmix_alpha(a.cutmix_alpha());
  img::ImageLoaderOptions o;
  o.batch_size(train ? cfg.train().batch_size() : std::max<int64_t>(cfg.train().batch_size(), 256))
      .shuffle(train)
      .drop_last(false)
      .train(train)
      .seed(static_cast<uint64_t>(cfg.run().seed()))
      .workers(d.workers())
      .prefetch(d.prefetch())
      .image_size(cfg.model().vit().img_size())
      .dataset(d.dataset())
      .mean(d.mean())
      .std(d.std())
      .augment(aug);
  return o;
}

VisionTransformer build_model(const ImageClassificationConfig& cfg, bool load_init) {
  const auto& m = cfg.model();
  if (!load_init || m.init_from().empty()) return VisionTransformer(m.vit(), m.moe());
  VisionTransformer model(m.vit());
  const auto tensors = safetensors::load_file(m.init_from()).tensors;
  std::vector<std::string> skip;
  auto head = tensors.find("head.weight");
  if (head != tensors.end() && !model->head.is_empty() && head->second.sizes() != model->head->weight.sizes()) {
    spdlog::info("model.init_from: {} has a {}-class head, the model {} classes: the head starts fresh",
                 m.init_from(), head->second.size(0), model->head->weight.size(0));
    skip.push_back("head.");
  }
  load_weights(model, tensors, m.init_from(), skip);
  if (m.moe().enabled()) {
    const auto blocks = upcycle_to_moe(model, m.moe());
    spdlog::info("model.init_from: {} loaded, FFNs of {} blocks upcycled into {} experts each", m.init_from(),
                 blocks.size(), m.moe().num_experts());
  }
  return model;
}

void check_data_matches_model(const ImageClassificationConfig& cfg, const img::ImageDataset& data) {
  const auto& v = cfg.model().vit();
  if (data.num_classes() != v.num_classes()) {
    std::string names;
    const auto& n = data.class_names();
    for (size_t i = 0; i < n.size() && i < 6; ++i) names += (i ? ", " : "") + n[i];
    if (n.size() > 6) names += ", ...";
    throw std::runtime_error("model.vit.num_classes is " + std::to_string(v.num_classes()) + " but " +
                             data.describe() + " has " + std::to_string(data.num_classes()) + " classes (" + names +
                             "); set model.vit.num_classes: " + std::to_string(data.num_classes()));
  }
  if (data.channels() != v.in_chans()) {
    throw std::runtime_error("model.vit.in_chans is " + std::to_string(v.in_chans()) + " but the images of " +
                             data.describe() + " have " + std::to_string(data.channels()) +
                             " channels; set model.vit.in_chans: " + std::to_string(data.channels()));
  }
  const int64_t s = cfg.data().image_size();
  if (s != 0 && s != v.img_size()) {
    throw std::runtime_error("data.image_size (" + std::to_string(s) + ") differs from model.vit.img_size (" +
                             std::to_string(v.img_size()) + "); images are resized to model.vit.img_size, so set "
                             "data.image_size: 0 or the same value");
  }
}

EvalMetrics evaluate_model(VisionTransformer& model, img::ImageLoader& loader, torch::Device device) {
  torch::NoGradGuard no_grad;
  const int64_t k = model->options().num_classes();
  EvalMetrics m;
  m.confusion = torch::zeros({k * k}, torch::kLong);
  double loss_sum = 0.0;
  int64_t hit1 = 0, hit5 = 0;
  const int64_t topk = std::min<int64_t>(5, k);
  loader.set_epoch(0);
  while (auto b = loader.next()) {
    auto x = b->images.to(device);
    auto y = b->labels.to(device);
    const auto t0 = std::chrono::steady_clock::now();
    auto logits = model->forward(x).to(torch::kFloat);  // [B, K]
    auto top = std::get<1>(logits.topk(topk, 1));        // [B, topk]
    auto pred = top.select(1, 0);                        // [B]
    auto in5 = top.eq(y.unsqueeze(1)).any(1);            // [B]
    const double loss = torch::nn::functional::cross_entropy(
                            logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                            .item<double>();
    m.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    loss_sum += loss;
    hit1 += pred.eq(y).sum().item<int64_t>();
    hit5 += in5.sum().item<int64_t>();
    m.confusion += torch::bincount((y * k + pred).cpu(), {}, k * k);
    m.count += y.size(0);
  }
  m.confusion = m.confusion.view({k, k});  // [true, predicted]
  if (m.count > 0) {
    const double n = static_cast<double>(m.count);
    m.top1 = static_cast<double>(hit1) / n;
    m.top5 = static_cast<double>(hit5) / n;
    m.loss = loss_sum / n;
  }
  return m;
}

ImageClassificationTask::ImageClassificationTask(ImageClassificationConfig cfg)
    : ImageClassificationTask(cfg, img::load_image_splits(data_spec(cfg))) {}

ImageClassificationTask::ImageClassificationTask(ImageClassificationConfig cfg, img::ImageSplits splits)
    : cfg_(std::move(cfg)), splits_(std::move(splits)) {
  TORCH_CHECK(splits_.train && splits_.eval, "ImageClassificationTask: train and eval datasets are required");
  check_data_matches_model(cfg_, *splits_.train);
  check_data_matches_model(cfg_, *splits_.eval);
  torch::manual_seed(static_cast<uint64_t>(cfg_.run().seed()));
  model_ = build_model(cfg_, /*load_init=*/true);
  spdlog::info("train: {}; eval ({}): {}", splits_.train->describe(), splits_.eval_name, splits_.eval->describe());
}

void ImageClassificationTask::make_train_loader() {
  img::ImageDatasetPtr ds = splits_.train;
  if (world_ > 1) {  // this rank's shard: every world-th sample
    std::vector<int64_t> idx;
    for (int64_t i = rank_; i < ds->size(); i += world_) idx.push_back(i);
    ds = std::make_shared<img::SubsetImageDataset>(ds, std::move(idx),
                                                   ds->describe() + " shard " + std::to_string(rank_) + "/" +
                                                       std::to_string(world_));
  }
  train_loader_ = std::make_unique<img::ImageLoader>(ds, loader_options(cfg_, true));
}

int64_t ImageClassificationTask::batches_per_epoch() const {
  if (train_loader_) return train_loader_->num_batches();
  const int64_t n = splits_.train->size() / world_, b = cfg_.train().batch_size();
  return (n + b - 1) / b;
}

void ImageClassificationTask::set_shard(int rank, int world_size) {
  rank_ = rank;
  world_ = std::max(1, world_size);
  make_train_loader();
}

void ImageClassificationTask::begin_epoch(int64_t epoch, int64_t start_batch) {
  if (!train_loader_) make_train_loader();
  train_loader_->set_epoch(epoch, start_batch);
}

std::optional<Batch> ImageClassificationTask::next_batch() {
  auto b = train_loader_->next();
  if (!b) return std::nullopt;
  Batch out;
  out.num_samples = b->images.size(0);
  out.tensors["image"] = std::move(b->images);
  out.tensors["label"] = std::move(b->labels);
  if (b->soft_targets.defined()) out.tensors["soft_target"] = std::move(b->soft_targets);
  return out;
}

StepOutput ImageClassificationTask::training_step(const Batch& batch) {
  const auto& x = batch.at("image");  // [B, C, H, W]
  const auto& y = batch.at("label");  // [B]
  const bool moe = !model_->moe_blocks().empty();
  if (moe) model_->set_router_targets(y);
  auto logits = model_->forward(x);  // [B, K]
  auto it = batch.tensors.find("soft_target");
  const torch::Tensor& target = it != batch.tensors.end() ? it->second : y;
  StepOutput out;
  out.loss = smoothed_cross_entropy(logits, target, cfg_.train().label_smoothing());
  if (moe) {
    const bool has_aux = [&] {
      for (int64_t i : model_->moe_blocks()) {
        if (model_->blocks()[static_cast<size_t>(i)]->moe_mlp()->last_aux_loss().defined()) return true;
      }
      return false;
    }();
    if (has_aux) out.aux_losses["router"] = model_->aux_loss();
    model_->set_router_targets(torch::Tensor());
  }
  out.metrics["top1"] = logits.detach().argmax(1).eq(y).to(torch::kDouble).mean().item<double>();
  return out;
}

img::ImageLoader& ImageClassificationTask::eval_loader() {
  if (!eval_loader_) eval_loader_ = std::make_unique<img::ImageLoader>(splits_.eval, loader_options(cfg_, false));
  return *eval_loader_;
}

std::map<std::string, double> ImageClassificationTask::evaluate() {
  const auto device = model_->pos_embed.device();
  EvalMetrics m = evaluate_model(model_, eval_loader(), device);
  return {{"val.top1", m.top1}, {"val.top5", m.top5}, {"val.loss", m.loss}};
}

std::map<std::string, std::vector<double>> ImageClassificationTask::routing_stats() {
  std::map<std::string, std::vector<double>> out;
  for (int64_t i : model_->moe_blocks()) {
    const auto& stats = model_->blocks()[static_cast<size_t>(i)]->moe_mlp()->last_stats();
    auto it = stats.find("expert_load");
    if (it == stats.end() || !it->second.defined()) continue;
    auto load = it->second.detach().to(torch::kCPU, torch::kDouble).contiguous();
    out["blocks." + std::to_string(i) + ".mlp"] =
        std::vector<double>(load.data_ptr<double>(), load.data_ptr<double>() + load.numel());
  }
  return out;
}

}  // namespace ewa::vision2d
