// `ewa convert MODEL --out FILE`: collapse the MoE layers of an image-classification ViT into
// the dense ViT, verify on a probe batch, export safetensors with timm parameter names.
// MODEL is an ewa model file (.safetensors), a trainer checkpoint (.ckpt, e.g.
// RUN/checkpoints/last.ckpt; the model is built from RUN/config.yaml or --config) or a run
// directory (its checkpoints/last.ckpt).
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "config_schema.h"
#include "ewa/core/collapse.h"
#include "ewa/core/config.h"
#include "ewa/core/model_io.h"
#include "ewa/vision2d/pipeline.h"
#include "ewa/vision2d/presets.h"

namespace fs = std::filesystem;

namespace ewa::app {
namespace {

struct ConvertArgs {
  std::string model, out, config, checkpoint = "last";
  std::vector<std::string> set;
  int64_t probe_batch = 4;
  double tolerance = 1e-4;
  uint64_t seed = 0;
};

std::string join_blocks(const std::vector<int64_t>& blocks) {
  std::ostringstream s;
  for (size_t i = 0; i < blocks.size(); ++i) s << (i ? ", " : "") << blocks[i];
  return s.str();
}

void convert_safetensors(const ConvertArgs& a) {
  VisionTransformer model = load_model(a.model);
  const auto& o = model->options();
  const auto moe = model->moe_blocks();
  std::cout << "loaded " << a.model << ": ViT depth " << o.depth() << ", embed_dim " << o.embed_dim() << ", "
            << (moe.empty() ? std::string("dense") : std::to_string(moe.size()) + " MoE layers") << "\n";
  if (moe.empty()) {
    std::cout << "model is dense: nothing to collapse\n";
  } else {
    torch::manual_seed(a.seed);
    auto probe = torch::randn({a.probe_batch, o.in_chans(), o.img_size(), o.img_size()},
                              model->pos_embed.options().requires_grad(false));
    CollapseReport report = collapse_to_dense(model, probe);
    std::cout << "collapsed " << report.blocks.size() << " MoE layers (blocks " << join_blocks(report.blocks) << ", "
              << report.num_experts << " experts each) into dense FFNs\n"
              << "verify: max |MoE eval output - dense output| = " << report.max_abs_diff << " on a probe batch of "
              << a.probe_batch << "\n";
    if (!(report.max_abs_diff <= a.tolerance)) {
      throw std::runtime_error("collapse verification failed: max |diff| " + std::to_string(report.max_abs_diff) +
                               " > tolerance " + std::to_string(a.tolerance) +
                               " (the MoE's eval forward is not the averaged expert: a learned router?)");
    }
  }
  // Keep the metadata ewa classify needs (class names, normalisation) from the input file.
  safetensors::Metadata extra;
  for (const auto& [k, v] : safetensors::read_header(a.model).metadata) {
    if (k.rfind("ewa.", 0) == 0 && k != kMetaVit && k != kMetaMoe && k != "ewa.version") extra[k] = v;
  }
  save_model(model, a.out, extra);
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  std::cout << "wrote " << a.out << " (dense ViT, " << model_tensors(model).size() << " tensors, " << params
            << " parameters, timm names)\n";
}

void convert_checkpoint(const ConvertArgs& a) {
  // Resolve the checkpoint file and the run's config.
  fs::path ckpt = a.model;
  if (fs::is_directory(ckpt)) {
    const std::string which = a.checkpoint;
    if (which != "last" && which != "best") {
      throw UsageError("convert: --checkpoint must be last or best for a run directory, got '" + which + "'");
    }
    ckpt = ckpt / "checkpoints" / (which + ".ckpt");
    if (!fs::exists(ckpt)) {
      throw UsageError("convert: " + ckpt.string() + " not found (is " + a.model +
                       " a run directory written by ewa train?)");
    }
  }
  std::string config_file = a.config;
  if (config_file.empty()) {
    // RUN/checkpoints/X.ckpt -> RUN/config.yaml (also accept X.ckpt directly in RUN).
    const fs::path dir = fs::absolute(ckpt).parent_path();
    for (const fs::path& c : {dir.parent_path() / "config.yaml", dir / "config.yaml"}) {
      if (fs::exists(c)) {
        config_file = c.string();
        break;
      }
    }
    if (config_file.empty()) {
      throw UsageError("convert: no config.yaml next to " + ckpt.string() +
                       " (expected RUN/config.yaml for RUN/checkpoints/*.ckpt); pass the run's config with --config");
    }
  }
  config::Node root = config::parse_yaml_file(config_file);
  config::apply_overrides(root, a.set);
  const std::string task = task_of(root, config_file);
  if (task != "image_classification") {
    throw UsageError("convert: " + config_file + " is a '" + task +
                     "' run; ewa convert exports image-classification ViTs (a point-cloud run writes its "
                     "collapsed model.safetensors at the end of ewa train)");
  }
  const auto cfg = vision2d::decode_config(root, config_file);
  std::cout << "loading " << ckpt.string() << " (model from " << config_file << ")\n";
  const auto ex =
      vision2d::export_checkpoint(cfg, ckpt.string(), a.out, a.probe_batch, a.seed, a.tolerance);
  std::cout << "checkpoint at step " << ex.step << ": " << ex.params_train << " parameters\n";
  if (ex.moe_blocks.empty()) {
    std::cout << "model is dense: nothing to collapse\n";
  } else {
    std::cout << "collapsed " << ex.moe_blocks.size() << " MoE layers (blocks " << join_blocks(ex.moe_blocks) << ", "
              << ex.num_experts << " experts each) into dense FFNs\n"
              << "verify: max |MoE eval output - dense output| = " << ex.max_abs_diff << " on a probe batch of "
              << a.probe_batch << "\n";
  }
  std::cout << "wrote " << a.out << " (dense ViT, " << ex.params << " parameters, timm names"
            << (ex.has_class_names ? ", class names" : "") << ")\n";
}

}  // namespace

void add_convert_command(CLI::App& app, GlobalOptions& global) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand(
      "convert", "Collapse an MoE-ViT (expert means) into the dense ViT, verify, export safetensors (timm names)");
  cmd->add_option("model", args->model,
                  "ewa model (.safetensors), trainer checkpoint (.ckpt) or run directory (its checkpoints/last.ckpt)")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--out", args->out, "Output .safetensors file (dense ViT)")->required();
  cmd->add_option("--config", args->config,
                  "The run's config for a checkpoint (default: config.yaml of the checkpoint's run directory)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--checkpoint", args->checkpoint, "last | best, for a run directory")->capture_default_str();
  cmd->add_option("--set", args->set, "Override a key of the run's config: a.b.c=value")->take_all();
  cmd->add_option("--probe-batch", args->probe_batch, "Random images used to verify the collapse")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tolerance", args->tolerance, "Fail when max |MoE - dense| on the probe exceeds this")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", args->seed, "Seed of the probe batch");
  cmd->callback([&global, args] {
    apply_global_options(global);
    if (!fs::is_directory(args->model) && fs::path(args->model).extension() == ".safetensors") {
      convert_safetensors(*args);
    } else {
      convert_checkpoint(*args);
    }
  });
}

}  // namespace ewa::app
