// c10d process groups for data-parallel training. Gloo is compiled in when LibTorch's c10d
// headers and the gloo headers are present; NCCL only in CUDA builds of LibTorch.
#include "ewa/core/distributed.h"

#include <cstdlib>
#include <map>
#include <stdexcept>

#if __has_include(<torch/csrc/distributed/c10d/TCPStore.hpp>) && __has_include(<gloo/algorithm.h>)
#define EWA_HAVE_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#else
#define EWA_HAVE_GLOO 0
#endif

#if defined(EWA_WITH_NCCL) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#define EWA_HAVE_NCCL 1
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#else
#define EWA_HAVE_NCCL 0
#endif

namespace ewa {

namespace {
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (end == v || *end != '\0') {
    throw std::invalid_argument(std::string("environment variable ") + name + ": expected an integer, found '" +
                                v + "'");
  }
  return static_cast<int>(x);
}
}  // namespace

DistEnv DistEnv::from_env() {
  DistEnv e;
  e.world_size = env_int("WORLD_SIZE", 1);
  e.rank = env_int("RANK", 0);
  e.local_rank = env_int("LOCAL_RANK", e.rank);
  if (const char* a = std::getenv("MASTER_ADDR"); a != nullptr && *a != '\0') e.master_addr = a;
  e.master_port = env_int("MASTER_PORT", 29500);
  if (e.world_size < 1) throw std::invalid_argument("environment variable WORLD_SIZE: expected >= 1");
  if (e.rank < 0 || e.rank >= e.world_size) {
    throw std::invalid_argument("environment variable RANK: expected 0.." + std::to_string(e.world_size - 1) +
                                ", found " + std::to_string(e.rank));
  }
  if (e.master_port <= 0 || e.master_port > 65535) {
    throw std::invalid_argument("environment variable MASTER_PORT: expected 1..65535");
  }
  return e;
}

bool gloo_available() { return EWA_HAVE_GLOO != 0; }
bool nccl_available() { return EWA_HAVE_NCCL != 0; }

struct DistContext::Impl {
#if EWA_HAVE_GLOO || EWA_HAVE_NCCL
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
#endif
};

DistContext::~DistContext() = default;

std::shared_ptr<DistContext> DistContext::create(const DistEnv& env, const std::string& backend,
                                                 std::chrono::milliseconds timeout) {
  std::string chosen = backend;
  if (chosen == "auto") chosen = (nccl_available() && torch::cuda::is_available()) ? "nccl" : "gloo";
  if (chosen != "gloo" && chosen != "nccl") {
    throw std::invalid_argument("train.dist_backend: expected auto, gloo or nccl, found '" + backend + "'");
  }
  if (chosen == "gloo" && !gloo_available()) {
    throw std::runtime_error(
        "distributed training (WORLD_SIZE=" + std::to_string(env.world_size) +
        ") needs c10d Gloo, but this build has no gloo headers (install libgloo-dev and rebuild)");
  }
  if (chosen == "nccl" && !nccl_available()) {
    throw std::runtime_error("train.dist_backend=nccl needs a CUDA build of LibTorch with NCCL (EWA_WITH_CUDA=ON)");
  }
  std::shared_ptr<DistContext> ctx(new DistContext());
  ctx->impl_ = std::make_unique<Impl>();
  ctx->rank_ = env.rank;
  ctx->world_size_ = env.world_size;
  ctx->backend_ = chosen;
#if EWA_HAVE_GLOO || EWA_HAVE_NCCL
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(env.master_port);
  so.isServer = env.rank == 0;
  so.numWorkers = static_cast<std::size_t>(env.world_size);
  so.waitWorkers = true;
  so.timeout = timeout;
  ctx->impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
#endif
  if (chosen == "gloo") {
#if EWA_HAVE_GLOO
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    const bool loopback = env.master_addr == "127.0.0.1" || env.master_addr == "localhost";
    opts->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                     : c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 1;
    ctx->impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(ctx->impl_->store, env.rank, env.world_size, opts);
#endif
  } else {
#if EWA_HAVE_NCCL
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    ctx->impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(ctx->impl_->store, env.rank, env.world_size, opts);
#endif
  }
  return ctx;
}

void DistContext::allreduce_sum_(std::vector<torch::Tensor>& tensors) {
#if EWA_HAVE_GLOO || EWA_HAVE_NCCL
  for (auto& t : tensors) {
    std::vector<torch::Tensor> one{t};
    impl_->pg->allreduce(one)->wait();
  }
#else
  (void)tensors;
#endif
}

void DistContext::average_gradients(const std::vector<torch::Tensor>& params, double bucket_mb) {
  torch::NoGradGuard ng;
  const int64_t bucket_bytes = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * 1024.0 * 1024.0));
  // Group by dtype/device so a bucket is one flat tensor.
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (!p.requires_grad()) continue;
    auto& g = p.mutable_grad();
    if (!g.defined()) g = torch::zeros_like(p);
    grads.push_back(g);
  }
  size_t i = 0;
  while (i < grads.size()) {
    std::vector<torch::Tensor> bucket{grads[i]};
    int64_t bytes = grads[i].numel() * grads[i].element_size();
    size_t j = i + 1;
    while (j < grads.size() && bytes < bucket_bytes && grads[j].scalar_type() == grads[i].scalar_type() &&
           grads[j].device() == grads[i].device()) {
      bytes += grads[j].numel() * grads[j].element_size();
      bucket.push_back(grads[j]);
      ++j;
    }
    std::vector<torch::Tensor> flat_parts;
    for (const auto& g : bucket) flat_parts.push_back(g.reshape({-1}));  // [numel]
    std::vector<torch::Tensor> flat{torch::cat(flat_parts)};
    allreduce_sum_(flat);
    flat[0].div_(static_cast<double>(world_size_));
    int64_t off = 0;
    for (auto& g : bucket) {
      g.copy_(flat[0].narrow(0, off, g.numel()).view_as(g));
      off += g.numel();
    }
    i = j;
  }
}

void DistContext::broadcast_(std::vector<torch::Tensor>& tensors, int root) {
#if EWA_HAVE_GLOO || EWA_HAVE_NCCL
  torch::NoGradGuard ng;
  c10d::BroadcastOptions o;
  o.rootRank = root;
  for (auto& t : tensors) {
    auto c = t.detach().contiguous();
    std::vector<torch::Tensor> one{c};
    impl_->pg->broadcast(one, o)->wait();
    if (!c.is_same(t)) t.detach().copy_(c);
  }
#else
  (void)tensors;
  (void)root;
#endif
}

bool DistContext::any(bool flag) {
  std::vector<torch::Tensor> t{torch::tensor(std::vector<double>{flag ? 1.0 : 0.0}, torch::kFloat64)};
  allreduce_sum_(t);
  return t[0].item<double>() > 0.5;
}

void DistContext::barrier() {
#if EWA_HAVE_GLOO || EWA_HAVE_NCCL
  impl_->pg->barrier()->wait();
#endif
}

}  // namespace ewa
