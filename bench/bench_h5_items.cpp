// Reading every item of ModelNet40-layout HDF5 files (file.h5#k, the way `ewa data info
// FOLDER` and any per-scene consumer of the format table lists them) against reading the same
// files once as a split (read_modelnet_h5, the training path). Writes FILES files of SHAPES
// shapes x 2048 points (data + normal float32, label uint8: 100 MB per 2048 shapes, the
// modelnet40_ply_hdf5_2048 layout) afresh before every timed pass (new inodes: each pass pays
// the isolated reader's first read; stamped an hour old), and prints the median of RUNS passes
// of each and the ratio.
// Run it on an otherwise idle machine.
// Usage: bench_h5_items [--files 2] [--shapes 2048] [--runs 3] [--dir /tmp/ewa_bench_h5_items]
#include "ewa/datasets/points/cloud_formats.h"
#include "ewa/datasets/points/modelnet.h"

#ifdef EWA_HAVE_HDF5
#include <hdf5.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ewa::datasets;

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

#ifdef EWA_HAVE_HDF5
void write_dataset(hid_t f, const char* name, hid_t type, std::vector<hsize_t> dims, const void* data) {
  hid_t s = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t d = H5Dcreate2(f, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(d);
  H5Sclose(s);
}

// FILES files ply_data_train<i>.h5 + train_files.txt + shape_names.txt in `dir` (replaced).
void write_split(const fs::path& dir, int files, int shapes) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  const int points = 2048;
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  std::vector<float> data(static_cast<size_t>(shapes) * points * 3), nrm(data.size());
  for (auto& v : data) v = normal(gen);
  for (auto& v : nrm) v = normal(gen);
  std::vector<unsigned char> label(static_cast<size_t>(shapes));
  for (int i = 0; i < shapes; ++i) label[static_cast<size_t>(i)] = static_cast<unsigned char>(i % 40);
  std::ofstream list(dir / "train_files.txt"), names(dir / "shape_names.txt");
  for (int c = 0; c < 40; ++c) names << "class" << c << "\n";
  for (int k = 0; k < files; ++k) {
    const std::string name = "ply_data_train" + std::to_string(k) + ".h5";
    hid_t f = H5Fcreate((dir / name).c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t b = static_cast<hsize_t>(shapes);
    write_dataset(f, "data", H5T_NATIVE_FLOAT, {b, hsize_t(points), 3}, data.data());
    write_dataset(f, "normal", H5T_NATIVE_FLOAT, {b, hsize_t(points), 3}, nrm.data());
    write_dataset(f, "label", H5T_NATIVE_UINT8, {b, 1}, label.data());
    H5Fclose(f);
    // stamped an hour old, as a dataset on disk is (a file modified in the last 2 s is re-read
    // for every item: see modelnet_h5.cpp)
    fs::last_write_time(dir / name, fs::file_time_type::clock::now() - std::chrono::hours(1));
    list << name << "\n";
  }
}
#endif

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
}  // namespace

int main(int argc, char** argv) {
  int files = 2, shapes = 2048, runs = 3;
  std::string dir = "/tmp/ewa_bench_h5_items";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--files") files = std::atoi(argv[i + 1]);
    else if (a == "--shapes") shapes = std::atoi(argv[i + 1]);
    else if (a == "--runs") runs = std::atoi(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else {
      std::fprintf(stderr, "bench_h5_items: unknown option %s\n", a.c_str());
      return 2;
    }
  }
#ifndef EWA_HAVE_HDF5
  (void)files, (void)shapes, (void)runs;
  std::fprintf(stderr, "bench_h5_items: built without HDF5\n");
  return 0;
#else
  if (files < 1 || shapes < 1 || runs < 1) {
    std::fprintf(stderr, "bench_h5_items: --files, --shapes and --runs must be >= 1\n");
    return 2;
  }
  std::vector<double> split_s, items_s;
  int64_t items = 0;
  for (int r = 0; r < runs; ++r) {
    write_split(dir, files, shapes);
    double t0 = now();
    const auto split = read_modelnet_h5(dir, "train");
    split_s.push_back(now() - t0);
    write_split(dir, files, shapes);
    t0 = now();
    const auto list = list_cloud_scenes(dir, "modelnet_h5");
    int64_t points = 0;
    for (const auto& item : list) points += open_cloud(item).cloud.size();
    items_s.push_back(now() - t0);
    items = static_cast<int64_t>(list.size());
    if (items != split.points.size(0) || points != items * 2048) {
      std::fprintf(stderr, "bench_h5_items: %lld items, %lld points: not the split's shapes\n",
                   static_cast<long long>(items), static_cast<long long>(points));
      return 1;
    }
  }
  fs::remove_all(dir);
  const double s = median(split_s), it = median(items_s);
  std::printf("bench_h5_items: %d files x %d shapes x 2048 points (data + normal + label), median of %d\n", files,
              shapes, runs);
  std::printf("%-52s %8.2f s\n", "read the split once (read_modelnet_h5)", s);
  std::printf("%-52s %8.2f s (%.2f ms per item)\n", "every item file.h5#k (list_cloud_scenes + open_cloud)", it,
              1000.0 * it / static_cast<double>(items));
  std::printf("items / split: %.2fx\n", it / s);
  return 0;
#endif
}
