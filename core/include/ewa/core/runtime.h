// Process-wide runtime settings: thread count, logging, seeding, version information.
#pragma once

#include <cstdint>
#include <string>

namespace ewa {

/// Sets LibTorch's intra-op thread count (and OpenMP's). `n <= 0` means all cores.
/// Returns the count in effect. LibTorch defaults to one thread on Debian, so every entry
/// point calls this; it also calls configure_allocator().
int set_num_threads(int n);

/// Pins glibc malloc's mmap threshold (32 MiB) and trim threshold (512 MiB) once per process.
/// With glibc's dynamic defaults, the tensors a training step frees are returned to the
/// kernel and faulted back in on the next step (page faults took 2.7x on a small ViT step).
/// Does nothing when the user set MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ or
/// EWA_MALLOC_TUNING=0, or on a non-glibc C library. Returns true when it changed them.
bool configure_allocator();

/// Number of hardware threads (at least 1).
int hardware_threads();

/// Configures the global spdlog logger: level is one of trace, debug, info, warn, error,
/// critical, off. Throws std::invalid_argument listing the valid levels otherwise.
void init_logging(const std::string& level);

/// Adds a log file sink (used for a run directory's train.log).
void add_log_file(const std::string& path);

/// Seeds LibTorch's CPU (and CUDA) generators.
void seed_everything(uint64_t seed);

/// One line: ewa version, LibTorch version, CUDA availability, threads.
std::string version_string();

}  // namespace ewa
