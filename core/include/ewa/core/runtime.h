// Process-wide runtime settings: thread count, logging, seeding, version information.
#pragma once

#include <cstdint>
#include <string>

namespace ewa {

/// Sets LibTorch's intra-op thread count (and OpenMP's). `n <= 0` means all cores.
/// Returns the count in effect. LibTorch defaults to one thread on Debian, so every entry
/// point calls this; it first calls init_process() (ewa/core/cpu.h: OpenBLAS core and OpenMP
/// wait settings, at most one restart of the process) and configure_allocator().
int set_num_threads(int n);

/// Tunes glibc malloc once per process: mmap threshold 32 MiB, trim threshold 512 MiB, and no
/// mmap for large blocks (M_MMAP_MAX 0). With glibc's defaults the tensors a step frees go
/// back to the kernel and are faulted in again on the next step: 2.7x on a small ViT step,
/// 3x on a 40k-point Point Transformer step. Freed memory up to 512 MiB stays in the process.
/// Each setting is skipped when the user set its variable (MALLOC_MMAP_THRESHOLD_,
/// MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_MAX_); EWA_MALLOC_TUNING=0 skips all; no-op on a
/// non-glibc C library. Returns true when it changed anything.
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

/// Two lines: ewa version, LibTorch version, CUDA availability, threads; then
/// runtime_summary() (BLAS core, OpenMP wait setting, CPU, AVX-512 / bf16 / AMX).
std::string version_string();

}  // namespace ewa
