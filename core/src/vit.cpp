// Vision Transformer blocks and model (Dosovitskiy et al. 2021), timm-compatible names and
// initialisation; MoE FFNs placed by moe_block_indices().
#include "ewa/core/vit.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

#include "ewa/core/compat.h"
#include "init_util.h"

namespace ewa {

int64_t mlp_hidden_dim(const VisionTransformerOptions& options) {
  return static_cast<int64_t>(static_cast<double>(options.embed_dim()) * options.mlp_ratio());
}

// --------------------------------------------------------------------------------------
PatchEmbedImpl::PatchEmbedImpl(int64_t img_size, int64_t patch_size, int64_t in_chans, int64_t embed_dim)
    : img_size_(img_size), grid_(img_size / patch_size) {
  TORCH_CHECK(patch_size > 0 && img_size % patch_size == 0, "PatchEmbed: patch_size ", patch_size,
              " must divide img_size ", img_size);
  proj = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, embed_dim, patch_size).stride(patch_size)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(2) == img_size_ && x.size(3) == img_size_,
              "PatchEmbed: expected images [B, C, ", img_size_, ", ", img_size_, "], got ", x.sizes());
  return proj->forward(x).flatten(2).transpose(1, 2);  // [B, N, D]
}

// --------------------------------------------------------------------------------------
AttentionImpl::AttentionImpl(int64_t dim, int64_t num_heads, bool qkv_bias, double attn_drop, double proj_drop)
    : num_heads_(num_heads), attn_drop_(attn_drop) {
  TORCH_CHECK(num_heads >= 1 && dim % num_heads == 0, "Attention: num_heads ", num_heads,
              " must divide dim ", dim);
  qkv = register_module("qkv", Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(qkv_bias)));
  proj = register_module("proj", Linear(dim, dim));
  proj_drop_ = register_module("proj_drop", torch::nn::Dropout(proj_drop));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2);
  auto qkv_t = qkv->forward(x).reshape({b, t, 3, num_heads_, d / num_heads_}).permute({2, 0, 3, 1, 4});  // [3, B, H, T, hd]
  auto out = compat::scaled_dot_product_attention(qkv_t[0], qkv_t[1], qkv_t[2], attn_drop_, is_training());  // [B, H, T, hd]
  out = out.transpose(1, 2).reshape({b, t, d});  // [B, T, D]
  return proj_drop_->forward(proj->forward(out));
}

// --------------------------------------------------------------------------------------
MlpImpl::MlpImpl(int64_t in_features, int64_t hidden_features, int64_t out_features, double drop) : drop_(drop) {
  fc1 = register_module("fc1", Linear(in_features, hidden_features));
  fc2 = register_module("fc2", Linear(hidden_features, out_features));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  auto h = torch::gelu(fc1->forward(x));  // [..., hidden]
  if (drop_ > 0) h = torch::dropout(h, drop_, is_training());
  auto y = fc2->forward(h);               // [..., out]
  if (drop_ > 0) y = torch::dropout(y, drop_, is_training());
  return y;
}

LayerScaleImpl::LayerScaleImpl(int64_t dim, double init_values) {
  gamma = register_parameter("gamma", torch::full({dim}, init_values));
}

torch::Tensor drop_path(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0) return x;
  const double keep = 1.0 - p;
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  auto mask = torch::empty(shape, x.options()).bernoulli_(keep);  // [B, 1, ...]
  return x * mask.div_(keep);
}

// --------------------------------------------------------------------------------------
BlockImpl::BlockImpl(int64_t dim, int64_t num_heads, double mlp_ratio, bool qkv_bias, double proj_drop,
                     double attn_drop, double drop_path_rate, double init_values)
    : drop_path_(drop_path_rate) {
  auto ln = torch::nn::LayerNormOptions({dim}).eps(1e-6);
  norm1 = register_module("norm1", torch::nn::LayerNorm(ln));
  attn = register_module("attn", Attention(dim, num_heads, qkv_bias, attn_drop, proj_drop));
  if (init_values > 0) ls1 = register_module("ls1", LayerScale(dim, init_values));
  norm2 = register_module("norm2", torch::nn::LayerNorm(ln));
  const auto hidden = static_cast<int64_t>(static_cast<double>(dim) * mlp_ratio);
  dense_ = register_module("mlp", Mlp(dim, hidden, dim, proj_drop));
  if (init_values > 0) ls2 = register_module("ls2", LayerScale(dim, init_values));
}

void BlockImpl::set_mlp(Mlp mlp) {
  TORCH_CHECK(!mlp.is_empty(), "Block::set_mlp: null Mlp");
  replace_module("mlp", mlp);
  dense_ = std::move(mlp);
  moe_ = nullptr;
}

void BlockImpl::set_mlp(MoEMlp mlp) {
  TORCH_CHECK(!mlp.is_empty(), "Block::set_mlp: null MoEMlp");
  replace_module("mlp", mlp);
  moe_ = std::move(mlp);
  dense_ = nullptr;
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  auto a = attn->forward(norm1->forward(x));  // [B, T, D]
  if (!ls1.is_empty()) a = ls1->forward(a);
  auto h = x + drop_path(a, drop_path_, is_training());
  auto n2 = norm2->forward(h);
  auto m = moe_.is_empty() ? dense_->forward(n2) : moe_->forward(n2);  // [B, T, D]
  if (!ls2.is_empty()) m = ls2->forward(m);
  return h + drop_path(m, drop_path_, is_training());
}

// --------------------------------------------------------------------------------------
namespace {

/// timm's init of a Linear: "trunc_normal" -> N(0, .02) truncated, bias 0; "xavier" (jax)
/// -> xavier-uniform (qkv: fan_out counted per q/k/v), bias 0 or N(0, 1e-6) in MLPs.
void init_linear(Linear& lin, const std::string& mode, bool is_qkv, bool is_mlp) {
  torch::NoGradGuard no_grad;
  auto& w = lin->weight;  // [out, in]
  if (mode == "trunc_normal") {
    detail::trunc_normal_(w, 0.02);
    if (lin->bias.defined()) lin->bias.zero_();
  } else {
    const int64_t out = is_qkv ? w.size(0) / 3 : w.size(0);
    detail::xavier_uniform_(w, w.size(1), out);
    if (lin->bias.defined()) {
      if (is_mlp) {
        lin->bias.normal_(0.0, 1e-6);
      } else {
        lin->bias.zero_();
      }
    }
  }
}

void init_mlp(Mlp& mlp, const std::string& mode) {
  init_linear(mlp->fc1, mode, false, true);
  init_linear(mlp->fc2, mode, false, true);
}

}  // namespace

VisionTransformerImpl::VisionTransformerImpl(const VisionTransformerOptions& options, const MoEOptions& moe)
    : options_(options) {
  const auto& o = options_;
  TORCH_CHECK(o.class_token() || o.global_pool() == "avg",
              "VisionTransformer: global_pool 'token' needs class_token: true");
  TORCH_CHECK(o.global_pool() == "token" || o.global_pool() == "avg", "VisionTransformer: unknown global_pool '",
              o.global_pool(), "' (known: token, avg)");
  TORCH_CHECK(o.weight_init() == "trunc_normal" || o.weight_init() == "xavier",
              "VisionTransformer: unknown weight_init '", o.weight_init(), "' (known: trunc_normal, xavier)");
  const int64_t d = o.embed_dim();
  patch_embed = register_module("patch_embed", PatchEmbed(o.img_size(), o.patch_size(), o.in_chans(), d));
  num_prefix_tokens_ = o.class_token() ? 1 : 0;
  if (o.class_token()) cls_token = register_parameter("cls_token", torch::zeros({1, 1, d}));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, num_prefix_tokens_ + patch_embed->num_patches(), d}));

  block_list_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth(); ++i) {
    const double dpr = o.depth() > 1 ? o.drop_path_rate() * static_cast<double>(i) / static_cast<double>(o.depth() - 1)
                                     : 0.0;  // linear stochastic-depth decay rule
    Block blk(d, o.num_heads(), o.mlp_ratio(), o.qkv_bias(), o.drop_rate(), o.attn_drop_rate(), dpr,
              o.init_values());
    block_list_->push_back(blk);
    blocks_.push_back(blk);
  }
  const bool use_fc_norm = o.global_pool() == "avg";
  auto ln = torch::nn::LayerNormOptions({d}).eps(1e-6);
  if (use_fc_norm) {
    fc_norm = register_module("fc_norm", torch::nn::LayerNorm(ln));
  } else {
    norm = register_module("norm", torch::nn::LayerNorm(ln));
  }
  if (o.num_classes() > 0) head = register_module("head", Linear(d, o.num_classes()));

  if (moe.enabled()) {
    const int64_t hidden = mlp_hidden_dim(o);
    for (int64_t i : moe_block_indices(moe, o.depth())) {
      blocks_[static_cast<size_t>(i)]->set_mlp(MoEMlp(d, hidden, d, moe.num_experts(), moe.router(), o.drop_rate()));
    }
    link_moe_routers();
    moe_options_ = moe;
  }
  reset_parameters();
}

void VisionTransformerImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const std::string& mode = options_.weight_init();
  detail::trunc_normal_(pos_embed, 0.02);
  if (cls_token.defined()) {
    if (mode == "xavier") {
      cls_token.zero_();
    } else {
      cls_token.normal_(0.0, 1e-6);
    }
  }
  if (mode == "xavier") {  // lecun-normal patch projection (timm jax init)
    auto& w = patch_embed->proj->weight;  // [D, C, p, p]
    const double fan_in = static_cast<double>(w.size(1) * w.size(2) * w.size(3));
    detail::trunc_normal_(w, std::sqrt(1.0 / fan_in) / .87962566103423978);
    patch_embed->proj->bias.zero_();
  } else {
    patch_embed->proj->reset_parameters();
  }
  const int64_t d = options_.embed_dim(), hidden = mlp_hidden_dim(options_);
  const bool copy_experts = !moe_options_ || moe_options_->init() == "copy";
  for (auto& blk : blocks_) {
    init_linear(blk->attn->qkv, mode, true, false);
    init_linear(blk->attn->proj, mode, false, false);
    blk->norm1->reset_parameters();
    blk->norm2->reset_parameters();
    if (!blk->ls1.is_empty()) blk->ls1->gamma.fill_(options_.init_values());
    if (!blk->ls2.is_empty()) blk->ls2->gamma.fill_(options_.init_values());
    if (!blk->is_moe()) {
      auto mlp = blk->dense_mlp();
      init_mlp(mlp, mode);
    } else if (copy_experts) {
      Mlp proto(d, hidden, d);
      init_mlp(proto, mode);
      blk->moe_mlp().ffn().copy_from_dense(proto->fc1->weight, proto->fc1->bias, proto->fc2->weight,
                                               proto->fc2->bias);
    } else {
      blk->moe_mlp().ffn().reset_parameters(mode);
    }
  }
  if (!norm.is_empty()) norm->reset_parameters();
  if (!fc_norm.is_empty()) fc_norm->reset_parameters();
  if (!head.is_empty()) {
    if (mode == "xavier") {
      head->weight.zero_();
      head->bias.zero_();
    } else {
      init_linear(head, mode, false, false);
    }
  }
}

torch::Tensor VisionTransformerImpl::forward_features(const torch::Tensor& x) {
  auto t = patch_embed->forward(x);  // [B, N, D]
  if (cls_token.defined()) t = torch::cat({cls_token.expand({t.size(0), -1, -1}), t}, 1);  // [B, 1+N, D]
  t = t + pos_embed;
  if (options_.drop_rate() > 0) t = torch::dropout(t, options_.drop_rate(), is_training());
  bool first_moe = true;
  for (auto& blk : blocks_) {
    if (first_moe && blk->is_moe()) {  // routers that decide per image see the preceding layer's output
      blk->moe_mlp()->router->observe_block_input(t, num_prefix_tokens_);
      first_moe = false;
    }
    t = blk->forward(t);
  }
  if (!norm.is_empty()) t = norm->forward(t);
  return t;
}

torch::Tensor VisionTransformerImpl::forward_head(const torch::Tensor& tokens) {
  torch::Tensor pooled;
  if (options_.global_pool() == "avg") {
    pooled = tokens.narrow(1, num_prefix_tokens_, tokens.size(1) - num_prefix_tokens_).mean(1);  // [B, D]
  } else {
    pooled = tokens.select(1, 0);  // [B, D]
  }
  if (!fc_norm.is_empty()) pooled = fc_norm->forward(pooled);
  if (options_.drop_rate() > 0) pooled = torch::dropout(pooled, options_.drop_rate(), is_training());
  return head.is_empty() ? pooled : head->forward(pooled);
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& x) { return forward_head(forward_features(x)); }

std::vector<int64_t> VisionTransformerImpl::moe_blocks() const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    if (blocks_[i]->is_moe()) out.push_back(static_cast<int64_t>(i));
  }
  return out;
}

torch::Tensor VisionTransformerImpl::aux_loss() const {
  torch::Tensor total;
  for (const auto& blk : blocks_) {
    if (!blk->is_moe()) continue;
    const auto& l = blk->moe_mlp()->last_aux_loss();
    if (l.defined()) total = total.defined() ? total + l : l;
  }
  return total.defined() ? total : torch::zeros({}, pos_embed.options().requires_grad(false));
}

void VisionTransformerImpl::link_moe_routers() {
  std::vector<RouterPtr> routers;
  for (auto& blk : blocks_) {
    if (blk->is_moe()) routers.push_back(blk->moe_mlp()->router);
  }
  link_routers(routers);
}

void VisionTransformerImpl::set_router_targets(const torch::Tensor& targets) {
  for (auto& blk : blocks_) {
    if (blk->is_moe()) blk->moe_mlp()->router->set_targets(targets);
  }
}

}  // namespace ewa
