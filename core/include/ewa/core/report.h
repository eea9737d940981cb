// `ewa report`: a self-contained HTML page (inline SVG, no scripts or external files) of a
// run directory: loss/accuracy curves, learning rate and share rate, throughput, per-layer
// expert load over time, confusion matrix.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ewa {

/// A confusion matrix: counts[true][predicted], with optional class names.
struct ConfusionMatrix {
  std::vector<std::vector<double>> counts;
  std::vector<std::string> names;
};

/// Reads a confusion matrix CSV such as RUN_DIR/confusion.csv (rows = true class, columns =
/// predicted; cells separated by commas, or semicolons, tabs or blanks; '#' starts a comment;
/// an optional first row of class names). Counts must be finite and >= 0 and the matrix
/// square. Returns an empty matrix when the file cannot be opened; throws
/// std::runtime_error naming the file and line when it is malformed.
ConfusionMatrix read_confusion_csv(const std::string& path);

/// Renders the report page from metrics.jsonl records (kinds "step", "epoch", "final").
/// A "confusion" key (array of rows) in the final record is used when `confusion` is empty.
std::string render_report_html(const std::string& title, const std::vector<nlohmann::json>& records,
                               const ConfusionMatrix& confusion, const std::string& config_yaml);

/// Writes `out_path` (default RUN_DIR/report.html) from RUN_DIR/metrics.jsonl,
/// RUN_DIR/confusion.csv and RUN_DIR/config.yaml; returns the path written. Throws
/// std::runtime_error naming the file when RUN_DIR has no metrics.jsonl.
std::string write_report(const std::string& run_dir, const std::string& out_path = "");

}  // namespace ewa
