// `ewa superclasses --run DENSE_RUN --groups E [--out superclasses.csv]`: clusters the classes of
// a dense model's confusion matrix on held-out validation data (or a given --confusion CSV) into
// E super-classes for per_image routing.
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <vector>

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <filesystem>

#include "commands.h"
#include "config_schema.h"
#include "ewa/core/config.h"
#include "ewa/core/pipeline.h"
#include "ewa/core/report.h"
#include "ewa/core/routers.h"
#include "ewa/vision2d/pipeline.h"
#include "ewa/vision2d/presets.h"

namespace ewa::app {

namespace {

/// The K x K matrix of a confusion CSV (core's reader: separators, header, comments, and
/// finite non-negative counts checked there) as double [K, K].
torch::Tensor read_confusion(const std::string& path) {
  const ConfusionMatrix m = read_confusion_csv(path);
  if (m.counts.empty()) throw std::runtime_error("confusion matrix '" + path + "': cannot open, or no rows");
  const int64_t k = static_cast<int64_t>(m.counts.size());
  auto out = torch::empty({k, k}, torch::kDouble);
  auto* p = out.data_ptr<double>();
  for (int64_t i = 0; i < k; ++i) {
    std::copy(m.counts[static_cast<size_t>(i)].begin(), m.counts[static_cast<size_t>(i)].end(), p + i * k);
  }
  return out;
}

// The confusion matrix of a dense run's model.safetensors on `split` of its data (default the
// held-out validation split: data.val_fraction or the dataset's own val split, never the test
// set unless asked for).
torch::Tensor run_confusion(const std::string& run_dir, const std::string& split) {
  namespace fs = std::filesystem;
  const std::string config_file = (fs::path(run_dir) / "config.yaml").string();
  if (!fs::exists(config_file)) throw UsageError("superclasses: " + config_file + " not found (--run takes a run directory)");
  const config::Node root = config::parse_yaml_file(config_file);
  const std::string task = task_of(root, config_file);
  if (task != "image_classification") {
    throw UsageError("superclasses: " + config_file + " is a '" + task + "' run; per_image routing is for image classification");
  }
  const auto cfg = vision2d::decode_config(root, config_file);
  if (split == "val" && cfg.data().val_fraction() <= 0 && cfg.data().val_root().empty()) {
    spdlog::info("{} has no held-out split (data.val_fraction 0): using the dataset's own val split", run_dir);
  }
  EvalRequest req;
  req.run_dir = run_dir;
  req.checkpoint = "model";
  req.split = split;
  req.quiet = true;
  req.out = (fs::path(run_dir) / ("superclass_eval_" + split + ".json")).string();
  try {
    vision2d::evaluate(cfg, req);
  } catch (const std::exception& e) {
    if (split != "val") throw;
    throw std::runtime_error(std::string(e.what()) +
                             " (super-classes come from held-out validation data: retrain the dense model with "
                             "--set data.val_fraction=0.1, or pass --split test to accept the test set)");
  }
  std::ifstream in(req.out);
  const auto j = nlohmann::json::parse(in);
  const auto& rows = j.at("confusion");
  const auto k = static_cast<int64_t>(rows.size());
  auto out = torch::zeros({k, k}, torch::kDouble);
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t c = 0; c < k; ++c) out[i][c] = rows[static_cast<size_t>(i)][static_cast<size_t>(c)].get<double>();
  }
  return out;
}

}  // namespace

void add_superclasses_command(CLI::App& app, GlobalOptions& global) {
  struct Args {
    std::string confusion, run, split = "val", out = "superclasses.csv";
    int64_t groups = 0;
    bool unbalanced = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "superclasses",
      "Cluster classes into super-classes from a dense model's confusion matrix (per_image routing)");
  auto* run = cmd->add_option("--run", args->run,
                              "A dense run directory: its model.safetensors is evaluated on --split and that "
                              "confusion matrix is clustered")
                  ->check(CLI::ExistingDirectory);
  cmd->add_option("--split", args->split,
                  "Split for --run: val (default: the held-out validation split) | train | test (leaks the test set)")
      ->capture_default_str();
  cmd->add_option("--confusion", args->confusion, "K x K confusion matrix CSV (rows: true class, columns: predicted)")
      ->check(CLI::ExistingFile)
      ->excludes(run);
  cmd->add_option("--groups", args->groups, "Number of super-classes (= experts of the MoE layers)")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--out", args->out, "Output class,superclass file (model.moe.router.superclass_file)");
  cmd->add_flag("--unbalanced", args->unbalanced, "Do not cap super-class sizes at ceil(K / groups)");
  cmd->callback([&global, args] {
    apply_global_options(global);
    if (args->run.empty() && args->confusion.empty()) {
      throw UsageError("superclasses: give --run DENSE_RUN_DIR (held-out validation confusion) or --confusion FILE");
    }
    auto confusion = args->run.empty() ? read_confusion(args->confusion) : run_confusion(args->run, args->split);
    if (!args->run.empty()) args->confusion = args->run + " (" + args->split + ")";
    if (args->groups > confusion.size(0)) {
      throw UsageError("--groups " + std::to_string(args->groups) + " exceeds the " +
                       std::to_string(confusion.size(0)) + " classes of " + args->confusion);
    }
    auto map = cluster_superclasses(confusion, args->groups, !args->unbalanced);
    save_superclasses(args->out, map);
    auto sizes = torch::bincount(map, {}, args->groups);
    // Share of the confusion mass that stays within a super-class.
    auto r = confusion / confusion.sum(1, true).clamp_min(1e-300);
    auto same = map.unsqueeze(0) == map.unsqueeze(1);
    auto off = ~torch::eye(map.size(0), torch::kBool);
    const double total = (r * off).sum().item<double>();
    const double within = (r * (same & off)).sum().item<double>();
    std::cout << "clustered " << map.size(0) << " classes into " << args->groups << " super-classes (sizes";
    for (int64_t g = 0; g < args->groups; ++g) std::cout << (g ? ", " : " ") << sizes[g].item<int64_t>();
    std::cout << ")\n";
    if (total > 0) std::cout << "confusion mass within super-classes: " << 100.0 * within / total << "%\n";
    std::cout << "wrote " << args->out << " (use as model.moe.router.superclass_file)\n";
  });
}

}  // namespace ewa::app
