// Shared routing primitives: capacity slot assignment (token choice, BPR), Sinkhorn and
// sparsity-constrained transport plans, CV^2, super-class files, the linear-gate base.
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "ewa/core/routers.h"
#include "routing_stats.h"

namespace ewa {

SlotAssignment assign_to_slots(const torch::Tensor& experts, const torch::Tensor& gates, int64_t num_experts,
                               double capacity_factor, int64_t multiple, bool batch_prioritized) {
  TORCH_CHECK(experts.dim() == 2 && experts.scalar_type() == torch::kLong, "assign_to_slots: experts must be [N, k] int64, got ",
              experts.sizes(), " ", experts.scalar_type());
  TORCH_CHECK(gates.sizes() == experts.sizes() && gates.is_floating_point(),
              "assign_to_slots: gates must be floating [N, k] like experts, got ", gates.sizes());
  const int64_t n = experts.size(0), k = experts.size(1), e = num_experts;
  const auto lopt = experts.options();
  // Service order of the tokens within each choice level.
  torch::Tensor order = batch_prioritized
                            ? std::get<1>(gates.select(1, 0).detach().sort(/*stable=*/true, /*dim=*/0, /*descending=*/true))
                            : torch::arange(n, lopt);                                  // [N]
  auto seq_expert = experts.index_select(0, order).t().reshape({-1});                 // [k*N] level-major
  auto seq_token = order.repeat({k});                                                 // [k*N]
  auto seq_gate = gates.index_select(0, order).t().reshape({-1});                     // [k*N]
  auto onehot = torch::one_hot(seq_expert, e);                                        // [k*N, E]
  auto pos = onehot.cumsum(0).gather(1, seq_expert.unsqueeze(1)).squeeze(1) - 1;     // [k*N] rank at its expert
  int64_t cap;
  if (capacity_factor == 0) {  // dropless: the largest load, rounded up
    const int64_t max_load = std::max<int64_t>(onehot.sum(0).max().item<int64_t>(), 1);
    cap = (max_load + multiple - 1) / multiple * multiple;
  } else {
    cap = expert_capacity(n, e, k, capacity_factor, multiple);
  }
  auto kept_seq = pos < cap;                                                          // [k*N]
  // Dropped assignments write to a dummy slot E*C that is cut off afterwards (no sync).
  auto flat = torch::where(kept_seq, seq_expert * cap + pos, torch::full({}, e * cap, lopt));  // [k*N]
  c10::List<c10::optional<torch::Tensor>> at_flat;
  at_flat.push_back(flat);
  SlotAssignment out;
  out.capacity = cap;
  out.dispatch_index =
      torch::full({e * cap + 1}, -1, lopt).index_put_(at_flat, seq_token).narrow(0, 0, e * cap).view({e, cap});  // [E, C]
  out.combine_weight = torch::zeros({e * cap + 1}, gates.options())
                           .index_put(at_flat, seq_gate)
                           .narrow(0, 0, e * cap)
                           .view({e, cap});                                           // [E, C]
  // kept per (token, level): scatter back from service order.
  auto kept = torch::zeros({k, n}, kept_seq.options());
  kept.index_put_({torch::arange(k, lopt).repeat_interleave(n), seq_token}, kept_seq);
  out.kept = kept.t().contiguous();                                                   // [N, k]
  if (k == 1) {
    out.token_slot = torch::full({n}, -1, lopt);
    out.token_slot.index_put_({seq_token}, torch::where(kept_seq, seq_expert * cap + pos, torch::full({}, -1, lopt)));
  }
  return out;
}

torch::Tensor sinkhorn_log_plan(const torch::Tensor& scores, double epsilon, int64_t iterations, double row_mass,
                                double col_mass) {
  TORCH_CHECK(scores.dim() == 2 && scores.is_floating_point(), "sinkhorn: scores must be floating [N, E], got ",
              scores.sizes());
  TORCH_CHECK(epsilon > 0 && iterations >= 1 && row_mass > 0 && col_mass > 0,
              "sinkhorn: need epsilon > 0, iterations >= 1 and positive marginals");
  torch::NoGradGuard no_grad;
  auto log_k = scores.detach() / epsilon;                            // [N, E]
  auto u = torch::zeros({scores.size(0), 1}, scores.options());      // [N, 1]
  auto v = torch::zeros({1, scores.size(1)}, scores.options());      // [1, E]
  const double log_r = std::log(row_mass), log_c = std::log(col_mass);
  for (int64_t i = 0; i < iterations; ++i) {
    u = log_r - torch::logsumexp(log_k + v, 1, /*keepdim=*/true);    // rows sum to row_mass
    v = log_c - torch::logsumexp(log_k + u, 0, /*keepdim=*/true);    // columns sum to col_mass
  }
  return log_k + u + v;                                              // [N, E]
}

namespace {

/// Each column of v [N, E] projected onto {p >= 0, sum p = mass, at most `cap` non-zeros}:
/// sparsemax of its top-`cap` entries (Kyrillidis et al. 2013). Returns [N, E].
torch::Tensor project_columns_sparse_simplex(const torch::Tensor& v, int64_t cap, double mass) {
  auto [top, idx] = v.topk(cap, /*dim=*/0);                                   // [cap, E] descending
  auto cssv = top.cumsum(0) - mass;                                          // [cap, E]
  auto ranks = torch::arange(1, cap + 1, v.options()).unsqueeze(1);          // [cap, 1]
  auto rho = (top - cssv / ranks > 0).sum(0, /*keepdim=*/true).clamp_min(1); // [1, E] support size
  auto tau = cssv.gather(0, rho - 1) / rho.to(v.scalar_type());              // [1, E]
  auto p = (top - tau).clamp_min(0);                                         // [cap, E]
  return torch::zeros_like(v).scatter(0, idx, p);                            // [N, E]
}

}  // namespace

torch::Tensor sparse_expert_plan(const torch::Tensor& similarity, int64_t capacity, double gamma, int64_t iterations,
                                 double learning_rate, double tolerance) {
  TORCH_CHECK(similarity.dim() == 2 && similarity.is_floating_point(),
              "sparse_expert_plan: similarity must be floating [N, E]");
  const int64_t n = similarity.size(0), e = similarity.size(1);
  TORCH_CHECK(capacity >= 1 && capacity <= n, "sparse_expert_plan: capacity ", capacity, " not in [1, N=", n, "]");
  TORCH_CHECK(gamma > 0 && iterations >= 1 && learning_rate > 0,
              "sparse_expert_plan: need gamma > 0, iterations >= 1 and learning_rate > 0");
  torch::NoGradGuard no_grad;
  const auto s = similarity.detach();
  const double col_mass = static_cast<double>(n) / static_cast<double>(e);  // tokens per expert on average
  const double scale = gamma * col_mass;
  // Plan for the token potentials alpha [N, 1]: column j = col_mass * (the k-sparse simplex
  // projection of (alpha + s[:, j]) / scale), i.e. the gradient of the column's smoothed max.
  auto plan_of = [&](const torch::Tensor& alpha) {
    return col_mass * project_columns_sparse_simplex((s + alpha) / scale, capacity, 1.0);  // [N, E]
  };
  // Semi-dual min_alpha sum_j b_j max_j(alpha - C[:, j]) - <alpha, a> (C = -s, a = 1, b = N/E),
  // minimised with Adam (b1 0.9, b2 0.999, eps 1e-8) as in vmoe (jaxopt OptaxSolver + optax.adam).
  auto alpha = torch::zeros({n, 1}, s.options());
  auto m = torch::zeros_like(alpha), v = torch::zeros_like(alpha);
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  for (int64_t t = 1; t <= iterations; ++t) {
    auto grad = plan_of(alpha).sum(1, /*keepdim=*/true) - 1.0;  // [N, 1] row sums - row marginal
    m = b1 * m + (1 - b1) * grad;
    v = b2 * v + (1 - b2) * grad * grad;
    auto m_hat = m / (1 - std::pow(b1, static_cast<double>(t)));
    auto v_hat = v / (1 - std::pow(b2, static_cast<double>(t)));
    alpha = alpha - learning_rate * m_hat / (v_hat.sqrt() + eps);
    if (tolerance > 0 && grad.norm().item<double>() <= tolerance) break;  // OptaxSolver's stop rule
  }
  return plan_of(alpha);
}

torch::Tensor cv_squared(const torch::Tensor& v) {
  auto mean = v.mean();
  return v.var(/*unbiased=*/false) / (mean * mean + 1e-10);
}

torch::Tensor load_superclasses(const std::string& path, int64_t num_groups) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("superclass file '" + path + "': cannot open");
  std::map<int64_t, int64_t> map;
  std::string line;
  int line_no = 0;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error("superclass file '" + path + "', line " + std::to_string(line_no) + ": " + why);
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    for (char& ch : line) {
      if (ch == ',' || ch == '\t' || ch == '\r') ch = ' ';
    }
    std::istringstream ss(line);
    std::string a, b, extra;
    if (!(ss >> a)) continue;  // blank
    if (!(ss >> b) || (ss >> extra)) fail("expected 'class,superclass', got '" + line + "'");
    if (map.empty() && a == "class") continue;  // header
    int64_t cls = 0, group = 0;
    try {
      size_t pa = 0, pb = 0;
      cls = std::stoll(a, &pa);
      group = std::stoll(b, &pb);
      if (pa != a.size() || pb != b.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      fail("expected two integers, got '" + a + "' and '" + b + "'");
    }
    if (cls < 0) fail("negative class " + std::to_string(cls));
    if (group < 0 || group >= num_groups) {
      fail("super-class " + std::to_string(group) + " out of range [0, " + std::to_string(num_groups) +
           ") (super-classes are expert ids; the layer has " + std::to_string(num_groups) + " experts)");
    }
    if (!map.emplace(cls, group).second) fail("class " + std::to_string(cls) + " listed twice");
  }
  if (map.empty()) throw std::runtime_error("superclass file '" + path + "': no entries");
  const int64_t k = static_cast<int64_t>(map.size());
  if (map.rbegin()->first != k - 1) {  // keys are distinct and >= 0: 0..k-1 iff the largest is k-1
    throw std::runtime_error("superclass file '" + path + "': classes must be 0.." +
                             std::to_string(map.rbegin()->first) + " each exactly once, found " +
                             std::to_string(map.size()) + " entries");
  }
  auto out = torch::empty({k}, torch::kLong);
  for (const auto& [c, g] : map) out[c] = g;
  return out;
}

// ---------------------------------------------------------------------------------------
LinearGateRouterImpl::LinearGateRouterImpl(const RouterOptions& options, int64_t dim, int64_t num_experts)
    : RouterImpl(num_experts), options_(resolve_router_defaults(options)) {
  TORCH_CHECK(dim >= 1, "router '", options.name(), "': token width must be >= 1, got ", dim);
  gate = register_module("gate", torch::nn::Linear(torch::nn::LinearOptions(dim, num_experts).bias(false)));
}

LinearGateRouterImpl::Logits LinearGateRouterImpl::logits(const torch::Tensor& tokens) {
  TORCH_CHECK(!gate.is_empty(), "router '", name(), "': no gate (a per_image follower routes via its leader)");
  Logits out;
  out.clean = torch::linear(tokens, gate->weight.to(tokens.scalar_type()));  // [N, E]
  out.noisy = out.clean;
  if (is_training() && options_.noise_std() > 0) {
    out.noisy = out.clean + noise_sigma() * torch::randn_like(out.clean);
  }
  return out;
}

double LinearGateRouterImpl::noise_sigma() const {
  return options_.noise_std() / static_cast<double>(num_experts_);  // V-MoE: noise_std / E
}

void LinearGateRouterImpl::add_common_losses(RoutingPlan& plan, const Logits& logits,
                                             const torch::Tensor& probs) const {
  plan.stats["router_entropy"] = detail::mean_entropy(probs);
  if (!is_training()) return;
  // Both on the clean logits, as in vmoe (the noise only perturbs the selection).
  if (options_.importance_loss() > 0) {
    plan.aux_losses["importance"] = options_.importance_loss() * cv_squared(torch::softmax(logits.clean, 1).sum(0));
  }
  if (options_.z_loss() > 0) {
    plan.aux_losses["z"] = options_.z_loss() * torch::logsumexp(logits.clean, 1).pow(2).mean();
  }
}

void LinearGateRouterImpl::add_load_loss(RoutingPlan& plan, const Logits& logits, int64_t k) const {
  if (!is_training() || options_.load_loss() <= 0 || options_.noise_std() <= 0) return;
  // V-MoE (vmoe _load_auxiliary_loss): the k-th largest noisy logit of a token is its threshold;
  // P(expert e selected if its noise were redrawn) = 1 - Phi((threshold - clean_e) / sigma).
  auto threshold = std::get<0>(logits.noisy.topk(k, 1)).narrow(1, k - 1, 1);  // [N, 1]
  const double inv = 1.0 / (noise_sigma() * std::sqrt(2.0));
  auto prob = 0.5 * torch::erfc((threshold - logits.clean) * inv);             // [N, E]
  plan.aux_losses["load"] = options_.load_loss() * cv_squared(prob.mean(0));
}

namespace detail {

torch::Tensor mean_entropy(const torch::Tensor& probs) {
  auto p = probs.detach();
  return -(p * p.clamp_min(1e-30).log()).sum(-1).mean().to(torch::kDouble);
}

void add_sparse_stats(RoutingPlan& plan, const torch::Tensor& dropped_fraction) {
  auto used = (plan.dispatch_index >= 0);                                   // [E, C]
  auto per_expert = used.sum(1).to(torch::kDouble);                         // [E]
  auto total = per_expert.sum().clamp_min(1.0);
  plan.stats["expert_load"] = per_expert / total;
  plan.stats["mean_gate"] = plan.combine_weight.detach().to(torch::kDouble).sum() / total;
  plan.stats["dropped_fraction"] = dropped_fraction.detach().to(torch::kDouble);
}

}  // namespace detail
}  // namespace ewa
