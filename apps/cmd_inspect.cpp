// `ewa inspect FILE`: a safetensors file's tensors (name, dtype, shape), parameter count,
// MoE layers, router and metadata from the header; an ewa model file is then loaded and run once
// (load check); for a Point Transformer (model or 3D config's model.pt) also its architecture.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <regex>
#include <sstream>

#include "commands.h"
#include "ewa/core/config.h"
#include "ewa/core/model_io.h"
#include "ewa/core/safetensors.h"
#include "ewa/pointcloud/point_transformer.h"

namespace ewa::app {

namespace {

std::string join_ints(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string shape_text(torch::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

/// How a model file's MoE layers run at inference, by router name.
std::string router_line(const std::string& router) {
  if (router == "rup") {
    return "router: rup (inference runs the averaged expert; `ewa convert` collapses it to the dense network)\n";
  }
  return "router: " + router + " (learned: the file is the routed MoE as trained; ewa eval/classify/segment route "
         "with it; `ewa convert --average` averages the experts)\n";
}

/// Architecture summary and dense parameter count of a Point Transformer.
void print_point_transformer(const pointcloud::PointTransformerOptions& o) {
  const int64_t dense = pointcloud::dense_parameter_count(o);
  std::ostringstream millions;
  millions << std::fixed << std::setprecision(2) << static_cast<double>(dense) / 1e6;
  std::cout << "Point Transformer: variant " << o.variant() << ", blocks " << join_ints(o.resolved_blocks())
            << ", channels " << join_ints(o.channels()) << ", head " << o.head() << ", in_channels "
            << o.in_channels() << ", classes " << o.num_classes() << "\n";
  std::cout << "dense parameters: " << dense << " (" << millions.str() << "M)\n";
  if (o.moe().enabled()) {
    pointcloud::PointTransformer model(o);
    const int64_t total = count_parameters(*model);
    std::cout << "with MoE: " << model->num_moe_layers() << " MoE linears x " << o.moe().num_experts()
              << " experts (stages " << join_ints(o.moe().stages()) << ", " << o.moe().layers() << ", router "
              << o.moe().router().name() << "), " << total << " parameters while training\n";
  }
}

/// `ewa inspect CONFIG.yaml`: the Point Transformer of a 3D config (`model.pt`).
void inspect_config(const std::string& file) {
  const config::Node root = config::parse_yaml_file(file);
  const config::Node* model = root.find("model");
  const config::Node* pt = model && model->is_map() ? model->find("pt") : nullptr;
  if (!pt) {
    throw config::ConfigError(file, root.line, "model.pt",
                              "ewa inspect reads configs with a Point Transformer (model.pt); none found");
  }
  pointcloud::PointTransformerOptions o;
  config::decode_value(*pt, config::Context{file, "model.pt"}, o);
  std::cout << "config: " << file << "\n";
  print_point_transformer(o);
}

}  // namespace

void add_inspect_command(CLI::App& app, GlobalOptions& global) {
  auto file = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("inspect", "List a .safetensors file's tensors, parameters, MoE layers, metadata");
  cmd->add_option("file", *file, "A .safetensors file, or a 3D config (.yaml) to size its Point Transformer")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->callback([&global, file] {
    apply_global_options(global);
    const auto ext = std::filesystem::path(*file).extension().string();
    if (ext == ".yaml" || ext == ".yml") {
      inspect_config(*file);
      return;
    }
    const auto header = safetensors::read_header(*file);
    std::cout << "file: " << *file << " (" << 8 + header.header_bytes + header.data_bytes << " bytes, "
              << header.tensors.size() << " tensors)\n";
    size_t width = 4;
    for (const auto& t : header.tensors) width = std::max(width, t.name.size());
    int64_t params = 0;
    for (const auto& t : header.tensors) {
      std::ostringstream shape;
      shape << "[";
      for (size_t i = 0; i < t.shape.size(); ++i) shape << (i ? ", " : "") << t.shape[i];
      shape << "]";
      std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << t.name << "  " << std::setw(5)
                << t.dtype << " " << shape.str() << "\n";
      params += t.numel();
    }
    std::cout << "parameters: " << params << "\n";
    static const std::regex experts(R"(^blocks\.(\d+)\.mlp\.experts\.w1$)");
    std::vector<std::string> moe;
    for (const auto& t : header.tensors) {
      std::smatch m;
      if (std::regex_match(t.name, m, experts) && t.shape.size() == 3) {
        moe.push_back("  block " + m[1].str() + ": " + std::to_string(t.shape[0]) + " experts, in " +
                      std::to_string(t.shape[1]) + ", hidden " + std::to_string(t.shape[2]));
      }
    }
    const bool point_transformer = header.metadata.count(pointcloud::kMetaPointTransformer) > 0;
    if (point_transformer) {
      // listed with the Point Transformer summary below
    } else if (moe.empty()) {
      std::cout << "MoE layers: none (dense)\n";
    } else {
      std::cout << "MoE layers: " << moe.size() << "\n";
      for (const auto& l : moe) std::cout << l << "\n";
      if (auto m = header.metadata.find(kMetaMoe); m != header.metadata.end()) {
        const std::string src = *file + ":__metadata__." + kMetaMoe;
        const auto mo = config::decode<MoEOptions>(config::parse_yaml_string(m->second, src), src);
        std::cout << router_line(mo.router().name());
      }
    }
    std::cout << "metadata:" << (header.metadata.empty() ? " none" : "") << "\n";
    for (const auto& [k, v] : header.metadata) {
      if (v.find('\n') == std::string::npos) {
        std::cout << "  " << k << ": " << v << "\n";
      } else {
        std::cout << "  " << k << ":\n";
        std::istringstream lines(v);
        for (std::string line; std::getline(lines, line);) std::cout << "    " << line << "\n";
      }
    }
    if (auto pt = header.metadata.find(pointcloud::kMetaPointTransformer); pt != header.metadata.end()) {
      const std::string src = *file + ":__metadata__." + pointcloud::kMetaPointTransformer;
      auto o = config::decode<pointcloud::PointTransformerOptions>(config::parse_yaml_string(pt->second, src), src);
      static const std::regex pt_experts(R"(^(enc\d+\.\d+\.linear[13])\.experts\.weight$)");
      std::vector<std::string> layers;
      for (const auto& t : header.tensors) {
        std::smatch m;
        if (std::regex_match(t.name, m, pt_experts) && t.shape.size() == 3) {
          layers.push_back("  " + m[1].str() + ": " + std::to_string(t.shape[0]) + " experts, " +
                           std::to_string(t.shape[1]) + " -> " + std::to_string(t.shape[2]));
        }
      }
      const std::string router = o.moe().router().name();
      o.moe().enabled(false);  // the file's own tensors tell whether it holds MoE linears
      print_point_transformer(o);
      std::cout << "Point Transformer MoE linears: " << (layers.empty() ? "none (dense)" : std::to_string(layers.size()))
                << "\n";
      for (const auto& l : layers) std::cout << l << "\n";
      if (!layers.empty()) std::cout << router_line(router);
      // Load check: build the model from the metadata and load the tensors (strict).
      auto net = pointcloud::load_point_model(*file);
      std::cout << "load check: ok (" << (net->num_moe_layers() > 0 ? "routed MoE" : "dense") << " Point Transformer, "
                << net->parameters().size() << " parameter tensors loaded)\n";
    } else if (header.metadata.count(kMetaVit)) {
      // Load check: build the ViT from the metadata, load the tensors, run one zero image.
      auto model = load_model(*file);
      model->eval();
      torch::NoGradGuard no_grad;
      const auto& v = model->options();
      auto y = model->forward(torch::zeros({1, v.in_chans(), v.img_size(), v.img_size()},
                                           model->pos_embed.options().requires_grad(false)));
      std::cout << "load check: ok (" << (model->moe_blocks().empty() ? "dense" : "routed MoE")
                << " ViT, 1 image -> logits " << shape_text(y.sizes()) << ")\n";
    }
  });
}

}  // namespace ewa::app
