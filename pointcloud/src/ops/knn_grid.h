// Uniform-grid kNN search shared by the CPU reference and the CUDA kernel (host/device code,
// no LibTorch): grid parameters, cell lookup, and the ring-by-ring search with exact
// termination. Results are the k smallest (dist2, index) pairs, so the scan order is irrelevant.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define EWA_HD __host__ __device__ __forceinline__
#else
#define EWA_HD inline
#endif

namespace ewa::pointcloud::ops::detail {

constexpr int kMaxK = 64;

/// Geometry of one cloud's dense grid: cell (x,y,z) covers origin + [x,x+1)*h etc.; cells are
/// numbered row-major with x fastest. cell_base / point_base locate the cloud in the
/// concatenated cell_start / sorted arrays.
template <typename T>
struct GridParams {
  T origin[3];
  T h;
  T inv_h;
  int64_t dims[3];
  int64_t cell_base;   // first entry of this cloud in the cell_start array
  int64_t point_base;  // first sorted point of this cloud
};

template <typename T>
EWA_HD int64_t cell_coord(T v, T origin, T inv_h, int64_t dim) {
  T c = std::floor((v - origin) * inv_h);
  if (!(c > T(0))) return 0;  // also catches NaN
  if (c >= T(dim - 1)) return dim - 1;
  return static_cast<int64_t>(c);
}

/// Local cell number of point p (clamped into the grid).
template <typename T>
EWA_HD int64_t cell_of(const GridParams<T>& g, T x, T y, T z) {
  const int64_t cx = cell_coord(x, g.origin[0], g.inv_h, g.dims[0]);
  const int64_t cy = cell_coord(y, g.origin[1], g.inv_h, g.dims[1]);
  const int64_t cz = cell_coord(z, g.origin[2], g.inv_h, g.dims[2]);
  return (cz * g.dims[1] + cy) * g.dims[0] + cx;
}

/// Sets cell size h (grown as needed to respect max_cells) and the grid dimensions.
template <typename T>
inline void set_cell_size(GridParams<T>& g, const T lo[3], const double ext[3], double h,
                          int64_t max_cells) {
  for (int it = 0; it < 64; ++it) {
    double cells = 1.0;
    for (int d = 0; d < 3; ++d) cells *= std::floor(ext[d] / h) + 1.0;
    if (cells <= static_cast<double>(max_cells)) break;
    h *= std::cbrt(cells / static_cast<double>(max_cells)) * 1.01;
  }
  // Round-trip through T so that cell assignment and search use exactly the same numbers.
  g.h = static_cast<T>(h);
  g.inv_h = static_cast<T>(1.0 / static_cast<double>(g.h));
  for (int d = 0; d < 3; ++d) {
    g.origin[d] = lo[d];
    g.dims[d] = static_cast<int64_t>(std::floor(ext[d] / h)) + 1;
  }
}

/// Chooses the cell size for n points in the box [lo, hi] so that a cell holds about
/// `per_cell` points for a volume-filling cloud, capped to `max_cells` cells.
template <typename T>
inline void init_grid(GridParams<T>& g, const T lo[3], const T hi[3], int64_t n, double per_cell,
                      int64_t max_cells) {
  double ext[3], vol = 1.0, maxext = 0.0;
  for (int d = 0; d < 3; ++d) {
    ext[d] = static_cast<double>(hi[d]) - static_cast<double>(lo[d]);
    if (!(ext[d] > 0)) ext[d] = 0;
    maxext = ext[d] > maxext ? ext[d] : maxext;
  }
  double h = 1.0;
  if (maxext > 0) {
    // Degenerate (flat/linear) axes count as a sliver of the largest extent.
    for (int d = 0; d < 3; ++d) vol *= ext[d] > 1e-3 * maxext ? ext[d] : 1e-3 * maxext;
    h = std::cbrt(vol * per_cell / static_cast<double>(n > 0 ? n : 1));
    if (!(h > 0)) h = maxext;
  }
  set_cell_size(g, lo, ext, h, max_cells);
}

/// Inserts (d, id) into the sorted lists bd/bi of length cnt (capacity k); returns new cnt.
template <typename T>
EWA_HD int heap_insert(T* bd, int64_t* bi, int cnt, int k, T d, int64_t id) {
  int pos = cnt < k ? cnt : k - 1;
  while (pos > 0 && (bd[pos - 1] > d || (bd[pos - 1] == d && bi[pos - 1] > id))) {
    bd[pos] = bd[pos - 1];
    bi[pos] = bi[pos - 1];
    --pos;
  }
  bd[pos] = d;
  bi[pos] = id;
  return cnt < k ? cnt + 1 : k;
}

/// Distance from v to the interval [a, b].
template <typename T>
EWA_HD T gap(T v, T a, T b) {
  return v < a ? a - v : (v > b ? v - b : T(0));
}

/// Scans sorted points [s, e) into the k-best lists.
template <typename T>
EWA_HD int scan_range(const T* pts, const int64_t* ids, int64_t s, int64_t e, T qx, T qy, T qz,
                      int k, int cnt, T* bd, int64_t* bi) {
  for (int64_t j = s; j < e; ++j) {
    const T dx = pts[3 * j] - qx, dy = pts[3 * j + 1] - qy, dz = pts[3 * j + 2] - qz;
    const T d = dx * dx + dy * dy + dz * dz;
    if (cnt < k || d < bd[k - 1] || (d == bd[k - 1] && ids[j] < bi[k - 1]))
      cnt = heap_insert(bd, bi, cnt, k, d, ids[j]);
  }
  return cnt;
}

/// k nearest points of q in one cloud's grid. pts [n,3] sorted by cell, ids [n] (global
/// indices), start [cells+1] (entries relative to the cloud). Writes the best cnt <= k pairs
/// sorted by (dist2, index) into bd/bi and returns cnt (= min(k, n)).
template <typename T>
EWA_HD int grid_knn(const GridParams<T>& g, const T* pts, const int64_t* ids,
                    const int32_t* start, T qx, T qy, T qz, int k, T* bd, int64_t* bi) {
  const int64_t X = g.dims[0], Y = g.dims[1], Z = g.dims[2];
  const int64_t cx = cell_coord(qx, g.origin[0], g.inv_h, X);
  const int64_t cy = cell_coord(qy, g.origin[1], g.inv_h, Y);
  const int64_t cz = cell_coord(qz, g.origin[2], g.inv_h, Z);
  int64_t rmax = cx;
  if (X - 1 - cx > rmax) rmax = X - 1 - cx;
  if (cy > rmax) rmax = cy;
  if (Y - 1 - cy > rmax) rmax = Y - 1 - cy;
  if (cz > rmax) rmax = cz;
  if (Z - 1 - cz > rmax) rmax = Z - 1 - cz;
  const T h = g.h, ox = g.origin[0], oy = g.origin[1], oz = g.origin[2];
  // Relative slack on the termination bound so that rounding can never drop a neighbour.
  const T slack = h * (sizeof(T) == 4 ? T(1e-5) : T(1e-12));
  int cnt = 0;
  for (int64_t r = 0; r <= rmax; ++r) {
    const int64_t z0 = cz - r < 0 ? 0 : cz - r, z1 = cz + r > Z - 1 ? Z - 1 : cz + r;
    const int64_t y0 = cy - r < 0 ? 0 : cy - r, y1 = cy + r > Y - 1 ? Y - 1 : cy + r;
    const int64_t xa = cx - r < 0 ? 0 : cx - r, xb = cx + r > X - 1 ? X - 1 : cx + r;
    for (int64_t z = z0; z <= z1; ++z) {
      const bool zedge = (z == cz - r) || (z == cz + r);
      const T gz = gap(qz, oz + T(z) * h, oz + T(z + 1) * h);
      const T dz2 = gz * gz;
      if (cnt == k && dz2 > bd[k - 1]) continue;
      for (int64_t y = y0; y <= y1; ++y) {
        const bool yedge = (y == cy - r) || (y == cy + r);
        const T gy = gap(qy, oy + T(y) * h, oy + T(y + 1) * h);
        const T dyz = dz2 + gy * gy;
        if (cnt == k && dyz > bd[k - 1]) continue;
        const int64_t row = (z * Y + y) * X;
        if (zedge || yedge) {
          // Whole row of the shell: contiguous points of cells xa..xb.
          const T gx = gap(qx, ox + T(xa) * h, ox + T(xb + 1) * h);
          if (cnt == k && dyz + gx * gx > bd[k - 1]) continue;
          cnt = scan_range(pts, ids, start[row + xa], start[row + xb + 1], qx, qy, qz, k, cnt,
                           bd, bi);
        } else {
          if (cx - r >= 0) {
            const int64_t x = cx - r;
            const T gx = gap(qx, ox + T(x) * h, ox + T(x + 1) * h);
            if (!(cnt == k && dyz + gx * gx > bd[k - 1]))
              cnt = scan_range(pts, ids, start[row + x], start[row + x + 1], qx, qy, qz, k, cnt,
                               bd, bi);
          }
          if (cx + r <= X - 1) {
            const int64_t x = cx + r;
            const T gx = gap(qx, ox + T(x) * h, ox + T(x + 1) * h);
            if (!(cnt == k && dyz + gx * gx > bd[k - 1]))
              cnt = scan_range(pts, ids, start[row + x], start[row + x + 1], qx, qy, qz, k, cnt,
                               bd, bi);
          }
        }
      }
    }
    if (cnt == k) {
      // Every unvisited cell lies beyond one of the faces of the scanned cube that is not on
      // the grid border: its distance is at least the nearest such face's distance.
      T bound = T(-1);
      bool any = false;
      const int64_t c[3] = {cx, cy, cz};
      const T q[3] = {qx, qy, qz};
      for (int d = 0; d < 3; ++d) {
        if (c[d] - r > 0) {
          const T f = q[d] - (g.origin[d] + T(c[d] - r) * h);
          if (!any || f < bound) bound = f;
          any = true;
        }
        if (c[d] + r < g.dims[d] - 1) {
          const T f = g.origin[d] + T(c[d] + r + 1) * h - q[d];
          if (!any || f < bound) bound = f;
          any = true;
        }
      }
      if (!any) break;
      bound -= slack;
      if (bound > T(0) && bound * bound > bd[k - 1]) break;
    }
  }
  return cnt;
}

}  // namespace ewa::pointcloud::ops::detail
