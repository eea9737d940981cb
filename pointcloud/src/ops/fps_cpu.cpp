// CPU reference farthest point sampling, exact and deterministic. Points are ordered along a
// Morton curve and cut into small blocks with bounding boxes; a block whose box is farther from
// the new sample than its largest min-distance cannot change and is skipped. Clouds in parallel.
#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "common.h"

namespace ewa::pointcloud::ops::detail {
namespace {

constexpr int64_t kBlock = 64;

inline uint64_t spread_bits(uint64_t v) {  // 21 bits -> every third bit
  v &= 0x1fffff;
  v = (v | v << 32) & 0x1f00000000ffffULL;
  v = (v | v << 16) & 0x1f0000ff0000ffULL;
  v = (v | v << 8) & 0x100f00f00f00f00fULL;
  v = (v | v << 4) & 0x10c30c30c30c30c3ULL;
  v = (v | v << 2) & 0x1249249249249249ULL;
  return v;
}

template <typename T>
void fps_cloud(const T* p, int64_t n, int64_t m, int64_t base, int64_t start, int64_t* out) {
  // Morton order of the points.
  T lo[3] = {p[0], p[1], p[2]}, hi[3] = {p[0], p[1], p[2]};
  for (int64_t i = 1; i < n; ++i)
    for (int d = 0; d < 3; ++d) {
      lo[d] = std::min(lo[d], p[3 * i + d]);
      hi[d] = std::max(hi[d], p[3 * i + d]);
    }
  T ext = std::max({hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]});
  const T scale = ext > T(0) ? T(1023) / ext : T(0);
  std::vector<std::pair<uint64_t, int64_t>> code(n);
  for (int64_t i = 0; i < n; ++i) {
    uint64_t c = 0;
    for (int d = 0; d < 3; ++d)
      c |= spread_bits(static_cast<uint64_t>((p[3 * i + d] - lo[d]) * scale)) << d;
    code[i] = {c, i};
  }
  std::sort(code.begin(), code.end());
  std::vector<T> sp(3 * n);  // sorted points
  std::vector<int64_t> sid(n);
  for (int64_t j = 0; j < n; ++j) {
    sid[j] = code[j].second;
    for (int d = 0; d < 3; ++d) sp[3 * j + d] = p[3 * sid[j] + d];
  }
  const int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<T> box(6 * nb), bmax(nb, std::numeric_limits<T>::infinity());
  std::vector<int64_t> barg(nb);  // original index of each block's farthest point
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t s = b * kBlock, e = std::min(n, s + kBlock);
    for (int d = 0; d < 3; ++d) box[6 * b + d] = box[6 * b + 3 + d] = sp[3 * s + d];
    barg[b] = sid[s];
    for (int64_t j = s; j < e; ++j) {
      barg[b] = std::min(barg[b], sid[j]);
      for (int d = 0; d < 3; ++d) {
        box[6 * b + d] = std::min(box[6 * b + d], sp[3 * j + d]);
        box[6 * b + 3 + d] = std::max(box[6 * b + 3 + d], sp[3 * j + d]);
      }
    }
  }
  std::vector<T> mind(n, std::numeric_limits<T>::infinity());
  int64_t cur = start;
  out[0] = base + cur;
  for (int64_t it = 1; it < m; ++it) {
    const T cx = p[3 * cur], cy = p[3 * cur + 1], cz = p[3 * cur + 2];
    T best = T(-1);
    int64_t bidx = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const T* bx = &box[6 * b];
      const T gx = cx < bx[0] ? bx[0] - cx : (cx > bx[3] ? cx - bx[3] : T(0));
      const T gy = cy < bx[1] ? bx[1] - cy : (cy > bx[4] ? cy - bx[4] : T(0));
      const T gz = cz < bx[2] ? bx[2] - cz : (cz > bx[5] ? cz - bx[5] : T(0));
      if (gx * gx + gy * gy + gz * gz < bmax[b]) {
        // Some point of the block may get closer: update the block and its maximum.
        const int64_t s = b * kBlock, e = std::min(n, s + kBlock);
        T bm = T(-1);
        int64_t ba = 0;
        for (int64_t j = s; j < e; ++j) {
          const T dx = sp[3 * j] - cx, dy = sp[3 * j + 1] - cy, dz = sp[3 * j + 2] - cz;
          const T d = dx * dx + dy * dy + dz * dz;
          const T v = d < mind[j] ? d : mind[j];
          mind[j] = v;
          if (v > bm || (v == bm && sid[j] < ba)) {
            bm = v;
            ba = sid[j];
          }
        }
        bmax[b] = bm;
        barg[b] = ba;
      }
      if (bmax[b] > best || (bmax[b] == best && barg[b] < bidx)) {
        best = bmax[b];
        bidx = barg[b];
      }
    }
    cur = bidx;
    out[it] = base + cur;
  }
}

}  // namespace

void fps_cpu(const torch::Tensor& xyz, const std::vector<int64_t>& off,
             const std::vector<int64_t>& new_off, int64_t start, torch::Tensor& out) {
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "fps_cpu", [&] {
    const scalar_t* p = xyz.data_ptr<scalar_t>();
    int64_t* o = out.data_ptr<int64_t>();
    // Clouds are independent: run them in parallel (each one sequentially).
    at::parallel_for(0, static_cast<int64_t>(off.size()), 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t s = b == 0 ? 0 : off[b - 1], ns = b == 0 ? 0 : new_off[b - 1];
        const int64_t n = off[b] - s, m = new_off[b] - ns;
        if (m > 0) fps_cloud<scalar_t>(p + 3 * s, n, m, s, start, o + ns);
      }
    });
  });
}

}  // namespace ewa::pointcloud::ops::detail
