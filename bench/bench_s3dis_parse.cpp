// S3DIS text parsing throughput: the library's fast tolerant reader (read_s3dis_room, threads
// over annotation files) vs a naive `std::ifstream >> double` parser, on a synthetic tree in
// the raw S3DIS layout written by synth_rooms (reused if already present).
// Usage: bench_s3dis_parse [--mb 300] [--dir /tmp/ewa_bench_s3dis] [--threads 2] [--naive-mb 64]
#include "ewa/datasets/points/s3dis.h"
#include "ewa/datasets/points/synth_rooms.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ewa::datasets;

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Annotation bytes under a room folder.
int64_t room_bytes(const std::string& room) {
  int64_t b = 0;
  for (const auto& e : fs::directory_iterator(fs::path(room) / "Annotations")) b += static_cast<int64_t>(e.file_size());
  return b;
}

// Naive baseline: one ifstream per file, operator>> per number.
int64_t naive_parse_room(const std::string& room, std::vector<double>& sink) {
  int64_t points = 0;
  for (const auto& e : fs::directory_iterator(fs::path(room) / "Annotations")) {
    std::ifstream in(e.path());
    double x, y, z, r, g, b;
    while (in >> x >> y >> z >> r >> g >> b) {
      sink.push_back(x + y + z + r + g + b);
      ++points;
    }
  }
  return points;
}

double fast_pass(const std::vector<std::string>& rooms, int threads, int64_t& bytes, int64_t& points) {
  S3disReadOptions opt;
  opt.threads = threads;
  bytes = points = 0;
  double t0 = now();
  for (const auto& r : rooms) {
    auto room = read_s3dis_room(r, opt);
    bytes += room.bytes;
    points += room.cloud.size();
  }
  return now() - t0;
}
}  // namespace

int main(int argc, char** argv) {
  double target_mb = 300, naive_mb = 64;
  int threads = 2;
  std::string dir = "/tmp/ewa_bench_s3dis";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--mb") target_mb = std::atof(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--naive-mb") naive_mb = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  try {
    std::vector<std::string> rooms;
    int64_t have = 0;
    if (fs::exists(fs::path(dir) / "README.txt")) {
      rooms = list_s3dis_rooms(dir);
      for (const auto& r : rooms) have += room_bytes(r);
    }
    if (have < target_mb * 0.9e6) {
      fs::remove_all(dir);
      SynthRoomsOptions so;
      so.density = 2000;  // ~14 MB of annotation text per room
      so.threads = threads;
      int n = std::max(1, static_cast<int>(target_mb / 14.0 + 0.5));
      std::printf("writing %d synthetic rooms to %s ...\n", n, dir.c_str());
      double t0 = now();
      synth_rooms(dir, n, 2024, so);
      std::printf("  written in %.1f s\n", now() - t0);
      rooms = list_s3dis_rooms(dir);
    }
    int64_t bytes = 0, points = 0;
    fast_pass(rooms, threads, bytes, points);  // warm the page cache
    double t_fast = fast_pass(rooms, threads, bytes, points);
    double t_fast1 = fast_pass(rooms, 1, bytes, points);
    double mb = bytes / 1e6;
    // Naive on a prefix of the rooms (it is slow), single thread.
    std::vector<double> sink;
    int64_t nb = 0, np = 0;
    double t0 = now();
    for (const auto& r : rooms) {
      if (nb >= naive_mb * 1e6) break;
      nb += room_bytes(r);
      np += naive_parse_room(r, sink);
      sink.clear();
    }
    double t_naive = now() - t0;
    double fast_rate = mb / t_fast, fast1_rate = mb / t_fast1, naive_rate = nb / 1e6 / t_naive;
    std::printf("tree: %zu rooms, %.1f MB of annotation text, %lld points\n", rooms.size(), mb,
                static_cast<long long>(points));
    std::printf("fast parser, %d threads : %8.1f MB/s  (%.2f s)\n", threads, fast_rate, t_fast);
    std::printf("fast parser, 1 thread  : %8.1f MB/s  (%.2f s)\n", fast1_rate, t_fast1);
    std::printf("naive ifstream>>double : %8.1f MB/s  (%.1f MB, %.2f s, 1 thread)\n", naive_rate, nb / 1e6, t_naive);
    std::printf("ratio fast(%d thr)/naive: %.1fx; fast(1 thr)/naive: %.1fx\n", threads, fast_rate / naive_rate,
                fast1_rate / naive_rate);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_s3dis_parse: %s\n", e.what());
    return 1;
  }
  return 0;
}
