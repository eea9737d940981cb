// Option structs of the core (ViT, MoE placement and router, EWA share rate, run settings).
// Field names equal the YAML keys; `visit` lists them for the config reader/writer.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ewa {

/// Vision Transformer hyper-parameters (timm option surface; Dosovitskiy et al. 2021).
struct VisionTransformerOptions {
  TORCH_ARG(int64_t, img_size) = 224;
  TORCH_ARG(int64_t, patch_size) = 16;
  TORCH_ARG(int64_t, in_chans) = 3;
  TORCH_ARG(int64_t, num_classes) = 1000;
  TORCH_ARG(int64_t, embed_dim) = 768;
  TORCH_ARG(int64_t, depth) = 12;
  TORCH_ARG(int64_t, num_heads) = 12;
  TORCH_ARG(double, mlp_ratio) = 4.0;
  TORCH_ARG(bool, qkv_bias) = true;
  /// "token" (class token) or "avg" (mean of patch tokens).
  TORCH_ARG(std::string, global_pool) = "token";
  /// Prepend a class token (timm default, also with avg pooling); false requires "avg".
  TORCH_ARG(bool, class_token) = true;
  TORCH_ARG(double, drop_rate) = 0.0;
  TORCH_ARG(double, attn_drop_rate) = 0.0;
  TORCH_ARG(double, drop_path_rate) = 0.0;
  /// LayerScale initial value; 0 disables LayerScale.
  TORCH_ARG(double, init_values) = 0.0;
  /// "trunc_normal" (timm default, std 0.02) or "xavier" (jax/original ViT).
  TORCH_ARG(std::string, weight_init) = "trunc_normal";

 public:
  template <class A>
  void visit(A& a) {
    a("img_size", img_size())("patch_size", patch_size())("in_chans", in_chans());
    a("num_classes", num_classes())("embed_dim", embed_dim())("depth", depth());
    a("num_heads", num_heads())("mlp_ratio", mlp_ratio())("qkv_bias", qkv_bias());
    a.one_of("global_pool", global_pool(), {"token", "avg"});
    a("class_token", class_token());
    a("drop_rate", drop_rate())("attn_drop_rate", attn_drop_rate())("drop_path_rate", drop_path_rate());
    a("init_values", init_values());
    a.one_of("weight_init", weight_init(), {"trunc_normal", "xavier"});
    a.require(img_size() > 0 && patch_size() > 0 && img_size() % patch_size() == 0, "patch_size",
              "a positive divisor of img_size (" + std::to_string(img_size()) + ")");
    a.require(embed_dim() > 0 && num_heads() > 0 && embed_dim() % num_heads() == 0, "num_heads",
              "a positive divisor of embed_dim (" + std::to_string(embed_dim()) + ")");
    a.require(depth() >= 1, "depth", "an integer >= 1");
    a.require(in_chans() >= 1, "in_chans", "an integer >= 1");
    a.require(num_classes() >= 0, "num_classes", "an integer >= 0 (0 = no head)");
    a.require(mlp_ratio() > 0, "mlp_ratio", "a number > 0");
    a.require(class_token() || global_pool() == "avg", "class_token",
              "true when global_pool is \"token\" (token pooling needs the class token)");
    for (auto [k, v] : {std::pair{"drop_rate", drop_rate()}, std::pair{"attn_drop_rate", attn_drop_rate()},
                        std::pair{"drop_path_rate", drop_path_rate()}}) {
      a.require(v >= 0 && v < 1, k, "a probability in [0, 1)");
    }
  }
};

/// Router settings of an MoE layer (arXiv 2401.15969 unified formulation; Mobile V-MoE).
struct RouterOptions {
  /// rup | softmax_token_choice | sinkhorn_token_choice | softmax_expert_choice |
  /// sinkhorn_expert_choice | sparsity_constrained_expert_choice | soft_moe | per_image
  /// Eval: rup runs the averaged expert; every other router keeps routing (no noise,
  /// same capacity rule). Details in routers.h.
  TORCH_ARG(std::string, name) = "rup";
  TORCH_ARG(int64_t, k) = 1;                     ///< experts per token (token choice) / image (per_image)
  /// Token choice: C = ceil(k*T*cf/E) (0 = dropless); expert choice: C = ceil(T*cf/E) (> 0)
  TORCH_ARG(double, capacity_factor) = 1.0;
  TORCH_ARG(int64_t, capacity_multiple) = 4;     ///< capacity rounded up to a multiple of this
  TORCH_ARG(bool, batch_prioritized) = true;     ///< BPR: larger top gate first
  /// Router noise N(0, (noise_std / E)^2) on the logits in training (V-MoE scales it by 1/E);
  /// -1 = the router's reference default (1 for the softmax / Sinkhorn token- and expert-choice
  /// routers, 0 for sparsity_constrained_expert_choice, soft_moe and per_image); 0 = off.
  TORCH_ARG(double, noise_std) = -1.0;
  TORCH_ARG(int64_t, iterations) = 20;           ///< Sinkhorn / sparse-OT solver iterations (vmoe: 20)
  /// Sinkhorn entropy weight / sparse-OT quadratic weight gamma (vmoe: 1)
  TORCH_ARG(double, epsilon) = 1.0;
  /// Routing groups: the B*T tokens are split into groups of this many tokens, each routed
  /// independently (V-MoE / vmoe group_size; must divide B*T); 0 = one group per batch.
  TORCH_ARG(int64_t, group_size) = 0;
  TORCH_ARG(int64_t, slots_per_expert) = 1;      ///< Soft MoE
  TORCH_ARG(std::string, image_token) = "cls";   ///< per_image: "cls" or "mean"
  TORCH_ARG(std::string, superclass_file) = "";  ///< per_image: class -> super-class file
  TORCH_ARG(double, superclass_weight) = 0.3;    ///< per_image: lambda of the auxiliary CE
  /// Weight of the importance (CV^2) loss; -1 = reference default (0.005 for
  /// softmax_token_choice as in the V-MoE configs, 0 for the others)
  TORCH_ARG(double, importance_loss) = -1.0;
  /// Weight of the load (CV^2) loss; -1 = reference default (as importance_loss)
  TORCH_ARG(double, load_loss) = -1.0;
  TORCH_ARG(double, z_loss) = 0.0;               ///< weight of the router z-loss

 public:
  static const std::vector<std::string>& known_names() {
    static const std::vector<std::string> names = {
        "rup", "softmax_token_choice", "sinkhorn_token_choice", "softmax_expert_choice",
        "sinkhorn_expert_choice", "sparsity_constrained_expert_choice", "soft_moe", "per_image"};
    return names;
  }
  template <class A>
  void visit(A& a) {
    a.one_of("name", name(), known_names());
    a("k", k())("capacity_factor", capacity_factor())("capacity_multiple", capacity_multiple());
    a("batch_prioritized", batch_prioritized())("noise_std", noise_std());
    a("iterations", iterations())("epsilon", epsilon())("group_size", group_size());
    a("slots_per_expert", slots_per_expert());
    a.one_of("image_token", image_token(), {"cls", "mean"});
    a("superclass_file", superclass_file())("superclass_weight", superclass_weight());
    a("importance_loss", importance_loss())("load_loss", load_loss())("z_loss", z_loss());
    a.require(k() >= 1, "k", "an integer >= 1");
    a.require(capacity_factor() >= 0, "capacity_factor", "a number >= 0 (0 = dropless)");
    a.require(capacity_multiple() >= 1, "capacity_multiple", "an integer >= 1");
    a.require(iterations() >= 1, "iterations", "an integer >= 1");
    a.require(epsilon() > 0, "epsilon", "a number > 0");
    a.require(slots_per_expert() >= 1, "slots_per_expert", "an integer >= 1");
    a.require(noise_std() >= 0 || noise_std() == -1, "noise_std", "a number >= 0 (0 = no noise; -1 = default)");
    a.require(group_size() >= 0, "group_size", "an integer >= 0 (0 = the whole batch is one group)");
    for (auto [key, w] : {std::pair{"importance_loss", importance_loss()}, std::pair{"load_loss", load_loss()}}) {
      a.require(w >= 0 || w == -1, key, "a weight >= 0 (0 = off; -1 = the router's reference default)");
    }
    for (auto [key, w] : {std::pair{"z_loss", z_loss()}, std::pair{"superclass_weight", superclass_weight()}}) {
      a.require(w >= 0, key, "a weight >= 0 (0 = off)");
    }
    a.require(load_loss() <= 0 || noise_std() != 0, "load_loss",
              "0 unless noise_std > 0 (the load is the probability of selection under router noise)");
    a.require(capacity_factor() > 0 || name().find("expert_choice") == std::string::npos, "capacity_factor",
              "a number > 0 for expert-choice routers (no dropless mode)");
  }
};

/// Which FFNs become Mixture-of-Experts layers, how many experts, how they start.
struct MoEOptions {
  TORCH_ARG(bool, enabled) = false;
  TORCH_ARG(int64_t, num_experts) = 4;
  /// V-MoE "Every n": blocks n-1, 2n-1, ... become MoE (0 = off; -1 = unset: 2 unless
  /// `last` or `blocks` is set). Mutually exclusive with `last`.
  TORCH_ARG(int64_t, every) = -1;
  /// V-MoE "Last n": the last n blocks become MoE (0 = off). Mutually exclusive with `every`.
  TORCH_ARG(int64_t, last) = 0;
  /// Explicit block indices (overrides every/last when non-empty).
  TORCH_ARG(std::vector<int64_t>, blocks) = {};
  /// "copy": experts start as copies of one FFN; "independent": each initialised anew.
  TORCH_ARG(std::string, init) = "copy";
  TORCH_ARG(RouterOptions, router) = {};

 public:
  template <class A>
  void visit(A& a) {
    a("enabled", enabled())("num_experts", num_experts())("every", every())("last", last());
    a("blocks", blocks());
    a.one_of("init", init(), {"copy", "independent"});
    a("router", router());
    a.require(num_experts() >= 1, "num_experts", "an integer >= 1");
    a.require(every() >= -1, "every", "an integer >= 1 (0 = off; unset = 2 unless last or blocks is set)");
    a.require(every() <= 0 || last() == 0, "last",
              "0 when every is set: moe.every (every n-th block) and moe.last (the last n blocks) are mutually "
              "exclusive placements, set one of them (or list moe.blocks)");
    a.require(last() >= 0, "last", "an integer >= 0 (0 = off)");
  }
};

/// Experts Weights Averaging (arXiv 2308.06093): share rate beta and its schedule.
struct EwaOptions {
  TORCH_ARG(bool, enabled) = false;
  TORCH_ARG(double, share_rate) = 0.3;           ///< b_max
  /// constant | linear (0 -> b_max over warmup_steps) | cosine (cosine ramp over warmup_steps)
  TORCH_ARG(std::string, schedule) = "constant";
  TORCH_ARG(int64_t, warmup_steps) = 0;
  TORCH_ARG(int64_t, every_n_steps) = 1;         ///< apply after every n-th optimizer step
  /// Early EWA (the paper's variant that averages only at the start): share rate 0 after this
  /// many optimizer steps (0 = never ends).
  TORCH_ARG(int64_t, end_step) = 0;

 public:
  template <class A>
  void visit(A& a) {
    a("enabled", enabled())("share_rate", share_rate());
    a.one_of("schedule", schedule(), {"constant", "linear", "cosine"});
    a("warmup_steps", warmup_steps())("every_n_steps", every_n_steps())("end_step", end_step());
    a.require(end_step() >= 0, "end_step", "an integer >= 0 (0 = EWA until the end)");
    a.require(end_step() == 0 || end_step() > warmup_steps(), "end_step",
              "0 or a step after warmup_steps (" + std::to_string(warmup_steps()) + ")");
    a.require(share_rate() >= 0 && share_rate() <= 1, "share_rate", "a number in [0, 1]");
    a.require(warmup_steps() >= 0, "warmup_steps", "an integer >= 0");
    a.require(every_n_steps() >= 1, "every_n_steps", "an integer >= 1");
  }
};

/// Settings of one run: where it writes, seed, threads, device.
struct RunOptions {
  TORCH_ARG(std::string, name) = "run";
  TORCH_ARG(std::string, output_dir) = "runs";
  TORCH_ARG(int64_t, seed) = 0;
  TORCH_ARG(int64_t, threads) = 0;          ///< 0 = all cores
  TORCH_ARG(std::string, device) = "auto";  ///< auto | cpu | cuda | cuda:N

 public:
  template <class A>
  void visit(A& a) {
    a("name", name())("output_dir", output_dir())("seed", seed())("threads", threads());
    a("device", device());
    a.require(threads() >= 0, "threads", "an integer >= 0 (0 = all cores)");
    a.require(device() == "auto" || device() == "cpu" || device().rfind("cuda", 0) == 0, "device",
              "auto, cpu, cuda or cuda:N");
  }
};

}  // namespace ewa
