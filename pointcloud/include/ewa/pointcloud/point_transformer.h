// Point Transformer v1 (Zhao, Jiang, Jia, Torr, Koltun, "Point Transformer", ICCV 2021):
// vector self-attention over kNN neighbourhoods, transition down/up, segmentation and
// classification heads; the pointwise linear layers of the bottleneck blocks can train as RUP
// MoE layers with EWA (arXiv 2308.06093) and collapse to the dense network afterwards.
// API contract shared by the model (point_transformer.cpp) and the 3D pipelines.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ewa/core/moe.h"
#include "ewa/core/options.h"
#include "ewa/core/router.h"

namespace ewa::pointcloud {

/// E bias-free linear experts (in -> out) stacked as one tensor, registered as `weight`
/// [E, in, out] (expert e computes x @ weight[e]; a dense nn.Linear weight is weight[e]^T).
/// An ewa::ExpertBankImpl: the core's MoELayer runs it, apply_ewa_() averages `weight`,
/// collapse replaces the layer by mean_module() (a bias-free nn::Linear).
class PointExpertsImpl : public ewa::ExpertBankImpl {
 public:
  PointExpertsImpl(int64_t num_experts, int64_t in_features, int64_t out_features);
  /// xs [E, C, in] -> [E, C, out] (one bmm).
  torch::Tensor forward(const torch::Tensor& xs) override;
  /// Expert e alone: x [n, in] -> [n, out] (one mm; the ragged path of execute_plan).
  torch::Tensor forward_expert(int64_t e, const torch::Tensor& x) override;
  /// The mean expert on x [..., in] -> [..., out]: exactly the computation of the dense
  /// nn.Linear (no bias) holding mean_dense() (bit-identical outputs).
  torch::Tensor forward_mean(const torch::Tensor& x) override;
  /// {weight}.
  std::vector<torch::Tensor> expert_tensors() override { return {weight}; }
  /// A bias-free nn::Linear holding mean_dense() (built without drawing random numbers).
  std::shared_ptr<torch::nn::Module> mean_module() const override;
  /// Every expert becomes a copy of the dense Linear weight [out, in].
  void copy_from_dense(const torch::Tensor& dense_weight);
  /// Mean expert in Linear layout [out, in] (detached, contiguous).
  torch::Tensor mean_dense() const;
  /// Each expert drawn anew with nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in)).
  void reset_parameters();
  int64_t num_experts() const override { return weight.size(0); }
  int64_t in_features() const override { return weight.size(1); }
  int64_t out_features() const override { return weight.size(2); }

  torch::Tensor weight;  ///< [E, in, out]
};
TORCH_MODULE(PointExperts);

/// A bias-free pointwise linear layer as an MoE: the core's MoELayer (children "router" and
/// "experts") with PointExperts. The N points of the whole batch are the tokens, routed as one
/// sequence [1, N, in]; RUP splits them uniformly at random among the experts. In eval mode
/// with RUP it runs the mean expert, exactly like the collapsed model; learned routers keep
/// routing (points they drop get output 0). Forward: x [N, in] -> [N, out].
class PointMoELinear : public torch::nn::ModuleHolder<ewa::MoELayerImpl> {
 public:
  PointMoELinear(std::nullptr_t) : ModuleHolder(nullptr) {}  // NOLINT(google-explicit-constructor)
  PointMoELinear(std::shared_ptr<ewa::MoELayerImpl> layer) : ModuleHolder(std::move(layer)) {}  // NOLINT
  /// Router from make_router(router, in_features, num_experts). The "per_image" router is
  /// rejected (it routes whole images; here the tokens are the points of a whole batch).
  /// `init_weight` [out, in] (a dense Linear weight): every expert starts as a copy of it and
  /// building the experts draws no random numbers; undefined: independent nn.Linear inits.
  PointMoELinear(int64_t in_features, int64_t out_features, int64_t num_experts, const RouterOptions& router = {},
                 const torch::Tensor& init_weight = {});
  /// The linear experts.
  PointExpertsImpl& linear_experts() const { return get()->bank<PointExpertsImpl>(); }
};

namespace detail {
class TransitionDownImpl;
class TransitionUpImpl;
class PointTransformerBlockImpl;
}  // namespace detail

/// Which bottleneck linears become MoE and with how many experts. Field names = YAML keys.
struct PointMoEOptions {
  TORCH_ARG(bool, enabled) = false;
  TORCH_ARG(int64_t, num_experts) = 4;
  /// Encoder stages (0..4) whose bottleneck blocks get MoE linears; empty = all stages.
  TORCH_ARG(std::vector<int64_t>, stages) = {3, 4};
  /// Which pointwise linears of a bottleneck block: "both" (linear1 and linear3) | "linear1" | "linear3".
  TORCH_ARG(std::string, layers) = "both";
  TORCH_ARG(std::string, init) = "copy";  ///< copy | independent
  TORCH_ARG(RouterOptions, router) = {};

 public:
  template <class A>
  void visit(A& a) {
    a("enabled", enabled())("num_experts", num_experts())("stages", stages());
    a.one_of("layers", layers(), {"both", "linear1", "linear3"});
    a.one_of("init", init(), {"copy", "independent"});
    a("router", router());
    a.require(num_experts() >= 1, "num_experts", "an integer >= 1");
  }
};

/// Point Transformer options. Field names = YAML keys (`model.pt` in the 3D configs).
struct PointTransformerOptions {
  /// seg50 [1,2,3,5,2] | seg38 [1,2,2,2,2] | seg26 [1,1,1,1,1] | custom (use `blocks`).
  TORCH_ARG(std::string, variant) = "seg50";
  TORCH_ARG(std::vector<int64_t>, blocks) = {};           ///< per-stage block counts (custom)
  TORCH_ARG(std::vector<int64_t>, channels) = {32, 64, 128, 256, 512};
  TORCH_ARG(std::vector<int64_t>, nsample) = {8, 16, 16, 16, 16};
  TORCH_ARG(std::vector<int64_t>, stride) = {1, 4, 4, 4, 4};
  TORCH_ARG(int64_t, share_planes) = 8;
  TORCH_ARG(int64_t, in_channels) = 6;   ///< input feature channels (e.g. xyz + rgb)
  TORCH_ARG(int64_t, num_classes) = 13;
  TORCH_ARG(std::string, head) = "seg";  ///< seg (per point) | cls (per cloud)
  TORCH_ARG(double, dropout) = 0.5;      ///< classification head dropout
  TORCH_ARG(PointMoEOptions, moe) = {};

 public:
  template <class A>
  void visit(A& a) {
    a.one_of("variant", variant(), {"seg50", "seg38", "seg26", "custom"});
    a("blocks", blocks())("channels", channels())("nsample", nsample())("stride", stride());
    a("share_planes", share_planes())("in_channels", in_channels())("num_classes", num_classes());
    a.one_of("head", head(), {"seg", "cls"});
    a("dropout", dropout())("moe", moe());
    a.require(variant() != "custom" || blocks().size() == channels().size(), "blocks",
              "one block count per stage (as many as `channels`) when variant is custom");
    a.require(channels().size() == nsample().size() && channels().size() == stride().size(),
              "channels", "as many stages as `nsample` and `stride`");
    a.require(in_channels() >= 0 && num_classes() >= 1, "num_classes", "an integer >= 1");
  }
  /// Block counts of the variant (or `blocks` for custom).
  std::vector<int64_t> resolved_blocks() const;
};

/// The network. Inputs: coord [N,3] float32, feat [N,in_channels] float32, offset [B] int64
/// cumulative point counts (see ops.h).
class PointTransformerImpl : public torch::nn::Module {
 public:
  explicit PointTransformerImpl(PointTransformerOptions options);
  /// seg head: logits [N, num_classes]; cls head: logits [B, num_classes].
  torch::Tensor forward(const torch::Tensor& coord, const torch::Tensor& feat,
                        const torch::Tensor& offset);
  /// Sum of the routers' auxiliary losses of the last forward ([] float; 0 without MoE or
  /// with RUP).
  torch::Tensor aux_loss() const;
  /// Expert load of each MoE linear in the last training forward (fractions per expert),
  /// keyed by module path, e.g. {"enc4.1.linear1": {0.25, ...}} (reference-implementation
  /// names: enc<stage>.<index in the stage, 0 = transition down>.linear1|linear3).
  std::map<std::string, std::vector<double>> routing_stats() const;
  /// Replaces every MoE linear by the dense linear with the mean expert weights (in place).
  /// Returns the number of layers collapsed. Afterwards the module has exactly the dense
  /// network's parameters and names.
  int64_t collapse_to_dense();
  /// Number of MoE linears currently in the model.
  int64_t num_moe_layers() const;
  const PointTransformerOptions& options() const { return options_; }

  /// Dtype conversions as in PyTorch: floating parameters and buffers change dtype, integer
  /// buffers (BatchNorm num_batches_tracked) stay int64 (LibTorch's Module::to casts them too).
  using torch::nn::Module::to;
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;

 private:
  PointTransformerOptions options_;
  // Encoder stage i: enc<i+1> = [TransitionDown, blocks...]; decoder (seg head) dec<i+1> =
  // [TransitionUp, one block]; head "cls". Names follow the reference implementation.
  std::vector<std::shared_ptr<detail::TransitionDownImpl>> down_;
  std::vector<std::vector<std::shared_ptr<detail::PointTransformerBlockImpl>>> enc_blocks_;
  std::vector<std::shared_ptr<detail::TransitionUpImpl>> up_;
  std::vector<std::vector<std::shared_ptr<detail::PointTransformerBlockImpl>>> dec_blocks_;
  torch::nn::Sequential head_{nullptr};
};
TORCH_MODULE(PointTransformer);

/// Metadata key of the options YAML in a saved Point Transformer.
constexpr const char* kMetaPointTransformer = "ewa.pt";

/// Parameters and buffers by module path (reference-implementation names, e.g.
/// enc2.1.transformer2.linear_q.weight, enc4.1.linear1.experts.weight [E, in, out] for an MoE
/// linear), detached, on the model's device.
std::map<std::string, torch::Tensor> point_model_tensors(const PointTransformer& model);

/// Copies `tensors` into `model` (strict: same names and shapes, nothing left over; dtype
/// converted). Throws std::runtime_error naming `source` with missing / unexpected /
/// mis-shaped names.
void load_point_weights(PointTransformer& model, const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& source);

/// Writes the model (dense or MoE) as safetensors; the options go into the metadata (key
/// "ewa.pt", YAML) together with `extra_metadata` (e.g. class names, label map, feature spec).
void save_point_model(PointTransformer& model, const std::string& path,
                      const std::map<std::string, std::string>& extra_metadata = {});
/// Rebuilds and loads a model written by save_point_model; fills `metadata` when given.
/// Clear error naming the file when it is not such a model.
PointTransformer load_point_model(const std::string& path,
                                  std::map<std::string, std::string>* metadata = nullptr);

/// Loads the dense Point Transformer file `path` (project names, written by save_point_model)
/// into `model`, upcycling: the experts of every MoE linear become copies of the file's dense
/// linear of the same name (`encS.B.linear1.weight` -> `encS.B.linear1.experts.weight`),
/// routers keep their initialisation, every other tensor is copied strictly. Throws
/// std::runtime_error naming the file and the missing / unexpected / mis-shaped tensors.
void load_dense_point_weights(PointTransformer& model, const std::string& path);

/// The network of a run: PointTransformer(options), then, when `init_from` is not empty,
/// load_dense_point_weights(init_from) (EWA fine-tuning of a pretrained dense model).
PointTransformer build_point_model(const PointTransformerOptions& options, const std::string& init_from);

/// Parameter count of the dense network for `options` (ignores MoE).
int64_t dense_parameter_count(const PointTransformerOptions& options);

/// bn(x) for x [R, C] as the model runs its BatchNorm1d layers: for few channels (C < 8) on
/// the CPU through the transposed copy [1, C, R] (same statistics, running averages and
/// gradients up to summation order; LibTorch's kernel is 8-10x slower on [R, 3]), else bn(x).
torch::Tensor batch_norm_rows(torch::nn::BatchNorm1dImpl& bn, const torch::Tensor& x);

}  // namespace ewa::pointcloud
