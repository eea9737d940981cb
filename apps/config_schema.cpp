// Task -> config schema table used by `ewa config check` and the train/eval commands.
#include "config_schema.h"

#include <functional>
#include <map>

#include "ewa/vision2d/config.h"

namespace ewa::app {
namespace {

using Resolver = std::function<config::Node(const config::Node&, const std::string&)>;

template <class T>
Resolver resolver() {
  return [](const config::Node& root, const std::string& file) {
    return config::encode_value(config::decode<T>(root, file));
  };
}

const std::map<std::string, Resolver>& table() {
  static const std::map<std::string, Resolver> t = {
      {"image_classification", resolver<vision2d::ImageClassificationConfig>()},
  };
  return t;
}

}  // namespace

const std::vector<std::string>& known_tasks() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& [k, _] : table()) v.push_back(k);
    return v;
  }();
  return names;
}

std::string task_of(const config::Node& root, const std::string& file) {
  std::string list;
  for (const auto& t : known_tasks()) list += (list.empty() ? "" : ", ") + t;
  const config::Node* task = root.find("task");
  if (!task || !task->is_scalar()) {
    throw config::ConfigError(file, task ? task->line : 0, "task",
                              "missing or not a string; expected one of [" + list + "]");
  }
  if (!table().count(task->scalar)) {
    throw config::ConfigError(file, task->line, "task",
                              "expected one of [" + list + "], found '" + task->scalar + "'");
  }
  return task->scalar;
}

config::Node resolve_config(const config::Node& root, const std::string& file) {
  return table().at(task_of(root, file))(root, file);
}

}  // namespace ewa::app
