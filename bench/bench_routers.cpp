// Forward+backward time of one MoE layer per router vs the dense FFN (T=4096 tokens as
// B x T_img, d=192, hidden 768, E=4), and the routing overhead (router + dispatch/combine) as
// a share of the layer. Usage: bench_routers [--threads N] [--iters N] [--images B]
// [--profile ROUTER] (writes a chrome trace of one training step of that router)
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
#include "ewa/core/moe.h"
#include "ewa/core/router.h"
#include "ewa/core/vit.h"

using ewa::bench::interleaved;
using ewa::bench::median;
using ewa::bench::now_ms;

int main(int argc, char** argv) {
  int threads = 0, iters = 10, images = 64;
  std::string profile;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--images")) images = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--profile")) profile = argv[i + 1];
  }
  if (threads > 0) torch::set_num_threads(threads);
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
    auto opts = ewa::RouterOptions().name(name);
    if (name == "softmax_token_choice" || name == "sinkhorn_token_choice") opts.k(1).capacity_factor(1.0);
    if (name == "soft_moe") opts.slots_per_expert(std::max<int64_t>(1, t / e));  // as many slots as tokens
    ewa::MoEMlp moe(d, hidden, d, e, opts);
    moe->train();
    auto step = [&] {
      moe->zero_grad();
      auto loss = moe->forward(x).sum();
      if (moe->last_aux_loss().defined()) loss = loss + moe->last_aux_loss();
      loss.backward();
    };
    auto route_only = [&] { moe->router->route(x); };
    // Expert compute alone on the same slot shapes as the plan.
    auto plan = moe->router->route(x);
    const int64_t slots = plan.is_soft() ? b * plan.soft_dispatch.size(3) : plan.dispatch_index.size(1);
    auto xs = torch::randn({e, slots, d}).requires_grad_(true);
    auto experts_only = [&] {
      moe->zero_grad();
      moe->experts->forward(xs).sum().backward();
    };
    if (!profile.empty() && name == profile) {  // --profile NAME: chrome trace of one step
      torch::autograd::profiler::RecordProfile guard("bench_routers_" + name + ".trace.json");
      step();
    }
    auto ms = interleaved({dense_step, step, route_only, experts_only}, 2, iters);
    const double overhead = std::max(0.0, ms[1] - ms[3]) / ms[1];
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.0f%% |\n", name.c_str(), ms[1], ms[1] / ms[0], ms[2], ms[3],
                100.0 * overhead);
  }
  return 0;
}
