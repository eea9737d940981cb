// metrics.jsonl: one JSON object per line (step, epoch and final records of a run).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace ewa {

/// Appends JSON records to a file, one per line, flushed after each record.
class MetricsLog {
 public:
  /// Opens `path` for appending. When `keep_until_step >= 0` (resume), records whose "step"
  /// is greater are dropped first (they were logged after the checkpoint being resumed).
  explicit MetricsLog(std::string path, int64_t keep_until_step = -1);
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

/// Reads every record of a metrics.jsonl file (malformed lines, e.g. a line cut by a kill,
/// are skipped). Throws std::runtime_error naming the file when it cannot be opened.
std::vector<nlohmann::json> read_metrics(const std::string& path);

}  // namespace ewa
