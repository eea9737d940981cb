// CPU reference kNN: per cloud, a dense uniform grid (counting sort of the points by cell, cell
// size adapted to volume or surface-like clouds), queries processed in cell order in parallel.
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "common.h"
#include "knn_grid.h"

namespace ewa::pointcloud::ops::detail {
namespace {

// Target points per occupied cell: about k/3, so that the first ring (27 cells) usually holds
// the k nearest and the search stops after it.
inline double points_per_cell(int k) { return std::max(1.5, k / 3.0); }

/// A built grid of one cloud (points sorted by cell).
template <typename T>
struct CpuGrid {
  GridParams<T> g{};
  std::vector<T> pts;         // [n,3] sorted by cell
  std::vector<int64_t> ids;   // [n] global indices
  std::vector<int32_t> start; // [cells+1]
};

template <typename T>
int64_t num_cells(const GridParams<T>& g) {
  return g.dims[0] * g.dims[1] * g.dims[2];
}

template <typename T>
void compute_cells(const GridParams<T>& g, const T* p, int64_t n, std::vector<int32_t>& cell) {
  cell.resize(n);
  at::parallel_for(0, n, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      cell[i] = static_cast<int32_t>(cell_of(g, p[3 * i], p[3 * i + 1], p[3 * i + 2]));
  });
}

/// Builds the grid of points p[0..n) whose global indices start at `base`.
template <typename T>
void build_grid(const T* p, int64_t n, int64_t base, double per_cell, CpuGrid<T>& grid) {
  T lo[3], hi[3];
  for (int d = 0; d < 3; ++d) lo[d] = hi[d] = p[d];
  for (int64_t i = 1; i < n; ++i)
    for (int d = 0; d < 3; ++d) {
      const T v = p[3 * i + d];
      lo[d] = v < lo[d] ? v : lo[d];
      hi[d] = v > hi[d] ? v : hi[d];
    }
  const int64_t max_cells = std::min<int64_t>(8 * n + 4096, std::numeric_limits<int32_t>::max() - 1);
  init_grid(grid.g, lo, hi, n, per_cell, max_cells);
  std::vector<int32_t> cell;
  std::vector<int32_t>& count = grid.start;
  double ext[3];
  for (int d = 0; d < 3; ++d) ext[d] = std::max(0.0, double(hi[d]) - double(lo[d]));
  for (int refine = 0;; ++refine) {
    compute_cells(grid.g, p, n, cell);
    count.assign(num_cells(grid.g) + 1, 0);
    int64_t occupied = 0;
    for (int64_t i = 0; i < n; ++i) occupied += (count[cell[i]]++ == 0);
    const double avg = double(n) / double(std::max<int64_t>(occupied, 1));
    // Surface-like clouds fill few cells: shrink the cells (points per cell ~ h^2 there).
    if (refine >= 2 || avg < 2.0 * per_cell || n < 64) break;
    const double h_old = grid.g.h;
    set_cell_size(grid.g, lo, ext, h_old * std::sqrt(per_cell / avg), max_cells);
    if (!(grid.g.h < 0.95 * h_old)) {  // capped: keep what we have
      set_cell_size(grid.g, lo, ext, h_old, max_cells);
      compute_cells(grid.g, p, n, cell);
      count.assign(num_cells(grid.g) + 1, 0);
      for (int64_t i = 0; i < n; ++i) ++count[cell[i]];
      break;
    }
  }
  // Exclusive scan: start[c] = first sorted slot of cell c.
  int32_t run = 0;
  for (auto& c : count) {
    const int32_t v = c;
    c = run;
    run += v;
  }
  std::vector<int32_t> cursor(count.begin(), count.end() - 1);
  grid.pts.resize(3 * n);
  grid.ids.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t slot = cursor[cell[i]]++;
    grid.pts[3 * slot] = p[3 * i];
    grid.pts[3 * slot + 1] = p[3 * i + 1];
    grid.pts[3 * slot + 2] = p[3 * i + 2];
    grid.ids[slot] = base + i;
  }
}

template <typename T>
void knn_cpu_impl(const T* ref, const std::vector<int64_t>& ref_off, const T* query,
                  const std::vector<int64_t>& query_off, int k, int64_t* out_idx, T* out_d) {
  const bool same = ref == query && ref_off == query_off;
  int64_t rs = 0, qs = 0;
  for (size_t b = 0; b < ref_off.size(); ++b) {
    const int64_t re = ref_off[b], qe = query_off[b];
    const int64_t n = re - rs, m = qe - qs;
    if (m > 0) {
      CpuGrid<T> grid;
      build_grid(ref + 3 * rs, n, rs, points_per_cell(k), grid);
      // Query order: by cell for cache locality (identical to the sorted refs when same).
      std::vector<int64_t> order;
      if (same) {
        order = grid.ids;
        for (auto& o : order) o -= rs;
      } else {
        std::vector<int32_t> qcell;
        compute_cells(grid.g, query + 3 * qs, m, qcell);
        std::vector<int32_t> pos(num_cells(grid.g) + 1, 0);
        for (int64_t i = 0; i < m; ++i) ++pos[qcell[i] + 1];
        for (size_t c = 1; c < pos.size(); ++c) pos[c] += pos[c - 1];
        order.resize(m);
        for (int64_t i = 0; i < m; ++i) order[pos[qcell[i]]++] = i;
      }
      const T* qp = query + 3 * qs;
      // Dynamic chunks: threads that get descheduled on a busy machine do not stall the rest.
      constexpr int64_t kChunk = 512;
      const int64_t chunks = (m + kChunk - 1) / kChunk;
      std::atomic<int64_t> next{0};
      at::parallel_for(0, std::min<int64_t>(chunks, at::get_num_threads()), 1,
                       [&](int64_t, int64_t) {
        T bd[kMaxK];
        int64_t bi[kMaxK];
        for (int64_t c = next++; c < chunks; c = next++) {
          for (int64_t t = c * kChunk, end = std::min(m, t + kChunk); t < end; ++t) {
            const int64_t q = order[t];
            const int cnt = grid_knn(grid.g, grid.pts.data(), grid.ids.data(),
                                     grid.start.data(), qp[3 * q], qp[3 * q + 1], qp[3 * q + 2],
                                     k, bd, bi);
            int64_t* oi = out_idx + (qs + q) * k;
            T* od = out_d + (qs + q) * k;
            for (int j = 0; j < k; ++j) {
              const int s = j < cnt ? j : cnt - 1;  // fewer than k points: repeat the farthest
              oi[j] = bi[s];
              od[j] = bd[s];
            }
          }
        }
      });
    }
    rs = re;
    qs = qe;
  }
}

}  // namespace

void knn_cpu(const torch::Tensor& ref, const std::vector<int64_t>& ref_off,
             const torch::Tensor& query, const std::vector<int64_t>& query_off, int64_t k,
             torch::Tensor& idx, torch::Tensor& dist2) {
  AT_DISPATCH_FLOATING_TYPES(ref.scalar_type(), "knn_cpu", [&] {
    knn_cpu_impl<scalar_t>(ref.data_ptr<scalar_t>(), ref_off, query.data_ptr<scalar_t>(),
                           query_off, static_cast<int>(k), idx.data_ptr<int64_t>(),
                           dist2.data_ptr<scalar_t>());
  });
}

}  // namespace ewa::pointcloud::ops::detail
