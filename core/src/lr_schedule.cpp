// LrSchedule: closed-form learning rate per step.
#include "ewa/core/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ewa {

namespace {
constexpr double kPi = 3.14159265358979323846;
// Cosine interpolation from `from` (t=0) to `to` (t=1).
double cos_interp(double from, double to, double t) {
  t = std::clamp(t, 0.0, 1.0);
  return to + (from - to) * 0.5 * (1.0 + std::cos(kPi * t));
}
}  // namespace

LrSchedule::LrSchedule(const LrScheduleOptions& opts, double base_lr, int64_t total_steps,
                       int64_t steps_per_epoch)
    : opts_(opts), base_lr_(base_lr), total_steps_(std::max<int64_t>(total_steps, 1)),
      steps_per_epoch_(std::max<int64_t>(steps_per_epoch, 1)) {
  if (!(base_lr > 0)) throw std::invalid_argument("LrSchedule: base lr must be > 0");
  warmup_steps_ = static_cast<int64_t>(std::llround(opts.warmup_epochs() * static_cast<double>(steps_per_epoch_)));
  warmup_steps_ = std::min(warmup_steps_, total_steps_);
  if (opts.name() != "cosine" && opts.name() != "multistep" && opts.name() != "onecycle" &&
      opts.name() != "constant") {
    throw std::invalid_argument("train.schedule.name: expected cosine, multistep, onecycle or constant, found '" +
                                opts.name() + "'");
  }
}

double LrSchedule::at(int64_t step) const {
  step = std::max<int64_t>(step, 0);
  if (opts_.name() == "onecycle") {
    // torch.optim.lr_scheduler.OneCycleLR (cos anneal, div_factor 25, final_div_factor 1e4).
    const double initial = base_lr_ / 25.0, final_lr = initial / 1e4;
    const double up = std::max(1.0, opts_.pct_start() * static_cast<double>(total_steps_) - 1.0);
    const double s = static_cast<double>(step);
    if (s <= up) return cos_interp(initial, base_lr_, s / up);
    const double down = std::max(1.0, static_cast<double>(total_steps_) - 1.0 - up);
    return cos_interp(base_lr_, final_lr, (s - up) / down);
  }
  // Linear warmup from ~0 to base_lr over warmup_steps (the first step gets base/warmup).
  if (step < warmup_steps_) {
    return base_lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_steps_);
  }
  if (opts_.name() == "constant") return base_lr_;
  if (opts_.name() == "multistep") {
    double lr = base_lr_;
    const double epoch = static_cast<double>(step) / static_cast<double>(steps_per_epoch_);
    for (double m : opts_.milestones()) {
      if (epoch >= m) lr *= opts_.gamma();
    }
    return lr;
  }
  // cosine from base_lr (end of warmup) to min_lr (last step).
  const int64_t span = std::max<int64_t>(total_steps_ - warmup_steps_ - 1, 1);
  const double t = static_cast<double>(step - warmup_steps_) / static_cast<double>(span);
  return cos_interp(base_lr_, opts_.min_lr(), t);
}

}  // namespace ewa
