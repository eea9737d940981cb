// The EWA hook: Experts Weights Averaging after optimizer steps (arXiv 2308.06093).
#include "ewa/core/ewa.h"
#include "ewa/core/hooks.h"
#include "ewa/core/trainer.h"

namespace ewa {

namespace {
class EwaHook : public Hook {
 public:
  explicit EwaHook(const EwaOptions& opts) : opts_(opts), schedule_(opts) {}
  std::string name() const override { return "ewa"; }
  void after_step(Trainer& t) override {
    auto& s = t.state();
    s.ewa_step += 1;  // optimizer steps taken, as ShareRateSchedule::at expects
    const double beta = schedule_.at(s.ewa_step);
    if (s.step % opts_.every_n_steps() == 0 && beta > 0) apply_ewa_(t.task().model(), beta);
    t.step_record()["share_rate"] = beta;
  }

 private:
  EwaOptions opts_;
  ShareRateSchedule schedule_;
};
}  // namespace

std::shared_ptr<Hook> make_ewa_hook(const EwaOptions& opts) { return std::make_shared<EwaHook>(opts); }

}  // namespace ewa
