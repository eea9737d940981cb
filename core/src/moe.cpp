// The ViT's stacked FFN experts, the one MoE layer executing routing plans, MoE block placement.
#include "ewa/core/moe.h"

#include <torch/torch.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <vector>

#include "ewa/core/gemm.h"
#include "ewa/core/vit.h"
#include "init_util.h"

namespace ewa {

// --------------------------------------------------------------------------------------
StackedExpertsImpl::StackedExpertsImpl(int64_t num_experts, int64_t in_features, int64_t hidden_features,
                                       int64_t out_features, double drop)
    : drop_(drop) {
  TORCH_CHECK(num_experts >= 1 && in_features >= 1 && hidden_features >= 1 && out_features >= 1,
              "StackedExperts: sizes must be >= 1 (experts ", num_experts, ", in ", in_features, ", hidden ",
              hidden_features, ", out ", out_features, ")");
  w1 = register_parameter("w1", torch::empty({num_experts, in_features, hidden_features}));
  b1 = register_parameter("b1", torch::zeros({num_experts, hidden_features}));
  w2 = register_parameter("w2", torch::empty({num_experts, hidden_features, out_features}));
  b2 = register_parameter("b2", torch::zeros({num_experts, out_features}));
  reset_parameters("trunc_normal");
}

torch::Tensor StackedExpertsImpl::forward(const torch::Tensor& xs) {
  TORCH_CHECK(xs.dim() == 3 && xs.size(0) == num_experts() && xs.size(2) == in_features(),
              "StackedExperts: expected slot inputs [E=", num_experts(), ", C, in=", in_features(), "], got ",
              xs.sizes());
  auto h = gemm(xs, w1, b1.unsqueeze(1));  // [E, C, hidden]
  h = torch::gelu(h);
  if (drop_ > 0) h = torch::dropout(h, drop_, is_training());
  auto y = gemm(h, w2, b2.unsqueeze(1));   // [E, C, out]
  if (drop_ > 0) y = torch::dropout(y, drop_, is_training());
  return y;
}

torch::Tensor StackedExpertsImpl::forward_expert(int64_t e, const torch::Tensor& x) {
  TORCH_CHECK(e >= 0 && e < num_experts() && x.dim() == 2 && x.size(1) == in_features(),
              "StackedExperts: expected expert in [0, ", num_experts(), ") and tokens [n, in=", in_features(),
              "], got expert ", e, " and ", x.sizes());
  auto h = gemm(x, w1[e], b1[e]);  // [n, hidden]
  h = torch::gelu(h);
  if (drop_ > 0) h = torch::dropout(h, drop_, is_training());
  auto y = gemm(h, w2[e], b2[e]);  // [n, out]
  if (drop_ > 0) y = torch::dropout(y, drop_, is_training());
  return y;
}

torch::Tensor StackedExpertsImpl::forward_mean(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == in_features(), "StackedExperts: expected [..., in=", in_features(),
              "], got ", x.sizes());
  // Same ops and operands as MlpImpl::forward with the collapsed weights (Linear layout).
  auto h = gemm_linear(x, w1.mean(0).t().contiguous(), b1.mean(0));  // [..., hidden]
  h = torch::gelu(h);
  if (drop_ > 0) h = torch::dropout(h, drop_, is_training());
  auto y = gemm_linear(h, w2.mean(0).t().contiguous(), b2.mean(0));  // [..., out]
  if (drop_ > 0) y = torch::dropout(y, drop_, is_training());
  return y;
}

void StackedExpertsImpl::copy_from_dense(const torch::Tensor& fc1_w, const torch::Tensor& fc1_b,
                                         const torch::Tensor& fc2_w, const torch::Tensor& fc2_b) {
  TORCH_CHECK(fc1_w.sizes() == torch::IntArrayRef({hidden_features(), in_features()}) &&
                  fc1_b.sizes() == torch::IntArrayRef({hidden_features()}) &&
                  fc2_w.sizes() == torch::IntArrayRef({out_features(), hidden_features()}) &&
                  fc2_b.sizes() == torch::IntArrayRef({out_features()}),
              "StackedExperts::copy_from_dense: dense FFN shapes fc1 ", fc1_w.sizes(), ", fc2 ", fc2_w.sizes(),
              " do not match experts in ", in_features(), ", hidden ", hidden_features(), ", out ",
              out_features());
  torch::NoGradGuard no_grad;
  w1.copy_(fc1_w.t().unsqueeze(0).expand_as(w1));  // [E, in, hidden]
  b1.copy_(fc1_b.unsqueeze(0).expand_as(b1));      // [E, hidden]
  w2.copy_(fc2_w.t().unsqueeze(0).expand_as(w2));  // [E, hidden, out]
  b2.copy_(fc2_b.unsqueeze(0).expand_as(b2));      // [E, out]
}

std::vector<torch::Tensor> StackedExpertsImpl::mean_dense() const {
  torch::NoGradGuard no_grad;
  return {w1.mean(0).t().contiguous(), b1.mean(0), w2.mean(0).t().contiguous(), b2.mean(0)};
}

std::shared_ptr<torch::nn::Module> StackedExpertsImpl::mean_module() const {
  auto mean = mean_dense();  // fc1_w [hidden, in], fc1_b, fc2_w [out, hidden], fc2_b
  auto dense = std::make_shared<MlpImpl>(in_features(), hidden_features(), out_features(), drop_);
  dense->to(w1.device(), w1.scalar_type());
  torch::NoGradGuard no_grad;
  dense->fc1->weight.copy_(mean[0]);
  dense->fc1->bias.copy_(mean[1]);
  dense->fc2->weight.copy_(mean[2]);
  dense->fc2->bias.copy_(mean[3]);
  dense->train(is_training());
  return dense;
}

void StackedExpertsImpl::reset_parameters(const std::string& weight_init) {
  torch::NoGradGuard no_grad;
  if (weight_init == "trunc_normal") {
    detail::trunc_normal_(w1, 0.02);
    detail::trunc_normal_(w2, 0.02);
    b1.zero_();
    b2.zero_();
  } else if (weight_init == "xavier") {
    detail::xavier_uniform_(w1, in_features(), hidden_features());
    detail::xavier_uniform_(w2, hidden_features(), out_features());
    b1.normal_(0.0, 1e-6);
    b2.normal_(0.0, 1e-6);
  } else {
    throw std::invalid_argument("StackedExperts: unknown weight_init '" + weight_init +
                                "' (known: trunc_normal, xavier)");
  }
}

// --------------------------------------------------------------------------------------
MoELayerImpl::MoELayerImpl(RouterPtr router_ptr, ExpertBankPtr bank) {
  TORCH_CHECK(router_ptr, "MoELayer: router is null");
  TORCH_CHECK(bank, "MoELayer: expert bank is null");
  TORCH_CHECK(router_ptr->num_experts() == bank->num_experts(), "MoELayer: router '", router_ptr->name(), "' has ",
              router_ptr->num_experts(), " experts, the expert bank has ", bank->num_experts());
  router = register_module("router", std::move(router_ptr));
  experts = register_module("experts", std::move(bank));
}

torch::Tensor MoELayerImpl::forward(const torch::Tensor& x) {
  if (!is_training() && router->averaged_expert_at_eval()) {
    last_aux_loss_ = torch::Tensor();
    last_aux_losses_.clear();
    return experts->forward_mean(x);
  }
  RoutingPlan plan = router->route_grouped(x.dim() == 2 ? x.unsqueeze(0) : x);  // tokens [B, T, in]
  last_aux_loss_ = is_training() ? plan.total_aux_loss() : torch::Tensor();
  last_aux_losses_ = is_training() ? plan.aux_losses : std::map<std::string, torch::Tensor>{};
  last_stats_ = std::move(plan.stats);
  return execute(x, plan);
}

MoEMlp::MoEMlp(int64_t in_features, int64_t hidden_features, int64_t out_features, int64_t num_experts,
               const RouterOptions& router, double drop)
    : MoEMlp(in_features, hidden_features, out_features, num_experts, make_router(router, in_features, num_experts),
             drop) {}

MoEMlp::MoEMlp(int64_t in_features, int64_t hidden_features, int64_t out_features, int64_t num_experts,
               RouterPtr router, double drop)
    : ModuleHolder(std::make_shared<MoELayerImpl>(
          std::move(router),
          std::make_shared<StackedExpertsImpl>(num_experts, in_features, hidden_features, out_features, drop))) {}

std::vector<int64_t> ragged_expert_counts(const RoutingPlan& plan, int64_t num_tokens) {
  if (plan.is_soft() || !plan.dispatch_index.defined() || plan.dispatch_index.numel() == 0) return {};
  const int64_t e = plan.dispatch_index.size(0), slots = plan.dispatch_index.numel();
  // At most one slot per token and no more slots than tokens (+ rounding per expert, e.g.
  // RUP): the padded work is at most the dense FFN's, so no host sync to count.
  if (plan.token_slot.defined() && slots < num_tokens + e) return {};
  auto counts = (plan.dispatch_index >= 0).sum(1).to(torch::kCPU).contiguous();  // [E] (host sync)
  std::vector<int64_t> out(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + e);
  int64_t routed = 0;
  for (int64_t v : out) routed += v;
  if (static_cast<double>(slots - routed) > kRaggedPaddingFraction * static_cast<double>(slots)) return out;
  return {};
}

torch::Tensor execute_plan(const torch::Tensor& x, const RoutingPlan& plan, int64_t num_experts, int64_t out_features,
                           const ExpertsFn& experts, const std::string& who, const ExpertFn& expert) {
  TORCH_CHECK(x.dim() == 3, who, ": expected tokens [B, T, D], got ", x.sizes());
  const int64_t e = num_experts, d = x.size(2), o = out_features;
  const int64_t b = x.size(0), t = x.size(1), n = b * t;
  validate_plan(plan, b, t, e, who);

  if (plan.is_soft()) {
    // Batched matmuls per image (einsum lowered these contractions far slower on CPU).
    const int64_t s = plan.soft_dispatch.size(3);
    auto disp = plan.soft_dispatch.to(x.scalar_type()).reshape({b, t, e * s});               // [B, T, E*S]
    auto xs = torch::bmm(disp.transpose(1, 2), x)                                           // [B, E*S, D]
                  .view({b, e, s, d}).permute({1, 0, 2, 3}).reshape({e, b * s, d});        // [E, B*S, D]
    auto ys = experts(xs)                                                                   // [E, B*S, O]
                  .view({e, b, s, o}).permute({1, 0, 2, 3}).reshape({b, e * s, o});        // [B, E*S, O]
    auto comb = plan.soft_combine.to(ys.scalar_type()).reshape({b, t, e * s});              // [B, T, E*S]
    return torch::bmm(comb, ys);                                                            // [B, T, O]
  }

  const auto& index = plan.dispatch_index;  // [E, C]
  const int64_t c = index.size(1);
  auto valid = index >= 0;                               // [E, C]
  const auto counts = expert ? ragged_expert_counts(plan, n) : std::vector<int64_t>{};
  if (!counts.empty()) {
    // Ragged: the routed tokens of all experts, expert-major, each expert on its own rows.
    auto tokens = index.masked_select(valid);                              // [V]
    if (tokens.numel() == 0) return torch::zeros({b, t, o}, x.options());
    auto xr = x.reshape({n, d}).index({tokens});                           // [V, D]
    std::vector<torch::Tensor> ys;
    ys.reserve(static_cast<size_t>(e));
    int64_t start = 0;
    for (int64_t i = 0; i < e; ++i) {
      if (counts[i] > 0) ys.push_back(expert(i, xr.narrow(0, start, counts[i])));  // [n_i, O]
      start += counts[i];
    }
    auto yr = torch::cat(ys, 0);                                           // [V, O]
    yr = yr * plan.combine_weight.masked_select(valid).to(yr.scalar_type()).unsqueeze(-1);
    c10::List<c10::optional<torch::Tensor>> at_index;
    at_index.push_back(tokens);
    return torch::zeros({n, o}, yr.options()).index_put(at_index, yr, /*accumulate=*/true).view({b, t, o});
  }
  auto flat_index = index.clamp_min(0).reshape({-1});    // [E*C]; empty slots read token 0 ...
  auto flat = x.reshape({n, d});                         // [N, D]
  // Advanced indexing (aten::index / index_put) rather than index_select / index_add: on
  // CPU their backward and accumulate paths are vectorised kernels, not per-row loops.
  auto xs = flat.index({flat_index}).view({e, c, d});    // [E, C, D]
  auto ys = experts(xs);                                 // [E, C, O]
  // ... and are zeroed by their weight before the combine.
  auto w = plan.combine_weight.to(ys.scalar_type()) * valid.to(ys.scalar_type());  // [E, C]
  ys = (ys * w.unsqueeze(-1)).reshape({e * c, o});       // [E*C, O]
  torch::Tensor out;
  if (plan.token_slot.defined()) {  // at most one slot per token: gather by the inverse
    auto slot = plan.token_slot;                         // [N]
    out = ys.index({slot.clamp_min(0)}) * (slot >= 0).to(ys.scalar_type()).unsqueeze(-1);  // [N, O]
  } else {
    c10::List<c10::optional<torch::Tensor>> at_index;
    at_index.push_back(flat_index);
    out = torch::zeros({n, o}, ys.options()).index_put(at_index, ys, /*accumulate=*/true);  // [N, O]
  }
  return out.view({b, t, o});                            // [B, T, O]
}

torch::Tensor MoELayerImpl::execute(const torch::Tensor& x, const RoutingPlan& plan) {
  const int64_t d = experts->in_features();
  TORCH_CHECK((x.dim() == 3 || x.dim() == 2) && x.size(-1) == d, "MoELayer: expected tokens [B, T, ", d,
              "] or [N, ", d, "], got ", x.sizes());
  auto y = execute_plan(x.dim() == 2 ? x.unsqueeze(0) : x, plan, experts->num_experts(), experts->out_features(),
                        [this](const torch::Tensor& xs) { return experts->forward(xs); },
                        router ? router->name() : std::string("plan"),
                        [this](int64_t e, const torch::Tensor& xe) { return experts->forward_expert(e, xe); });
  return x.dim() == 2 ? y[0] : y;  // [N, out] for a single sequence
}

std::map<std::string, std::map<std::string, double>> moe_routing_scalars(const torch::nn::Module& root) {
  std::map<std::string, std::map<std::string, double>> out;
  for (const auto& item : root.named_modules("", /*include_self=*/false)) {
    const auto* layer = dynamic_cast<const MoELayerImpl*>(item.value().get());
    if (!layer) continue;
    auto& row = out[item.key()];
    for (const auto& [name, t] : layer->last_stats()) {
      if (!t.defined() || t.numel() != 1 || name == "expert_load") continue;
      row[name] = t.detach().to(torch::kCPU, torch::kDouble).item<double>();
    }
    for (const auto& [name, t] : layer->last_aux_losses()) {
      if (t.defined()) row["aux." + name] = t.detach().to(torch::kCPU, torch::kDouble).item<double>();
    }
    if (row.empty()) out.erase(item.key());
  }
  return out;
}

// --------------------------------------------------------------------------------------
std::vector<int64_t> moe_block_indices(const MoEOptions& options, int64_t depth) {
  TORCH_CHECK(depth >= 1, "moe_block_indices: depth must be >= 1");
  std::set<int64_t> chosen;
  if (!options.blocks().empty()) {
    for (int64_t i : options.blocks()) {
      if (i < 0 || i >= depth) {
        throw std::invalid_argument("moe.blocks: block index " + std::to_string(i) + " out of range [0, " +
                                    std::to_string(depth) + ")");
      }
      chosen.insert(i);
    }
  } else {
    if (options.every() > 0 && options.last() > 0) {
      throw std::invalid_argument("moe.every (" + std::to_string(options.every()) + ") and moe.last (" +
                                  std::to_string(options.last()) +
                                  ") are mutually exclusive placements: set one of them (or list moe.blocks)");
    }
    const int64_t every = options.every() >= 0 ? options.every() : (options.last() > 0 ? 0 : 2);  // -1: unset
    if (every > 0) {
      for (int64_t i = every - 1; i < depth; i += every) chosen.insert(i);
    }
    if (options.last() > depth) {
      throw std::invalid_argument("moe.last: " + std::to_string(options.last()) + " exceeds depth " +
                                  std::to_string(depth));
    }
    for (int64_t i = depth - options.last(); i < depth; ++i) chosen.insert(i);
  }
  if (chosen.empty()) {
    throw std::invalid_argument("moe: no block selected (every " + std::to_string(options.every()) + ", last " +
                                std::to_string(options.last()) + ", depth " + std::to_string(depth) +
                                "); set moe.every, moe.last or moe.blocks");
  }
  return {chosen.begin(), chosen.end()};
}

}  // namespace ewa
