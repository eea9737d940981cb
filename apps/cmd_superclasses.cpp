// `ewa superclasses --confusion confusion.csv --groups E [--out superclasses.csv]`: clusters the
// classes of a dense model's confusion matrix into E super-classes for per_image routing.
#include <torch/torch.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <vector>

#include "commands.h"
#include "ewa/core/report.h"
#include "ewa/core/routers.h"

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

}  // namespace

void add_superclasses_command(CLI::App& app, GlobalOptions& global) {
  struct Args {
    std::string confusion, out = "superclasses.csv";
    int64_t groups = 0;
    bool unbalanced = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "superclasses",
      "Cluster classes into super-classes from a dense model's confusion matrix (per_image routing)");
  cmd->add_option("--confusion", args->confusion, "K x K confusion matrix CSV (rows: true class, columns: predicted)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--groups", args->groups, "Number of super-classes (= experts of the MoE layers)")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--out", args->out, "Output class,superclass file (model.moe.router.superclass_file)");
  cmd->add_flag("--unbalanced", args->unbalanced, "Do not cap super-class sizes at ceil(K / groups)");
  cmd->callback([&global, args] {
    apply_global_options(global);
    auto confusion = read_confusion(args->confusion);
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
