// Point-op benchmark (timed program): kNN k=16 over all points against PCL's KdTreeFLANN and
// Open3D's KDTreeFlann in the same process (build + query, neighbour sets verified), FPS
// 100k -> 25k and grid sampling of 1M points. Usage: bench_point_ops [threads=2] [sizes...]
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "ewa/core/runtime.h"
#include "ewa/pointcloud/ops.h"

#ifdef EWA_BENCH_HAVE_PCL
#include <pcl/kdtree/kdtree_flann.h>
#include <pcl/point_types.h>
#endif
#ifdef EWA_BENCH_HAVE_OPEN3D
#include <open3d/geometry/KDTreeFlann.h>
#include <open3d/geometry/PointCloud.h>
#endif

namespace ops = ewa::pointcloud::ops;

namespace {

constexpr int kK = 16;

double seconds(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Uniform points in a 10 x 8 x 3 m room-sized box. [n,3] float32.
torch::Tensor uniform_room(int64_t n) {
  return torch::rand({n, 3}) * torch::tensor({10.0f, 8.0f, 3.0f});
}

/// Scan-like cloud: floor, ceiling, four walls of a 10 x 8 x 3 m room and three box-shaped
/// objects, sampled uniformly by area, with 3 mm noise. [n,3] float32.
torch::Tensor scan_room(int64_t n) {
  struct Box { float lo[3], hi[3]; };
  // Each face: an axis (fixed coordinate) with its value and the rectangle on the other axes.
  struct Face { int axis; float v, a0, a1, b0, b1; };
  std::vector<Face> faces = {{2, 0, 0, 10, 0, 8}, {2, 3, 0, 10, 0, 8}, {0, 0, 0, 8, 0, 3},
                             {0, 10, 0, 8, 0, 3}, {1, 0, 0, 10, 0, 3}, {1, 8, 0, 10, 0, 3}};
  const std::vector<Box> boxes = {{{2, 2, 0}, {4, 3, 0.75f}}, {{6, 5, 0}, {7, 7, 1.8f}},
                                  {{8, 1, 0}, {9.5f, 2, 1}}};
  for (const auto& b : boxes)
    for (int ax = 0; ax < 3; ++ax) {
      const int u = (ax + 1) % 3, w = (ax + 2) % 3;
      for (float v : {b.lo[ax], b.hi[ax]})
        faces.push_back({ax, v, b.lo[u], b.hi[u], b.lo[w], b.hi[w]});
    }
  std::vector<double> area;
  for (const auto& f : faces) area.push_back((f.a1 - f.a0) * (f.b1 - f.b0));
  auto which = torch::multinomial(torch::tensor(area), n, true);  // [n]
  auto uv = torch::rand({n, 2});
  auto out = torch::empty({n, 3});
  auto wa = which.accessor<int64_t, 1>();
  auto ua = uv.accessor<float, 2>();
  auto oa = out.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const Face& f = faces[wa[i]];
    const int u = (f.axis + 1) % 3, w = (f.axis + 2) % 3;
    oa[i][f.axis] = f.v;
    oa[i][u] = f.a0 + ua[i][0] * (f.a1 - f.a0);
    oa[i][w] = f.b0 + ua[i][1] * (f.b1 - f.b0);
  }
  return out + torch::randn({n, 3}) * 0.003f;
}

struct Neighbours {
  std::vector<int> idx;      // [n*k]
  std::vector<float> dist2;  // [n*k]
};

/// Compares neighbour lists query by query; a differing index set is accepted when the sorted
/// distances agree (ties). Returns the number of queries whose distances differ.
int64_t compare(const Neighbours& a, const Neighbours& b, int64_t n, int64_t* tie_only) {
  int64_t bad = 0, ties = 0;
  for (int64_t q = 0; q < n; ++q) {
    std::vector<int> ia(a.idx.begin() + q * kK, a.idx.begin() + (q + 1) * kK);
    std::vector<int> ib(b.idx.begin() + q * kK, b.idx.begin() + (q + 1) * kK);
    std::sort(ia.begin(), ia.end());
    std::sort(ib.begin(), ib.end());
    if (ia == ib) continue;
    std::vector<float> da(a.dist2.begin() + q * kK, a.dist2.begin() + (q + 1) * kK);
    std::vector<float> db(b.dist2.begin() + q * kK, b.dist2.begin() + (q + 1) * kK);
    std::sort(da.begin(), da.end());
    std::sort(db.begin(), db.end());
    bool same = true;
    for (int j = 0; j < kK; ++j)
      same = same && std::abs(da[j] - db[j]) <= 1e-5f * std::max(1e-6f, std::abs(da[j]));
    same ? ++ties : ++bad;
  }
  *tie_only = ties;
  return bad;
}

struct Timing {
  double build = 0, query = 0;
  double total() const { return build + query; }
};

Timing run_ours(const torch::Tensor& xyz, Neighbours& out) {
  const int64_t n = xyz.size(0);
  auto off = torch::tensor({n});
  Timing t;
  // Build alone: the same call with one query point (grid build dominates it).
  auto one = xyz.slice(0, 0, 1);
  t.build = seconds([&] { ops::knn(xyz, off, one, torch::tensor({int64_t(1)}), kK); });
  torch::Tensor idx, d2;
  const double all = seconds([&] { std::tie(idx, d2) = ops::knn(xyz, off, xyz, off, kK); });
  t.query = std::max(0.0, all - t.build);
  auto i32 = idx.to(torch::kInt).contiguous();
  out.idx.assign(i32.data_ptr<int>(), i32.data_ptr<int>() + n * kK);
  out.dist2.assign(d2.data_ptr<float>(), d2.data_ptr<float>() + n * kK);
  return t;
}

#ifdef EWA_BENCH_HAVE_PCL
Timing run_pcl(const torch::Tensor& xyz, Neighbours& out) {
  const int64_t n = xyz.size(0);
  const float* p = xyz.data_ptr<float>();
  pcl::PointCloud<pcl::PointXYZ>::Ptr cloud(new pcl::PointCloud<pcl::PointXYZ>);
  cloud->resize(n);
  for (int64_t i = 0; i < n; ++i) (*cloud)[i] = pcl::PointXYZ(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
  pcl::KdTreeFLANN<pcl::PointXYZ> tree;
  Timing t;
  t.build = seconds([&] { tree.setInputCloud(cloud); });
  out.idx.resize(n * kK);
  out.dist2.resize(n * kK);
  t.query = seconds([&] {
#pragma omp parallel
    {
      std::vector<int> ii(kK);
      std::vector<float> dd(kK);
#pragma omp for schedule(dynamic, 512)
      for (int64_t i = 0; i < n; ++i) {
        tree.nearestKSearch((*cloud)[i], kK, ii, dd);
        std::copy(ii.begin(), ii.end(), out.idx.begin() + i * kK);
        std::copy(dd.begin(), dd.end(), out.dist2.begin() + i * kK);
      }
    }
  });
  return t;
}
#endif

#ifdef EWA_BENCH_HAVE_OPEN3D
Timing run_open3d(const torch::Tensor& xyz, Neighbours& out) {
  const int64_t n = xyz.size(0);
  const float* p = xyz.data_ptr<float>();
  open3d::geometry::PointCloud cloud;
  cloud.points_.resize(n);
  for (int64_t i = 0; i < n; ++i) cloud.points_[i] = Eigen::Vector3d(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
  open3d::geometry::KDTreeFlann tree;
  Timing t;
  t.build = seconds([&] { tree.SetGeometry(cloud); });
  out.idx.resize(n * kK);
  out.dist2.resize(n * kK);
  t.query = seconds([&] {
#pragma omp parallel
    {
      std::vector<int> ii;
      std::vector<double> dd;
#pragma omp for schedule(dynamic, 512)
      for (int64_t i = 0; i < n; ++i) {
        tree.SearchKNN(cloud.points_[i], kK, ii, dd);
        for (int j = 0; j < kK; ++j) {
          out.idx[i * kK + j] = ii[j];
          out.dist2[i * kK + j] = static_cast<float>(dd[j]);
        }
      }
    }
  });
  return t;
}
#endif

/// Median build and query times of `reps` runs of `run` (warm caches and allocator for every
/// method alike; the first run also pays first-touch page faults of its buffers).
template <typename F>
Timing median_of(int reps, F run) {
  std::vector<double> b, q;
  for (int r = 0; r < reps; ++r) {
    const Timing t = run();
    b.push_back(t.build);
    q.push_back(t.query);
  }
  std::sort(b.begin(), b.end());
  std::sort(q.begin(), q.end());
  return Timing{b[b.size() / 2], q[q.size() / 2]};
}

void report(const char* name, const Timing& t) {
  std::printf("    %-22s build %8.3f s  query %8.3f s  total %8.3f s\n", name, t.build, t.query,
              t.total());
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  std::vector<int64_t> sizes;
  for (int i = 2; i < argc; ++i) sizes.push_back(std::atoll(argv[i]));
  if (sizes.empty()) sizes = {100000, 1000000};
  ewa::set_num_threads(threads);  // also pins the malloc thresholds, as every ewa entry point
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
  torch::manual_seed(0);
  {  // warm-up: thread pool start-up is not part of any measurement
    auto w = torch::rand({2000, 3});
    auto wo = torch::tensor({int64_t(2000)});
    ops::knn(w, wo, w, wo, kK);
  }
  std::printf("bench_point_ops: %d threads, kNN k=%d with every point as a query (median of 7 runs at "
              "<= 200k points, 3 at 1M)\n", threads, kK);
  bool all_ok = true;
  for (const char* dist : {"uniform room box", "scan-like surfaces"}) {
    for (int64_t n : sizes) {
      auto xyz = std::string(dist) == "uniform room box" ? uniform_room(n) : scan_room(n);
      xyz = xyz.contiguous();
      std::printf("kNN %s, %lld points\n", dist, static_cast<long long>(n));
      const int reps = n <= 200000 ? 7 : 3;
      Neighbours ours;
      const Timing to = median_of(reps, [&] { return run_ours(xyz, ours); });
      report("ewa grid", to);
      double best = 0;
      const char* best_name = "none";
#ifdef EWA_BENCH_HAVE_PCL
      {
        Neighbours nb;
        const Timing t = median_of(reps, [&] { return run_pcl(xyz, nb); });
        report("PCL KdTreeFLANN", t);
        int64_t ties = 0;
        const int64_t bad = compare(ours, nb, n, &ties);
        std::printf("      vs PCL: %lld queries differ only by ties, %lld differ\n",
                    static_cast<long long>(ties), static_cast<long long>(bad));
        all_ok = all_ok && bad == 0;
        best = t.total();
        best_name = "PCL";
      }
#endif
#ifdef EWA_BENCH_HAVE_OPEN3D
      {
        Neighbours nb;
        const Timing t = median_of(reps, [&] { return run_open3d(xyz, nb); });
        report("Open3D KDTreeFlann", t);
        int64_t ties = 0;
        const int64_t bad = compare(ours, nb, n, &ties);
        std::printf("      vs Open3D: %lld queries differ only by ties, %lld differ\n",
                    static_cast<long long>(ties), static_cast<long long>(bad));
        all_ok = all_ok && bad == 0;
        if (best == 0 || t.total() < best) {
          best = t.total();
          best_name = "Open3D";
        }
      }
#endif
      if (best > 0)
        std::printf("    speed-up vs the faster baseline (%s): %.2fx\n", best_name,
                    best / to.total());
    }
  }
  {
    auto xyz = uniform_room(100000);
    auto off = torch::tensor({int64_t(100000)});
    auto noff = torch::tensor({int64_t(25000)});
    const double t = seconds([&] { ops::farthest_point_sampling(xyz, off, noff); });
    std::printf("FPS 100000 -> 25000 points: %.3f s\n", t);
  }
  {
    auto xyz = uniform_room(1000000);
    auto off = torch::tensor({int64_t(1000000)});
    ops::GridSampleResult r;
    const double tt = seconds([&] { r = ops::grid_sample(xyz, off, 0.04, ops::GridSampleMode::kTrain); });
    std::printf("grid sample 1M points (0.04 m, train): %.3f s -> %lld voxels\n", tt,
                static_cast<long long>(r.fragments[0].size(0)));
    const double ts = seconds([&] {
      r = ops::grid_sample(xyz, off, 0.04, ops::GridSampleMode::kTest, std::nullopt, true);
    });
    std::printf("grid sample 1M points (0.04 m, test + inverse): %.3f s -> %zu fragments\n", ts,
                r.fragments.size());
  }
  return all_ok ? 0 : 1;
}
