// `ewa convert` for Point Transformers: RUP/EWA MoE linears collapse to their expert means
// (verified on seeded probe clouds), a learned router's experts are averaged on request (the
// metric this costs is measured on the run's evaluation split), and a trainer checkpoint is
// exported with the metadata of the training's model.safetensors.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>

#include "ewa/core/checkpoint.h"
#include "ewa/core/model_io.h"
#include "ewa/core/router.h"
#include "ewa/core/trainer.h"
#include "ewa/pointcloud/cls_task.h"
#include "ewa/pointcloud/pipeline.h"
#include "ewa/pointcloud/seg_task.h"

namespace fs = std::filesystem;

namespace ewa::pointcloud {
namespace {

// Two seeded random clouds (coordinates in a 4 m cube, normal features), each large enough
// that every stage keeps at least nsample points after its strides.
struct Probe {
  torch::Tensor coord, feat, offset;
};
Probe make_probe(const PointTransformerOptions& o, const PointConvertOptions& options) {
  int64_t per_cloud = std::max<int64_t>(options.probe_points / 2, 1), keep = 1;
  for (size_t i = 0; i < o.stride().size(); ++i) {
    keep *= std::max<int64_t>(o.stride()[i], 1);
    per_cloud = std::max(per_cloud, keep * o.nsample()[i]);
  }
  torch::manual_seed(options.seed);
  Probe p;
  p.coord = torch::rand({2 * per_cloud, 3}) * 4.0;
  p.feat = torch::randn({2 * per_cloud, o.in_channels()});
  p.offset = torch::tensor({per_cloud, 2 * per_cloud}, torch::kLong);
  return p;
}

torch::Tensor probe_logits(PointTransformer& net, const Probe& p) {
  torch::NoGradGuard no_grad;
  return net->forward(p.coord, p.feat, p.offset).to(torch::kFloat);
}

template <class Config>
PointCheckpointExport export_checkpoint_impl(const Config& cfg, const std::string& checkpoint, const std::string& out,
                                             const PointConvertOptions& options, const PointEvalFn& evaluate,
                                             const std::function<std::map<std::string, std::string>()>& metadata) {
  PointCheckpointExport ex;
  PointTransformer net(cfg.model().pt());
  ex.step = load_checkpoint(checkpoint, *net, nullptr).step;  // verifies the file first
  ex.params_train = count_parameters(*net);
  ex.convert = convert_point_model(net, options, evaluate);
  ex.params = count_parameters(*net);
  const auto md = metadata();
  if (!out.empty() && fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
  save_point_model(net, out, md);
  return ex;
}

}  // namespace

PointEvalFn segmentation_eval_fn(const SemSegConfig& cfg) {
  auto splits = std::make_shared<std::optional<SegSplits>>();
  return [cfg, splits](PointTransformer& net) {
    if (!*splits) *splits = make_seg_splits(cfg.data(), cfg.data().test_area());
    net->to(resolve_device(cfg.run().device()));
    const auto& e = cfg.eval();
    const auto ev = evaluate_scenes((*splits)->val, model_logits_fn(net), inference_options(cfg, e.mode(), e.tta()),
                                    static_cast<int64_t>(cfg.data().class_names().size()));
    return PointEvaluation{"val", "mIoU", static_cast<int64_t>(ev.scenes.size()), ev.metrics.miou};
  };
}

PointEvalFn classification_eval_fn(const PointClsConfig& cfg) {
  auto shapes = std::make_shared<std::optional<std::pair<ShapeSet, ShapeSet>>>();
  return [cfg, shapes](PointTransformer& net) {
    if (!*shapes) {
      *shapes = std::make_pair(load_shapes(cfg.data(), cfg.data().train_split()),
                               load_shapes(cfg.data(), cfg.data().val_split()));
    }
    net->to(resolve_device(cfg.run().device()));
    ClsTask task(cfg, (*shapes)->first, (*shapes)->second, net);
    const auto ev = task.evaluate_shapes(task.val(), cfg.eval().voting());
    return PointEvaluation{cfg.data().val_split(), "OA", task.val().size(), ev.metrics.oa};
  };
}

PointConvertResult convert_point_model(PointTransformer& net, const PointConvertOptions& options,
                                       const PointEvalFn& evaluate) {
  PointConvertResult r;
  net->to(torch::kCPU);
  net->eval();
  r.moe_layers = net->num_moe_layers();
  if (r.moe_layers == 0) return r;
  const auto& moe = net->options().moe();
  r.router = moe.router().name();
  r.num_experts = moe.num_experts();
  if (!routes_at_eval(*net)) {
    const Probe probe = make_probe(net->options(), options);
    r.probe_points = probe.coord.size(0);
    const torch::Tensor before = probe_logits(net, probe);  // the RUP eval forward: the mean expert
    net->collapse_to_dense();
    r.max_abs_diff = (probe_logits(net, probe) - before).abs().max().item<double>();
    if (!(r.max_abs_diff <= options.tolerance)) {
      throw std::runtime_error("convert: collapse verification failed: max |diff| " + std::to_string(r.max_abs_diff) +
                               " > tolerance " + std::to_string(options.tolerance));
    }
    return r;
  }
  if (!options.average) {
    throw std::invalid_argument("convert: the MoE linears route with the learned router '" + r.router +
                                "': the model is served as the routed MoE it was trained as (ewa eval / segment "
                                "run it); pass --average to replace each MoE linear by the mean of its experts (the "
                                "metric this costs on the run's evaluation split is reported)");
  }
  if (!evaluate) {
    throw std::invalid_argument("convert --average: the run's config is needed to measure the metric averaging "
                                "costs (pass --config RUN/config.yaml)");
  }
  r.routed = evaluate(net);
  net->collapse_to_dense();
  r.averaged = evaluate(net);
  r.averaged_learned = true;
  net->to(torch::kCPU);
  net->eval();
  return r;
}

PointCheckpointExport export_point_checkpoint(const SemSegConfig& cfg, const std::string& checkpoint,
                                              const std::string& out, const PointConvertOptions& options) {
  return export_checkpoint_impl(cfg, checkpoint, out, options, segmentation_eval_fn(cfg),
                                [&] { return segmentation_metadata(cfg); });
}

PointCheckpointExport export_point_checkpoint(const PointClsConfig& cfg, const std::string& checkpoint,
                                              const std::string& out, const PointConvertOptions& options) {
  return export_checkpoint_impl(cfg, checkpoint, out, options, classification_eval_fn(cfg), [&] {
    std::vector<std::string> names = cfg.data().class_names();
    if (names.empty()) {
      try {
        names = load_shapes(cfg.data(), cfg.data().train_split()).class_names;
      } catch (const std::exception& e) {
        spdlog::warn("class names not stored in {} (the run's dataset is not readable here: {})", out, e.what());
      }
    }
    return classification_metadata(cfg, names);
  });
}

}  // namespace ewa::pointcloud
