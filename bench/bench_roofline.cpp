// This machine's GEMM roof: fp32 through at::mm (the BLAS) and through ewa::gemm (oneDNN when
// built with it, what the models run), bf16 through at::mm (oneDNN), in GFLOP/s on a large square
// GEMM and on the ViT benchmark's linear-layer shapes; the BLAS core in use.
// Usage: bench_roofline [--threads N] [--iters N] [--size N]
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "bench_util.h"
#include "ewa/core/cpu.h"
#include "ewa/core/runtime.h"

int main(int argc, char** argv) {
  int threads = 2, iters = 5;
  int64_t size = 2048;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--iters")) iters = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--size")) size = std::stoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--iters N] [--size N]\n", argv[0]);
      return 2;
    }
  }
  ewa::set_num_threads(threads);
  std::printf("%s\n", ewa::version_string().c_str());
  struct Shape {
    const char* what;
    int64_t m, k, n;
  };
  // 8320 tokens = batch 128 x 65 (bench_vit_moe); fc1 forward and its weight gradient.
  const Shape shapes[] = {{"square", size, size, size},
                          {"ViT fc1 fwd [8320,192]x[192,768]", 8320, 192, 768},
                          {"ViT fc1 dW [768,8320]x[8320,192]", 768, 8320, 192}};
  std::printf("%-36s %14s %14s %14s %8s\n", "GEMM (best of iters)", "fp32 at::mm", "fp32 ewa::gemm",
              "bf16 at::mm", "bf16/fp32");
  for (const auto& s : shapes) {
    const double blas = ewa::bench::gemm_gflops(torch::kFloat, s.m, s.k, s.n, iters, /*at_mm=*/true);
    const double f32 = ewa::bench::gemm_gflops(torch::kFloat, s.m, s.k, s.n, iters);
    const double b16 = ewa::bench::gemm_gflops(torch::kBFloat16, s.m, s.k, s.n, iters, /*at_mm=*/true);
    std::string name = s.what;
    if (name == "square") name = "square " + std::to_string(size) + "^3";
    std::printf("%-36s %14.1f %14.1f %14.1f %8.2f\n", name.c_str(), blas, f32, b16, b16 / std::max(blas, f32));
  }
  std::printf("GFLOP/s; ewa::gemm = %s\n", ewa::gemm_backend().c_str());
  return 0;
}
