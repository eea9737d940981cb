// Task -> config schema table used by `ewa config check` and the train/eval commands.
#include "config_schema.h"

#include <functional>
#include <map>

#include "ewa/pointcloud/config.h"
#include "ewa/pointcloud/pipeline.h"
#include "ewa/vision2d/config.h"
#include "ewa/vision2d/pipeline.h"
#include "ewa/vision2d/presets.h"

namespace ewa::app {
namespace {

template <class T>
std::function<config::Node(const config::Node&, const std::string&)> resolver() {
  return [](const config::Node& root, const std::string& file) {
    return config::encode_value(config::decode<T>(root, file));
  };
}

// One row per task. Each pipeline module exposes decode-free entry points taking its typed
// config; the lambdas here decode and forward.
const std::map<std::string, TaskEntry>& table() {
  static const std::map<std::string, TaskEntry> t = {
      {"semantic_segmentation",
       TaskEntry{resolver<pointcloud::SemSegConfig>(),
                 [](const config::Node& root, const TrainRequest& req) {
                   return pointcloud::train_semantic_segmentation(
                       config::decode<pointcloud::SemSegConfig>(root, req.config_file), req);
                 },
                 [](const config::Node& root, const EvalRequest& req) {
                   return pointcloud::eval_semantic_segmentation(
                       config::decode<pointcloud::SemSegConfig>(root, req.run_dir + "/config.yaml"), req);
                 }}},
      {"point_classification",
       TaskEntry{resolver<pointcloud::PointClsConfig>(),
                 [](const config::Node& root, const TrainRequest& req) {
                   return pointcloud::train_point_classification(
                       config::decode<pointcloud::PointClsConfig>(root, req.config_file), req);
                 },
                 [](const config::Node& root, const EvalRequest& req) {
                   return pointcloud::eval_point_classification(
                       config::decode<pointcloud::PointClsConfig>(root, req.run_dir + "/config.yaml"), req);
                 }}},
      {"image_classification",
       TaskEntry{[](const config::Node& root, const std::string& file) {  // expands model.preset
                   return config::encode_value(vision2d::decode_config(root, file));
                 },
                 [](const config::Node& root, const TrainRequest& req) {
                   return vision2d::train(vision2d::decode_config(root, req.config_file), req);
                 },
                 [](const config::Node& root, const EvalRequest& req) {
                   return vision2d::evaluate(vision2d::decode_config(root, req.run_dir + "/config.yaml"), req);
                 }}},
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
  return table().at(task_of(root, file)).resolve(root, file);
}

const TaskEntry& task_entry(const std::string& task) { return table().at(task); }

}  // namespace ewa::app
