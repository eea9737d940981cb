// `ewa classify MODEL IMAGE... [--top K] [--json]`: top-k classes of images with a model
// exported by `ewa train` (model.safetensors or its run directory).
#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>
#include <memory>

#include "commands.h"
#include "ewa/vision2d/classifier.h"

namespace ewa::app {

void add_classify_command(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("classify", "Classify images with a trained model (top-k classes and probabilities)");
  struct Args {
    std::string model;
    std::vector<std::string> images;
    int64_t top = 5;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("model", args->model, "model.safetensors written by `ewa train`, or its run directory")->required();
  cmd->add_option("images", args->images, "image files (any format OpenCV reads)")->required();
  cmd->add_option("--top", args->top, "number of classes shown per image")->capture_default_str()->check(
      CLI::PositiveNumber);
  cmd->add_flag("--json", args->json, "print one JSON document instead of text");
  cmd->callback([&global, args] {
    apply_global_options(global);
    vision2d::ImageClassifier clf(args->model);
    nlohmann::json all = nlohmann::json::array();
    for (const auto& path : args->images) {
      const vision2d::Prediction p = clf.classify(path, args->top);
      if (args->json) {
        nlohmann::json top = nlohmann::json::array();
        for (size_t i = 0; i < p.top.size(); ++i) {
          top.push_back({{"class", p.top[i].first}, {"index", p.indices[i]}, {"probability", p.top[i].second}});
        }
        all.push_back({{"path", path}, {"top", top}});
      } else {
        std::cout << path << "\n";
        for (const auto& [name, prob] : p.top) {
          std::cout << "  " << std::fixed << std::setprecision(4) << prob << "  " << name << "\n";
        }
      }
    }
    if (args->json) std::cout << all.dump(2) << "\n";
  });
}

}  // namespace ewa::app
