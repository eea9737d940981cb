// Parameter grouping and AdamW / SGD construction.
#include "ewa/core/optim.h"

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
    result.optim = std::make_unique<torch::optim::AdamW>(std::move(groups),
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
