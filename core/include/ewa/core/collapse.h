// Collapse an MoE-ViT into the dense ViT (expert means; verified on a probe batch) and
// upcycle a dense ViT into an MoE-ViT with copied experts.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "ewa/core/options.h"
#include "ewa/core/vit.h"

namespace ewa {

/// What collapse_to_dense() did.
struct CollapseReport {
  std::vector<int64_t> blocks;  ///< indices of the blocks that were MoE
  int64_t num_experts = 0;      ///< experts per layer (of the first collapsed layer)
  double max_abs_diff = 0.0;    ///< max |MoE eval output - dense output| on the probe
};

/// In place: every MoE FFN of `model` becomes one Mlp whose weights are the expert means
/// (fc1.weight = mean_e(w1[e])^T, ...), so the model is the plain dense ViT with timm names.
/// `probe` [B, in_chans, img, img] floating (may be undefined to skip the check): the
/// model's eval-mode output before and after is compared, max |diff| reported (0 for
/// RUP/EWA layers, whose eval forward is the averaged expert). The model's train/eval mode
/// is restored. A dense model is left unchanged (empty report).
CollapseReport collapse_to_dense(VisionTransformer& model, const torch::Tensor& probe);

/// In place: the FFNs of the blocks chosen by moe_block_indices(moe, depth) become MoE
/// layers with moe.num_experts() copies of the dense FFN (any `init` setting: upcycling
/// copies) and moe.router(). Blocks that are already MoE are an error. Returns the indices.
std::vector<int64_t> upcycle_to_moe(VisionTransformer& model, const MoEOptions& moe);

}  // namespace ewa
