// Model EMA (train.ema): multi-tensor updates of a shadow copy of the weights.
#include "ewa/core/ema.h"

#include <stdexcept>

#include "ewa/core/hooks.h"
#include "ewa/core/trainer.h"

namespace ewa {

namespace {
/// The model's parameters then defined buffers, in a fixed order.
NamedTensors live_tensors(torch::nn::Module& model) {
  NamedTensors out;
  for (auto& p : model.named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (auto& b : model.named_buffers(true)) {
    if (b.value().defined()) out.emplace_back(b.key(), b.value());
  }
  return out;
}
}  // namespace

ModelEma::ModelEma(torch::nn::Module& model, const EmaOptions& options) : options_(options) {
  torch::NoGradGuard ng;
  for (auto& [name, t] : live_tensors(model)) {
    names_.push_back(name);
    shadow_.push_back(t.detach().clone());
    floating_.push_back(t.is_floating_point());
  }
}

double ModelEma::decay_at(int64_t updates) const {
  if (!options_.warmup()) return options_.decay();
  const double n = static_cast<double>(updates);
  return std::min(options_.decay(), (1.0 + n) / (10.0 + n));
}

double ModelEma::update(torch::nn::Module& model) {
  torch::NoGradGuard ng;
  const NamedTensors live = live_tensors(model);
  TORCH_CHECK(live.size() == shadow_.size(), "ModelEma: the model has ", live.size(), " tensors, the EMA ", shadow_.size());
  const double d = decay_at(updates_);
  std::vector<torch::Tensor> avg, src;
  for (size_t i = 0; i < live.size(); ++i) {
    if (floating_[i]) {
      avg.push_back(shadow_[i]);
      src.push_back(live[i].second.detach());
    } else {
      shadow_[i].copy_(live[i].second);
    }
  }
  if (!avg.empty()) {  // shadow = d * shadow + (1 - d) * live, one multi-tensor kernel each
    at::_foreach_mul_(avg, d);
    at::_foreach_add_(avg, src, 1.0 - d);
  }
  ++updates_;
  return d;
}

void ModelEma::swap(torch::nn::Module& model) {
  torch::NoGradGuard ng;
  const NamedTensors live = live_tensors(model);
  TORCH_CHECK(live.size() == shadow_.size(), "ModelEma: the model has ", live.size(), " tensors, the EMA ", shadow_.size());
  for (size_t i = 0; i < live.size(); ++i) {
    torch::Tensor keep = live[i].second.detach().clone();
    live[i].second.detach().copy_(shadow_[i]);
    shadow_[i].copy_(keep);
  }
}

void ModelEma::copy_to(torch::nn::Module& model) const {
  torch::NoGradGuard ng;
  const NamedTensors live = live_tensors(model);
  TORCH_CHECK(live.size() == shadow_.size(), "ModelEma: the model has ", live.size(), " tensors, the EMA ", shadow_.size());
  for (size_t i = 0; i < live.size(); ++i) live[i].second.detach().copy_(shadow_[i]);
}

NamedTensors ModelEma::state() const {
  NamedTensors out;
  for (size_t i = 0; i < shadow_.size(); ++i) out.emplace_back(names_[i], shadow_[i].detach().cpu());
  return out;
}

void ModelEma::load(const NamedTensors& shadow, int64_t updates) {
  if (shadow.size() != shadow_.size()) {
    throw std::invalid_argument("EMA weights hold " + std::to_string(shadow.size()) + " tensors, the model " +
                                std::to_string(shadow_.size()));
  }
  torch::NoGradGuard ng;
  for (size_t i = 0; i < shadow_.size(); ++i) {
    if (shadow[i].first != names_[i] || shadow[i].second.sizes() != shadow_[i].sizes()) {
      throw std::invalid_argument("EMA tensor '" + shadow[i].first + "' does not match the model's '" + names_[i] + "'");
    }
  }
  for (size_t i = 0; i < shadow_.size(); ++i) shadow_[i].copy_(shadow[i].second);
  updates_ = updates;
}

std::vector<std::string> batchnorm_modules(torch::nn::Module& model) {
  std::vector<std::string> out;
  for (const auto& m : model.named_modules()) {
    if (m.value()->name().find("BatchNorm") != std::string::npos) out.push_back(m.key());
  }
  return out;
}

namespace {
class EmaHook : public Hook {
 public:
  explicit EmaHook(std::shared_ptr<ModelEma> ema) : ema_(std::move(ema)) {}
  std::string name() const override { return "ema"; }
  void after_step(Trainer& t) override {
    if (t.state().step % ema_->options().every_n_steps() != 0) return;
    t.step_record()["ema_decay"] = ema_->update(t.task().model());
  }

 private:
  std::shared_ptr<ModelEma> ema_;
};
}  // namespace

std::shared_ptr<Hook> make_ema_hook(std::shared_ptr<ModelEma> ema) { return std::make_shared<EmaHook>(std::move(ema)); }

}  // namespace ewa
