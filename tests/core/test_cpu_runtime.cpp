// CPU features, OpenBLAS core choice and start-up plan (fake CPUs), the BLAS core this test
// process runs after start-up, precision auto, and FusedAdamW against torch::optim::AdamW.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <map>
#include <string>

#include "ewa/core/cpu.h"
#include "ewa/core/optim.h"
#include "ewa/core/runtime.h"

namespace {

using ewa::CpuInfo;

CpuInfo fake_cpu(const std::string& vendor, const std::string& flags) {
  return ewa::parse_cpuinfo("processor\t: 0\nvendor_id\t: " + vendor + "\nmodel name\t: fake\nflags\t\t: " + flags +
                            "\n\nprocessor\t: 1\nflags\t\t: sse2\n");
}

const std::string kHaswellFlags = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi1 bmi2";
const std::string kSkylakeXFlags = kHaswellFlags + " avx512f avx512dq avx512cd avx512bw avx512vl";
// Sapphire Rapids (Xeon 4th gen), as the machine reports it.
const std::string kSapphireRapidsFlags =
    kSkylakeXFlags + " avx512_bf16 avx512_vnni avx512_fp16 amx_bf16 amx_tile amx_int8 avx512vbmi";
// Zen 5 (this reference machine): AVX-512 with BF16, no AMX.
const std::string kZen5Flags = kSkylakeXFlags + " avx512_bf16 avx512_vnni avx512vbmi avx512ifma";

struct FakeEnv {
  std::map<std::string, std::string> vars;
  std::function<const char*(const char*)> fn() const {
    return [this](const char* k) -> const char* {
      auto it = vars.find(k);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

TEST(Cpu, ParsesFirstProcessor) {
  auto c = fake_cpu("GenuineIntel", kSapphireRapidsFlags);
  EXPECT_EQ(c.vendor, "GenuineIntel");
  EXPECT_EQ(c.model_name, "fake");
  EXPECT_TRUE(c.avx2());
  EXPECT_TRUE(c.avx512());
  EXPECT_TRUE(c.avx512_bf16());
  EXPECT_TRUE(c.amx());
  EXPECT_TRUE(c.native_bf16());
  auto old = fake_cpu("GenuineIntel", "fpu sse sse2 sse3");
  EXPECT_FALSE(old.avx2());
  EXPECT_FALSE(old.native_bf16());
}

TEST(Cpu, BestOpenblasCorePerFlagSet) {
  EXPECT_EQ(ewa::best_openblas_core(fake_cpu("GenuineIntel", kSapphireRapidsFlags)), "Cooperlake");
  EXPECT_EQ(ewa::best_openblas_core(fake_cpu("AuthenticAMD", kZen5Flags)), "Cooperlake");
  EXPECT_EQ(ewa::best_openblas_core(fake_cpu("GenuineIntel", kSkylakeXFlags)), "SkylakeX");
  EXPECT_EQ(ewa::best_openblas_core(fake_cpu("GenuineIntel", kHaswellFlags)), "Haswell");
  EXPECT_EQ(ewa::best_openblas_core(fake_cpu("AuthenticAMD", kHaswellFlags)), "Zen");
  EXPECT_EQ(ewa::best_openblas_core(fake_cpu("GenuineIntel", "sse2 sse3 avx")), "Sandybridge");
  EXPECT_EQ(ewa::best_openblas_core(fake_cpu("GenuineIntel", "sse2 sse3")), "");
  // avx512_bf16 without the AVX-512 base set (a VM masking flags) is not enough for Cooperlake.
  EXPECT_EQ(ewa::best_openblas_core(fake_cpu("GenuineIntel", kHaswellFlags + " avx512_bf16")), "Haswell");
}

TEST(Cpu, CoreLevels) {
  EXPECT_EQ(ewa::openblas_core_level("Prescott"), 0);
  EXPECT_EQ(ewa::openblas_core_level("NEHALEM"), 0);
  EXPECT_EQ(ewa::openblas_core_level("Sandybridge"), 1);
  EXPECT_EQ(ewa::openblas_core_level("Haswell"), 2);
  EXPECT_EQ(ewa::openblas_core_level("Zen"), 2);
  EXPECT_EQ(ewa::openblas_core_level("SkylakeX"), 3);
  EXPECT_EQ(ewa::openblas_core_level("Cooperlake"), 4);
  EXPECT_EQ(ewa::openblas_core_level("SomeFutureCore"), -1);
}

TEST(Cpu, StartupPlanFixesFallbackCore) {
  FakeEnv env;
  env.vars["EWA_OMP_TUNING"] = "0";
  // Sapphire Rapids on OpenBLAS 0.3.21: Prescott -> Cooperlake.
  auto plan = ewa::plan_startup(fake_cpu("GenuineIntel", kSapphireRapidsFlags), "Prescott", env.fn());
  ASSERT_EQ(plan.set_env.size(), 1u);
  EXPECT_EQ(plan.set_env[0].first, "OPENBLAS_CORETYPE");
  EXPECT_EQ(plan.set_env[0].second, "Cooperlake");
  EXPECT_NE(plan.message.find("Prescott"), std::string::npos);
  // The right core already, or better than our table: nothing.
  EXPECT_TRUE(ewa::plan_startup(fake_cpu("GenuineIntel", kSapphireRapidsFlags), "Cooperlake", env.fn()).empty());
  EXPECT_TRUE(ewa::plan_startup(fake_cpu("GenuineIntel", kSkylakeXFlags), "Cooperlake", env.fn()).empty());
  EXPECT_TRUE(ewa::plan_startup(fake_cpu("GenuineIntel", kSapphireRapidsFlags), "FutureCore", env.fn()).empty());
  // Haswell kernels on an AVX-512 CPU (OpenBLAS's choice): upgraded.
  auto up = ewa::plan_startup(fake_cpu("GenuineIntel", kSkylakeXFlags), "Haswell", env.fn());
  ASSERT_EQ(up.set_env.size(), 1u);
  EXPECT_EQ(up.set_env[0].second, "SkylakeX");
  // Not OpenBLAS: nothing to fix.
  EXPECT_TRUE(ewa::plan_startup(fake_cpu("GenuineIntel", kSapphireRapidsFlags), "", env.fn()).empty());
  // The user's OPENBLAS_CORETYPE is never overridden, even a weak one.
  env.vars["OPENBLAS_CORETYPE"] = "Prescott";
  EXPECT_TRUE(ewa::plan_startup(fake_cpu("GenuineIntel", kSapphireRapidsFlags), "Prescott", env.fn()).empty());
  // The .preinit_array restart (OpenMP) does not stop the BLAS fix.
  env.vars.erase("OPENBLAS_CORETYPE");
  env.vars["EWA_STARTUP_ENV"] = "GOMP_SPINCOUNT";
  EXPECT_EQ(ewa::plan_startup(fake_cpu("GenuineIntel", kSapphireRapidsFlags), "Prescott", env.fn()).set_env.size(), 1u);
  // Already restarted for the core: never again (no loop, also not in child processes).
  env.vars["EWA_STARTUP_ENV"] = "OPENBLAS_CORETYPE";
  EXPECT_TRUE(ewa::plan_startup(fake_cpu("GenuineIntel", kSapphireRapidsFlags), "Prescott", env.fn()).empty());
}

TEST(Cpu, StartupPlanOpenmpSpinCount) {
  FakeEnv env;
  auto plan = ewa::plan_startup(fake_cpu("AuthenticAMD", kZen5Flags), "Cooperlake", env.fn());
  ASSERT_EQ(plan.set_env.size(), 1u);
  EXPECT_EQ(plan.set_env[0].first, "GOMP_SPINCOUNT");
  EXPECT_EQ(plan.set_env[0].second, ewa::kDefaultGompSpinCount);
  env.vars["OMP_WAIT_POLICY"] = "active";  // the user's choice wins
  EXPECT_TRUE(ewa::plan_startup(fake_cpu("AuthenticAMD", kZen5Flags), "Cooperlake", env.fn()).empty());
  env.vars.erase("OMP_WAIT_POLICY");
  env.vars["GOMP_SPINCOUNT"] = "infinite";
  EXPECT_TRUE(ewa::plan_startup(fake_cpu("AuthenticAMD", kZen5Flags), "Cooperlake", env.fn()).empty());
}

// Acceptance test of issue 18: after start-up (test_main called set_num_threads), OpenBLAS runs
// a core that fits this CPU, or the one the user asked for with OPENBLAS_CORETYPE.
TEST(Cpu, OpenblasCoreAfterStartup) {
  ewa::set_num_threads(2);
  const std::string core = ewa::openblas_core();
  if (core.empty()) GTEST_SKIP() << "the BLAS of this build is not OpenBLAS";
  const char* user = std::getenv("OPENBLAS_CORETYPE");
  const char* marker = std::getenv("EWA_STARTUP_ENV");
  const bool set_by_ewa = marker && std::string(marker).find("OPENBLAS_CORETYPE") != std::string::npos;
  if (user && !set_by_ewa && ewa::openblas_core_level(user) >= 0) {
    // The user's choice stands (OpenBLAS maps some names, e.g. SapphireRapids -> Cooperlake).
    EXPECT_EQ(ewa::openblas_core_level(core), ewa::openblas_core_level(user)) << core << " vs " << user;
    return;
  }
  const auto& cpu = ewa::cpu_info();
  const std::string best = ewa::best_openblas_core(cpu);
  if (cpu.avx2()) {
    EXPECT_GE(ewa::openblas_core_level(core), 2) << core << " on an AVX2 CPU";
  }
  if (!best.empty() && ewa::openblas_core_level(core) >= 0) {
    EXPECT_GE(ewa::openblas_core_level(core), ewa::openblas_core_level(best)) << core << ", best " << best;
  }
  EXPECT_NE(ewa::runtime_summary().find(core), std::string::npos);
}

TEST(Cpu, PrecisionAuto) {
  EXPECT_TRUE(ewa::resolve_bf16_autocast("bf16", true));
  EXPECT_FALSE(ewa::resolve_bf16_autocast("fp32", true));
  EXPECT_FALSE(ewa::resolve_bf16_autocast("auto", false));  // CUDA: fp32
  EXPECT_EQ(ewa::resolve_bf16_autocast("auto", true), ewa::cpu_info().native_bf16());
}

// FusedAdamW equals torch::optim::AdamW over several steps (two groups, weight decay on one).
void compare_adamw(torch::ScalarType dtype, double tol) {
  torch::manual_seed(3);
  std::vector<torch::Tensor> a, b;
  for (auto shape : {std::vector<int64_t>{37, 19}, std::vector<int64_t>{19}, std::vector<int64_t>{5, 3, 4}}) {
    auto t = torch::randn(shape, torch::TensorOptions().dtype(dtype));
    a.push_back(t.clone().requires_grad_(true));
    b.push_back(t.clone().requires_grad_(true));
  }
  auto make_groups = [](std::vector<torch::Tensor>& p) {
    std::vector<torch::optim::OptimizerParamGroup> g;
    g.emplace_back(std::vector<torch::Tensor>{p[0], p[2]},
                   std::make_unique<torch::optim::AdamWOptions>(
                       torch::optim::AdamWOptions(2e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.05)));
    g.emplace_back(std::vector<torch::Tensor>{p[1]},
                   std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).weight_decay(0.0)));
    return g;
  };
  torch::optim::AdamW ref(make_groups(a), torch::optim::AdamWOptions(1e-3));
  ewa::FusedAdamW fused(make_groups(b), torch::optim::AdamWOptions(1e-3));
  for (int step = 0; step < 6; ++step) {
    const int grads_seed = 100 + step;
    for (size_t i = 0; i < a.size(); ++i) {
      torch::manual_seed(grads_seed + static_cast<int>(i));
      auto g = torch::randn_like(a[i]);
      a[i].mutable_grad() = g.clone();
      b[i].mutable_grad() = g.clone();
    }
    if (step == 3) {  // a parameter without gradient is skipped
      a[1].mutable_grad() = torch::Tensor();
      b[1].mutable_grad() = torch::Tensor();
    }
    ref.step();
    fused.step();
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_LE((a[i] - b[i]).abs().max().item<double>(), tol) << "step " << step << " param " << i;
    }
  }
  // Same state layout as AdamW (checkpoints stay interchangeable).
  for (size_t i = 0; i < a.size(); ++i) {
    auto key_a = c10::guts::to_string(a[i].unsafeGetTensorImpl());
    auto key_b = c10::guts::to_string(b[i].unsafeGetTensorImpl());
    auto& sa = static_cast<torch::optim::AdamWParamState&>(*ref.state().at(key_a));
    auto& sb = static_cast<torch::optim::AdamWParamState&>(*fused.state().at(key_b));
    EXPECT_EQ(sa.step(), sb.step());
    EXPECT_LE((sa.exp_avg() - sb.exp_avg()).abs().max().item<double>(), tol);
    EXPECT_LE((sa.exp_avg_sq() - sb.exp_avg_sq()).abs().max().item<double>(), tol);
  }
}

TEST(FusedAdamW, MatchesTorchAdamWFloat) { compare_adamw(torch::kFloat, 1e-6); }
TEST(FusedAdamW, MatchesTorchAdamWDouble) { compare_adamw(torch::kDouble, 1e-14); }

}  // namespace
