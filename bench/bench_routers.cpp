// Per router: (1) the training step (fwd + bwd + AdamW + EWA) of the core benchmark's ViT
// (img 32, patch 4, dim 192, depth 6, heads 3, mlp 768, batch 128; 4 experts in every other
// block) vs the dense ViT, interleaved; (2) forward+backward of one MoE layer (T=4096 tokens
// as B x T_img, d=192, hidden 768, E=4) vs the dense FFN, and the routing overhead (router +
// dispatch/combine) as a share of that layer.
// Usage: bench_routers [--threads N] [--iters N] [--images B] [--vit-batch N] [--vit-iters N]
// [--skip-vit] [--profile ROUTER] (writes a chrome trace of one layer step of that router)
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "ewa/core/ewa.h"
#include "ewa/core/moe.h"
#include "ewa/core/router.h"
#include "ewa/core/runtime.h"
#include "ewa/core/vit.h"

using ewa::bench::interleaved;
using ewa::bench::median;
using ewa::bench::now_ms;

namespace {

// Router options of the benchmark: defaults, token choice with k 1 / cf 1, Soft MoE with as
// many slots as tokens (`tokens_per_image` tokens per image over `e` experts).
ewa::RouterOptions bench_router(const std::string& name, int64_t tokens_per_image, int64_t e) {
  auto opts = ewa::RouterOptions().name(name);
  if (name == "softmax_token_choice" || name == "sinkhorn_token_choice") opts.k(1).capacity_factor(1.0);
  if (name == "soft_moe") opts.slots_per_expert(std::max<int64_t>(1, tokens_per_image / e));
  return opts;
}

// Training step of the core benchmark's ViT with every router vs the dense ViT.
void vit_table(int batch, int iters) {
  const auto vit = ewa::VisionTransformerOptions().img_size(32).patch_size(4).in_chans(3).num_classes(10)
                       .embed_dim(192).depth(6).num_heads(3).mlp_ratio(4.0);
  const int64_t e = 4, tokens = (32 / 4) * (32 / 4) + 1;
  auto x = torch::randn({batch, 3, 32, 32});
  auto y = torch::randint(0, 10, {batch}, torch::kLong);
  auto opt_cfg = torch::optim::AdamWOptions(1e-3).weight_decay(0.05);
  torch::manual_seed(0);
  ewa::VisionTransformer dense(vit);
  torch::optim::AdamW opt_dense(dense->parameters(), opt_cfg);
  dense->train();
  auto dense_step = [&] {
    opt_dense.zero_grad();
    torch::nn::functional::cross_entropy(dense->forward(x), y).backward();
    opt_dense.step();
  };
  std::printf("\nViT training step (fwd + bwd + AdamW + EWA), img 32 patch 4 dim 192 depth 6 mlp 768, batch %d, "
              "%lld experts in blocks 1 3 5, %d timed iters:\n",
              batch, static_cast<long long>(e), iters);
  std::printf("| router | step ms | vs dense ViT |\n|---|---:|---:|\n");
  const double dense_ms = ewa::bench::interleaved({dense_step}, 2, iters)[0];
  std::printf("| dense ViT | %.1f | 1.00 |\n", dense_ms);
  std::fflush(stdout);
  for (const auto& name : ewa::available_routers()) {
    torch::manual_seed(0);
    ewa::VisionTransformer moe(vit, ewa::MoEOptions().enabled(true).num_experts(e).every(2).router(
                                        bench_router(name, tokens, e)));
    torch::optim::AdamW opt(moe->parameters(), opt_cfg);
    moe->train();
    auto step = [&] {
      opt.zero_grad();
      moe->set_router_targets(y);
      auto loss = torch::nn::functional::cross_entropy(moe->forward(x), y) + moe->aux_loss();
      loss.backward();
      opt.step();
      ewa::apply_ewa_(*moe, 0.3);
    };
    auto ms = ewa::bench::interleaved({dense_step, step}, 2, iters);
    std::printf("| %s | %.1f | %.2f |\n", name.c_str(), ms[1], ms[1] / ms[0]);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, iters = 10, images = 64, vit_batch = 128, vit_iters = 5;
  bool skip_vit = false;
  std::string profile;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--skip-vit")) {
      skip_vit = true;
    } else if (has_value && !std::strcmp(argv[i], "--threads")) {
      threads = std::atoi(argv[++i]);
    } else if (has_value && !std::strcmp(argv[i], "--iters")) {
      iters = std::atoi(argv[++i]);
    } else if (has_value && !std::strcmp(argv[i], "--images")) {
      images = std::atoi(argv[++i]);
    } else if (has_value && !std::strcmp(argv[i], "--vit-batch")) {
      vit_batch = std::atoi(argv[++i]);
    } else if (has_value && !std::strcmp(argv[i], "--vit-iters")) {
      vit_iters = std::atoi(argv[++i]);
    } else if (has_value && !std::strcmp(argv[i], "--profile")) {
      profile = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: %s [--threads N] [--iters N] [--images B] [--vit-batch N] [--vit-iters N] [--skip-vit] "
                   "[--profile ROUTER]\n",
                   argv[0]);
      return 2;
    }
  }
  ewa::set_num_threads(threads);  // 0 = all cores; also pins the malloc thresholds
  torch::manual_seed(0);
  const int64_t tokens = 4096, d = 192, hidden = 768, e = 4;
  const int64_t b = images, t = tokens / images;
  auto x = torch::randn({b, t, d}).requires_grad_(true);
  std::printf("bench_routers: %lld tokens (%lld images x %lld), d %lld, hidden %lld, E %lld, threads %d, iters %d\n",
              static_cast<long long>(b * t), static_cast<long long>(b), static_cast<long long>(t),
              static_cast<long long>(d), static_cast<long long>(hidden), static_cast<long long>(e),
              torch::get_num_threads(), iters);

  ewa::Mlp dense(d, hidden, d);
  auto dense_step = [&] {
    dense->zero_grad();
    dense->forward(x).sum().backward();
  };

  std::printf("| router | fwd+bwd ms | vs dense | route ms (fwd) | expert compute ms | routing overhead |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  double dense_ms = interleaved({dense_step}, 2, iters)[0];
  std::printf("| dense FFN | %.2f | 1.00 | - | %.2f | - |\n", dense_ms, dense_ms);
  for (const auto& name : ewa::available_routers()) {
    ewa::MoEMlp moe(d, hidden, d, e, bench_router(name, t, e));
    moe->train();
    auto step = [&] {
      moe->zero_grad();
      auto loss = moe->forward(x).sum();
      if (moe->last_aux_loss().defined()) loss = loss + moe->last_aux_loss();
      loss.backward();
    };
    auto route_only = [&] { moe->router->route(x); };
    // Expert compute alone on the shapes the layer executes: the padded [E, C] slots, or each
    // expert on its own routed tokens when execute_plan takes the ragged path.
    auto plan = moe->router->route(x);
    const int64_t slots = plan.is_soft() ? b * plan.soft_dispatch.size(3) : plan.dispatch_index.size(1);
    const std::vector<int64_t> ragged = ewa::ragged_expert_counts(plan, b * t);  // empty: padded path
    auto xs = torch::randn({e, slots, d}).requires_grad_(true);
    auto experts_only = [&] {
      moe->zero_grad();
      if (ragged.empty()) {
        moe.ffn().forward(xs).sum().backward();
        return;
      }
      torch::Tensor total = torch::zeros({});
      for (int64_t i = 0; i < e; ++i) {
        if (ragged[i] > 0) total = total + moe.ffn().forward_expert(i, xs[i].narrow(0, 0, ragged[i])).sum();
      }
      total.backward();
    };
    if (!profile.empty() && name == profile) {  // --profile NAME: chrome trace of one step
      torch::autograd::profiler::RecordProfile guard("bench_routers_" + name + ".trace.json");
      step();
    }
    auto ms = interleaved({dense_step, step, route_only, experts_only}, 2, iters);
    const double overhead = std::max(0.0, ms[1] - ms[3]) / ms[1];
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.0f%% |\n", name.c_str(), ms[1], ms[1] / ms[0], ms[2], ms[3],
                100.0 * overhead);
    std::fflush(stdout);
  }
  if (!skip_vit) vit_table(vit_batch, vit_iters);
  return 0;
}
