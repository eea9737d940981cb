// `ewa convert MODEL --out FILE`: collapse the RUP/EWA MoE layers of an image-classification ViT
// into the dense ViT (verified on a probe batch), or with --average the experts of a learned-router
// model (reporting the top-1 it costs), and export safetensors with timm parameter names.
// MODEL is an ewa model file (.safetensors), a trainer checkpoint (.ckpt, e.g.
// RUN/checkpoints/last.ckpt; the model is built from RUN/config.yaml or --config) or a run
// directory (its checkpoints/last.ckpt).
#include <torch/torch.h>

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
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
  vision2d::ConvertOptions options;
};

std::string join_blocks(const std::vector<int64_t>& blocks) {
  std::ostringstream s;
  for (size_t i = 0; i < blocks.size(); ++i) s << (i ? ", " : "") << blocks[i];
  return s.str();
}

// The run's image-classification config: --config, else RUN/config.yaml next to `file` (a
// checkpoint in RUN/checkpoints/ or a model file in RUN/); empty when none is found.
std::optional<vision2d::ImageClassificationConfig> run_config(const ConvertArgs& a, const fs::path& file,
                                                              std::string* config_file) {
  std::string path = a.config;
  if (path.empty()) {
    const fs::path dir = fs::absolute(file).parent_path();
    for (const fs::path& c : {dir / "config.yaml", dir.parent_path() / "config.yaml"}) {
      if (fs::exists(c)) {
        path = c.string();
        break;
      }
    }
  }
  if (path.empty()) return std::nullopt;
  config::Node root = config::parse_yaml_file(path);
  config::apply_overrides(root, a.set);
  const std::string task = task_of(root, path);
  if (task != "image_classification") {
    throw UsageError("convert: " + path + " is a '" + task +
                     "' run; ewa convert exports image-classification ViTs (a point-cloud run writes its "
                     "model.safetensors at the end of ewa train)");
  }
  *config_file = path;
  return vision2d::decode_config(root, path);
}

// Runs the one collapse path, mapping "learned router without --average" to a usage error.
vision2d::ConvertResult convert_or_usage(VisionTransformer& model, const ConvertArgs& a,
                                         const vision2d::ImageClassificationConfig* cfg) {
  if (routes_at_eval(*model) && !a.options.average) {
    throw UsageError("convert: " + a.model + " routes its MoE layers with the learned router '" +
                     (model->moe_options() ? model->moe_options()->router().name() : std::string("?")) +
                     "': it is served as the routed MoE it was trained as (ewa eval / classify run it); pass "
                     "--average to replace each MoE layer by the mean of its experts (reports the accuracy "
                     "this costs on the run's evaluation split)");
  }
  return vision2d::convert_model(model, a.options, cfg);
}

void print_result(const vision2d::ConvertResult& r, const ConvertArgs& a) {
  if (r.moe_blocks.empty()) {
    std::cout << "model is dense: nothing to collapse\n";
    return;
  }
  std::cout << (r.averaged_learned ? "averaged " : "collapsed ") << r.moe_blocks.size() << " MoE layers (blocks "
            << join_blocks(r.moe_blocks) << ", " << r.num_experts << " experts each) into dense FFNs (router "
            << r.router << ")\n";
  if (r.averaged_learned) {
    std::cout << std::fixed << std::setprecision(2) << "accuracy cost on " << r.split << " (" << r.eval_images
              << " images): top-1 " << 100.0 * r.top1_routed << "% routed MoE -> " << 100.0 * r.top1_averaged
              << "% averaged experts (" << std::showpos << 100.0 * (r.top1_averaged - r.top1_routed)
              << std::noshowpos << " points)\n"
              << std::defaultfloat;
  } else {
    std::cout << "verify: max |MoE eval output - dense output| = " << r.max_abs_diff << " on a probe batch of "
              << a.options.probe_batch << "\n";
  }
}

void convert_safetensors(const ConvertArgs& a) {
  VisionTransformer model = load_model(a.model);
  const auto& o = model->options();
  const auto moe = model->moe_blocks();
  std::cout << "loaded " << a.model << ": ViT depth " << o.depth() << ", embed_dim " << o.embed_dim() << ", "
            << (moe.empty() ? std::string("dense") : std::to_string(moe.size()) + " MoE layers") << "\n";
  std::optional<vision2d::ImageClassificationConfig> cfg;
  std::string config_file;
  if (a.options.average && routes_at_eval(*model)) {
    cfg = run_config(a, a.model, &config_file);
    if (!cfg) {
      throw UsageError("convert --average: no config.yaml next to " + a.model +
                       ": the run's config is needed to measure the accuracy averaging costs (pass --config)");
    }
  }
  print_result(convert_or_usage(model, a, cfg ? &*cfg : nullptr), a);
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
  std::string config_file;
  const auto cfg = run_config(a, ckpt, &config_file);
  if (!cfg) {
    throw UsageError("convert: no config.yaml next to " + ckpt.string() +
                     " (expected RUN/config.yaml for RUN/checkpoints/*.ckpt); pass the run's config with --config");
  }
  const auto& moe = cfg->model().moe();
  if (moe.enabled() && moe.router().name() != "rup" && !a.options.average) {
    throw UsageError("convert: the run " + config_file + " routes its MoE layers with the learned router '" +
                     moe.router().name() +
                     "': its model.safetensors is the routed MoE (ewa eval / classify run it); pass --average to "
                     "replace each MoE layer by the mean of its experts (reports the accuracy this costs on the "
                     "run's evaluation split)");
  }
  std::cout << "loading " << ckpt.string() << " (model from " << config_file << ")\n";
  const auto ex = vision2d::export_checkpoint(*cfg, ckpt.string(), a.out, a.options);
  std::cout << "checkpoint at step " << ex.step << ": " << ex.params_train << " parameters\n";
  print_result(ex.convert, a);
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
  cmd->add_flag("--average", args->options.average,
                "Average the experts of a learned-router model (reports the top-1 this costs on the run's "
                "evaluation split; needs the run's config.yaml next to the file or --config)");
  cmd->add_option("--probe-batch", args->options.probe_batch, "Random images used to verify the collapse")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tolerance", args->options.tolerance, "Fail when max |MoE - dense| on the probe exceeds this")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", args->options.seed, "Seed of the probe batch");
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
