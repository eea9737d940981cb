// Learning-rate schedules evaluated per optimizer step as a pure function of the step, so a
// resumed run needs only the step count: linear warmup + cosine, multistep, one-cycle, constant.
#pragma once

#include <cstdint>

#include "ewa/core/train_options.h"

namespace ewa {

class LrSchedule {
 public:
  /// `base_lr`: peak learning rate; `total_steps`: optimizer steps of the whole run;
  /// `steps_per_epoch`: optimizer steps per epoch (warmup_epochs and milestones are in epochs).
  LrSchedule(const LrScheduleOptions& opts, double base_lr, int64_t total_steps, int64_t steps_per_epoch);

  /// Learning rate for optimizer step `step` (0-based: the lr used by the step-th update).
  double at(int64_t step) const;

  int64_t warmup_steps() const { return warmup_steps_; }
  int64_t total_steps() const { return total_steps_; }

 private:
  LrScheduleOptions opts_;
  double base_lr_;
  int64_t total_steps_;
  int64_t steps_per_epoch_;
  int64_t warmup_steps_;
};

}  // namespace ewa
