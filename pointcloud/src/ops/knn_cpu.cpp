// CPU reference kNN: per cloud, a dense uniform grid (counting sort of the points by cell into
// SoA coordinate arrays, cell size adapted to volume or surface-like clouds). Queries run in cell
// order in parallel. Every query first scans the 3x3x3 cell block around it: one branch-free
// distance pass keeps the candidates within a guessed k-th distance (the previous query's,
// scaled), one sort of those few; when the exact termination bound does not hold yet, the ring
// search continues from ring 2 with that list (threshold rejection, rings until the bound holds).
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common.h"
#include "knn_grid.h"

namespace ewa::pointcloud::ops::detail {
namespace {

// Target points per occupied cell: about k/3, so that the first ring (27 cells) usually holds
// the k nearest and the search stops after it.
inline double points_per_cell(int k) { return std::max(1.5, k / 3.0); }

/// A built grid of one cloud: points sorted by cell as SoA coordinates, their local indices
/// (original order within the cloud) and the cell start table.
template <typename T>
struct CpuGrid {
  GridParams<T> g{};
  std::vector<T> xs, ys, zs;   // [n] sorted by cell
  std::vector<int32_t> local;  // [n] index of the sorted point within its cloud
  std::vector<int32_t> start;  // [cells+1]
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

/// Builds the grid of points p[0..n).
template <typename T>
void build_grid(const T* p, int64_t n, double per_cell, CpuGrid<T>& grid) {
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
  grid.xs.resize(n);
  grid.ys.resize(n);
  grid.zs.resize(n);
  grid.local.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t slot = cursor[cell[i]]++;
    grid.xs[slot] = p[3 * i];
    grid.ys[slot] = p[3 * i + 1];
    grid.zs[slot] = p[3 * i + 2];
    grid.local[slot] = static_cast<int32_t>(i);
  }
}

/// The k best (dist2, local index) pairs seen so far, sorted ascending; ties by index.
template <typename T>
struct Best {
  T d[kMaxK];
  int32_t i[kMaxK];
  int cnt = 0;
  int k = 0;

  /// Admission threshold: a candidate with distance > worst() cannot enter a full list.
  T worst() const { return cnt < k ? std::numeric_limits<T>::infinity() : d[k - 1]; }

  void insert(T dist, int32_t id) {
    if (cnt == k && (dist > d[k - 1] || (dist == d[k - 1] && id > i[k - 1]))) return;
    int pos = cnt < k ? cnt : k - 1;
    while (pos > 0 && (d[pos - 1] > dist || (d[pos - 1] == dist && i[pos - 1] > id))) {
      d[pos] = d[pos - 1];
      i[pos] = i[pos - 1];
      --pos;
    }
    d[pos] = dist;
    i[pos] = id;
    if (cnt < k) ++cnt;
  }
};

constexpr int kScanBatch = 64;  // candidates per vectorised distance batch

/// Scans sorted points [s, e): distances in batches (vectorisable SoA loop), then the few
/// that pass the current threshold go into the sorted list.
template <typename T>
inline void scan_range(const CpuGrid<T>& grid, int32_t s, int32_t e, T qx, T qy, T qz, Best<T>& best) {
  const T* xs = grid.xs.data();
  const T* ys = grid.ys.data();
  const T* zs = grid.zs.data();
  T dist[kScanBatch];
  for (int32_t b = s; b < e; b += kScanBatch) {
    const int n = std::min<int32_t>(kScanBatch, e - b);
    for (int t = 0; t < n; ++t) {
      const T dx = xs[b + t] - qx, dy = ys[b + t] - qy, dz = zs[b + t] - qz;
      dist[t] = dx * dx + dy * dy + dz * dz;
    }
    for (int t = 0; t < n; ++t) {
      if (dist[t] <= best.worst()) best.insert(dist[t], grid.local[b + t]);
    }
  }
}

/// Every cell not yet scanned lies beyond one of the faces of the scanned cube (radius r
/// around the query cell) that is not on the grid border; true when all of them are farther
/// than the current k-th distance (or nothing is left).
template <typename T>
inline bool done_after_ring(const GridParams<T>& g, const int64_t c[3], const T q[3], int64_t r, T slack,
                            const Best<T>& best) {
  T bound = T(-1);
  bool any = false;
  for (int d = 0; d < 3; ++d) {
    if (c[d] - r > 0) {
      const T f = q[d] - (g.origin[d] + T(c[d] - r) * g.h);
      if (!any || f < bound) bound = f;
      any = true;
    }
    if (c[d] + r < g.dims[d] - 1) {
      const T f = g.origin[d] + T(c[d] + r + 1) * g.h - q[d];
      if (!any || f < bound) bound = f;
      any = true;
    }
  }
  if (!any) return true;
  if (best.cnt < best.k) return false;
  bound -= slack;
  return bound > T(0) && bound * bound > best.d[best.k - 1];
}

/// Continues a query whose 3x3x3 block (rings 0 and 1) is already in `best`: rings r >= 2
/// (cells pruned by their gap to q) until the termination bound holds or the grid is done.
template <typename T>
void search_outer_rings(const CpuGrid<T>& grid, const int64_t c[3], T qx, T qy, T qz, Best<T>& best) {
  const GridParams<T>& g = grid.g;
  const int32_t* start = grid.start.data();
  const int64_t X = g.dims[0], Y = g.dims[1], Z = g.dims[2];
  const T q[3] = {qx, qy, qz};
  const int64_t cx = c[0], cy = c[1], cz = c[2];
  // Relative slack on the termination bound so that rounding can never drop a neighbour.
  const T slack = g.h * (sizeof(T) == 4 ? T(1e-5) : T(1e-12));
  int64_t rmax = std::max({cx, X - 1 - cx, cy, Y - 1 - cy, cz, Z - 1 - cz});
  const T h = g.h, ox = g.origin[0], oy = g.origin[1], oz = g.origin[2];
  for (int64_t r = 2; r <= rmax; ++r) {
    const int64_t rz0 = std::max<int64_t>(cz - r, 0), rz1 = std::min<int64_t>(cz + r, Z - 1);
    const int64_t ry0 = std::max<int64_t>(cy - r, 0), ry1 = std::min<int64_t>(cy + r, Y - 1);
    const int64_t rxa = std::max<int64_t>(cx - r, 0), rxb = std::min<int64_t>(cx + r, X - 1);
    for (int64_t z = rz0; z <= rz1; ++z) {
      const bool zedge = (z == cz - r) || (z == cz + r);
      const T gz = gap(qz, oz + T(z) * h, oz + T(z + 1) * h);
      const T dz2 = gz * gz;
      if (dz2 > best.worst()) continue;
      for (int64_t y = ry0; y <= ry1; ++y) {
        const bool yedge = (y == cy - r) || (y == cy + r);
        const T gy = gap(qy, oy + T(y) * h, oy + T(y + 1) * h);
        const T dyz = dz2 + gy * gy;
        if (dyz > best.worst()) continue;
        const int64_t row = (z * Y + y) * X;
        if (zedge || yedge) {  // whole row of the shell: contiguous points of cells rxa..rxb
          const T gx = gap(qx, ox + T(rxa) * h, ox + T(rxb + 1) * h);
          if (dyz + gx * gx > best.worst()) continue;
          scan_range(grid, start[row + rxa], start[row + rxb + 1], qx, qy, qz, best);
        } else {
          for (const int64_t x : {cx - r, cx + r}) {
            if (x < 0 || x > X - 1) continue;
            const T gx = gap(qx, ox + T(x) * h, ox + T(x + 1) * h);
            if (dyz + gx * gx > best.worst()) continue;
            scan_range(grid, start[row + x], start[row + x + 1], qx, qy, qz, best);
          }
        }
      }
    }
    if (done_after_ring(g, c, q, r, slack, best)) return;
  }
}

/// A candidate of the fast path: squared distance and local index, ordered like Best (by
/// distance, ties by index). For float both fit one 64-bit key whose integer order is that
/// order (the bits of a non-negative float order like the float), so sorting is one compare.
template <typename T>
struct Cand {
  T d;
  int32_t i;
  static Cand make(T dist, int32_t id) { return Cand{dist, id}; }
  T dist() const { return d; }
  int32_t index() const { return i; }
  bool operator<(const Cand& o) const { return d < o.d || (d == o.d && i < o.i); }
};
template <>
struct Cand<float> {
  uint64_t key;
  static Cand make(float dist, int32_t id) {
    uint32_t bits;
    std::memcpy(&bits, &dist, sizeof bits);
    return Cand{(uint64_t(bits) << 32) | uint32_t(id)};
  }
  float dist() const {
    const uint32_t bits = uint32_t(key >> 32);
    float d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }
  int32_t index() const { return int32_t(uint32_t(key)); }
  bool operator<(const Cand& o) const { return key < o.key; }
};

/// Rings 0 and 1 of a query (the 3x3x3 cell block around its cell, which holds the k nearest
/// in the common case by the choice of cell size): one vectorisable distance pass over the
/// block's nine contiguous rows, a branch-free compaction of the candidates within `tau` (a
/// guess of the k-th distance from the previous query; exact: if at least k candidates lie
/// within tau, the k smallest are among them; otherwise a second pass keeps all), one sort of
/// those few into `best` (min(k, block size) entries). Writes the query's cell to c and
/// returns true when the termination bound proves no farther cell can hold a nearer point.
/// `tau` becomes a little above the k-th distance found.
template <typename T>
bool search_block(const CpuGrid<T>& grid, T qx, T qy, T qz, int64_t c[3], T& tau, std::vector<Cand<T>>& buf,
                  std::vector<T>& dist, Best<T>& best) {
  const GridParams<T>& g = grid.g;
  const int32_t* start = grid.start.data();
  const int64_t X = g.dims[0], Y = g.dims[1], Z = g.dims[2];
  const int k = best.k;
  c[0] = cell_coord(qx, g.origin[0], g.inv_h, X);
  c[1] = cell_coord(qy, g.origin[1], g.inv_h, Y);
  c[2] = cell_coord(qz, g.origin[2], g.inv_h, Z);
  const int64_t xa = std::max<int64_t>(c[0] - 1, 0), xb = std::min<int64_t>(c[0] + 1, X - 1);
  const int64_t y0 = std::max<int64_t>(c[1] - 1, 0), y1 = std::min<int64_t>(c[1] + 1, Y - 1);
  const int64_t z0 = std::max<int64_t>(c[2] - 1, 0), z1 = std::min<int64_t>(c[2] + 1, Z - 1);
  int32_t seg_s[9], seg_e[9];
  int nseg = 0;
  int64_t total = 0;
  for (int64_t z = z0; z <= z1; ++z) {
    for (int64_t y = y0; y <= y1; ++y) {
      const int64_t row = (z * Y + y) * X;
      seg_s[nseg] = start[row + xa];
      seg_e[nseg] = start[row + xb + 1];
      total += seg_e[nseg] - seg_s[nseg];
      ++nseg;
    }
  }
  if (static_cast<int64_t>(buf.size()) < total) {
    buf.resize(static_cast<size_t>(total));
    dist.resize(static_cast<size_t>(total));
  }
  const T* xs = grid.xs.data();
  const T* ys = grid.ys.data();
  const T* zs = grid.zs.data();
  const int32_t* local = grid.local.data();
  // Distances of the whole block (a plain SIMD loop per contiguous row) ...
  T* dd = dist.data();
  for (int sgi = 0, o = 0; sgi < nseg; ++sgi) {
    const int32_t a = seg_s[sgi], n = seg_e[sgi] - a;
    const T* __restrict px = xs + a;
    const T* __restrict py = ys + a;
    const T* __restrict pz = zs + a;
    T* __restrict pd = dd + o;
    for (int32_t j = 0; j < n; ++j) {
      const T dx = px[j] - qx, dy = py[j] - qy, dz = pz[j] - qz;
      pd[j] = dx * dx + dy * dy + dz * dz;
    }
    o += n;
  }
  // ... then a branch-free compaction of those within the guessed k-th distance.
  Cand<T>* out = buf.data();
  int64_t kept = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const T limit = pass == 0 ? tau : std::numeric_limits<T>::infinity();
    kept = 0;
    for (int sgi = 0, o = 0; sgi < nseg; ++sgi) {
      for (int32_t j = seg_s[sgi]; j < seg_e[sgi]; ++j, ++o) {
        out[kept] = Cand<T>::make(dd[o], local[j]);
        kept += (dd[o] <= limit);
      }
    }
    if (kept >= k) break;
  }
  if (kept > 2 * k) {
    std::nth_element(out, out + (k - 1), out + kept);
    std::sort(out, out + (k - 1));
  } else {
    std::sort(out, out + kept);
  }
  best.cnt = static_cast<int>(std::min<int64_t>(kept, k));
  for (int j = 0; j < best.cnt; ++j) {
    best.d[j] = out[j].dist();
    best.i[j] = out[j].index();
  }
  // Next guess: a little above this k-th distance (neighbouring queries come next).
  if (best.cnt == k) tau = best.d[k - 1] * T(1.5);
  const T q[3] = {qx, qy, qz};
  const T slack = g.h * (sizeof(T) == 4 ? T(1e-5) : T(1e-12));
  return done_after_ring(g, c, q, 1, slack, best);
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
      build_grid(ref + 3 * rs, n, points_per_cell(k), grid);
      // Query order: by cell for cache locality (identical to the sorted refs when same).
      std::vector<int32_t> order;
      if (same) {
        order = grid.local;
      } else {
        std::vector<int32_t> qcell;
        compute_cells(grid.g, query + 3 * qs, m, qcell);
        std::vector<int32_t> pos(num_cells(grid.g) + 1, 0);
        for (int64_t i = 0; i < m; ++i) ++pos[qcell[i] + 1];
        for (size_t c = 1; c < pos.size(); ++c) pos[c] += pos[c - 1];
        order.resize(m);
        for (int64_t i = 0; i < m; ++i) order[pos[qcell[i]]++] = static_cast<int32_t>(i);
      }
      const T* qp = query + 3 * qs;
      // Dynamic chunks: threads that get descheduled on a busy machine do not stall the rest.
      constexpr int64_t kChunk = 512;
      const int64_t chunks = (m + kChunk - 1) / kChunk;
      std::atomic<int64_t> next{0};
      at::parallel_for(0, std::min<int64_t>(chunks, at::get_num_threads()), 1, [&](int64_t, int64_t) {
        Best<T> best;
        best.k = k;
        std::vector<Cand<T>> buf;
        std::vector<T> dist;
        T tau = std::numeric_limits<T>::infinity();
        for (int64_t c = next++; c < chunks; c = next++) {
          for (int64_t t = c * kChunk, end = std::min(m, t + kChunk); t < end; ++t) {
            const int64_t q = order[t];
            const T qx = qp[3 * q], qy = qp[3 * q + 1], qz = qp[3 * q + 2];
            int64_t cell[3];
            if (!search_block(grid, qx, qy, qz, cell, tau, buf, dist, best)) {
              search_outer_rings(grid, cell, qx, qy, qz, best);
            }
            int64_t* oi = out_idx + (qs + q) * k;
            T* od = out_d + (qs + q) * k;
            for (int j = 0; j < k; ++j) {
              const int s = j < best.cnt ? j : best.cnt - 1;  // fewer than k points: repeat the farthest
              oi[j] = rs + best.i[s];
              od[j] = best.d[s];
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
