// Training-engine benchmark on the core ViT (small MoE ViT, random 32x32 images):
// (1) step time fp32 vs bf16 autocast on CPU, one process; (2) throughput of 1 vs 2 local
// data-parallel processes (Gloo, one thread each) and the scaling efficiency.
//   bench_trainer [--steps N] [--batch B] [--threads T]
// Internally re-runs itself with --child for the data-parallel part.
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "ewa/core/distributed.h"
#include "ewa/core/metrics_log.h"
#include "ewa/core/runtime.h"
#include "ewa/core/trainer.h"
#include "ewa/core/vit.h"

namespace fs = std::filesystem;

namespace {

ewa::VisionTransformerOptions vit_options() {
  ewa::VisionTransformerOptions o;
  o.img_size(32).patch_size(4).in_chans(3).num_classes(10).embed_dim(192).depth(6).num_heads(3);
  return o;
}

// Random images, fixed labels; data order a function of (epoch, rank).
class ImageTask : public ewa::TrainTask {
 public:
  ImageTask(int64_t batch, int64_t batches) : batch_(batch), batches_(batches) {
    torch::manual_seed(0);
    ewa::MoEOptions moe;
    moe.enabled(true).num_experts(4).every(2);
    net_ = ewa::VisionTransformer(vit_options(), moe);
  }
  torch::nn::Module& model() override { return *net_; }
  void set_shard(int rank, int) override { rank_ = rank; }
  int64_t batches_per_epoch() const override { return batches_; }
  void begin_epoch(int64_t, int64_t start) override { pos_ = start; }
  std::optional<ewa::Batch> next_batch() override {
    if (pos_ >= batches_) return std::nullopt;
    auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(pos_ * 131 + rank_));
    ewa::Batch b;
    b.tensors["x"] = torch::randn({batch_, 3, 32, 32}, gen, torch::TensorOptions());
    b.tensors["y"] = torch::randint(0, 10, {batch_}, gen, torch::TensorOptions().dtype(torch::kLong));
    b.num_samples = batch_;
    ++pos_;
    return b;
  }
  ewa::StepOutput training_step(const ewa::Batch& b) override {
    ewa::StepOutput out;
    out.loss = ewa::smoothed_cross_entropy(net_->forward(b.at("x")), b.at("y"), 0.1);
    out.aux_losses["router"] = net_->aux_loss();
    return out;
  }

 private:
  ewa::VisionTransformer net_{nullptr};
  int64_t batch_, batches_, pos_ = 0;
  int rank_ = 0;
};

struct Result {
  double step_s = 0, samples_per_s = 0;
  std::string error;
};

// Trains `steps` steps; mean step time and throughput over the steps after the first two.
Result train(const std::string& run_dir, const std::string& precision, int64_t steps, int64_t batch) {
  Result r;
  try {
    ImageTask task(batch, steps);
    ewa::TrainerConfig c;
    c.run_dir = run_dir;
    c.log_file = false;
    c.run.device("cpu");
    c.train.epochs(1).progress(false).log_every(1).precision(precision).grad_clip(1.0);
    c.train.checkpoint().every_epochs(0);
    c.train.eval_every(0);
    c.ewa.enabled(true).share_rate(0.3);
    ewa::Trainer t(c, task);
    t.fit();
    if (!t.is_main()) return r;
    int64_t n = 0;
    for (const auto& j : ewa::read_metrics(run_dir + "/metrics.jsonl")) {
      if (j.value("kind", "") != "step" || j["step"].get<int64_t>() <= 2) continue;
      r.step_s += j["step_time_s"].get<double>();
      r.samples_per_s += j.value("samples_per_sec", 0.0);
      ++n;
    }
    if (n > 0) {
      r.step_s /= static_cast<double>(n);
      r.samples_per_s /= static_cast<double>(n);
    }
  } catch (const std::exception& e) {
    r.error = e.what();
    r.error = r.error.substr(0, r.error.find('\n'));
  }
  return r;
}

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  buf[n > 0 ? n : 0] = '\0';
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 12, batch = 32;
  int threads = 1;
  bool child = false;
  std::string child_dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::stoll(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) batch = std::stoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--child" && i + 1 < argc) { child = true; child_dir = argv[++i]; }
    else {
      std::cerr << "usage: bench_trainer [--steps N] [--batch B] [--threads T]\n";
      return 2;
    }
  }
  ewa::init_logging("warn");
  ewa::set_num_threads(threads);
  if (child) {
    Result r = train(child_dir, "fp32", steps, batch);
    if (!r.error.empty()) {
      std::cerr << r.error << "\n";
      return 1;
    }
    if (ewa::DistEnv::from_env().rank == 0) std::printf("%.6f %.3f\n", r.step_s, r.samples_per_s);
    return 0;
  }
  const fs::path tmp = fs::temp_directory_path() / ("ewa_bench_trainer_" + std::to_string(::getpid()));
  std::printf("ViT 32x32/4, dim 192, depth 6, 4-expert RUP MoE every 2nd block, EWA on; batch %lld, %d thread(s)\n",
              static_cast<long long>(batch), threads);
  double fp32_step = 0;
  for (const char* prec : {"fp32", "bf16"}) {
    Result r = train((tmp / prec).string(), prec, steps, batch);
    if (!r.error.empty()) {
      std::printf("%-5s step: FAILED: %s\n", prec, r.error.c_str());
      continue;
    }
    if (std::string(prec) == "fp32") fp32_step = r.step_s;
    std::printf("%-5s step: %8.1f ms  (%7.1f img/s)%s\n", prec, r.step_s * 1e3, r.samples_per_s,
                std::string(prec) == "bf16" && fp32_step > 0
                    ? (" speedup x" + std::to_string(fp32_step / r.step_s)).c_str()
                    : "");
  }
  if (!ewa::gloo_available()) {
    std::printf("data parallel: skipped (no c10d Gloo in this build; install libgloo-dev)\n");
    fs::remove_all(tmp);
    return 0;
  }
  // 1 vs 2 processes, one thread each, same per-rank batch (weak scaling).
  double thr[3] = {0, 0, 0};
  for (int world : {1, 2}) {
    const std::string dir = (tmp / ("dp" + std::to_string(world))).string();
    std::vector<pid_t> pids;
    int pipefd[2];
    if (::pipe(pipefd) != 0) return 1;
    const std::string port = std::to_string(29650 + (::getpid() % 500));
    for (int r = 0; r < world; ++r) {
      pid_t pid = ::fork();
      if (pid == 0) {
        if (r == 0) ::dup2(pipefd[1], 1);
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        ::setenv("RANK", std::to_string(r).c_str(), 1);
        ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
        ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
        ::setenv("MASTER_ADDR", "127.0.0.1", 1);
        ::setenv("MASTER_PORT", port.c_str(), 1);
        const std::string exe = self_exe(), s = std::to_string(steps), b = std::to_string(batch);
        ::execl(exe.c_str(), exe.c_str(), "--child", dir.c_str(), "--steps", s.c_str(), "--batch", b.c_str(),
                "--threads", "1", static_cast<char*>(nullptr));
        std::_Exit(127);
      }
      pids.push_back(pid);
    }
    ::close(pipefd[1]);
    char buf[256] = {0};
    ssize_t n = ::read(pipefd[0], buf, sizeof(buf) - 1);
    ::close(pipefd[0]);
    bool ok = true;
    for (pid_t p : pids) {
      int st = 0;
      ::waitpid(p, &st, 0);
      ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    double step_s = 0, sps = 0;
    if (!ok || n <= 0 || std::sscanf(buf, "%lf %lf", &step_s, &sps) != 2) {
      std::printf("%d process(es): FAILED\n", world);
      continue;
    }
    thr[world] = sps;
    std::printf("%d process(es) x 1 thread: %8.1f ms/step  %7.1f img/s (all ranks)\n", world, step_s * 1e3, sps);
  }
  if (thr[1] > 0 && thr[2] > 0) {
    std::printf("scaling efficiency 2 procs: %.0f%%  (img/s(2) / (2 * img/s(1)))\n", 100.0 * thr[2] / (2 * thr[1]));
  }
  fs::remove_all(tmp);
  return 0;
}
