// Point Transformer Seg50 benchmark (timed program, CPU): inference forward and training
// forward+backward on one cloud and on two half-size clouds, then the train-step time of the
// MoE model (4 experts in stages 3,4, RUP + EWA) relative to the dense one, and the dense
// step's achieved GEMM GFLOP/s as a fraction of this machine's fp32 GEMM roof. Each train
// step is also split into forward+loss / backward / optimizer with its page faults.
// Usage: bench_point_transformer [threads=2] [points=40000] [runs=5]
// BENCH_PROFILE=trace.json profiles one dense train step (LibTorch's profiler; per-op self
// times: bench/profile_summary.py trace.json), BENCH_SHAPES=1 adds each op's first input shape.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <sys/resource.h>

#include "bench_util.h"
#include "ewa/core/ewa.h"
#include "ewa/core/optim.h"
#include "ewa/core/runtime.h"
#include "ewa/pointcloud/point_transformer.h"

namespace pc = ewa::pointcloud;

namespace {

/// Minor page faults of this process so far (fresh memory touched for the first time).
long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

/// Median wall time of `runs` calls of f after one warm-up call.
double median_seconds(int runs, const std::function<void()>& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Batch {
  torch::Tensor coord, feat, offset, label;
};

/// `clouds` rooms of n/clouds points: uniform in a 10 x 8 x 3 m box, rgb features in [0,1]
/// (feat = xyz + rgb, 6 channels as in S3DIS), 13 random labels.
Batch make_batch(int64_t n, int64_t clouds) {
  torch::manual_seed(0);
  Batch b;
  b.coord = torch::rand({n, 3}) * torch::tensor({10.0f, 8.0f, 3.0f});
  b.feat = torch::cat({b.coord, torch::rand({n, 3})}, 1);
  std::vector<int64_t> o;
  for (int64_t c = 1; c <= clouds; ++c) o.push_back(n * c / clouds);
  b.offset = torch::tensor(o, torch::kLong);
  b.label = torch::randint(13, {n}, torch::kLong);
  return b;
}

double inference(pc::PointTransformer& model, const Batch& b, int runs) {
  model->eval();
  torch::NoGradGuard no_grad;
  return median_seconds(runs, [&] { model->forward(b.coord, b.feat, b.offset); });
}

double forward_backward(pc::PointTransformer& model, const Batch& b, int runs) {
  model->train();
  return median_seconds(runs, [&] {
    model->zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(b.coord, b.feat, b.offset), b.label);
    loss.backward();
  });
}

/// Writes the profiler's events as chrome-trace "X" events (Debian's LibTorch has no Kineto to
/// save them itself); with recorded shapes each name carries its first input's shape.
void write_trace(const torch::autograd::profiler::ProfilerResult& result, const char* path) {
  std::FILE* f = std::fopen(path, "w");
  if (!f) {
    std::fprintf(stderr, "bench_point_transformer: cannot write %s\n", path);
    return;
  }
  std::fprintf(f, "{\"traceEvents\": [\n");
  bool first = true;
  for (const auto& e : result.events()) {
    std::string name = e.name();
    if (e.hasShapes() && !e.shapes().empty() && !e.shapes()[0].empty()) {
      name += " [";
      for (size_t d = 0; d < e.shapes()[0].size(); ++d) name += (d ? "," : "") + std::to_string(e.shapes()[0][d]);
      name += "]";
    }
    std::fprintf(f, "%s{\"ph\": \"X\", \"name\": \"%s\", \"ts\": %llu, \"dur\": %llu, \"tid\": %llu}",
                 first ? "" : ",\n", name.c_str(), static_cast<unsigned long long>(e.startUs()),
                 static_cast<unsigned long long>(e.durationUs()), static_cast<unsigned long long>(e.startThreadId()));
    first = false;
  }
  std::fprintf(f, "\n]}\n");
  std::fclose(f);
}

/// One optimizer step as the trainer does it: forward, loss (+ aux), backward, AdamW step
/// (the trainer's ewa::FusedAdamW), and the EWA update for MoE models: median seconds of `runs`
/// steps after a warm-up, their phases printed. `gemm_flops` (optional) receives the GEMM
/// FLOPs of one step.
double train_step(pc::PointTransformer& model, const Batch& b, int runs, double* gemm_flops = nullptr) {
  model->train();
  ewa::FusedAdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0.01));
  const bool moe = model->num_moe_layers() > 0;
  // One step; with `phases` it appends forward+loss / backward / optimizer (+ EWA) seconds and
  // the page faults of the step (fresh memory touched) to phases[0..3].
  auto step = [&](std::vector<double>* phases = nullptr) {
    const long f0 = minor_faults();
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(b.coord, b.feat, b.offset), b.label) +
                model->aux_loss();
    const auto t1 = std::chrono::steady_clock::now();
    loss.backward();
    const auto t2 = std::chrono::steady_clock::now();
    opt.step();
    if (moe) ewa::apply_ewa_(*model, 0.3);
    const auto t3 = std::chrono::steady_clock::now();
    if (!phases) return;
    phases[0].push_back(std::chrono::duration<double>(t1 - t0).count());
    phases[1].push_back(std::chrono::duration<double>(t2 - t1).count());
    phases[2].push_back(std::chrono::duration<double>(t3 - t2).count());
    phases[3].push_back(static_cast<double>(minor_faults() - f0));
  };
  if (gemm_flops) *gemm_flops = ewa::bench::count_gemm_flops([&] { step(); });
  step();  // warm-up
  std::vector<double> phases[4], total;
  for (int r = 0; r < runs; ++r) {
    step(phases);
    total.push_back(phases[0].back() + phases[1].back() + phases[2].back());
  }
  using ewa::bench::median;
  std::printf("  %s step phases (medians): forward+loss %.3f s, backward %.3f s, optimizer%s %.3f s; %.0f page "
              "faults per step\n",
              moe ? "MoE" : "dense", median(phases[0]), median(phases[1]), moe ? " + EWA" : "", median(phases[2]),
              median(phases[3]));
  // BENCH_PROFILE=trace.json: one more step under LibTorch's profiler (op self times:
  // bench/profile_summary.py trace.json).
  if (const char* trace = std::getenv("BENCH_PROFILE"); trace && *trace && !moe) {
    namespace prof = torch::autograd::profiler;
    const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO,
                                                       /*report_input_shapes=*/std::getenv("BENCH_SHAPES") != nullptr);
    const std::set<torch::profiler::impl::ActivityType> cpu{torch::profiler::impl::ActivityType::CPU};
    prof::prepareProfiler(config, cpu);
    prof::enableProfiler(config, cpu);
    step();
    write_trace(*prof::disableProfiler(), trace);
  }
  return median(total);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int64_t points = argc > 2 ? std::atoll(argv[2]) : 40000;
  const int runs = argc > 3 ? std::atoi(argv[3]) : 5;
  if (threads < 1 || points < 1024 || runs < 1) {
    std::fprintf(stderr, "usage: bench_point_transformer [threads>=1] [points>=1024] [runs>=1]\n");
    return 2;
  }
  ewa::set_num_threads(threads);  // also pins the malloc thresholds, as every ewa entry point
  at::set_num_interop_threads(1);
  std::printf("bench_point_transformer: Seg50 (in 6, 13 classes), %lld points, %d threads, median of %d runs\n",
              static_cast<long long>(points), threads, runs);

  torch::manual_seed(1);
  pc::PointTransformerOptions dense_opts;
  pc::PointTransformer dense(dense_opts);
  std::printf("dense parameters: %lld\n", static_cast<long long>(pc::dense_parameter_count(dense_opts)));

  std::printf("%-28s %12s %16s\n", "batch", "forward [s]", "fwd+bwd [s]");
  for (int64_t clouds : {1, 2}) {
    const Batch b = make_batch(points, clouds);
    const double f = inference(dense, b, runs);
    const double fb = forward_backward(dense, b, runs);
    const std::string name = std::to_string(clouds) + " x " + std::to_string(points / clouds) + " points";
    std::printf("%-28s %12.3f %16.3f\n", name.c_str(), f, fb);
  }

  pc::PointTransformerOptions moe_opts = dense_opts;
  moe_opts.moe().enabled(true).num_experts(4).stages({3, 4});
  torch::manual_seed(1);
  pc::PointTransformer moe(moe_opts);
  const Batch b = make_batch(points, 1);
  double flops = 0;
  const double td = train_step(dense, b, runs, &flops);
  const double tm = train_step(moe, b, runs);
  std::printf("train step (fwd+bwd+AdamW), 1 x %lld points: dense %.3f s, MoE 4 experts stages 3,4 (%lld MoE "
              "linears, RUP + EWA) %.3f s, ratio %.3f\n",
              static_cast<long long>(points), td, static_cast<long long>(moe->num_moe_layers()), tm, tm / td);
  const double roof = ewa::bench::gemm_gflops(torch::kFloat, 2048, 2048, 2048, 5);
  const double achieved = flops / (td * 1e9);
  std::printf("roofline: dense step %.1f GFLOP (GEMMs) -> %.1f GFLOP/s = %.0f%% of this machine's fp32 GEMM "
              "(%.1f GFLOP/s, 2048^3 ewa::gemm = %s)\n",
              flops / 1e9, achieved, 100.0 * achieved / roof, roof, ewa::gemm_backend().c_str());
  return 0;
}
