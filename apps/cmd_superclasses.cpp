// `ewa superclasses --confusion confusion.csv --groups E [--out superclasses.csv]`: clusters the
// classes of a dense model's confusion matrix into E super-classes for per_image routing.
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <vector>

#include "commands.h"
#include "ewa/core/routers.h"

namespace ewa::app {

namespace {

/// Reads a K x K matrix of numbers (comma/space/tab separated; '#' comments; a first row
/// that is not numeric is a header and skipped). Throws naming the file and line.
torch::Tensor read_confusion(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("confusion matrix '" + path + "': cannot open");
  std::vector<std::vector<double>> rows;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    for (char& ch : line) {
      if (ch == ',' || ch == ';' || ch == '\t' || ch == '\r') ch = ' ';
    }
    std::istringstream ss(line);
    std::vector<double> row;
    std::string cell;
    bool numeric = true;
    while (ss >> cell) {
      try {
        size_t used = 0;
        row.push_back(std::stod(cell, &used));
        if (used != cell.size()) numeric = false;
      } catch (const std::exception&) {
        numeric = false;
      }
    }
    if (row.empty() && numeric) continue;  // blank line
    if (!numeric) {
      if (rows.empty()) continue;  // header
      throw std::runtime_error("confusion matrix '" + path + "', line " + std::to_string(line_no) +
                               ": expected numbers only");
    }
    if (!rows.empty() && row.size() != rows.front().size()) {
      throw std::runtime_error("confusion matrix '" + path + "', line " + std::to_string(line_no) + ": " +
                               std::to_string(row.size()) + " columns, expected " +
                               std::to_string(rows.front().size()));
    }
    rows.push_back(std::move(row));
  }
  if (rows.empty()) throw std::runtime_error("confusion matrix '" + path + "': no rows");
  const int64_t k = static_cast<int64_t>(rows.size());
  if (static_cast<int64_t>(rows.front().size()) != k) {
    throw std::runtime_error("confusion matrix '" + path + "': " + std::to_string(k) + " rows but " +
                             std::to_string(rows.front().size()) + " columns (must be square)");
  }
  auto out = torch::empty({k, k}, torch::kDouble);
  auto* p = out.data_ptr<double>();
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) p[i * k + j] = rows[static_cast<size_t>(i)][static_cast<size_t>(j)];
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
