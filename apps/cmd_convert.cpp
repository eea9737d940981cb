// `ewa convert MODEL --out FILE`: collapse the RUP/EWA MoE layers of a ViT or a Point Transformer
// into the dense network (verified on a probe batch), or with --average the experts of a
// learned-router model (reporting the top-1 / mIoU / OA it costs), and export safetensors (timm
// parameter names for the ViT). MODEL is an ewa model file (.safetensors), a trainer checkpoint
// (.ckpt, e.g. RUN/checkpoints/best.ckpt; the model is built from RUN/config.yaml or --config)
// or a run directory (its checkpoints/last.ckpt).
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
#include "ewa/core/router.h"
#include "ewa/pointcloud/pipeline.h"
#include "ewa/vision2d/pipeline.h"
#include "ewa/vision2d/presets.h"

namespace fs = std::filesystem;

namespace ewa::app {
namespace {

struct ConvertArgs {
  std::string model, out, config, checkpoint = "last";
  std::vector<std::string> set;
  vision2d::ConvertOptions options;
  int64_t probe_points = 4096;
};

pointcloud::PointConvertOptions point_options(const ConvertArgs& a) {
  pointcloud::PointConvertOptions o;
  o.probe_points = a.probe_points;
  o.seed = a.options.seed;
  o.tolerance = a.options.tolerance;
  o.average = a.options.average;
  return o;
}

std::string join_blocks(const std::vector<int64_t>& blocks) {
  std::ostringstream s;
  for (size_t i = 0; i < blocks.size(); ++i) s << (i ? ", " : "") << blocks[i];
  return s.str();
}

// The run's config file: --config, else RUN/config.yaml next to `file` (a checkpoint in
// RUN/checkpoints/ or a model file in RUN/); empty when none is found. `task` gets its task.
std::optional<config::Node> find_run_config(const ConvertArgs& a, const fs::path& file, std::string* config_file,
                                            std::string* task) {
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
  *task = task_of(root, path);
  *config_file = path;
  return root;
}

// The run's image-classification config (see find_run_config); refuses a 3D run's config.
std::optional<vision2d::ImageClassificationConfig> run_config(const ConvertArgs& a, const fs::path& file,
                                                              std::string* config_file) {
  std::string task;
  const auto root = find_run_config(a, file, config_file, &task);
  if (!root) return std::nullopt;
  if (task != "image_classification") {
    throw UsageError("convert: " + *config_file + " is a '" + task + "' run, but " + a.model +
                     " is an image-classification ViT (pass that run's config with --config)");
  }
  return vision2d::decode_config(*root, *config_file);
}

// Why a learned-router model is not converted without --average.
std::string learned_router_refusal(const std::string& what, const std::string& router) {
  return "convert: " + what + " routes its MoE layers with the learned router '" + router +
         "': it is served as the routed MoE it was trained as (ewa eval / classify / segment run it); pass "
         "--average to replace each MoE layer by the mean of its experts (reports the accuracy this costs on the "
         "run's evaluation split)";
}

// Runs the one collapse path, mapping "learned router without --average" to a usage error.
vision2d::ConvertResult convert_or_usage(VisionTransformer& model, const ConvertArgs& a,
                                         const vision2d::ImageClassificationConfig* cfg) {
  if (routes_at_eval(*model) && !a.options.average) {
    throw UsageError(learned_router_refusal(
        a.model, model->moe_options() ? model->moe_options()->router().name() : std::string("?")));
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

// ---------------------------------------------------------------------------- Point Transformer

void print_point_result(const pointcloud::PointConvertResult& r) {
  if (r.moe_layers == 0) {
    std::cout << "model is dense: nothing to collapse\n";
    return;
  }
  std::cout << (r.averaged_learned ? "averaged " : "collapsed ") << r.moe_layers << " MoE linears ("
            << r.num_experts << " experts each) into dense linears (router " << r.router << ")\n";
  if (r.averaged_learned) {
    const auto& b = r.routed;
    std::cout << std::fixed << std::setprecision(2) << "accuracy cost on " << b.split << " (" << b.items << " "
              << (b.metric == "mIoU" ? "scenes" : "shapes") << "): " << b.metric << " " << 100.0 * b.value
              << "% routed MoE -> " << 100.0 * r.averaged.value << "% averaged experts (" << std::showpos
              << 100.0 * (r.averaged.value - b.value) << std::noshowpos << " points)\n"
              << std::defaultfloat;
  } else {
    std::cout << "verify: max |MoE eval output - dense output| = " << r.max_abs_diff << " on 2 probe clouds ("
              << r.probe_points << " points)\n";
  }
}

// The evaluation of a 3D run's config (task semantic_segmentation or point_classification).
pointcloud::PointEvalFn point_eval_fn(const config::Node& root, const std::string& file, const std::string& task) {
  if (task == "semantic_segmentation") {
    return pointcloud::segmentation_eval_fn(config::decode<pointcloud::SemSegConfig>(root, file));
  }
  if (task == "point_classification") {
    return pointcloud::classification_eval_fn(config::decode<pointcloud::PointClsConfig>(root, file));
  }
  throw UsageError("convert: " + file + " is a '" + task + "' run, but the model is a Point Transformer (pass that "
                   "run's config with --config)");
}

// A Point Transformer model file (ewa.pt metadata): its metadata is kept.
void convert_point_file(const ConvertArgs& a) {
  std::map<std::string, std::string> meta;
  pointcloud::PointTransformer net = pointcloud::load_point_model(a.model, &meta);
  const int64_t moe = net->num_moe_layers();
  std::cout << "loaded " << a.model << ": Point Transformer " << net->options().variant() << " ("
            << net->options().head() << " head), "
            << (moe == 0 ? std::string("dense") : std::to_string(moe) + " MoE linears") << "\n";
  const bool learned = routes_at_eval(*net);
  if (learned && !a.options.average) throw UsageError(learned_router_refusal(a.model, net->options().moe().router().name()));
  pointcloud::PointEvalFn evaluate;
  if (learned) {
    std::string config_file, task;
    const auto root = find_run_config(a, a.model, &config_file, &task);
    if (!root) {
      throw UsageError("convert --average: no config.yaml next to " + a.model +
                       ": the run's config is needed to measure the accuracy averaging costs (pass --config)");
    }
    evaluate = point_eval_fn(*root, config_file, task);
  }
  print_point_result(pointcloud::convert_point_model(net, point_options(a), evaluate));
  std::map<std::string, std::string> extra;
  for (const auto& [k, v] : meta) {
    if (k.rfind("ewa.", 0) == 0 && k != pointcloud::kMetaPointTransformer && k != "ewa.version") extra[k] = v;
  }
  if (fs::path(a.out).has_parent_path()) fs::create_directories(fs::path(a.out).parent_path());
  save_point_model(net, a.out, extra);
  std::cout << "wrote " << a.out << " (dense Point Transformer, " << count_parameters(*net) << " parameters)\n";
}

// A trainer checkpoint of a 3D run, the network built from its config.
template <class Config>
void convert_point_checkpoint(const ConvertArgs& a, const std::string& ckpt, const Config& cfg,
                              const std::string& config_file) {
  const auto& moe = cfg.model().pt().moe();
  if (moe.enabled() && moe.router().name() != "rup" && !a.options.average) {
    throw UsageError(learned_router_refusal("the run " + config_file, moe.router().name()));
  }
  std::cout << "loading " << ckpt << " (model from " << config_file << ")\n";
  const auto ex = pointcloud::export_point_checkpoint(cfg, ckpt, a.out, point_options(a));
  std::cout << "checkpoint at step " << ex.step << ": " << ex.params_train << " parameters\n";
  print_point_result(ex.convert);
  std::cout << "wrote " << a.out << " (dense Point Transformer, " << ex.params << " parameters)\n";
}

// ---------------------------------------------------------------------------------------- ViT

void convert_safetensors(const ConvertArgs& a) {
  if (safetensors::read_header(a.model).metadata.count(pointcloud::kMetaPointTransformer)) {
    convert_point_file(a);
    return;
  }
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
  std::cout << "wrote " << a.out << " (dense ViT, " << model_tensors(model).size() << " tensors, "
            << count_parameters(*model)
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
  std::string config_file, task;
  const auto root = find_run_config(a, ckpt, &config_file, &task);
  if (!root) {
    throw UsageError("convert: no config.yaml next to " + ckpt.string() +
                     " (expected RUN/config.yaml for RUN/checkpoints/*.ckpt); pass the run's config with --config");
  }
  if (task == "semantic_segmentation") {
    convert_point_checkpoint(a, ckpt.string(), config::decode<pointcloud::SemSegConfig>(*root, config_file),
                             config_file);
    return;
  }
  if (task == "point_classification") {
    convert_point_checkpoint(a, ckpt.string(), config::decode<pointcloud::PointClsConfig>(*root, config_file),
                             config_file);
    return;
  }
  const auto cfg = vision2d::decode_config(*root, config_file);
  const auto& moe = cfg.model().moe();
  if (moe.enabled() && moe.router().name() != "rup" && !a.options.average) {
    throw UsageError(learned_router_refusal("the run " + config_file, moe.router().name()));
  }
  std::cout << "loading " << ckpt.string() << " (model from " << config_file << ")\n";
  const auto ex = vision2d::export_checkpoint(cfg, ckpt.string(), a.out, a.options);
  std::cout << "checkpoint at step " << ex.step << ": " << ex.params_train << " parameters\n";
  print_result(ex.convert, a);
  std::cout << "wrote " << a.out << " (dense ViT, " << ex.params << " parameters, timm names"
            << (ex.has_class_names ? ", class names" : "") << ")\n";
}

}  // namespace

void add_convert_command(CLI::App& app, GlobalOptions& global) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand(
      "convert",
      "Collapse an MoE ViT or Point Transformer (expert means) into the dense network, verify, export safetensors");
  cmd->add_option("model", args->model,
                  "ewa model (.safetensors), trainer checkpoint (.ckpt) or run directory (its checkpoints/last.ckpt)")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--out", args->out, "Output .safetensors file (the dense network)")->required();
  cmd->add_option("--config", args->config,
                  "The run's config for a checkpoint (default: config.yaml of the checkpoint's run directory)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--checkpoint", args->checkpoint, "last | best, for a run directory")->capture_default_str();
  cmd->add_option("--set", args->set, "Override a key of the run's config: a.b.c=value")->take_all();
  cmd->add_flag("--average", args->options.average,
                "Average the experts of a learned-router model (reports the top-1 / mIoU / OA this costs on "
                "the run's evaluation split; needs the run's config.yaml next to the file or --config)");
  cmd->add_option("--probe-batch", args->options.probe_batch, "Random images used to verify a ViT's collapse")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--probe-points", args->probe_points,
                  "Random points (two clouds) used to verify a Point Transformer's collapse")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tolerance", args->options.tolerance, "Fail when max |MoE - dense| on the probe exceeds this")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", args->options.seed, "Seed of the probe batch / clouds");
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
