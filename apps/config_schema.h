// Which typed config a file decodes into, chosen by its `task:` key.
#pragma once

#include <string>
#include <vector>

#include "ewa/core/config.h"

namespace ewa::app {

/// The `task:` of a config (error naming the file and the known tasks when absent/unknown).
std::string task_of(const config::Node& root, const std::string& file);
/// Decodes the config with the schema of its task (all checks) and re-encodes it with every
/// default filled in.
config::Node resolve_config(const config::Node& root, const std::string& file);
const std::vector<std::string>& known_tasks();

}  // namespace ewa::app
