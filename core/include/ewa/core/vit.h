// Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021) with
// timm's module/parameter names; each block's FFN slot ("mlp") holds a dense Mlp or a MoEMlp.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "ewa/core/gemm.h"
#include "ewa/core/moe.h"
#include "ewa/core/options.h"

namespace ewa {

/// Image to patch tokens: Conv2d(in_chans, embed_dim, patch, stride patch) ("proj").
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t img_size, int64_t patch_size, int64_t in_chans, int64_t embed_dim);
  /// x [B, in_chans, img, img] float -> [B, (img/patch)^2, embed_dim].
  torch::Tensor forward(const torch::Tensor& x);
  int64_t num_patches() const { return grid_ * grid_; }

  torch::nn::Conv2d proj{nullptr};

 private:
  int64_t img_size_, grid_;
};
TORCH_MODULE(PatchEmbed);

/// Multi-head self-attention ("qkv" Linear(D, 3D), "proj" Linear(D, D)).
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t num_heads, bool qkv_bias, double attn_drop, double proj_drop);
  /// x [B, T, D] -> [B, T, D].
  torch::Tensor forward(const torch::Tensor& x);

  Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t num_heads_;
  double attn_drop_;
  torch::nn::Dropout proj_drop_{nullptr};
};
TORCH_MODULE(Attention);

/// The dense FFN: fc1 -> GELU -> dropout -> fc2 -> dropout ("fc1", "fc2").
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t in_features, int64_t hidden_features, int64_t out_features, double drop = 0.0);
  /// x [..., in] -> [..., out].
  torch::Tensor forward(const torch::Tensor& x);

  Linear fc1{nullptr}, fc2{nullptr};

 private:
  double drop_;
};
TORCH_MODULE(Mlp);

/// Per-channel scale ("gamma" [D]) of CaiT's LayerScale (Touvron et al. 2021).
class LayerScaleImpl : public torch::nn::Module {
 public:
  LayerScaleImpl(int64_t dim, double init_values);
  torch::Tensor forward(const torch::Tensor& x) { return x * gamma; }  ///< x [..., D]
  torch::Tensor gamma;
};
TORCH_MODULE(LayerScale);

/// Stochastic depth per sample (Huang et al. 2016): in training drops the whole residual
/// branch of a sample with probability p and scales kept ones by 1/(1-p).
torch::Tensor drop_path(const torch::Tensor& x, double p, bool training);

/// Pre-norm transformer block: x + ls1(attn(norm1 x)), then x + ls2(mlp(norm2 x)), each
/// branch under DropPath. Children: norm1, attn, ls1 (init_values > 0), norm2, mlp, ls2.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t num_heads, double mlp_ratio, bool qkv_bias, double proj_drop,
            double attn_drop, double drop_path, double init_values);
  /// x [B, T, D] -> [B, T, D].
  torch::Tensor forward(const torch::Tensor& x);

  /// The FFN slot: exactly one of these is non-null.
  Mlp dense_mlp() const { return dense_; }
  MoEMlp moe_mlp() const { return moe_; }
  bool is_moe() const { return !moe_.is_empty(); }
  /// Replace the FFN slot (registered as "mlp").
  void set_mlp(Mlp mlp);
  void set_mlp(MoEMlp mlp);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  LayerScale ls1{nullptr}, ls2{nullptr};

 private:
  Mlp dense_{nullptr};
  MoEMlp moe_{nullptr};
  double drop_path_;
};
TORCH_MODULE(Block);

/// The Vision Transformer. Names mirror timm: patch_embed.proj.*, cls_token [1,1,D],
/// pos_embed [1, prefix+N, D], blocks.i.*, norm.* (token pooling) or fc_norm.* (avg
/// pooling), head.* (num_classes > 0). With `moe.enabled()` the FFNs of
/// moe_block_indices(moe, depth) are MoEMlp layers.
class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const VisionTransformerOptions& options, const MoEOptions& moe = MoEOptions());

  /// x [B, in_chans, img, img] float -> logits [B, num_classes] (pooled features [B, D]
  /// when num_classes == 0).
  torch::Tensor forward(const torch::Tensor& x);
  /// x [B, in_chans, img, img] -> tokens after the final norm [B, prefix + N, D].
  torch::Tensor forward_features(const torch::Tensor& x);
  /// tokens [B, T, D] -> logits [B, num_classes] (or pooled [B, D]).
  torch::Tensor forward_head(const torch::Tensor& tokens);

  const VisionTransformerOptions& options() const { return options_; }
  /// MoE options when any block is MoE (placement/router as built or upcycled).
  const std::optional<MoEOptions>& moe_options() const { return moe_options_; }
  void set_moe_options(std::optional<MoEOptions> moe) { moe_options_ = std::move(moe); }

  const std::vector<Block>& blocks() const { return blocks_; }
  /// Indices of the blocks whose FFN is an MoE layer.
  std::vector<int64_t> moe_blocks() const;
  /// Sum of the auxiliary router losses of the last training forward; scalar 0 if none.
  torch::Tensor aux_loss() const;
  /// Hands the batch labels [B] int64 to every router (super-class guided routing).
  void set_router_targets(const torch::Tensor& targets);
  /// Connects the routers of the MoE layers that share decisions across layers
  /// (per_image: the first MoE layer decides for all); called after building or
  /// upcycling MoE layers. See link_routers().
  void link_moe_routers();
  /// Re-initialises all weights with options().weight_init() (called by the constructor).
  void reset_parameters();

  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed;
  torch::nn::LayerNorm norm{nullptr}, fc_norm{nullptr};
  Linear head{nullptr};

 private:
  VisionTransformerOptions options_;
  std::optional<MoEOptions> moe_options_;
  torch::nn::ModuleList block_list_{nullptr};
  std::vector<Block> blocks_;
  int64_t num_prefix_tokens_ = 0;
};
TORCH_MODULE(VisionTransformer);

/// The FFN hidden width of a ViT: int(embed_dim * mlp_ratio) (timm's rounding).
int64_t mlp_hidden_dim(const VisionTransformerOptions& options);

}  // namespace ewa
