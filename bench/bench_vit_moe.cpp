// Training-step time of a small ViT, dense vs MoE-RUP (4 experts, every other block), the
// EWA update's share of a step, and inference of the collapsed model vs the dense ViT.
// Usage: bench_vit_moe [--threads N] [--iters N] [--batch N]   (timings interleaved, medians)
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "ewa/core/collapse.h"
#include "ewa/core/ewa.h"
#include "ewa/core/runtime.h"
#include "ewa/core/vit.h"

using ewa::bench::interleaved;
using ewa::bench::median;
using ewa::bench::now_ms;

int main(int argc, char** argv) {
  int threads = 2, iters = 10, batch = 128;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--iters")) iters = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--batch")) batch = std::stoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--iters N] [--batch N]\n", argv[0]);
      return 2;
    }
  }
  ewa::set_num_threads(threads);
  torch::manual_seed(0);
  const auto vit = ewa::VisionTransformerOptions().img_size(32).patch_size(4).in_chans(3).num_classes(10)
                       .embed_dim(192).depth(6).num_heads(3).mlp_ratio(4.0);
  const auto moe = ewa::MoEOptions().enabled(true).num_experts(4).every(2);
  ewa::VisionTransformer dense(vit), moe_model(vit, moe);
  std::printf("ViT img 32 patch 4 dim 192 depth 6 heads 3 mlp 768, batch %d, %d threads, %d timed iters\n", batch,
              threads, iters);
  std::printf("MoE: %lld experts in blocks", static_cast<long long>(moe.num_experts()));
  for (auto b : moe_model->moe_blocks()) std::printf(" %lld", static_cast<long long>(b));
  std::printf(" (RUP router)\n");

  auto x = torch::randn({batch, 3, 32, 32});
  auto y = torch::randint(0, 10, {batch}, torch::kLong);
  auto opt_cfg = torch::optim::AdamWOptions(1e-3).weight_decay(0.05);
  torch::optim::AdamW opt_dense(dense->parameters(), opt_cfg), opt_moe(moe_model->parameters(), opt_cfg);
  auto step = [&](ewa::VisionTransformer& m, torch::optim::Optimizer& opt) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(m->forward(x), y);
    loss.backward();
    opt.step();
  };
  dense->train();
  moe_model->train();
  auto train = interleaved({[&] { step(dense, opt_dense); }, [&] { step(moe_model, opt_moe); }}, 2, iters);
  std::printf("train step (fwd+bwd+AdamW): dense %.1f ms, MoE-RUP %.1f ms, ratio %.3f (target <= 1.10)\n", train[0],
              train[1], train[1] / train[0]);

  std::vector<double> ewa_times;
  for (int i = 0; i < 50; ++i) {
    const double t0 = now_ms();
    ewa::apply_ewa_(*moe_model, 0.3);
    ewa_times.push_back(now_ms() - t0);
  }
  const double ewa_ms = median(ewa_times);
  std::printf("EWA update: %.3f ms per step = %.2f%% of the MoE step (target < 2%%)\n", ewa_ms,
              100.0 * ewa_ms / train[1]);

  auto probe = torch::randn({4, 3, 32, 32});
  auto report = ewa::collapse_to_dense(moe_model, probe);
  std::printf("collapse: %zu MoE layers -> dense, verify max |diff| = %g\n", report.blocks.size(),
              report.max_abs_diff);
  dense->eval();
  moe_model->eval();
  torch::NoGradGuard no_grad;
  auto infer = interleaved({[&] { dense->forward(x); }, [&] { moe_model->forward(x); }}, 2, iters * 2);
  std::printf("inference (batch %d): dense %.1f ms, collapsed %.1f ms, ratio %.3f (target 1.00 within noise)\n",
              batch, infer[0], infer[1], infer[1] / infer[0]);
  return 0;
}
