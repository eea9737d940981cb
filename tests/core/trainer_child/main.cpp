// ewa_trainer_child: trains the synthetic task in its own process for the kill/resume,
// divergence and data-parallel tests (one thread, fixed seed). Exit 0 ok, 1 diverged/error.
//   ewa_trainer_child RUN_DIR [--resume] [--epochs N] [--batch B] [--every-steps K]
//                     [--sleep-ms MS] [--nan-at-call C] [--dropout P] [--optimizer NAME]
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "ewa/core/hooks.h"
#include "ewa/core/runtime.h"
#include "synthetic_task.h"

namespace {
class SleepHook : public ewa::Hook {
 public:
  explicit SleepHook(int ms) : ms_(ms) {}
  std::string name() const override { return "sleep"; }
  void after_step(ewa::Trainer&) override { std::this_thread::sleep_for(std::chrono::milliseconds(ms_)); }

 private:
  int ms_;
};
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: ewa_trainer_child RUN_DIR [options]\n";
    return 2;
  }
  ewa::init_logging("warn");
  ewa::set_num_threads(1);
  std::string run_dir = argv[1];
  bool resume = false;
  int64_t epochs = 3, batch = 8, every_steps = 0, nan_at = -1;
  int sleep_ms = 0;
  double dropout = 0.1;
  std::string optimizer = "adamw";
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "missing value for " << a << "\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--resume") resume = true;
    else if (a == "--epochs") epochs = std::stoll(next());
    else if (a == "--batch") batch = std::stoll(next());
    else if (a == "--every-steps") every_steps = std::stoll(next());
    else if (a == "--sleep-ms") sleep_ms = std::stoi(next());
    else if (a == "--nan-at-call") nan_at = std::stoll(next());
    else if (a == "--dropout") dropout = std::stod(next());
    else if (a == "--optimizer") optimizer = next();
    else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  try {
    ewa::test::SyntheticTaskOptions o;
    o.batch = batch;
    o.dropout = dropout;
    o.nan_at_call = nan_at;
    ewa::test::SyntheticTask task(o);
    auto cfg = ewa::test::synthetic_config(run_dir);
    cfg.train.epochs(epochs);
    cfg.train.optimizer().name(optimizer);
    cfg.train.checkpoint().every_steps(every_steps);
    if (resume) cfg.train.checkpoint().resume(run_dir);
    ewa::Trainer trainer(cfg, task);
    if (sleep_ms > 0) trainer.add_hook(std::make_shared<SleepHook>(sleep_ms));
    auto r = trainer.fit();
    std::cout << "steps " << r.steps << "\n";
    return 0;
  } catch (const ewa::DivergenceError& e) {
    std::cerr << "diverged: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
