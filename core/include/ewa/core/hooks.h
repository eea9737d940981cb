// Trainer hooks: the extension points of the training loop and the built-in hooks that
// the trainer builds from the config (EWA, evaluation, metrics log, checkpoints, progress,
// routing statistics).
#pragma once

#include <fstream>
#include <memory>
#include <string>

#include "ewa/core/options.h"
#include "ewa/core/train_options.h"

namespace ewa {

class Trainer;
class MetricsLog;
class ProgressBar;
class ModelEma;

/// A hook: override what you need. Called on every rank; use trainer.is_main() for files.
class Hook {
 public:
  virtual ~Hook() = default;
  virtual std::string name() const = 0;
  virtual void before_train(Trainer&) {}
  virtual void before_epoch(Trainer&) {}
  virtual void before_step(Trainer&) {}
  virtual void after_step(Trainer&) {}
  virtual void after_epoch(Trainer&) {}
  virtual void after_train(Trainer&) {}
};

/// Experts Weights Averaging after every `every_n_steps`-th optimizer step with the share
/// rate of the ShareRateSchedule at the EWA step; records "share_rate". Defined in
/// hooks_ewa.cpp (needs ewa/core/ewa.h).
std::shared_ptr<Hook> make_ewa_hook(const EwaOptions& opts);

/// Model EMA update after every `every_n_steps`-th optimizer step (after EWA); records
/// "ema_decay". Defined in ema.cpp.
std::shared_ptr<Hook> make_ema_hook(std::shared_ptr<ModelEma> ema);

/// Evaluation every `eval_every` epochs and at the end (0 = end only); results go to the
/// epoch record ("val.*" keys as the task names them).
std::shared_ptr<Hook> make_eval_hook(int64_t eval_every);

/// Per-layer expert load (TrainTask::routing_stats, "expert_load") and scalar routing telemetry
/// (TrainTask::routing_scalars, "routing") into the step record on logging steps.
std::shared_ptr<Hook> make_routing_stats_hook(int64_t log_every);

/// RUN_DIR/metrics.jsonl: a step record every `log_every` steps and one per epoch, and a
/// "final" record at the end. Rank 0 only.
std::shared_ptr<Hook> make_metrics_log_hook(int64_t log_every);

/// `last` every N steps / epochs (and at the end / on interrupt); `best` by a metric.
std::shared_ptr<Hook> make_checkpoint_hook(const CheckpointOptions& opts);

/// Progress bar per epoch (rank 0, when train.progress).
std::shared_ptr<Hook> make_progress_hook();

}  // namespace ewa
