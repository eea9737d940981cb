// Routing-plan helpers (capacity, validation) and the Random Uniform Partition router.
#include "ewa/core/router.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

namespace ewa {

int64_t expert_capacity(int64_t num_tokens, int64_t num_experts, int64_t k, double capacity_factor,
                        int64_t multiple) {
  TORCH_CHECK(num_tokens >= 0 && num_experts >= 1 && k >= 1 && multiple >= 1 && capacity_factor >= 0,
              "expert_capacity: bad arguments (tokens ", num_tokens, ", experts ", num_experts, ", k ", k,
              ", capacity_factor ", capacity_factor, ", multiple ", multiple, ")");
  int64_t cap = capacity_factor == 0
                    ? k * num_tokens
                    : static_cast<int64_t>(std::ceil(static_cast<double>(k * num_tokens) * capacity_factor /
                                                     static_cast<double>(num_experts)));
  cap = std::max<int64_t>(cap, 1);
  return (cap + multiple - 1) / multiple * multiple;
}

void validate_plan(const RoutingPlan& plan, int64_t batch, int64_t tokens, int64_t num_experts,
                   const std::string& router_name) {
  const std::string who = "router '" + router_name + "': ";
  if (plan.is_soft()) {
    TORCH_CHECK(plan.soft_combine.defined(), who, "soft_dispatch set without soft_combine");
    TORCH_CHECK(plan.soft_dispatch.dim() == 4 && plan.soft_dispatch.size(0) == batch &&
                    plan.soft_dispatch.size(1) == tokens && plan.soft_dispatch.size(2) == num_experts,
                who, "soft_dispatch must be [B=", batch, ", T=", tokens, ", E=", num_experts, ", S], got ",
                plan.soft_dispatch.sizes());
    TORCH_CHECK(plan.soft_combine.sizes() == plan.soft_dispatch.sizes(), who,
                "soft_combine shape ", plan.soft_combine.sizes(), " != soft_dispatch shape ",
                plan.soft_dispatch.sizes());
    return;
  }
  TORCH_CHECK(plan.dispatch_index.defined() && plan.combine_weight.defined(), who,
              "plan has neither dispatch_index/combine_weight nor soft_dispatch/soft_combine");
  TORCH_CHECK(plan.dispatch_index.dim() == 2 && plan.dispatch_index.size(0) == num_experts, who,
              "dispatch_index must be [E=", num_experts, ", C], got ", plan.dispatch_index.sizes());
  TORCH_CHECK(plan.dispatch_index.scalar_type() == torch::kLong, who, "dispatch_index must be int64");
  TORCH_CHECK(plan.combine_weight.sizes() == plan.dispatch_index.sizes(), who, "combine_weight shape ",
              plan.combine_weight.sizes(), " != dispatch_index shape ", plan.dispatch_index.sizes());
  TORCH_CHECK(plan.combine_weight.is_floating_point(), who, "combine_weight must be floating point");
  if (plan.token_slot.defined()) {
    TORCH_CHECK(plan.token_slot.dim() == 1 && plan.token_slot.size(0) == batch * tokens &&
                    plan.token_slot.scalar_type() == torch::kLong,
                who, "token_slot must be int64 [B*T=", batch * tokens, "], got ", plan.token_slot.sizes());
  }
}

RupRouterImpl::RupRouterImpl(int64_t num_experts, std::optional<uint64_t> seed) : RouterImpl(num_experts) {
  if (seed) reseed(*seed);
}

void RupRouterImpl::reseed(uint64_t seed) { generator_ = at::make_generator<at::CPUGeneratorImpl>(seed); }

torch::Tensor RupRouterImpl::partition(int64_t n) {
  const int64_t e = num_experts_;
  TORCH_CHECK(n >= 1, "rup router: need at least one token, got ", n);
  torch::Tensor perm = generator_ ? torch::randperm(n, *generator_, torch::kLong) : torch::randperm(n, torch::kLong);
  const int64_t base = n / e, rem = n % e;
  const int64_t cap = base + (rem > 0 ? 1 : 0);
  // Expert i owns perm[start_i, start_i + size_i) with size_i = base + (i < rem).
  auto expert = torch::arange(e, torch::kLong).unsqueeze(1);          // [E, 1]
  auto slot = torch::arange(cap, torch::kLong).unsqueeze(0);          // [1, C]
  auto start = expert * base + torch::clamp_max(expert, rem);         // [E, 1]
  auto size = base + (expert < rem).to(torch::kLong);                 // [E, 1]
  auto valid = slot < size;                                           // [E, C]
  auto pos = (start + slot).clamp_max(n - 1);                         // [E, C]
  return torch::where(valid, perm.index_select(0, pos.reshape(-1)).view({e, cap}),
                      torch::full({}, -1, torch::kLong));             // [E, C]
}

RoutingPlan RupRouterImpl::route(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 3, "rup router: expected tokens [B, T, D], got ", x.sizes());
  const int64_t n = x.size(0) * x.size(1);
  RoutingPlan plan;
  auto index = partition(n).to(x.device());  // [E, C]
  auto valid = index >= 0;
  plan.dispatch_index = index;
  plan.combine_weight = valid.to(x.scalar_type());  // 1 on used slots, 0 on padding
  // Inverse permutation: token index[e][c] sits in flat slot e*C + c.
  auto flat = index.reshape({-1});                   // [E*C]
  auto slots = torch::arange(flat.numel(), flat.options());
  auto used = flat >= 0;
  plan.token_slot = torch::full({n}, -1, flat.options());  // [N]
  plan.token_slot.index_put_({flat.masked_select(used)}, slots.masked_select(used));
  plan.stats["expert_load"] = valid.sum(1).to(torch::kDouble).div(static_cast<double>(n));  // [E]
  return plan;
}

RoutingPlan RouterImpl::route_grouped(const torch::Tensor& x) {
  const int64_t gs = group_size();
  TORCH_CHECK(x.dim() == 3, "router '", name(), "': expected tokens [B, T, D], got ", x.sizes());
  const int64_t n = x.size(0) * x.size(1);
  if (gs <= 0 || gs >= n) return route(x);
  TORCH_CHECK(n % gs == 0, "router '", name(), "': router.group_size ", gs, " must divide the ", n,
              " tokens of the batch (B*T = ", x.size(0), "*", x.size(1), ")");
  const int64_t groups = n / gs;
  auto flat = x.reshape({groups, gs, x.size(2)});  // [G, gs, D]
  std::vector<RoutingPlan> plans;
  plans.reserve(static_cast<size_t>(groups));
  int64_t cap = 1;
  for (int64_t g = 0; g < groups; ++g) {  // one routing problem per group (vmoe vmaps this)
    plans.push_back(route(flat[g].unsqueeze(0)));
    TORCH_CHECK(!plans.back().is_soft(), "router '", name(), "': routing groups need a sparse plan");
    cap = std::max(cap, plans.back().dispatch_index.size(1));
  }
  std::vector<torch::Tensor> index, weight;
  for (int64_t g = 0; g < groups; ++g) {
    auto& p = plans[static_cast<size_t>(g)];
    const int64_t pad = cap - p.dispatch_index.size(1);
    auto idx = torch::where(p.dispatch_index >= 0, p.dispatch_index + g * gs, p.dispatch_index);  // [E, C_g]
    auto w = p.combine_weight;                                                                    // [E, C_g]
    if (pad > 0) {
      idx = torch::constant_pad_nd(idx, {0, pad}, -1);
      w = torch::constant_pad_nd(w, {0, pad}, 0);
    }
    index.push_back(idx);
    weight.push_back(w);
  }
  RoutingPlan out;
  out.dispatch_index = torch::cat(index, 1);  // [E, G*C]
  out.combine_weight = torch::cat(weight, 1);  // [E, G*C]
  for (const auto& p : plans) {
    for (const auto& [k, v] : p.aux_losses) {
      out.aux_losses[k] = out.aux_losses.count(k) ? out.aux_losses[k] + v : v;
    }
    for (const auto& [k, v] : p.stats) out.stats[k] = out.stats.count(k) ? out.stats[k] + v : v;
  }
  const double inv = 1.0 / static_cast<double>(groups);
  for (auto& [k, v] : out.aux_losses) v = v * inv;
  for (auto& [k, v] : out.stats) v = v * inv;
  return out;
}

bool routes_at_eval(const torch::nn::Module& root) {
  if (auto* r = dynamic_cast<const RouterImpl*>(&root); r && !r->averaged_expert_at_eval()) return true;
  for (const auto& m : root.modules(/*include_self=*/false)) {
    if (auto* r = dynamic_cast<const RouterImpl*>(m.get()); r && !r->averaged_expert_at_eval()) return true;
  }
  return false;
}

}  // namespace ewa
