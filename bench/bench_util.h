// Timing helpers shared by the timed-program benchmarks: wall clock, median, interleaved runs
// of several variants (so load spikes hit every variant alike), GEMM roofline and FLOP count.
#pragma once

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <cstring>
#include <functional>
#include <vector>

#include "ewa/core/gemm.h"

namespace ewa::bench {

inline double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// CPU time of the whole process (all threads), ms.
inline double cpu_ms() {
  return static_cast<double>(std::clock()) * 1000.0 / CLOCKS_PER_SEC;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

/// Runs each function `iters` times, alternating between them, after `warmup` untimed rounds.
/// Returns the median ms of each.
inline std::vector<double> interleaved(const std::vector<std::function<void()>>& fns, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) {
    for (const auto& f : fns) f();
  }
  std::vector<std::vector<double>> times(fns.size());
  for (int i = 0; i < iters; ++i) {
    for (size_t k = 0; k < fns.size(); ++k) {
      const double t0 = now_ms();
      fns[k]();
      times[k].push_back(now_ms() - t0);
    }
  }
  std::vector<double> out;
  for (auto& t : times) out.push_back(median(t));
  return out;
}

/// GFLOP/s of [m, k] x [k, n] in `dtype`, the best of `iters` timed calls after one warm-up:
/// through ewa::gemm (what the models run: fp32 via oneDNN when built with it) or, with
/// `at_mm`, through at::mm (fp32 via the BLAS, bf16 via oneDNN). This machine's GEMM roof.
inline double gemm_gflops(torch::ScalarType dtype, int64_t m, int64_t k, int64_t n, int iters, bool at_mm = false) {
  torch::NoGradGuard no_grad;
  auto a = torch::randn({m, k}).to(dtype), b = torch::randn({k, n}).to(dtype);
  auto c = torch::mm(a, b);
  double best = 1e30;
  for (int i = 0; i <= iters; ++i) {
    const double t0 = now_ms();
    if (at_mm) torch::mm_out(c, a, b);
    else c = ewa::gemm(a, b);
    if (i > 0) best = std::min(best, now_ms() - t0);
  }
  return 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n) / (best * 1e6);
}

namespace detail {
inline std::atomic<double>& gemm_flop_counter() {
  static std::atomic<double> flops{0.0};
  return flops;
}
// 2*M*N*K of the GEMM ops every matmul ends in (linear, matmul and their backward all dispatch
// to these; convolutions and elementwise ops are not counted).
inline std::unique_ptr<at::ObserverContext> count_gemm_call(const at::RecordFunction& fn) {
  const char* name = fn.name();
  const bool mm = !std::strcmp(name, "aten::mm"), addmm = !std::strcmp(name, "aten::addmm");
  const bool bmm = !std::strcmp(name, "aten::bmm"), baddbmm = !std::strcmp(name, "aten::baddbmm");
  const bool ewa_gemm = !std::strcmp(name, "ewa::gemm");  // the oneDNN path records (a, b)
  if (!(mm || addmm || bmm || baddbmm || ewa_gemm)) return nullptr;
  auto in = fn.inputs();
  const size_t first = (addmm || baddbmm) ? 1 : 0;  // addmm(bias, a, b)
  if (in.size() < first + 2 || !in[first].isTensor() || !in[first + 1].isTensor()) return nullptr;
  const auto& a = in[first].toTensor();
  const auto& b = in[first + 1].toTensor();
  double flops = 2.0 * static_cast<double>(a.numel()) * static_cast<double>(b.size(-1));
  auto& counter = gemm_flop_counter();
  double cur = counter.load();
  while (!counter.compare_exchange_weak(cur, cur + flops)) {
  }
  return nullptr;
}
}  // namespace detail

/// GEMM FLOPs of one call of `fn` (forward and backward matmuls of a train step), counted from the
/// shapes of every aten::mm / addmm / bmm / baddbmm and ewa::gemm (oneDNN) it dispatches.
inline double count_gemm_flops(const std::function<void()>& fn) {
  detail::gemm_flop_counter() = 0.0;
  auto handle = at::addGlobalCallback(
      at::RecordFunctionCallback(&detail::count_gemm_call).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
  fn();
  at::removeCallback(handle);
  return detail::gemm_flop_counter().load();
}

}  // namespace ewa::bench
