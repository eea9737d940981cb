// Training-engine options (optimizer, LR schedule, precision, checkpoints, logging).
// Field names equal the YAML keys under `train:`.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ewa {

/// Name prefix -> learning-rate factor (a named type: TORCH_ARG cannot take a comma).
using LrMultMap = std::map<std::string, double>;

struct OptimizerOptions {
  TORCH_ARG(std::string, name) = "adamw";  ///< adamw | sgd
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, weight_decay) = 0.05;
  TORCH_ARG(double, momentum) = 0.9;       ///< sgd
  TORCH_ARG(bool, nesterov) = false;       ///< sgd
  TORCH_ARG(double, beta1) = 0.9;          ///< adamw
  TORCH_ARG(double, beta2) = 0.999;        ///< adamw
  TORCH_ARG(double, eps) = 1e-8;           ///< adamw
  /// No weight decay on norms, biases, position embeddings and the class token.
  TORCH_ARG(bool, no_decay_on_norm_bias) = true;
  /// Per-group learning-rate multipliers: parameter-name prefix -> factor (longest prefix
  /// wins), e.g. {"head": 10.0}.
  TORCH_ARG(LrMultMap, lr_mult) = {};

 public:
  template <class A>
  void visit(A& a) {
    a.one_of("name", name(), {"adamw", "sgd"});
    a("lr", lr())("weight_decay", weight_decay())("momentum", momentum())("nesterov", nesterov());
    a("beta1", beta1())("beta2", beta2())("eps", eps())("no_decay_on_norm_bias", no_decay_on_norm_bias());
    a("lr_mult", lr_mult());
    a.require(lr() > 0, "lr", "a number > 0");
    a.require(weight_decay() >= 0, "weight_decay", "a number >= 0");
  }
};

struct LrScheduleOptions {
  TORCH_ARG(std::string, name) = "cosine";  ///< cosine (linear warmup + cosine) | multistep | onecycle | constant
  TORCH_ARG(double, warmup_epochs) = 0.0;
  TORCH_ARG(double, min_lr) = 0.0;
  TORCH_ARG(std::vector<double>, milestones) = {};  ///< multistep: epochs
  TORCH_ARG(double, gamma) = 0.1;                    ///< multistep factor
  TORCH_ARG(double, pct_start) = 0.3;                ///< onecycle

 public:
  template <class A>
  void visit(A& a) {
    a.one_of("name", name(), {"cosine", "multistep", "onecycle", "constant"});
    a("warmup_epochs", warmup_epochs())("min_lr", min_lr())("milestones", milestones());
    a("gamma", gamma())("pct_start", pct_start());
    a.require(warmup_epochs() >= 0, "warmup_epochs", "a number >= 0");
    a.require(pct_start() > 0 && pct_start() < 1, "pct_start", "a number in (0, 1)");
  }
};

struct CheckpointOptions {
  TORCH_ARG(int64_t, every_epochs) = 1;   ///< write `last` every n epochs (0 = off)
  TORCH_ARG(int64_t, every_steps) = 0;    ///< write `last` every n steps (0 = off)
  TORCH_ARG(std::string, metric) = "";    ///< metric for `best` (e.g. val.top1); "" = no best
  TORCH_ARG(std::string, mode) = "max";   ///< max | min
  /// Checkpoint to continue from (a file, or a run directory whose checkpoints/last.ckpt is
  /// used); "" = start fresh. `ewa train --resume RUN_DIR` sets it.
  TORCH_ARG(std::string, resume) = "";

 public:
  template <class A>
  void visit(A& a) {
    a("every_epochs", every_epochs())("every_steps", every_steps())("metric", metric());
    a.one_of("mode", mode(), {"max", "min"});
    a("resume", resume());
    a.require(every_epochs() >= 0, "every_epochs", "an integer >= 0");
    a.require(every_steps() >= 0, "every_steps", "an integer >= 0");
  }
};

/// Model EMA (timm's ModelEma): a shadow copy of every parameter and floating buffer, after
/// every `every_n_steps`-th optimizer step shadow = d * shadow + (1 - d) * weights. When
/// enabled, evaluation, `best`, the exported model and weights-only checkpoint loads use the
/// shadow; checkpoints keep both for an exact resume.
struct EmaOptions {
  TORCH_ARG(bool, enabled) = false;
  TORCH_ARG(double, decay) = 0.9998;
  TORCH_ARG(int64_t, every_n_steps) = 1;
  /// d = min(decay, (1 + n) / (10 + n)) after n updates, so a short run is not dominated by
  /// the initial weights (TensorFlow's ExponentialMovingAverage num_updates rule).
  TORCH_ARG(bool, warmup) = false;
  /// Models with BatchNorm: before every evaluation and before export the EMA's running
  /// statistics are recomputed from this many training batches (SWA's update_bn; averaged
  /// statistics need not belong to averaged weights). 0 = keep the averaged statistics.
  TORCH_ARG(int64_t, bn_batches) = 32;

 public:
  template <class A>
  void visit(A& a) {
    a("enabled", enabled())("decay", decay())("every_n_steps", every_n_steps())("warmup", warmup())(
        "bn_batches", bn_batches());
    a.require(decay() >= 0 && decay() < 1, "decay", "a number in [0, 1)");
    a.require(every_n_steps() >= 1, "every_n_steps", "an integer >= 1");
    a.require(bn_batches() >= 0, "bn_batches", "an integer >= 0");
  }
};

struct TrainOptions {
  TORCH_ARG(int64_t, epochs) = 10;
  TORCH_ARG(int64_t, max_steps) = 0;         ///< stop after this many steps (0 = epochs decide)
  TORCH_ARG(int64_t, batch_size) = 128;
  TORCH_ARG(int64_t, grad_accum) = 1;
  TORCH_ARG(double, grad_clip) = 0.0;        ///< max gradient norm (0 = off)
  TORCH_ARG(double, label_smoothing) = 0.0;
  /// auto | fp32 | bf16. auto = bf16 autocast on a CPU with native bf16 matmuls (AVX512-BF16 or
  /// AMX; ewa::CpuInfo::native_bf16), fp32 elsewhere (and on CUDA devices).
  TORCH_ARG(std::string, precision) = "auto";
  TORCH_ARG(int64_t, log_every) = 50;        ///< steps between metrics.jsonl step records
  TORCH_ARG(int64_t, eval_every) = 1;        ///< epochs between evaluations (0 = end only)
  TORCH_ARG(bool, progress) = true;
  /// Data parallel backend when WORLD_SIZE > 1: auto (nccl on CUDA builds, else gloo) | gloo | nccl.
  TORCH_ARG(std::string, dist_backend) = "auto";
  /// Gradient all-reduce bucket size in MiB.
  TORCH_ARG(double, bucket_mb) = 25.0;
  TORCH_ARG(OptimizerOptions, optimizer) = {};
  TORCH_ARG(LrScheduleOptions, schedule) = {};
  TORCH_ARG(CheckpointOptions, checkpoint) = {};
  TORCH_ARG(EmaOptions, ema) = {};

 public:
  template <class A>
  void visit(A& a) {
    a("epochs", epochs())("max_steps", max_steps())("batch_size", batch_size())("grad_accum", grad_accum());
    a("grad_clip", grad_clip())("label_smoothing", label_smoothing());
    a.one_of("precision", precision(), {"auto", "fp32", "bf16"});
    a("log_every", log_every())("eval_every", eval_every())("progress", progress());
    a.one_of("dist_backend", dist_backend(), {"auto", "gloo", "nccl"});
    a("bucket_mb", bucket_mb());
    a("optimizer", optimizer())("schedule", schedule())("checkpoint", checkpoint())("ema", ema());
    a.require(epochs() >= 1, "epochs", "an integer >= 1");
    a.require(max_steps() >= 0, "max_steps", "an integer >= 0");
    a.require(batch_size() >= 1, "batch_size", "an integer >= 1");
    a.require(grad_accum() >= 1, "grad_accum", "an integer >= 1");
    a.require(grad_clip() >= 0, "grad_clip", "a number >= 0");
    a.require(label_smoothing() >= 0 && label_smoothing() < 1, "label_smoothing", "a number in [0, 1)");
    a.require(log_every() >= 1, "log_every", "an integer >= 1");
    a.require(bucket_mb() > 0, "bucket_mb", "a number > 0");
  }
};

}  // namespace ewa
