// Which typed config a file decodes into, chosen by its `task:` key.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ewa/core/config.h"
#include "ewa/core/pipeline.h"

namespace ewa::app {

/// The `task:` of a config (error naming the file and the known tasks when absent/unknown).
std::string task_of(const config::Node& root, const std::string& file);
/// Decodes the config with the schema of its task (all checks) and re-encodes it with every
/// default filled in.
config::Node resolve_config(const config::Node& root, const std::string& file);
const std::vector<std::string>& known_tasks();

/// One row of the task table: how a task's config is resolved, trained and evaluated.
/// `root` is the parsed config with --set overrides applied (not yet decoded).
struct TaskEntry {
  std::function<config::Node(const config::Node& root, const std::string& file)> resolve;
  std::function<PipelineResult(const config::Node& root, const TrainRequest& req)> train;
  std::function<PipelineResult(const config::Node& root, const EvalRequest& req)> eval;
};
/// The row of `task` (a name from known_tasks()).
const TaskEntry& task_entry(const std::string& task);

}  // namespace ewa::app
