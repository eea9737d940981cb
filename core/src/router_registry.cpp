// The one registry of built-in routers: make_router() maps RouterOptions::name to a
// constructor. Explicit (no static self-registration, which static libraries drop).
#include <torch/torch.h>

#include <functional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "ewa/core/router.h"

namespace ewa {
namespace {

using Factory = std::function<RouterPtr(const RouterOptions&, int64_t dim, int64_t num_experts)>;

const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> entries = {
      {"rup", [](const RouterOptions&, int64_t, int64_t e) -> RouterPtr { return std::make_shared<RupRouterImpl>(e); }},
  };
  return entries;
}

}  // namespace

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
  throw std::invalid_argument("unknown or unavailable router '" + options.name() + "' (known: " + known + ")");
}

}  // namespace ewa
