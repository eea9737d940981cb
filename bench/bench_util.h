// Timing helpers shared by the timed-program benchmarks: wall clock, median, and interleaved
// runs of several variants (so load spikes hit every variant alike).
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

namespace ewa::bench {

inline double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
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

}  // namespace ewa::bench
