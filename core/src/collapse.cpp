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

  const auto& o = model->options();
  for (int64_t i : report.blocks) {
    Block blk = model->blocks()[static_cast<size_t>(i)];
    auto experts = blk->moe_mlp()->experts;
    if (report.num_experts == 0) report.num_experts = experts->num_experts();
    auto mean = experts->mean_dense();  // fc1_w [hidden, in], fc1_b, fc2_w [out, hidden], fc2_b
    Mlp dense(experts->in_features(), experts->hidden_features(), experts->out_features(), o.drop_rate());
    dense->to(experts->w1.device(), experts->w1.scalar_type());
    dense->fc1->weight.copy_(mean[0]);
    dense->fc1->bias.copy_(mean[1]);
    dense->fc2->weight.copy_(mean[2]);
    dense->fc2->bias.copy_(mean[3]);
    blk->set_mlp(dense);
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
    layer->experts->copy_from_dense(dense->fc1->weight, dense->fc1->bias, dense->fc2->weight, dense->fc2->bias);
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
