// The one registry of built-in routers: make_router() maps RouterOptions::name to a
// constructor. Explicit (no static self-registration, which static libraries drop).
#include <torch/torch.h>

#include <functional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "ewa/core/router.h"
#include "ewa/core/routers.h"

namespace ewa {
namespace {

using Factory = std::function<RouterPtr(const RouterOptions&, int64_t dim, int64_t num_experts)>;

[[noreturn]] void bad_option(const std::string& router, const std::string& key, const std::string& why) {
  throw std::invalid_argument("router '" + router + "': router." + key + " " + why);
}

/// Checks of the options that depend on the layer (number of experts) or that
/// RouterOptions::visit cannot see when the options are built in code.
void check_options(const RouterOptions& o, int64_t num_experts) {
  const std::string& n = o.name();
  if (n == "rup") return;
  if (o.k() < 1 || o.k() > num_experts) {
    bad_option(n, "k", "must lie in [1, num_experts=" + std::to_string(num_experts) + "], got " + std::to_string(o.k()));
  }
  if (o.capacity_factor() < 0) bad_option(n, "capacity_factor", "must be >= 0 (0 = dropless)");
  if (o.capacity_multiple() < 1) bad_option(n, "capacity_multiple", "must be >= 1");
  if (o.iterations() < 1) bad_option(n, "iterations", "must be >= 1");
  if (o.group_size() < 0) bad_option(n, "group_size", "must be >= 0 (0 = one group per batch)");
  if (!(o.epsilon() > 0)) bad_option(n, "epsilon", "must be > 0");
  if (o.slots_per_expert() < 1) bad_option(n, "slots_per_expert", "must be >= 1");
  if (o.noise_std() < 0) bad_option(n, "noise_std", "must be >= 0");
  for (auto [key, w] : {std::pair{"importance_loss", o.importance_loss()}, std::pair{"load_loss", o.load_loss()},
                        std::pair{"z_loss", o.z_loss()}, std::pair{"superclass_weight", o.superclass_weight()}}) {
    if (w < 0) bad_option(n, key, "must be >= 0");
  }
  if (o.load_loss() > 0 && o.noise_std() == 0) {
    bad_option(n, "load_loss", "needs router noise (set router.noise_std > 0): the load is the probability of "
                               "selection under noise");
  }
  const bool expert_choice = n.find("expert_choice") != std::string::npos;
  if (expert_choice && o.capacity_factor() == 0) {
    bad_option(n, "capacity_factor", "must be > 0 for expert-choice routers (each expert takes "
                                     "capacity_factor * tokens / experts tokens; there is no dropless mode)");
  }
  if (n != "per_image" && !o.superclass_file().empty()) {
    bad_option(n, "superclass_file", "is only used by the per_image router");
  }
}

template <class R, class... Extra>
Factory learned(Extra... extra) {
  return [=](const RouterOptions& given, int64_t dim, int64_t e) -> RouterPtr {
    const RouterOptions o = resolve_router_defaults(given);
    check_options(o, e);
    return std::make_shared<R>(o, dim, e, extra...);
  };
}

const std::vector<std::pair<std::string, Factory>>& registry() {
  using Sel = ExpertChoiceRouterImpl::Selection;
  static const std::vector<std::pair<std::string, Factory>> entries = {
      {"rup", [](const RouterOptions&, int64_t, int64_t e) -> RouterPtr { return std::make_shared<RupRouterImpl>(e); }},
      {"softmax_token_choice", learned<TokenChoiceRouterImpl>(false)},
      {"sinkhorn_token_choice", learned<TokenChoiceRouterImpl>(true)},
      {"softmax_expert_choice", learned<ExpertChoiceRouterImpl>(Sel::kSoftmax)},
      {"sinkhorn_expert_choice", learned<ExpertChoiceRouterImpl>(Sel::kSinkhorn)},
      {"sparsity_constrained_expert_choice", learned<ExpertChoiceRouterImpl>(Sel::kSparsityConstrained)},
      {"soft_moe", learned<SoftMoERouterImpl>()},
      {"per_image", learned<PerImageRouterImpl>()},
  };
  return entries;
}

}  // namespace

RouterOptions resolve_router_defaults(RouterOptions o) {
  const std::string& n = o.name();
  // google-research/vmoe: NoisyTopExpertsPerItemRouter / NoisyTopItemsPerExpertRouter default
  // to noise_std 1 (applied as 1/E); the k-sparse (sparsity-constrained) router, Soft MoE and
  // Mobile V-MoE's per-image router use no noise. The V-MoE paper configs
  // (vmoe/configs/vmoe_paper/common.py) weight the importance and load losses 0.005 each; the
  // OT routers of the Routers study set them to 0.
  const bool noisy = n == "softmax_token_choice" || n == "sinkhorn_token_choice" || n == "softmax_expert_choice" ||
                     n == "sinkhorn_expert_choice";
  if (o.noise_std() == -1) o.noise_std(noisy ? 1.0 : 0.0);
  const double aux = n == "softmax_token_choice" ? 0.005 : 0.0;
  if (o.importance_loss() == -1) o.importance_loss(aux);
  if (o.load_loss() == -1) o.load_loss(o.noise_std() > 0 ? aux : 0.0);
  return o;
}

std::vector<std::string> available_routers() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

RouterPtr make_router(const RouterOptions& options, int64_t dim, int64_t num_experts) {
  for (const auto& [name, factory] : registry()) {
    if (name == options.name()) return factory(options, dim, num_experts);
  }
  std::string known;
  for (const auto& n : available_routers()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown router '" + options.name() + "' (known: " + known + ")");
}

}  // namespace ewa
