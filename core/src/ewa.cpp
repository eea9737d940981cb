// Experts Weights Averaging: share-rate schedules and the in-place expert update.
#include "ewa/core/ewa.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "ewa/core/moe.h"

namespace ewa {

ShareRateSchedule::ShareRateSchedule(const EwaOptions& options) : options_(options) {
  if (options.share_rate() < 0 || options.share_rate() > 1) {
    throw std::invalid_argument("ewa.share_rate: expected a number in [0, 1], got " +
                                std::to_string(options.share_rate()));
  }
  const auto& s = options.schedule();
  if (s != "constant" && s != "linear" && s != "cosine") {
    throw std::invalid_argument("ewa.schedule: unknown schedule '" + s + "' (known: constant, linear, cosine)");
  }
  if (options.warmup_steps() < 0) throw std::invalid_argument("ewa.warmup_steps: expected an integer >= 0");
  if (options.end_step() < 0) throw std::invalid_argument("ewa.end_step: expected an integer >= 0");
}

double ShareRateSchedule::at(int64_t step) const {
  const double b_max = options_.share_rate();
  const int64_t k = options_.warmup_steps();
  if (options_.end_step() > 0 && step > options_.end_step()) return 0.0;  // early EWA ended
  if (options_.schedule() == "constant" || k == 0) return b_max;
  const double frac = static_cast<double>(std::clamp<int64_t>(step, 0, k)) / static_cast<double>(k);
  if (options_.schedule() == "linear") return b_max * frac;
  return b_max * 0.5 * (1.0 - std::cos(M_PI * frac));  // cosine ramp
}

namespace {

// Optimizer state (AdamW moments, SGD momentum) is deliberately left per expert: EWA is a
// weight-space regulariser applied after the step, the paper averages weights only, and
// the moments describe each expert's own gradient statistics (experts see different
// tokens under RUP). Mixing the moments too would make the update depend on the optimizer
// and break the exact per-step contraction property documented in ewa.h.
void ewa_update_(torch::Tensor& p, double beta) {
  const int64_t n = p.size(0);  // [E, ...]
  const double other = beta / static_cast<double>(n - 1);
  auto sum = p.sum(0, /*keepdim=*/true);  // [1, ...]
  p.mul_(1.0 - beta - other).add_(sum, other);
}

}  // namespace

int64_t apply_ewa_(torch::nn::Module& root, double beta) {
  if (!(beta >= 0 && beta <= 1)) {
    throw std::invalid_argument("apply_ewa_: share rate must be in [0, 1], got " + std::to_string(beta));
  }
  torch::NoGradGuard no_grad;
  std::vector<ExpertBankImpl*> layers;
  if (auto* self = dynamic_cast<ExpertBankImpl*>(&root)) layers.push_back(self);
  for (const auto& m : root.modules(/*include_self=*/false)) {
    if (auto* e = dynamic_cast<ExpertBankImpl*>(m.get())) layers.push_back(e);
  }
  int64_t updated = 0;
  for (auto* e : layers) {
    if (e->num_experts() < 2) continue;
    if (beta > 0) {
      for (auto& p : e->expert_tensors()) ewa_update_(p, beta);
    }
    ++updated;
  }
  return updated;
}

std::map<std::string, double> expert_spread(torch::nn::Module& root) {
  torch::NoGradGuard no_grad;
  std::map<std::string, double> out;
  auto measure = [&](const std::string& name, ExpertBankImpl& e) {
    if (e.num_experts() < 2) return;
    torch::Tensor dev2, mean2;  // accumulated on the device, one sync per layer
    for (auto& p : e.expert_tensors()) {
      auto w = p.detach().to(torch::kDouble);
      auto m = w.mean(0, /*keepdim=*/true);
      auto d = (w - m).pow(2).sum() / static_cast<double>(w.size(0));
      auto s = m.pow(2).sum();
      dev2 = dev2.defined() ? dev2 + d : d;
      mean2 = mean2.defined() ? mean2 + s : s;
    }
    if (!dev2.defined()) return;
    const double num = dev2.item<double>(), den = mean2.item<double>();
    out[name] = den > 0 ? std::sqrt(num / den) : 0.0;
  };
  if (auto* self = dynamic_cast<ExpertBankImpl*>(&root)) measure("", *self);
  for (const auto& item : root.named_modules("", /*include_self=*/false)) {
    auto* e = dynamic_cast<ExpertBankImpl*>(item.value().get());
    if (!e) continue;
    // The bank of an MoELayer is its child "experts": key it like the layer's other telemetry.
    const std::string& key = item.key();
    const std::string suffix = ".experts";
    const bool child = key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
    measure(child ? key.substr(0, key.size() - suffix.size()) : key, *e);
  }
  return out;
}

}  // namespace ewa
