// CPU grid (voxel) sampling: per cloud, voxel keys floor((p - min)/size), a stable LSD radix
// sort of (key, point), voxel runs; then the train pick / test fragments / inverse map.
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "grid_sample_cpu.h"

namespace ewa::pointcloud::ops::detail {
namespace {

/// Stable LSD radix sort of `order` (point ids) by `key`, using the low `bits` bits.
void radix_sort(std::vector<uint64_t>& key, std::vector<int64_t>& order, int bits) {
  constexpr int kDigit = 11;
  const size_t n = key.size();
  std::vector<uint64_t> key2(n);
  std::vector<int64_t> order2(n);
  std::vector<size_t> hist(size_t(1) << kDigit);
  for (int shift = 0; shift < bits; shift += kDigit) {
    std::fill(hist.begin(), hist.end(), 0);
    const uint64_t mask = (uint64_t(1) << kDigit) - 1;
    for (size_t i = 0; i < n; ++i) ++hist[(key[i] >> shift) & mask];
    size_t run = 0;
    for (auto& h : hist) {
      const size_t v = h;
      h = run;
      run += v;
    }
    for (size_t i = 0; i < n; ++i) {
      const size_t slot = hist[(key[i] >> shift) & mask]++;
      key2[slot] = key[i];
      order2[slot] = order[i];
    }
    key.swap(key2);
    order.swap(order2);
  }
}

template <typename T>
void voxelize_cloud(const T* p, int64_t n, int64_t base, double size, int64_t cloud,
                    std::vector<int64_t>& sorted, std::vector<int64_t>& vstart,
                    std::vector<int64_t>& vcount) {
  if (n == 0) return;
  double lo[3];
  for (int d = 0; d < 3; ++d) lo[d] = p[d];
  for (int64_t i = 1; i < n; ++i)
    for (int d = 0; d < 3; ++d) lo[d] = std::min(lo[d], double(p[3 * i + d]));
  std::vector<int64_t> cell(3 * n);
  int64_t dims[3] = {1, 1, 1};
  std::atomic<bool> finite{true};
  at::parallel_for(0, n, 8192, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int d = 0; d < 3; ++d) {
        const double c = std::floor((double(p[3 * i + d]) - lo[d]) / size);
        const bool ok = c >= 0 && c < double(int64_t(1) << 40);
        if (!ok) finite.store(false, std::memory_order_relaxed);
        cell[3 * i + d] = ok ? static_cast<int64_t>(c) : 0;
      }
  });
  TORCH_CHECK(finite.load(), "grid_sample: cloud ", cloud,
              " has non-finite coordinates or too many voxels for grid_size ", size);
  for (int64_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) dims[d] = std::max(dims[d], cell[3 * i + d] + 1);
  const double total = double(dims[0]) * double(dims[1]) * double(dims[2]);
  TORCH_CHECK(total < 9.0e18, "grid_sample: cloud ", cloud, " spans ", dims[0], "x", dims[1], "x",
              dims[2], " voxels of size ", size, ", too many for a 64-bit key");
  std::vector<uint64_t> key(n);
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) {
    key[i] = static_cast<uint64_t>((cell[3 * i + 2] * dims[1] + cell[3 * i + 1]) * dims[0] +
                                   cell[3 * i]);
    order[i] = i;
  }
  int bits = 1;
  while (bits < 64 && (uint64_t(1) << bits) < static_cast<uint64_t>(total)) ++bits;
  radix_sort(key, order, bits);
  const int64_t off = static_cast<int64_t>(sorted.size());
  for (int64_t j = 0; j < n; ++j) {
    sorted.push_back(base + order[j]);
    if (j == 0 || key[j] != key[j - 1]) {
      vstart.push_back(off + j);
      vcount.push_back(0);
    }
    ++vcount.back();
  }
}

}  // namespace

GridSampleResult grid_sample_cpu(const torch::Tensor& xyz, const std::vector<int64_t>& off,
                                 double grid_size, GridSampleMode mode,
                                 std::optional<at::Generator> generator, bool return_inverse) {
  std::vector<int64_t> sorted, vstart, vcount;
  sorted.reserve(xyz.size(0));
  std::vector<int64_t> voff(off.size());
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "grid_sample_cpu", [&] {
    const scalar_t* p = xyz.data_ptr<scalar_t>();
    int64_t s = 0;
    for (size_t b = 0; b < off.size(); ++b) {
      voxelize_cloud<scalar_t>(p + 3 * s, off[b] - s, s, grid_size, static_cast<int64_t>(b),
                               sorted, vstart, vcount);
      voff[b] = static_cast<int64_t>(vstart.size());
      s = off[b];
    }
  });
  const int64_t V = static_cast<int64_t>(vstart.size());
  auto lopt = torch::TensorOptions().dtype(torch::kLong);
  GridSampleResult r;
  r.offset = torch::tensor(voff, lopt);
  r.counts = torch::tensor(vcount, lopt);
  if (mode == GridSampleMode::kTrain) {
    auto u = at::rand({V}, generator ? c10::optional<at::Generator>(*generator) : c10::nullopt, torch::TensorOptions().dtype(torch::kDouble));
    const double* up = u.data_ptr<double>();
    auto kept = torch::empty({V}, lopt);
    int64_t* kp = kept.data_ptr<int64_t>();
    at::parallel_for(0, V, 4096, [&](int64_t b, int64_t e) {
      for (int64_t v = b; v < e; ++v) {
        const int64_t pick = std::min<int64_t>(vcount[v] - 1, int64_t(up[v] * double(vcount[v])));
        kp[v] = sorted[vstart[v] + pick];
      }
    });
    r.fragments.push_back(kept);
  } else if (mode == GridSampleMode::kVoxels) {
    r.order = torch::tensor(sorted, lopt);
  } else {
    const int64_t F = V == 0 ? 1 : *std::max_element(vcount.begin(), vcount.end());
    for (int64_t f = 0; f < F; ++f) {
      auto frag = torch::empty({V}, lopt);
      int64_t* fp = frag.data_ptr<int64_t>();
      at::parallel_for(0, V, 4096, [&](int64_t b, int64_t e) {
        for (int64_t v = b; v < e; ++v) fp[v] = sorted[vstart[v] + f % vcount[v]];
      });
      r.fragments.push_back(frag);
    }
  }
  if (return_inverse) {
    r.inverse = torch::empty({xyz.size(0)}, lopt);
    int64_t* ip = r.inverse.data_ptr<int64_t>();
    at::parallel_for(0, V, 4096, [&](int64_t b, int64_t e) {
      for (int64_t v = b; v < e; ++v)
        for (int64_t j = 0; j < vcount[v]; ++j) ip[sorted[vstart[v] + j]] = v;
    });
  }
  return r;
}

}  // namespace ewa::pointcloud::ops::detail
