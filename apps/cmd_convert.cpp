// `ewa convert MODEL --out FILE`: load an ewa model (safetensors), collapse its MoE layers
// into the dense ViT, verify on a probe batch, export with timm parameter names.
#include <torch/torch.h>

#include <iostream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "ewa/core/collapse.h"
#include "ewa/core/model_io.h"

namespace ewa::app {

void add_convert_command(CLI::App& app, GlobalOptions& global) {
  struct Args {
    std::string model, out;
    int64_t probe_batch = 4;
    double tolerance = 1e-4;
    uint64_t seed = 0;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "convert", "Collapse an MoE-ViT (expert means) into the dense ViT, verify, export safetensors (timm names)");
  cmd->add_option("model", args->model, "Model file written by ewa (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", args->out, "Output .safetensors file (dense ViT)")->required();
  cmd->add_option("--probe-batch", args->probe_batch, "Random images used to verify the collapse")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tolerance", args->tolerance, "Fail when max |MoE - dense| on the probe exceeds this")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", args->seed, "Seed of the probe batch");
  cmd->callback([&global, args] {
    apply_global_options(global);
    VisionTransformer model = load_model(args->model);
    const auto& o = model->options();
    const auto moe = model->moe_blocks();
    std::cout << "loaded " << args->model << ": ViT depth " << o.depth() << ", embed_dim " << o.embed_dim() << ", "
              << (moe.empty() ? std::string("dense") : std::to_string(moe.size()) + " MoE layers") << "\n";
    if (moe.empty()) {
      std::cout << "model is dense: nothing to collapse\n";
    } else {
      torch::manual_seed(args->seed);
      auto probe = torch::randn({args->probe_batch, o.in_chans(), o.img_size(), o.img_size()},
                                model->pos_embed.options().requires_grad(false));
      CollapseReport report = collapse_to_dense(model, probe);
      std::ostringstream blocks;
      for (size_t i = 0; i < report.blocks.size(); ++i) blocks << (i ? ", " : "") << report.blocks[i];
      std::cout << "collapsed " << report.blocks.size() << " MoE layers (blocks " << blocks.str() << ", "
                << report.num_experts << " experts each) into dense FFNs\n"
                << "verify: max |MoE eval output - dense output| = " << report.max_abs_diff << " on a probe batch of "
                << args->probe_batch << "\n";
      if (!(report.max_abs_diff <= args->tolerance)) {
        throw std::runtime_error("collapse verification failed: max |diff| " + std::to_string(report.max_abs_diff) +
                                 " > tolerance " + std::to_string(args->tolerance) +
                                 " (the MoE's eval forward is not the averaged expert: a learned router?)");
      }
    }
    save_model(model, args->out);
    int64_t params = 0;
    for (const auto& p : model->parameters()) params += p.numel();
    std::cout << "wrote " << args->out << " (dense ViT, " << model_tensors(model).size() << " tensors, " << params
              << " parameters, timm names)\n";
  });
}

}  // namespace ewa::app
