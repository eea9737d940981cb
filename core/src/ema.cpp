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
template <class F>
void for_each_batchnorm(torch::nn::Module& model, F&& f) {
  for (const auto& m : model.modules(/*include_self=*/true)) {
    if (auto* b1 = dynamic_cast<torch::nn::BatchNorm1dImpl*>(m.get())) {
      f(*b1);
    } else if (auto* b2 = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get())) {
      f(*b2);
    } else if (auto* b3 = dynamic_cast<torch::nn::BatchNorm3dImpl*>(m.get())) {
      f(*b3);
    }
  }
}
}  // namespace

std::vector<torch::Tensor> batchnorm_statistics(torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  for_each_batchnorm(model, [&](auto& bn) {
    if (!bn.options.track_running_stats()) return;
    out.push_back(bn.running_mean);
    out.push_back(bn.running_var);
  });
  return out;
}

int64_t recompute_batchnorm(torch::nn::Module& model, const std::function<bool()>& forward_next, int64_t max_batches) {
  if (max_batches <= 0) return 0;
  struct Saved {
    std::function<void(c10::optional<double>)> set_momentum;
    c10::optional<double> momentum;
    torch::Tensor mean, var, tracked;  // the statistics' storage and a copy of their values
    torch::Tensor mean0, var0, tracked0;
  };
  std::vector<Saved> saved;
  const bool was_training = model.is_training();
  model.eval();
  {
    torch::NoGradGuard ng;
    for_each_batchnorm(model, [&](auto& bn) {
      if (!bn.options.track_running_stats()) return;
      Saved s;
      s.set_momentum = [&bn](c10::optional<double> m) { bn.options.momentum(m); };
      s.momentum = bn.options.momentum();
      s.mean = bn.running_mean;
      s.var = bn.running_var;
      s.tracked = bn.num_batches_tracked;
      s.mean0 = s.mean.clone();
      s.var0 = s.var.clone();
      s.tracked0 = s.tracked.clone();
      bn.reset_running_stats();
      bn.options.momentum(c10::nullopt);  // cumulative: 1 / num_batches_tracked
      bn.train(true);
      saved.push_back(std::move(s));
    });
  }
  int64_t n = 0;
  auto restore = [&] {
    torch::NoGradGuard ng;
    for (auto& s : saved) {
      s.set_momentum(s.momentum);
      if (n == 0) {
        s.mean.copy_(s.mean0);
        s.var.copy_(s.var0);
        s.tracked.copy_(s.tracked0);
      }
    }
    model.train(was_training);
  };
  if (saved.empty()) {
    restore();
    return 0;
  }
  try {
    while (n < max_batches && forward_next()) ++n;
  } catch (...) {
    n = 0;  // a failed pass leaves the statistics as they were
    restore();
    throw;
  }
  restore();
  return n;
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
