// Built-in trainer hooks: evaluation, routing statistics, metrics.jsonl, checkpoints, progress.
#include "ewa/core/hooks.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <optional>

#include "ewa/core/ewa.h"
#include "ewa/core/metrics_log.h"
#include "ewa/core/progress.h"
#include "ewa/core/trainer.h"

namespace ewa {

namespace {

class EvalHook : public Hook {
 public:
  explicit EvalHook(int64_t every) : every_(every) {}
  std::string name() const override { return "eval"; }
  void after_epoch(Trainer& t) override {
    if (every_ <= 0 || (t.state().epoch + 1) % every_ != 0) return;
    evaluate(t, t.epoch_record());
  }
  void after_train(Trainer& t) override {
    if (t.interrupted() || t.eval_step() == t.state().step) return;
    nlohmann::json unused;
    evaluate(t, unused);
  }

 private:
  static void evaluate(Trainer& t, nlohmann::json& record) {
    auto m = t.run_evaluation();
    for (const auto& [k, v] : m) record[k] = v;
    if (!m.empty()) {
      std::string line;
      for (const auto& [k, v] : m) line += (line.empty() ? "" : ", ") + k + "=" + std::to_string(v);
      spdlog::info("eval (step {}): {}", t.state().step, line);
    }
    t.set_eval_metrics(std::move(m));
  }
  int64_t every_;
};

class RoutingStatsHook : public Hook {
 public:
  explicit RoutingStatsHook(int64_t log_every) : log_every_(log_every) {}
  std::string name() const override { return "routing_stats"; }
  void after_step(Trainer& t) override {
    if (t.state().step % log_every_ != 0) return;
    auto stats = t.task().routing_stats();
    if (!stats.empty()) {
      nlohmann::json j = nlohmann::json::object();
      for (const auto& [layer, load] : stats) j[layer] = load;
      t.step_record()["expert_load"] = j;
    }
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [layer, values] : t.task().routing_scalars()) {
      for (const auto& [k, v] : values) j[layer][k] = v;
    }
    // How far EWA (or its absence) lets the experts drift apart, per layer (#20's instrument).
    for (const auto& [layer, v] : expert_spread(t.task().model())) j[layer]["expert_spread"] = v;
    if (!j.empty()) t.step_record()["routing"] = j;
  }

 private:
  int64_t log_every_;
};

class MetricsLogHook : public Hook {
 public:
  explicit MetricsLogHook(int64_t log_every) : log_every_(log_every) {}
  std::string name() const override { return "metrics_log"; }
  void before_train(Trainer& t) override {
    if (!t.is_main()) return;
    log_.emplace((std::filesystem::path(t.run_dir()) / "metrics.jsonl").string(),
                 t.resumed() ? t.state().step : -1);
  }
  void after_step(Trainer& t) override {
    if (!log_ || t.state().step % log_every_ != 0) return;
    log_->write(t.step_record());
  }
  void after_epoch(Trainer& t) override {
    if (!log_) return;
    log_->write(t.epoch_record());
  }
  void after_train(Trainer& t) override {
    if (!log_) return;
    nlohmann::json r = {{"kind", "final"}, {"step", t.state().step}, {"epoch", t.state().epoch},
                        {"interrupted", t.interrupted()}};
    for (const auto& [k, v] : t.eval_metrics()) r[k] = v;
    log_->write(r);
  }

 private:
  int64_t log_every_;
  std::optional<MetricsLog> log_;
};

class CheckpointHook : public Hook {
 public:
  explicit CheckpointHook(CheckpointOptions opts) : opts_(std::move(opts)) {}
  std::string name() const override { return "checkpoint"; }
  void after_step(Trainer& t) override {
    if (opts_.every_steps() > 0 && t.state().step % opts_.every_steps() == 0) t.save_checkpoint("last");
  }
  void after_epoch(Trainer& t) override {
    update_best(t);
    if (opts_.every_epochs() > 0 && (t.state().epoch + 1) % opts_.every_epochs() == 0) t.save_checkpoint("last");
  }
  void after_train(Trainer& t) override {
    if (!t.interrupted()) update_best(t);
    t.save_checkpoint("last");
  }

 private:
  void update_best(Trainer& t) {
    if (opts_.metric().empty() || t.eval_step() != t.state().step || t.eval_step() == best_checked_step_) return;
    best_checked_step_ = t.eval_step();
    auto it = t.eval_metrics().find(opts_.metric());
    if (it == t.eval_metrics().end()) {
      if (!warned_) {
        std::string known;
        for (const auto& kv : t.eval_metrics()) known += (known.empty() ? "" : ", ") + kv.first;
        spdlog::warn("train.checkpoint.metric '{}' is not among the evaluation metrics ({}); no `best` checkpoint",
                     opts_.metric(), known.empty() ? "none" : known);
        warned_ = true;
      }
      return;
    }
    auto& s = t.state();
    const double v = it->second;
    const bool better = !s.has_best || (opts_.mode() == "max" ? v > s.best_metric : v < s.best_metric);
    if (!better || !std::isfinite(v)) return;
    s.has_best = true;
    s.best_metric = v;
    s.best_metric_name = opts_.metric();
    t.save_checkpoint("best");
    spdlog::info("new best {} = {} at step {}", opts_.metric(), v, s.step);
  }
  CheckpointOptions opts_;
  int64_t best_checked_step_ = -1;
  bool warned_ = false;
};

class ProgressHook : public Hook {
 public:
  std::string name() const override { return "progress"; }
  void before_epoch(Trainer& t) override {
    if (!t.is_main()) return;
    const auto& s = t.state();
    const int64_t done = s.batch_in_epoch / t.config().train.grad_accum();
    const std::string epochs = t.config().train.max_steps() > 0 ? std::string("?") : std::to_string(t.config().train.epochs());
    bar_ = std::make_unique<ProgressBar>(std::max<int64_t>(t.steps_per_epoch() - done, 0),
                                         "epoch " + std::to_string(s.epoch + 1) + "/" + epochs, "step");
  }
  void after_step(Trainer& t) override {
    if (!bar_) return;
    const auto& r = t.step_record();
    std::vector<std::pair<std::string, double>> m = {{"loss", r.value("loss", 0.0)}, {"lr", r.value("lr", 0.0)}};
    if (r.contains("share_rate")) m.emplace_back("beta", r["share_rate"].get<double>());
    bar_->update(1, m);
  }
  void after_epoch(Trainer&) override {
    if (bar_) bar_->finish();
    bar_.reset();
  }
  void after_train(Trainer&) override {
    if (bar_) bar_->finish();
    bar_.reset();
  }

 private:
  std::unique_ptr<ProgressBar> bar_;
};

}  // namespace

std::shared_ptr<Hook> make_eval_hook(int64_t eval_every) { return std::make_shared<EvalHook>(eval_every); }
std::shared_ptr<Hook> make_routing_stats_hook(int64_t log_every) {
  return std::make_shared<RoutingStatsHook>(log_every);
}
std::shared_ptr<Hook> make_metrics_log_hook(int64_t log_every) { return std::make_shared<MetricsLogHook>(log_every); }
std::shared_ptr<Hook> make_checkpoint_hook(const CheckpointOptions& opts) {
  return std::make_shared<CheckpointHook>(opts);
}
std::shared_ptr<Hook> make_progress_hook() { return std::make_shared<ProgressHook>(); }

}  // namespace ewa
