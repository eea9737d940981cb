// Training-step time of a small ViT, dense vs MoE-RUP (4 experts, every other block), the
// optimizer (ewa::FusedAdamW vs torch::optim::AdamW), the achieved GFLOP/s against this machine's
// GEMM roof, the EWA update's share of a step, and inference of the collapsed model vs dense.
// Usage: bench_vit_moe [--threads N] [--iters N] [--batch N] [--dense-only 1]
//        (timings interleaved, medians; --dense-only: just the dense fp32 step, for bench/peer_vit.sh)
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
#include "ewa/core/optim.h"
#include "ewa/core/runtime.h"
#include "ewa/core/vit.h"

using ewa::bench::interleaved;
using ewa::bench::median;
using ewa::bench::now_ms;

int main(int argc, char** argv) {
  int threads = 2, iters = 10, batch = 128, dense_only = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--iters")) iters = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--batch")) batch = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--dense-only")) dense_only = std::stoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--iters N] [--batch N] [--dense-only 0|1]\n", argv[0]);
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
  // The trainer's optimizer (ewa::FusedAdamW); a second dense model with LibTorch's AdamW.
  ewa::FusedAdamW opt_dense(dense->parameters(), opt_cfg), opt_moe(moe_model->parameters(), opt_cfg);
  torch::manual_seed(0);
  ewa::VisionTransformer dense_torch_adamw(vit);
  torch::optim::AdamW opt_torch(dense_torch_adamw->parameters(), opt_cfg);
  auto step = [&](ewa::VisionTransformer& m, torch::optim::Optimizer& opt) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(m->forward(x), y);
    loss.backward();
    opt.step();
  };
  dense->train();
  moe_model->train();
  dense_torch_adamw->train();
  if (dense_only) {
    // Also the process CPU time per step: with --threads 1 a load-independent measure of the work.
    std::vector<double> cpu;
    auto t = interleaved({[&] {
                           const double c0 = ewa::bench::cpu_ms();
                           step(dense, opt_dense);
                           cpu.push_back(ewa::bench::cpu_ms() - c0);
                         }},
                         2, iters);
    cpu.erase(cpu.begin(), cpu.begin() + 2);  // warm-up
    std::printf("dense fp32 train step: cpu %.1f ms, wall %.1f ms\n", median(cpu), t[0]);
    return 0;
  }
  const double step_flops = ewa::bench::count_gemm_flops([&] { step(dense, opt_dense); });
  const double roof = ewa::bench::gemm_gflops(torch::kFloat, 2048, 2048, 2048, 5);
  auto train = interleaved({[&] { step(dense, opt_dense); }, [&] { step(moe_model, opt_moe); },
                            [&] { step(dense_torch_adamw, opt_torch); }},
                           2, iters);
  std::printf("train step (fwd+bwd+AdamW): dense %.1f ms, MoE-RUP %.1f ms, ratio %.3f (target <= 1.10)\n", train[0],
              train[1], train[1] / train[0]);
  // The optimizer step alone (gradients of the last step in place), interleaved.
  auto opt_only = interleaved({[&] { opt_dense.step(); }, [&] { opt_torch.step(); }}, 3, 4 * iters);
  std::printf("optimizer: dense train step with torch::optim::AdamW %.1f ms = %.3fx the FusedAdamW step; "
              "AdamW step alone %.2f ms (LibTorch) vs %.2f ms (FusedAdamW), %.2fx\n",
              train[2], train[2] / train[0], opt_only[1], opt_only[0], opt_only[1] / opt_only[0]);
  const double achieved = step_flops / (train[0] * 1e6);
  std::printf("roofline: dense step %.1f GFLOP (GEMMs) -> %.1f GFLOP/s = %.0f%% of this machine's fp32 GEMM "
              "(%.1f GFLOP/s, 2048^3 ewa::gemm = %s)\n",
              step_flops / 1e9, achieved, 100.0 * achieved / roof, roof, ewa::gemm_backend().c_str());

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
