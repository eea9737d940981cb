// Collapse (MoE -> dense by expert means, verified on a probe) and upcycling (dense -> MoE).
#include "ewa/core/collapse.h"

#include <torch/torch.h>

#include <stdexcept>

namespace ewa {

CollapseReport collapse_to_dense(VisionTransformer& model, const torch::Tensor& probe) {
  CollapseReport report;
  report.blocks = model->moe_blocks();
  if (report.blocks.empty()) return report;
  const bool was_training = model->is_training();
  torch::NoGradGuard no_grad;
  model->eval();
  torch::Tensor before;
  if (probe.defined()) before = model->forward(probe);

  for (int64_t i : report.blocks) {
    Block blk = model->blocks()[static_cast<size_t>(i)];
    auto layer = blk->moe_mlp();
    if (report.num_experts == 0) report.num_experts = layer->experts->num_experts();
    auto dense = std::dynamic_pointer_cast<MlpImpl>(layer->experts->mean_module());  // expert means
    TORCH_CHECK(dense, "collapse_to_dense: block ", i, " has experts that are not FFN experts");
    blk->set_mlp(Mlp(dense));
  }
  model->set_moe_options(std::nullopt);

  if (probe.defined()) {
    auto after = model->forward(probe);
    report.max_abs_diff = (after - before).abs().max().item<double>();
  }
  model->train(was_training);
  return report;
}

std::vector<int64_t> upcycle_to_moe(VisionTransformer& model, const MoEOptions& moe) {
  const auto& o = model->options();
  auto indices = moe_block_indices(moe, o.depth());
  for (int64_t i : indices) {
    if (model->blocks()[static_cast<size_t>(i)]->is_moe()) {
      throw std::invalid_argument("upcycle_to_moe: block " + std::to_string(i) + " is already an MoE layer");
    }
  }
  torch::NoGradGuard no_grad;
  for (int64_t i : indices) {
    Block blk = model->blocks()[static_cast<size_t>(i)];
    auto dense = blk->dense_mlp();
    const int64_t in = dense->fc1->weight.size(1), hidden = dense->fc1->weight.size(0);
    const int64_t out = dense->fc2->weight.size(0);
    MoEMlp layer(in, hidden, out, moe.num_experts(), moe.router(), o.drop_rate());
    layer->to(dense->fc1->weight.device(), dense->fc1->weight.scalar_type());
    layer.ffn().copy_from_dense(dense->fc1->weight, dense->fc1->bias, dense->fc2->weight, dense->fc2->bias);
    layer->train(model->is_training());
    blk->set_mlp(layer);
  }
  model->link_moe_routers();
  MoEOptions stored = moe;
  stored.enabled(true);
  stored.blocks(indices);
  model->set_moe_options(stored);
  return indices;
}

}  // namespace ewa
