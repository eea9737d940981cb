// Data-parallel training on LibTorch's c10d: torchrun-style environment, TCPStore rendezvous,
// ProcessGroupGloo (CPU) / ProcessGroupNCCL (CUDA builds), bucketed gradient all-reduce.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace ewa {

/// The torchrun environment: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;

  /// Reads the environment (absent variables keep the single-process defaults). Throws
  /// std::invalid_argument naming the variable when a value is malformed or inconsistent.
  static DistEnv from_env();
  bool distributed() const { return world_size > 1; }
};

/// True when this build can create a Gloo process group (LibTorch with c10d Gloo and the
/// gloo headers, package libgloo-dev, present at build time).
bool gloo_available();
/// True when this build can create an NCCL process group (CUDA LibTorch with NCCL).
bool nccl_available();

/// A process group of `world_size` ranks and the collective operations the trainer uses.
/// All ranks must call the collectives in the same order.
class DistContext {
 public:
  /// Rendezvous through a TCPStore at MASTER_ADDR:MASTER_PORT (rank 0 hosts it) and creates
  /// the process group. `backend`: "auto" | "gloo" | "nccl". Throws std::runtime_error
  /// saying what is missing when the backend is not available in this build.
  static std::shared_ptr<DistContext> create(const DistEnv& env, const std::string& backend,
                                             std::chrono::milliseconds timeout = std::chrono::minutes(5));
  ~DistContext();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  const std::string& backend() const { return backend_; }

  /// In-place sum over ranks of each tensor (any float dtype, same shapes on all ranks).
  void allreduce_sum_(std::vector<torch::Tensor>& tensors);
  /// Replaces every parameter's gradient by its mean over ranks. Gradients are flattened
  /// into buckets of about `bucket_mb` MiB (per dtype), all-reduced, divided by world size
  /// and copied back. Parameters without gradient get zeros on every rank first, so the
  /// bucket layout is identical everywhere.
  void average_gradients(const std::vector<torch::Tensor>& params, double bucket_mb = 25.0);
  /// Copies rank `root`'s tensors into every rank's (in place).
  void broadcast_(std::vector<torch::Tensor>& tensors, int root = 0);
  /// Logical OR of `flag` over ranks.
  bool any(bool flag);
  void barrier();

 private:
  DistContext() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int world_size_ = 1;
  std::string backend_;
};

}  // namespace ewa
