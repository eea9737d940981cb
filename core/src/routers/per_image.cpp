// Per-image router of Mobile V-MoE (Daxberger et al. 2023): one top-k expert decision per
// image, shared by all MoE layers, optionally guided by super-class labels.
#include <torch/torch.h>

#include "ewa/core/routers.h"
#include "routing_stats.h"

namespace ewa {

PerImageRouterImpl::PerImageRouterImpl(const RouterOptions& options, int64_t dim, int64_t num_experts)
    : LinearGateRouterImpl(options, dim, num_experts) {
  if (!options.superclass_file().empty()) set_superclasses(load_superclasses(options.superclass_file(), num_experts));
}

void PerImageRouterImpl::follow(std::shared_ptr<PerImageRouterImpl> leader) {
  TORCH_CHECK(leader.get() != this, "per_image router: a router cannot follow itself");
  if (!leader) {
    TORCH_CHECK(!is_follower(), "per_image router: a follower cannot become a leader again");
    return;
  }
  TORCH_CHECK(leader->num_experts() == num_experts_, "per_image router: leader has ", leader->num_experts(),
              " experts, follower ", num_experts_);
  TORCH_CHECK(!leader->is_follower(), "per_image router: the leader must not itself follow another router");
  leader_ = std::move(leader);
  if (!gate.is_empty()) {  // followers own no parameters: the leader's gate decides
    unregister_module("gate");
    gate = nullptr;
  }
}

void PerImageRouterImpl::set_superclasses(torch::Tensor map) {
  if (map.defined()) {
    TORCH_CHECK(map.dim() == 1 && map.scalar_type() == torch::kLong && map.numel() >= 1,
                "per_image router: super-class map must be [K] int64, got ", map.sizes());
    TORCH_CHECK(map.min().item<int64_t>() >= 0 && map.max().item<int64_t>() < num_experts_,
                "per_image router: super-class ids must lie in [0, ", num_experts_, ") (one per expert)");
  }
  superclasses_ = std::move(map);
}

void PerImageRouterImpl::observe_block_input(const torch::Tensor& tokens, int64_t num_prefix_tokens) {
  if (is_follower()) return;
  TORCH_CHECK(tokens.dim() == 3 && num_prefix_tokens >= 0 && num_prefix_tokens < tokens.size(1),
              "per_image router: expected tokens [B, T, D] with fewer than T prefix tokens, got ", tokens.sizes(),
              " and ", num_prefix_tokens, " prefix tokens");
  if (options_.image_token() == "cls") {
    TORCH_CHECK(num_prefix_tokens >= 1,
                "router.image_token: 'cls' needs a class token (model class_token: true); use 'mean'");
    image_features_ = tokens.select(1, 0);                                                     // [B, D]
  } else {
    image_features_ = tokens.narrow(1, num_prefix_tokens, tokens.size(1) - num_prefix_tokens).mean(1);  // [B, D]
  }
}

PerImageRouterImpl::ImageDecision PerImageRouterImpl::decide(const torch::Tensor& features) {
  const int64_t b = features.size(0), e = num_experts_, k = options_.k();
  auto l = logits(features);                                    // [B, E]
  auto probs = torch::softmax(l.noisy, 1);                      // [B, E]
  auto experts = std::get<1>(probs.detach().topk(k, 1));        // [B, k]
  auto gates = probs.gather(1, experts);                        // [B, k]
  auto slots = assign_to_slots(experts, gates, e, /*dropless*/ 0.0, 1, false);
  ImageDecision d;
  d.experts = experts;
  d.dispatch_index = slots.dispatch_index;                      // [E, Ci]
  d.combine_weight = slots.combine_weight;                      // [E, Ci]
  RoutingPlan tmp;
  add_common_losses(tmp, l, probs);
  add_load_loss(tmp, l, k);
  if (is_training() && superclasses_.defined() && targets_.defined() && options_.superclass_weight() > 0) {
    auto y = targets_.to(torch::kLong).to(superclasses_.device());
    TORCH_CHECK(y.dim() == 1 && y.size(0) == b, "per_image router: targets must be [B=", b, "], got ", y.sizes());
    TORCH_CHECK(y.numel() == 0 || (y.min().item<int64_t>() >= 0 && y.max().item<int64_t>() < superclasses_.size(0)),
                "per_image router: a label lies outside the ", superclasses_.size(0),
                " classes of the super-class map");
    auto sc = superclasses_.index_select(0, y).to(l.clean.device());  // [B]
    tmp.aux_losses["superclass"] = options_.superclass_weight() * torch::cross_entropy_loss(l.clean, sc);
  }
  d.aux_losses = std::move(tmp.aux_losses);
  d.stats = std::move(tmp.stats);
  return d;
}

RoutingPlan PerImageRouterImpl::route(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 3, "router 'per_image': expected tokens [B, T, D], got ", x.sizes());
  const int64_t b = x.size(0), t = x.size(1), e = num_experts_;
  RoutingPlan plan;
  if (is_follower()) {
    const auto& d = leader_->last_;
    TORCH_CHECK(d.experts.defined() && d.experts.size(0) == b,
                "per_image router: the leader (first MoE layer) has not routed this batch of ", b, " images");
    last_ = d;
    last_.aux_losses.clear();  // counted once, by the leader
  } else {
    torch::Tensor feats;
    if (image_features_.defined() && image_features_.size(0) == b) {
      feats = image_features_;
    } else {
      feats = options_.image_token() == "cls" ? x.select(1, 0) : x.mean(1);  // [B, D]
    }
    image_features_ = torch::Tensor();  // consumed: never reused by a later batch
    last_ = decide(feats.to(x.scalar_type()));
    plan.aux_losses = last_.aux_losses;
  }
  // Image slot (e, c) -> token slots (e, c*T + t) holding token b*T + t.
  const auto& img = last_.dispatch_index;                                  // [E, Ci]
  const int64_t ci = img.size(1);
  auto offs = torch::arange(t, img.options());                             // [T]
  auto tok = torch::where(img.unsqueeze(-1) >= 0, img.unsqueeze(-1) * t + offs, torch::full({}, -1, img.options()));
  plan.dispatch_index = tok.view({e, ci * t}).to(x.device());              // [E, Ci*T]
  plan.combine_weight = last_.combine_weight.unsqueeze(-1).expand({e, ci, t}).reshape({e, ci * t}).to(
      x.scalar_type());                                                    // [E, Ci*T]
  plan.stats = last_.stats;
  detail::add_sparse_stats(plan, torch::zeros({}, torch::kDouble));
  return plan;
}

void link_routers(const std::vector<RouterPtr>& routers_in_depth_order) {
  std::shared_ptr<PerImageRouterImpl> leader;
  for (const auto& r : routers_in_depth_order) {
    auto p = std::dynamic_pointer_cast<PerImageRouterImpl>(r);
    if (!p) continue;
    if (!leader) {
      leader = p;
    } else if (!p->is_follower()) {
      p->follow(leader);
    }
  }
}

}  // namespace ewa
