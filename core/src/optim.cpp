// Parameter grouping and AdamW / SGD construction.
#include "ewa/core/optim.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <map>
#include <stdexcept>

namespace ewa {

bool is_no_decay_param(const std::string& name, const torch::Tensor& param) {
  if (param.dim() <= 1) return true;
  for (const char* key : {"pos_embed", "cls_token", "norm"}) {
    if (name.find(key) != std::string::npos) return true;
  }
  return false;
}

namespace {
// Longest matching prefix of `name` in `mults` ("" when none).
std::string match_prefix(const std::string& name, const std::map<std::string, double>& mults) {
  std::string best;
  bool found = false;
  for (const auto& [prefix, factor] : mults) {
    (void)factor;
    if (name.compare(0, prefix.size(), prefix) == 0 && (!found || prefix.size() > best.size())) {
      best = prefix;
      found = true;
    }
  }
  return found ? best : std::string("\x01");  // \x01: no multiplier
}
}  // namespace

std::vector<ParamGroupSpec> build_param_groups(const torch::nn::Module& model, const OptimizerOptions& opts) {
  for (const auto& [prefix, factor] : opts.lr_mult()) {
    if (!(factor > 0)) {
      throw std::invalid_argument("train.optimizer.lr_mult." + prefix + ": expected a number > 0, found " +
                                  std::to_string(factor));
    }
  }
  // key: (no_decay?, prefix) -> group
  std::map<std::pair<bool, std::string>, ParamGroupSpec> groups;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    bool no_decay = opts.no_decay_on_norm_bias() && is_no_decay_param(item.key(), item.value());
    std::string prefix = match_prefix(item.key(), opts.lr_mult());
    auto& g = groups[{no_decay, prefix}];
    if (g.params.empty()) {
      bool has_mult = prefix != "\x01";
      g.name = std::string(no_decay ? "no_decay" : "decay") + (has_mult ? "@" + prefix : "");
      g.weight_decay = no_decay ? 0.0 : opts.weight_decay();
      g.lr_mult = has_mult ? opts.lr_mult().at(prefix) : 1.0;
    }
    g.param_names.push_back(item.key());
    g.params.push_back(item.value());
  }
  std::vector<ParamGroupSpec> out;
  for (auto& [key, g] : groups) out.push_back(std::move(g));
  return out;
}

namespace {

// One AdamW update of `n` elements, the same arithmetic as torch::optim::AdamW::step():
// p *= 1 - lr wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p += -lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
template <typename T>
void fused_adamw_kernel(T* p, const T* g, T* m, T* v, int64_t n, double lr, double wd, double beta1, double beta2,
                        double eps, int64_t step) {
  const T decay = static_cast<T>(1 - lr * wd);
  const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
  const T one_minus_b1 = static_cast<T>(1 - beta1), one_minus_b2 = static_cast<T>(1 - beta2);
  const double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
  const T neg_step_size = static_cast<T>(-lr / bc1);
  const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
  const T eps_t = static_cast<T>(eps);
  at::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T gi = g[i];
      const T mi = m[i] * b1 + gi * one_minus_b1;
      const T vi = v[i] * b2 + gi * gi * one_minus_b2;
      const T denom = std::sqrt(vi) / bc2_sqrt + eps_t;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay + neg_step_size * (mi / denom);
    }
  });
}

bool fusable(const torch::Tensor& p, const torch::Tensor& g) {
  return p.device().is_cpu() && !g.is_sparse() && p.is_contiguous() && g.is_contiguous() &&
         p.scalar_type() == g.scalar_type() &&
         (p.scalar_type() == torch::kFloat || p.scalar_type() == torch::kDouble);
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  for (const auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    if (o.amsgrad()) return torch::optim::AdamW::step(std::move(closure));
    for (const auto& p : group.params()) {
      if (p.grad().defined() && !fusable(p, p.grad())) return torch::optim::AdamW::step(std::move(closure));
    }
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto it = state_.find(c10::guts::to_string(p.unsafeGetTensorImpl()));
      if (it == state_.end()) {
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(0);
        st->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        st->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        it = state_.emplace(c10::guts::to_string(p.unsafeGetTensorImpl()), std::move(st)).first;
      }
      auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
      st.step(st.step() + 1);
      auto m = st.exp_avg(), v = st.exp_avg_sq();
      TORCH_CHECK(m.is_contiguous() && v.is_contiguous() && m.scalar_type() == p.scalar_type(),
                  "FusedAdamW: optimizer state does not match its parameter");
      const auto& g = p.grad();
      const double b1 = std::get<0>(o.betas()), b2 = std::get<1>(o.betas());
      AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "fused_adamw", [&] {
        fused_adamw_kernel<scalar_t>(p.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), m.data_ptr<scalar_t>(),
                                     v.data_ptr<scalar_t>(), p.numel(), o.lr(), o.weight_decay(), b1, b2, o.eps(),
                                     st.step());
      });
    }
  }
  return loss;
}

void Optimizer::set_lr(double lr) {
  auto& groups = optim->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) groups[g].options().set_lr(lr * lr_mult.at(g));
}

double Optimizer::group_lr(size_t g) const { return optim->param_groups().at(g).options().get_lr(); }

Optimizer make_optimizer(const torch::nn::Module& model, const OptimizerOptions& opts) {
  auto specs = build_param_groups(model, opts);
  if (specs.empty()) throw std::invalid_argument("make_optimizer: the model has no trainable parameters");
  Optimizer result;
  if (opts.name() == "adamw") {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (const auto& s : specs) {
      auto o = std::make_unique<torch::optim::AdamWOptions>(opts.lr() * s.lr_mult);
      o->betas({opts.beta1(), opts.beta2()}).eps(opts.eps()).weight_decay(s.weight_decay);
      groups.emplace_back(s.params, std::move(o));
    }
    result.optim = std::make_unique<FusedAdamW>(std::move(groups),
                                                         torch::optim::AdamWOptions(opts.lr()));
  } else if (opts.name() == "sgd") {
    if (opts.nesterov() && opts.momentum() <= 0) {
      throw std::invalid_argument("train.optimizer.nesterov: requires momentum > 0");
    }
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (const auto& s : specs) {
      auto o = std::make_unique<torch::optim::SGDOptions>(opts.lr() * s.lr_mult);
      o->momentum(opts.momentum()).nesterov(opts.nesterov()).weight_decay(s.weight_decay);
      groups.emplace_back(s.params, std::move(o));
    }
    result.optim = std::make_unique<torch::optim::SGD>(std::move(groups), torch::optim::SGDOptions(opts.lr()));
  } else {
    throw std::invalid_argument("train.optimizer.name: expected adamw or sgd, found '" + opts.name() + "'");
  }
  for (const auto& s : specs) {
    result.lr_mult.push_back(s.lr_mult);
    result.group_names.push_back(s.name);
  }
  return result;
}

}  // namespace ewa
