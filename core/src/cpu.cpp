// CPU feature detection, OpenBLAS core choice and the once-per-process start-up that restarts
// the program with OPENBLAS_CORETYPE / GOMP_SPINCOUNT set (both are read only at library load).
#include "ewa/core/cpu.h"
#include "ewa/core/gemm.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>

namespace ewa {

namespace {

std::string cpu_lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string cpu_trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

const char* env_or_null(const char* name) { return std::getenv(name); }

bool env_set(const std::function<const char*(const char*)>& getenv, const char* name) {
  const char* v = getenv(name);
  return v != nullptr && *v != '\0';
}

// OpenBLAS exports these; looked up at run time so that another BLAS (MKL, BLIS, reference)
// links and runs unchanged.
using OpenblasStringFn = char* (*)();
std::string call_openblas(const char* symbol) {
  auto fn = reinterpret_cast<OpenblasStringFn>(dlsym(RTLD_DEFAULT, symbol));
  if (fn == nullptr) return "";
  const char* s = fn();
  return s ? cpu_trim(s) : "";
}

}  // namespace

// ---------------------------------------------------------------------------------------
// OpenMP wait setting before any library starts. libgomp reads GOMP_SPINCOUNT /
// OMP_WAIT_POLICY in its constructor, and setenv() before it is undone when libc initialises
// (it resets environ to the original array). A function in the executable's .preinit_array
// runs before every shared library's constructor, with libc not yet initialised: it only reads
// envp and calls execve() on a stack array (no malloc, no stdio), so the restart costs the
// dynamic linking (~0.1 s) but not LibTorch's static initialisation.
#if defined(__linux__) && !defined(EWA_NO_PREINIT)
namespace {

bool preinit_has(char** envp, const char* name, const char* value = nullptr) {
  const size_t len = std::strlen(name);
  for (char** e = envp; e && *e; ++e) {
    if (std::strncmp(*e, name, len) == 0 && (*e)[len] == '=') {
      const char* v = *e + len + 1;
      if (value) return std::strcmp(v, value) == 0;
      return *v != '\0';
    }
  }
  return false;
}

void ewa_preinit_omp(int /*argc*/, char** argv, char** envp) {
  if (!argv || !envp || preinit_has(envp, "OMP_WAIT_POLICY") || preinit_has(envp, "GOMP_SPINCOUNT") ||
      preinit_has(envp, "EWA_STARTUP_ENV") || preinit_has(envp, "EWA_OMP_TUNING", "0") ||
      preinit_has(envp, "EWA_REEXEC", "0")) {
    return;
  }
  size_t n = 0;
  while (envp[n]) ++n;
  if (n > 4096) return;
  static char spin[] = "GOMP_SPINCOUNT=" EWA_GOMP_SPINCOUNT;
  static char marker[] = "EWA_STARTUP_ENV=GOMP_SPINCOUNT";
  char* env[4096 + 3];
  for (size_t i = 0; i < n; ++i) env[i] = envp[i];
  env[n] = spin;
  env[n + 1] = marker;
  env[n + 2] = nullptr;
  execve("/proc/self/exe", argv, env);  // returns only on failure: continue with the defaults
}

}  // namespace

__attribute__((section(".preinit_array"), used)) static void (*const ewa_preinit_omp_entry)(int, char**, char**) =
    &ewa_preinit_omp;
#endif

bool CpuInfo::avx512() const {
  return has("avx512f") && has("avx512bw") && has("avx512vl") && has("avx512dq") && has("avx512cd");
}

CpuInfo parse_cpuinfo(const std::string& text) {
  CpuInfo info;
  std::istringstream in(text);
  std::string line;
  bool have_flags = false;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) {
      if (have_flags) break;  // blank line after the first processor
      continue;
    }
    const std::string key = cpu_trim(line.substr(0, colon));
    const std::string value = cpu_trim(line.substr(colon + 1));
    if (key == "vendor_id" && info.vendor.empty()) info.vendor = value;
    else if (key == "model name" && info.model_name.empty()) info.model_name = value;
    else if (key == "flags" && !have_flags) {
      std::istringstream fl(value);
      std::string f;
      while (fl >> f) info.flags.insert(f);
      have_flags = true;
    }
  }
  return info;
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = [] {
    std::ifstream f("/proc/cpuinfo");
    std::stringstream ss;
    ss << f.rdbuf();
    return parse_cpuinfo(ss.str());
  }();
  return info;
}

std::string best_openblas_core(const CpuInfo& cpu) {
  if (cpu.avx512_bf16()) return "Cooperlake";  // 0.3.21 maps SapphireRapids to these kernels too
  if (cpu.avx512()) return "SkylakeX";
  if (cpu.avx2()) return cpu.vendor == "AuthenticAMD" || cpu.vendor == "HygonGenuine" ? "Zen" : "Haswell";
  if (cpu.has("avx")) return "Sandybridge";
  return "";
}

int openblas_core_level(const std::string& core) {
  static const std::map<std::string, int> levels = {
      {"unknown", 0},     {"katmai", 0},      {"coppermine", 0},  {"northwood", 0},  {"prescott", 0},
      {"banias", 0},      {"atom", 0},        {"core2", 0},       {"penryn", 0},     {"dunnington", 0},
      {"nehalem", 0},     {"athlon", 0},      {"opteron", 0},     {"opteron_sse3", 0}, {"barcelona", 0},
      {"nano", 0},        {"bobcat", 0},      {"sandybridge", 1}, {"bulldozer", 1},  {"piledriver", 1},
      {"steamroller", 1}, {"excavator", 1},   {"haswell", 2},     {"zen", 2},        {"skylakex", 3},
      {"cooperlake", 4},  {"sapphirerapids", 4}};
  auto it = levels.find(cpu_lower(cpu_trim(core)));
  return it == levels.end() ? -1 : it->second;
}

std::string openblas_core() { return call_openblas("openblas_get_corename"); }
std::string openblas_config() { return call_openblas("openblas_get_config"); }

bool resolve_bf16_autocast(const std::string& precision, bool cpu_device) {
  if (precision == "auto") return cpu_device && cpu_info().native_bf16();
  return precision == "bf16";
}

StartupPlan plan_startup(const CpuInfo& cpu, const std::string& current_core,
                         const std::function<const char*(const char*)>& getenv) {
  StartupPlan plan;
  // Names an earlier start-up of this process (or of a parent) set: never decided twice.
  const char* marker = getenv("EWA_STARTUP_ENV");
  const std::string done = marker ? std::string(",") + marker + "," : "";
  auto already = [&](const char* name) { return marker && done.find(std::string(",") + name + ",") != std::string::npos; };
  std::string why;
  if (!current_core.empty() && !env_set(getenv, "OPENBLAS_CORETYPE") && !already("OPENBLAS_CORETYPE")) {
    const std::string best = best_openblas_core(cpu);
    const int have = openblas_core_level(current_core), want = openblas_core_level(best);
    if (!best.empty() && have >= 0 && have < want) {
      plan.set_env.emplace_back("OPENBLAS_CORETYPE", best);
      why = "OpenBLAS picked its '" + current_core + "' kernels on a CPU that runs '" + best +
            "' ones; restarting with OPENBLAS_CORETYPE=" + best + " (set OPENBLAS_CORETYPE to choose)";
    }
  }
  const char* tuning = getenv("EWA_OMP_TUNING");
  const bool omp_tuning = !(tuning && std::strcmp(tuning, "0") == 0);
  if (omp_tuning && !env_set(getenv, "OMP_WAIT_POLICY") && !env_set(getenv, "GOMP_SPINCOUNT") &&
      !already("GOMP_SPINCOUNT")) {
    plan.set_env.emplace_back("GOMP_SPINCOUNT", kDefaultGompSpinCount);
  }
  plan.message = why;
  return plan;
}

void init_process() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* reexec = std::getenv("EWA_REEXEC");
    const char* marker = std::getenv("EWA_STARTUP_ENV");
    const std::string core = openblas_core();
    if (marker && std::strstr(marker, "OPENBLAS_CORETYPE")) {
      const char* asked = std::getenv("OPENBLAS_CORETYPE");
      if (asked && openblas_core_level(core) < openblas_core_level(asked)) {
        spdlog::warn("OpenBLAS ignored OPENBLAS_CORETYPE={} and runs its '{}' kernels", asked, core);
      }
    }
    StartupPlan plan = plan_startup(cpu_info(), core, env_or_null);
    if (plan.empty() || (reexec && std::strcmp(reexec, "0") == 0)) return;
    // The arguments of this process, as it was started.
    std::ifstream f("/proc/self/cmdline", std::ios::binary);
    std::string raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<std::string> args;
    for (size_t b = 0; b < raw.size();) {
      size_t e = raw.find('\0', b);
      if (e == std::string::npos) e = raw.size();
      args.push_back(raw.substr(b, e - b));
      b = e + 1;
    }
    if (args.empty()) return;
    std::string names = marker ? marker : "";
    for (const auto& [k, v] : plan.set_env) {
      setenv(k.c_str(), v.c_str(), 1);
      names += (names.empty() ? "" : ",") + k;
    }
    setenv("EWA_STARTUP_ENV", names.c_str(), 1);
    if (!plan.message.empty()) spdlog::info("{}", plan.message);
    spdlog::default_logger()->flush();
    std::fflush(stdout);
    std::fflush(stderr);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    // Still here: the settings apply to child processes only.
    spdlog::warn("could not restart the process to apply {} ({}); continuing", names, std::strerror(errno));
  });
}

std::string runtime_summary() {
  const CpuInfo& cpu = cpu_info();
  std::string s = "BLAS: ";
  const std::string core = openblas_core();
  if (core.empty()) {
    s += "not OpenBLAS";
  } else {
    std::string cfg = openblas_config();
    std::istringstream words(cfg);
    std::string name, version;
    words >> name >> version;
    s += "OpenBLAS " + version + " core " + core;
    const char* marker = std::getenv("EWA_STARTUP_ENV");
    if (marker && std::strstr(marker, "OPENBLAS_CORETYPE")) s += " (set by ewa)";
    else if (std::getenv("OPENBLAS_CORETYPE")) s += " (OPENBLAS_CORETYPE)";
    else s += " (OpenBLAS's choice)";
    const std::string best = best_openblas_core(cpu);
    if (!best.empty() && openblas_core_level(core) >= 0 && openblas_core_level(core) < openblas_core_level(best)) {
      s += ", best for this CPU: " + best;
    }
  }
  s += "; fp32 GEMM: " + gemm_backend();
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  s += "; OpenMP wait: ";
  s += policy ? std::string("OMP_WAIT_POLICY=") + policy : spin ? std::string("GOMP_SPINCOUNT=") + spin : "default";
  s += "; CPU: " + (cpu.model_name.empty() ? std::string("unknown") : cpu.model_name);
  s += cpu.avx512() ? ", AVX-512" : cpu.avx2() ? ", AVX2" : "";
  s += std::string(", bf16 ") + (cpu.native_bf16() ? "native (" : "emulated");
  if (cpu.native_bf16()) s += std::string(cpu.avx512_bf16() ? "AVX512-BF16" : "") + (cpu.amx() ? (cpu.avx512_bf16() ? "+AMX" : "AMX") : "") + ")";
  s += std::string(", AMX ") + (cpu.amx() ? "yes" : "no");
  return s;
}

}  // namespace ewa
