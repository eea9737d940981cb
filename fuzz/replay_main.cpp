// ewa_fuzz_replay NAME PATH...: runs every file of the given folders (or the given files)
// through harness NAME once, without libFuzzer, as ctest does for tests/data/fuzz/corpus/<name> and
// tests/data/fuzz/regressions/<name>. The address space is capped at the baseline + kHeadroom so an
// input that makes a reader allocate far beyond its size fails (std::bad_alloc is a crash in
// fuzz_util.h) instead of passing quietly.
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "replay.h"

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kHeadroom = 512ull << 20;  // issue #16: < 512 MB above the baseline

/// Current virtual size of this process from /proc/self/statm (pages), in bytes.
uint64_t current_vm_bytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t pages = 0;
  in >> pages;
  return pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

void cap_address_space() {
  const uint64_t limit = current_vm_bytes() + kHeadroom;
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) != 0) return;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < limit) return;
  rl.rlim_cur = limit;
  setrlimit(RLIMIT_AS, &rl);
}

std::vector<std::string> collect(const std::vector<std::string>& args) {
  std::vector<std::string> files;
  for (const auto& a : args) {
    std::error_code ec;
    if (fs::is_directory(a, ec)) {
      for (const auto& e : fs::recursive_directory_iterator(a)) {
        if (e.is_regular_file() && e.path().filename().string().rfind('.', 0) != 0) files.push_back(e.path().string());
      }
    } else if (fs::is_regular_file(a, ec)) {
      files.push_back(a);
    }  // a missing folder (no regressions yet) is fine
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  const auto& all = ewa_fuzz::harnesses();
  if (argc < 2 || std::strcmp(argv[1], "--list") == 0 || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr, "usage: ewa_fuzz_replay NAME PATH...   (harnesses:");
    for (const auto& h : all) std::fprintf(stderr, " %s", h.name);
    std::fprintf(stderr, ")\n");
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  auto it = std::find_if(all.begin(), all.end(), [&](const ewa_fuzz::Harness& h) { return name == h.name; });
  if (it == all.end()) {
    std::fprintf(stderr, "ewa_fuzz_replay: unknown harness '%s' (see --list)\n", name.c_str());
    return 2;
  }
  const auto files = collect(std::vector<std::string>(argv + 2, argv + argc));
  if (files.empty()) {
    std::fprintf(stderr, "ewa_fuzz_replay: no input file for '%s'\n", name.c_str());
    return 1;
  }
  torch::set_num_threads(1);  // one thread: no per-thread arenas in the address-space budget
  cap_address_space();
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "%s: %s (%zu bytes)", name.c_str(), f.c_str(), bytes.size());
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = it->entry(bytes.data(), bytes.size());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, " ok %.3f s\n", s);
    if (rc != 0) {
      std::fprintf(stderr, "ewa_fuzz_replay: harness '%s' returned %d for %s\n", name.c_str(), rc, f.c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "ewa_fuzz_replay: %s: %zu inputs, no crash\n", name.c_str(), files.size());
  return 0;
}
