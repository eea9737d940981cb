// Thread count, logging setup, seeding and version string.
#include "ewa/core/runtime.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "ewa/core/compat.h"
#include "ewa/core/cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ewa {

int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

bool configure_allocator() {
#ifdef __GLIBC__
  static const bool changed = [] {
    const char* opt_out = std::getenv("EWA_MALLOC_TUNING");
    if (opt_out && std::strcmp(opt_out, "0") == 0) return false;
    bool any = false;
    if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) any |= mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
    // Never give the heap top back (-1: no trimming). With a 512 MB threshold a 40k-point
    // Point Transformer step (peak heap above 2 GB) returned its activations at the end of
    // every few steps and the next step paid 100-170k page faults (0.9 -> 1.8 s forward).
    if (!std::getenv("MALLOC_TRIM_THRESHOLD_")) any |= mallopt(M_TRIM_THRESHOLD, -1) == 1;
    // Tensors above the mmap threshold (a Point Transformer layer on 40k points allocates
    // 80-200 MB ones) would still be mapped and unmapped per step: serve them from the heap.
    if (!std::getenv("MALLOC_MMAP_MAX_")) any |= mallopt(M_MMAP_MAX, 0) == 1;
    return any;
  }();
  return changed;
#else
  return false;
#endif
}

int set_num_threads(int n) {
  init_process();  // may restart the process once with OPENBLAS_CORETYPE / GOMP_SPINCOUNT set
  configure_allocator();
  if (n <= 0) n = hardware_threads();
  torch::set_num_threads(n);
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  return torch::get_num_threads();
}

void init_logging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw std::invalid_argument("unknown log level '" + level +
                                "'; valid: trace, debug, info, warn, error, critical, off");
  }
  static bool initialised = false;
  if (!initialised) {
    auto logger = spdlog::stderr_color_mt("ewa");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("[%H:%M:%S] [%^%l%$] %v");
    initialised = true;
  }
  spdlog::set_level(lvl);
}

void add_log_file(const std::string& path) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false);
  sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  spdlog::default_logger()->sinks().push_back(sink);
}

void seed_everything(uint64_t seed) { torch::manual_seed(seed); }

std::string version_string() {
  std::string s = std::string("ewa ") + EWA_VERSION + " (LibTorch " + compat::torch_version();
  s += compat::cuda_available() ? ", CUDA available" : ", CPU only";
  s += ", " + std::to_string(torch::get_num_threads()) + " threads)\n";
  return s + runtime_summary();
}

}  // namespace ewa
