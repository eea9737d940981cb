// CPU features (AVX2 / AVX-512 / BF16 / AMX), the OpenBLAS kernel set that fits them, and the
// process start-up that fixes OpenBLAS's fallback core and the OpenMP wait policy.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ewa {

/// What the CPU offers, as the kernel reports it (/proc/cpuinfo flag names, which include the
/// OS's support for the AVX-512 / AMX register state).
struct CpuInfo {
  std::string vendor;      ///< "GenuineIntel", "AuthenticAMD", ... ("" when unknown)
  std::string model_name;  ///< e.g. "AMD EPYC 9R45" ("" when unknown)
  std::set<std::string> flags;

  bool has(const std::string& flag) const { return flags.count(flag) > 0; }
  bool avx2() const { return has("avx2") && has("fma"); }
  /// The AVX-512 subset OpenBLAS's SkylakeX kernels need (F, BW, VL, DQ, CD).
  bool avx512() const;
  bool avx512_bf16() const { return avx512() && has("avx512_bf16"); }
  bool amx() const { return has("amx_tile") && has("amx_bf16"); }
  /// Native bf16 matmuls (AVX512-BF16 or AMX): where bf16 autocast pays off.
  bool native_bf16() const { return avx512_bf16() || amx(); }
};

/// Parses /proc/cpuinfo text (the first processor's vendor_id, model name and flags).
CpuInfo parse_cpuinfo(const std::string& text);

/// This machine's CPU (read once from /proc/cpuinfo; empty flags where it is unreadable).
const CpuInfo& cpu_info();

/// The best OpenBLAS 0.3.x DYNAMIC_ARCH core for `cpu`: Cooperlake (AVX-512 BF16, incl.
/// Sapphire Rapids), SkylakeX (AVX-512), Zen (AMD AVX2) / Haswell (AVX2), Sandybridge (AVX);
/// "" when none of these applies (OpenBLAS's own choice is then as good as any).
std::string best_openblas_core(const CpuInfo& cpu);

/// Instruction-set level of an OpenBLAS core name (case-insensitive): 0 SSE-only generic
/// cores (Prescott, Core2, Nehalem, ...), 1 AVX, 2 AVX2, 3 AVX-512, 4 AVX-512 BF16;
/// -1 for a name this table does not know (a newer OpenBLAS: never second-guessed).
int openblas_core_level(const std::string& core);

/// OpenBLAS's core in this process (`openblas_get_corename()`), "" when the BLAS is not OpenBLAS.
std::string openblas_core();
/// `openblas_get_config()` ("OpenBLAS 0.3.21 DYNAMIC_ARCH ... USE_OPENMP ..."), "" when not OpenBLAS.
std::string openblas_config();

/// Environment settings the start-up applies, and why.
struct StartupPlan {
  std::vector<std::pair<std::string, std::string>> set_env;  ///< variable, value
  std::string message;  ///< one info line ("" when nothing changes)
  bool empty() const { return set_env.empty(); }
};

/// The OpenMP spin count the start-up sets when the user set neither OMP_WAIT_POLICY nor
/// GOMP_SPINCOUNT (libgomp's default spins 300000 iterations, milliseconds, at every wait: a
/// second job on the same cores then waits for spinning threads; see the README's contention
/// table). 1000 iterations are tens of microseconds: enough to catch the next parallel region
/// of a step on an idle machine.
#define EWA_GOMP_SPINCOUNT "1000"
constexpr const char* kDefaultGompSpinCount = EWA_GOMP_SPINCOUNT;

/// Resolves train.precision: "bf16" -> true, "fp32" -> false, "auto" -> bf16 autocast on a CPU
/// device whose CPU has native bf16 matmuls (cpu_info().native_bf16()), fp32 otherwise.
bool resolve_bf16_autocast(const std::string& precision, bool cpu_device);

/// Pure decision of the start-up (testable on fake CPUs): `getenv` looks up the environment,
/// `current_core` is OpenBLAS's core ("" when not OpenBLAS). Sets OPENBLAS_CORETYPE to
/// best_openblas_core(cpu) when OpenBLAS runs a core of a lower level and the user did not set
/// OPENBLAS_CORETYPE; sets GOMP_SPINCOUNT (kDefaultGompSpinCount) when neither
/// OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set and EWA_OMP_TUNING is not 0. A variable named in
/// EWA_STARTUP_ENV (comma-separated: what an earlier start-up set) is never decided again.
StartupPlan plan_startup(const CpuInfo& cpu, const std::string& current_core,
                         const std::function<const char*(const char*)>& getenv);

/// Runs once per process (every entry point reaches it through set_num_threads()): applies
/// plan_startup() by restarting the process (/proc/self/exe, same arguments) with the variables
/// set, because OpenBLAS and libgomp read them only when they are loaded. Marks the restart with
/// EWA_STARTUP_ENV (the names it set) so it happens at most once, also in child processes.
/// Logs one info line when it changes the BLAS core. EWA_REEXEC=0 disables the restarts.
/// The OpenMP part normally happened already, before any library started: every executable
/// that links ewa_core restarts itself from its .preinit_array with GOMP_SPINCOUNT set (the
/// same rule; ~0.1 s of dynamic linking), so this restart is left for the BLAS core, which is
/// known only once OpenBLAS has chosen it.
void init_process();

/// One line for `ewa --version`: BLAS library and core (and who chose it), OpenMP wait
/// setting, CPU model, AVX-512 / bf16 / AMX availability.
std::string runtime_summary();

}  // namespace ewa
