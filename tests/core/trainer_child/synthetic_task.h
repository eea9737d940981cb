// A tiny classification TrainTask on synthetic data for the trainer tests (in-process and in
// the ewa_trainer_child helper): an MLP (+ optional 2-expert StackedExperts block), data
// order a pure function of (seed, epoch), a std::mt19937 augmentation RNG saved as data state.
#pragma once

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <limits>
#include <optional>
#include <random>
#include <sstream>

#include "ewa/core/moe.h"
#include "ewa/core/trainer.h"

namespace ewa::test {

struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl(int64_t in, int64_t hidden, int64_t classes, double dropout, bool moe, bool batchnorm = false) {
    fc1 = register_module("fc1", torch::nn::Linear(in, hidden));
    if (batchnorm) {
      bn = register_module("bn", torch::nn::BatchNorm1d(hidden));
    } else {
      norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
    }
    drop = register_module("drop", torch::nn::Dropout(dropout));
    if (moe) experts = register_module("experts", StackedExperts(2, hidden, hidden, hidden));
    head = register_module("head", torch::nn::Linear(hidden, classes));
  }
  torch::Tensor forward(torch::Tensor x) {
    auto h = fc1(x);                                                  // [B, H]
    h = drop(torch::gelu(bn.is_empty() ? norm(h) : bn(h)));
    if (!experts.is_empty()) {
      auto xs = h.unsqueeze(0).expand({2, h.size(0), h.size(1)}).contiguous();  // [E, B, H]
      h = h + experts(xs).mean(0);                                                 // [B, H]
    }
    return head(h);
  }
  torch::nn::Linear fc1{nullptr}, head{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
  torch::nn::Dropout drop{nullptr};
  StackedExperts experts{nullptr};
};
TORCH_MODULE(TinyNet);

struct SyntheticTaskOptions {
  int64_t samples = 64;
  int64_t features = 6;
  int64_t classes = 3;
  int64_t hidden = 8;
  int64_t batch = 8;          ///< per-rank micro-batch size
  double dropout = 0.1;
  bool moe = false;
  bool batchnorm = false;     ///< BatchNorm1d instead of LayerNorm after fc1
  bool augment = true;        ///< mt19937 feature jitter (exercises data_state)
  int64_t nan_at_call = -1;   ///< training_step call (1-based) whose loss becomes NaN
  double label_smoothing = 0.0;
  torch::Dtype dtype = torch::kFloat64;
  uint64_t seed = 7;
};

class SyntheticTask : public TrainTask {
 public:
  explicit SyntheticTask(SyntheticTaskOptions o) : o_(o) {
    torch::manual_seed(o_.seed);
    net_ = TinyNet(o_.features, o_.hidden, o_.classes, o_.dropout, o_.moe, o_.batchnorm);
    net_->to(o_.dtype);
    auto gen = at::detail::createCPUGenerator(o_.seed + 1000);
    x_ = torch::randn({o_.samples, o_.features}, gen, torch::TensorOptions().dtype(o_.dtype));  // [N, F]
    auto w = torch::randn({o_.features, o_.classes}, gen, torch::TensorOptions().dtype(o_.dtype));
    y_ = x_.matmul(w).argmax(1);  // [N]
  }
  torch::nn::Module& model() override { return *net_; }
  TinyNet& net() { return net_; }
  torch::ScalarType last_logits_dtype = torch::kFloat;  ///< dtype of the last training logits
  void set_shard(int rank, int world) override {
    rank_ = rank;
    world_ = world;
  }
  int64_t batches_per_epoch() const override { return o_.samples / (o_.batch * world_); }
  void begin_epoch(int64_t epoch, int64_t start_batch) override {
    auto gen = at::detail::createCPUGenerator(o_.seed * 7919 + static_cast<uint64_t>(epoch));
    order_ = torch::randperm(o_.samples, gen, torch::kLong);
    pos_ = start_batch;
    rng_.seed(static_cast<uint32_t>(o_.seed + static_cast<uint64_t>(epoch)));
  }
  std::optional<Batch> next_batch() override {
    if (pos_ >= batches_per_epoch()) return std::nullopt;
    // global batch pos_ has batch*world samples; this rank takes its contiguous slice
    const int64_t start = pos_ * o_.batch * world_ + rank_ * o_.batch;
    auto idx = order_.narrow(0, start, o_.batch);
    ++pos_;
    Batch b;
    auto x = x_.index_select(0, idx);  // [b, F]
    if (o_.augment) x = x + static_cast<double>(rng_() % 1000) * 1e-4;
    b.tensors["x"] = x;
    b.tensors["y"] = y_.index_select(0, idx);
    b.num_samples = o_.batch;
    return b;
  }
  StepOutput training_step(const Batch& b) override {
    ++calls_;
    auto logits = net_->forward(b.at("x"));  // [b, C]
    last_logits_dtype = logits.scalar_type();
    StepOutput out;
    out.loss = smoothed_cross_entropy(logits, b.at("y"), o_.label_smoothing);
    if (calls_ == o_.nan_at_call) out.loss = out.loss * std::numeric_limits<double>::quiet_NaN();
    out.aux_losses["l2"] = 1e-3 * net_->head->weight.pow(2).sum();
    out.metrics["top1"] = logits.argmax(1).eq(b.at("y")).to(torch::kDouble).mean().item<double>();
    return out;
  }
  std::map<std::string, double> evaluate() override {
    auto logits = net_->forward(x_);
    return {{"val.top1", logits.argmax(1).eq(y_).to(torch::kDouble).mean().item<double>()},
            {"val.loss", torch::cross_entropy_loss(logits, y_).item<double>()}};
  }
  std::map<std::string, std::vector<double>> routing_stats() override {
    if (!o_.moe) return {};
    return {{"experts", {0.5, 0.5}}};
  }
  std::string data_state() const override {
    std::ostringstream s;
    s << rng_;
    return s.str();
  }
  void load_data_state(const std::string& state) override {
    if (state.empty()) return;
    std::istringstream s(state);
    s >> rng_;
  }

 private:
  SyntheticTaskOptions o_;
  TinyNet net_{nullptr};
  torch::Tensor x_, y_, order_;
  int64_t pos_ = 0;
  int rank_ = 0, world_ = 1;
  int64_t calls_ = 0;
  std::mt19937 rng_;
};

/// Trainer config for the synthetic task: SGD/AdamW, no progress bar, no log file.
inline TrainerConfig synthetic_config(const std::string& run_dir) {
  TrainerConfig c;
  c.run_dir = run_dir;
  c.log_file = false;
  c.run.device("cpu");
  c.config_text = "synthetic: true\n";
  c.train.epochs(2).progress(false).log_every(1).grad_clip(1.0);
  c.train.optimizer().name("adamw").lr(0.01).weight_decay(0.01);
  c.train.schedule().name("cosine").warmup_epochs(0.5);
  c.train.checkpoint().every_epochs(1).every_steps(0).metric("val.top1");
  return c;
}

}  // namespace ewa::test
