// The training engine: a task interface that pipelines implement (model, resumable data,
// training step, evaluation) and the Trainer that runs it with hooks (EWA, checkpoints,
// evaluation, metrics log, progress, routing statistics), mixed precision and data parallel.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ewa/core/checkpoint.h"
#include "ewa/core/distributed.h"
#include "ewa/core/lr_schedule.h"
#include "ewa/core/optim.h"
#include "ewa/core/options.h"
#include "ewa/core/train_options.h"

namespace ewa {

class Hook;
class ModelEma;

/// A batch: named tensors (e.g. "image" [B, C, H, W] float, "label" [B] int64) and its
/// sample count (for throughput). The trainer moves every tensor to the training device.
struct Batch {
  std::map<std::string, torch::Tensor> tensors;
  int64_t num_samples = 0;
  /// The tensor named `key`; throws std::out_of_range naming the key and the present ones.
  const torch::Tensor& at(const std::string& key) const;
};

/// What one training step of a task returns.
struct StepOutput {
  torch::Tensor loss;                               ///< scalar [] float, main loss (differentiable)
  std::map<std::string, torch::Tensor> aux_losses;  ///< scalars [], already weighted; added to `loss`
  std::map<std::string, double> metrics;            ///< logged as train.<key> (e.g. "top1")
};

/// What a pipeline implements to be trained. Data order must be a pure function of
/// (seed, epoch, rank): begin_epoch must not draw from the global torch generator (use a
/// generator seeded from seed and epoch), so that a resumed run sees the same batches.
class TrainTask {
 public:
  virtual ~TrainTask() = default;
  virtual torch::nn::Module& model() = 0;
  /// Micro-batches per epoch on this rank (after set_shard).
  virtual int64_t batches_per_epoch() const = 0;
  /// Called once before training: this process reads shard `rank` of `world_size`.
  virtual void set_shard(int rank, int world_size) {
    (void)rank;
    (void)world_size;
  }
  /// Starts epoch `epoch`, positioned at micro-batch `start_batch` (> 0 on resume).
  virtual void begin_epoch(int64_t epoch, int64_t start_batch) = 0;
  /// The next micro-batch of the epoch, or nullopt when the epoch is over.
  virtual std::optional<Batch> next_batch() = 0;
  /// Forward + loss on `batch` (tensors already on the device; model in train mode; runs
  /// inside the autocast region when train.precision is bf16).
  virtual StepOutput training_step(const Batch& batch) = 0;
  /// Evaluation metrics (e.g. {"val.top1": 0.81}); the model is put in eval mode around it.
  virtual std::map<std::string, double> evaluate() { return {}; }
  /// Per-layer expert load of the MoE layers (fractions of tokens per expert), e.g.
  /// {"blocks.3.mlp": {0.26, 0.24, 0.25, 0.25}}. Logged as "expert_load" in metrics.jsonl.
  virtual std::map<std::string, std::vector<double>> routing_stats() { return {}; }
  /// Scalar routing telemetry per MoE layer of the last training forward (dropped_fraction,
  /// mean_gate, router_entropy, aux.<loss>), logged as "routing" in metrics.jsonl. Default:
  /// moe_routing_scalars(model()).
  virtual std::map<std::string, std::map<std::string, double>> routing_scalars();
  /// State of the data source's own RNGs (augmentation), saved in checkpoints.
  virtual std::string data_state() const { return {}; }
  virtual void load_data_state(const std::string& state) { (void)state; }
};

/// Non-finite loss: training stopped at `step` (1-based optimizer step that failed).
/// Apps map it to exit status 1.
class DivergenceError : public std::runtime_error {
 public:
  DivergenceError(int64_t step, const std::string& message) : std::runtime_error(message), step_(step) {}
  int64_t step() const { return step_; }

 private:
  int64_t step_;
};

/// Everything the trainer is built from.
struct TrainerConfig {
  TrainOptions train;
  RunOptions run;
  EwaOptions ewa;
  /// Run directory (created); "" = run.output_dir/run.name.
  std::string run_dir;
  /// The resolved YAML text, written to RUN_DIR/config.yaml and hashed into checkpoints.
  std::string config_text;
  /// Command a user runs to resume (shown on SIGINT/SIGTERM), e.g. "ewa train cfg.yaml".
  std::string resume_command = "ewa train CONFIG";
  /// Log through ewa::add_log_file into RUN_DIR/train.log (off in tests that run many trainers).
  bool log_file = true;
};

/// How fit() ended.
struct FitResult {
  int64_t steps = 0;          ///< optimizer steps done in total
  int64_t epochs = 0;         ///< epochs completed
  bool interrupted = false;   ///< stopped by SIGINT/SIGTERM (or request_stop); `last` written
  std::map<std::string, double> final_metrics;  ///< last evaluation
  std::string run_dir;
};

class Trainer {
 public:
  /// Builds optimizer, LR schedule and the default hooks from `config`. `task` must outlive
  /// the trainer.
  Trainer(TrainerConfig config, TrainTask& task);
  ~Trainer();

  /// Adds a hook; it runs after the EWA hook and before the built-in evaluation, logging,
  /// checkpoint and progress hooks.
  void add_hook(std::shared_ptr<Hook> hook);
  /// Trains (resuming from train.checkpoint.resume when set). Throws DivergenceError on a
  /// non-finite loss, CheckpointError on an unreadable resume checkpoint.
  FitResult fit();

  // ---- state for hooks ----
  const TrainerConfig& config() const { return config_; }
  TrainTask& task() { return task_; }
  Optimizer& optimizer() { return optimizer_; }
  const LrSchedule& schedule() const { return *schedule_; }
  TrainingState& state() { return state_; }
  const TrainingState& state() const { return state_; }
  const std::string& run_dir() const { return run_dir_; }
  torch::Device device() const { return device_; }
  /// True when steps and evaluation run under bf16 autocast (train.precision resolved).
  bool bf16_autocast() const { return bf16_; }
  /// Rank 0 (or single process): the one that writes files.
  bool is_main() const { return dist_ == nullptr || dist_->rank() == 0; }
  DistContext* dist() { return dist_.get(); }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t total_steps() const { return total_steps_; }
  /// Current step's values (loss, lr, aux losses, train.* metrics, throughput, ...);
  /// hooks may add keys; the metrics hook writes it on logging steps.
  nlohmann::json& step_record() { return step_record_; }
  /// Values of the epoch being finished (eval metrics are added here).
  nlohmann::json& epoch_record() { return epoch_record_; }
  /// The last evaluation (empty before the first).
  const std::map<std::string, double>& eval_metrics() const { return eval_metrics_; }
  /// Stores an evaluation done at the current step.
  void set_eval_metrics(std::map<std::string, double> m) {
    eval_metrics_ = std::move(m);
    eval_step_ = state_.step;
  }
  /// Step of the last evaluation (-1 = none yet).
  int64_t eval_step() const { return eval_step_; }
  /// True when fit() continues from a checkpoint.
  bool resumed() const { return resumed_; }
  /// Stops after the current step (writes `last`); what SIGINT/SIGTERM do.
  void request_stop() { stop_requested_ = true; }
  bool interrupted() const { return interrupted_; }
  /// Writes RUN_DIR/checkpoints/<name>.ckpt (rank 0 only; no-op elsewhere).
  void save_checkpoint(const std::string& name);
  /// Path of RUN_DIR/checkpoints/<name>.ckpt.
  std::string checkpoint_path(const std::string& name) const;
  /// Runs the task's evaluation (eval mode, no grad, averaged over ranks; on the EMA weights
  /// when train.ema is enabled).
  std::map<std::string, double> run_evaluation();
  /// The model EMA (train.ema), or null.
  ModelEma* ema() { return ema_.get(); }

 private:
  void setup();
  void resume_from(const std::string& path);
  bool train_one_step();  // false when the epoch's data is exhausted
  /// train.ema.bn_batches: the model's BatchNorm statistics recomputed from training batches
  /// (call with the EMA in the model).
  void recompute_ema_batchnorm();
  template <class F>
  void each_hook(F&& f);

  TrainerConfig config_;
  TrainTask& task_;
  torch::Device device_;
  bool bf16_ = false;  // train.precision resolved for device_ (auto -> the CPU's bf16 support)
  Optimizer optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  TrainingState state_;
  std::string run_dir_;
  std::shared_ptr<DistContext> dist_;
  std::shared_ptr<ModelEma> ema_;
  bool ema_has_batchnorm_ = false;
  int64_t bn_step_ = -1;  // step of the last recompute_ema_batchnorm
  std::vector<std::shared_ptr<Hook>> hooks_;
  size_t user_hook_pos_ = 0;
  int64_t steps_per_epoch_ = 1;
  int64_t total_steps_ = 1;
  nlohmann::json step_record_;
  nlohmann::json epoch_record_;
  std::map<std::string, double> eval_metrics_;
  int64_t eval_step_ = -1;
  bool resumed_ = false;
  std::string pending_data_state_;
  double epoch_loss_sum_ = 0.0;
  int64_t epoch_loss_count_ = 0;
  bool stop_requested_ = false;
  bool interrupted_ = false;
  bool pending_data_restore_ = false;
};

/// Cross-entropy with label smoothing. logits [B, C] float; target either [B] int64 class
/// indices or [B, C] float soft targets (rows sum to 1, e.g. mixup). Returns the mean [].
torch::Tensor smoothed_cross_entropy(const torch::Tensor& logits, const torch::Tensor& target,
                                     double label_smoothing);

/// Resolves the device of `run.device` ("auto" = CUDA when available).
torch::Device resolve_device(const std::string& device);

}  // namespace ewa
