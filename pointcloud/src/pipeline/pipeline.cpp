// Train / eval entry points of semantic segmentation and point classification: Trainer fit,
// collapse of the RUP/EWA MoE layers (learned routers stay routed), model export with
// metadata, final evaluation JSON and table.
#include "ewa/pointcloud/pipeline.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "ewa/core/checkpoint.h"
#include "ewa/core/config.h"
#include "ewa/core/model_io.h"
#include "ewa/core/runtime.h"
#include "ewa/core/trainer.h"
#include "ewa/datasets/points/s3dis.h"
#include "ewa/pointcloud/cls_task.h"
#include "ewa/pointcloud/seg_task.h"

namespace fs = std::filesystem;

namespace ewa::pointcloud {

namespace {

std::string fmt_pct(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << 100.0 * v;
  return s.str();
}

std::string json_text(const nlohmann::json& j) { return j.dump(); }

TrainerConfig trainer_config(const RunOptions& run, const TrainOptions& train, const EwaOptions& ewa,
                             const TrainRequest& req, const std::string& run_dir) {
  TrainerConfig tc;
  tc.train = train;
  tc.run = run;
  tc.ewa = ewa;
  tc.run_dir = run_dir;
  tc.config_text = req.config_text;
  tc.resume_command = req.resume_command.empty() ? "ewa train " + req.config_file : req.resume_command;
  if (!req.resume.empty()) tc.train.checkpoint().resume(req.resume);
  if (req.quiet) tc.train.progress(false);
  return tc;
}

/// Runs trainer.fit() and sets result.run_dir. Returns the fit when this process should go on
/// to collapse, export and evaluate (finished, not interrupted, rank 0), else nullopt; a
/// divergence sets result.exit_code = 1 (message logged).
template <class Result>
std::optional<FitResult> fit_for_export(Trainer& trainer, Result& result) {
  FitResult fit;
  try {
    fit = trainer.fit();
  } catch (const DivergenceError& e) {
    spdlog::error("{}", e.what());
    result.exit_code = 1;
    return std::nullopt;
  }
  result.run_dir = trainer.run_dir();
  if (fit.interrupted || !trainer.is_main()) return std::nullopt;
  return fit;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  atomic_write_file(path, j.dump(2) + "\n");
}

/// The weights of `spec` in run_dir: best (falls back to last with a warning), last, model (the
/// run's model.safetensors), or a path.
std::string checkpoint_file(const std::string& run_dir, const std::string& spec) {
  if (spec == "model") {
    const fs::path p = fs::path(run_dir) / "model.safetensors";
    if (!fs::exists(p)) throw std::runtime_error("no model file " + p.string() + " (the run has not finished?)");
    return p.string();
  }
  if (spec == "best" || spec == "last") {
    fs::path p = fs::path(run_dir) / "checkpoints" / (spec + ".ckpt");
    if (spec == "best" && !fs::exists(p)) {
      fs::path last = fs::path(run_dir) / "checkpoints" / "last.ckpt";
      if (fs::exists(last)) {
        spdlog::warn("{} has no best checkpoint (train.checkpoint.metric unset?); using last", run_dir);
        return last.string();
      }
    }
    if (!fs::exists(p)) throw std::runtime_error("no checkpoint " + p.string());
    return p.string();
  }
  return spec;
}

/// Export what was trained: RUP/EWA MoE linears collapse to their expert means (their eval
/// forward is the averaged expert); a learned router's model stays the routed MoE. Returns the
/// number of MoE linears collapsed.
int64_t collapse_for_export(PointTransformer& net) {
  if (routes_at_eval(*net)) {
    spdlog::info("kept {} MoE linears routed by '{}' (a learned router): the model is the routed MoE", net->num_moe_layers(),
                 net->options().moe().router().name());
    return 0;
  }
  const int64_t collapsed = net->collapse_to_dense();
  if (collapsed > 0) spdlog::info("collapsed {} MoE linears into dense linears (expert mean)", collapsed);
  return collapsed;
}

bool is_model_file(const std::string& path) {
  return fs::path(path).extension() == ".safetensors";
}

// ------------------------------------------------------------------------------ segmentation

struct SegRunOutcome {
  int exit_code = 0;
  bool finished = false;  ///< trained to the end and evaluated
  SegMetrics metrics;
  std::string run_dir;
};

SegRunOutcome train_seg_once(const SemSegConfig& cfg, const TrainRequest& req, const std::string& run_dir) {
  SegRunOutcome out;
  seed_everything(static_cast<uint64_t>(cfg.run().seed()));
  const auto& d = cfg.data();
  SegSplits splits = make_seg_splits(d, d.test_area());
  spdlog::info("semantic segmentation: {} training scenes (x{} loop), {} validation scenes, {} classes", splits.train.size(),
               d.loop(), splits.val.size(), d.class_names().size());
  SemSegTask task(cfg, splits);
  spdlog::info("model: Point Transformer {} ({} parameters, {} dense; {} MoE linears)", cfg.model().pt().variant(),
               count_parameters(*task.net()),
               dense_parameter_count(cfg.model().pt()), task.net()->num_moe_layers());
  Trainer trainer(trainer_config(cfg.run(), cfg.train(), cfg.model().ewa(), req, run_dir), task);
  const auto fit = fit_for_export(trainer, out);
  if (!fit) return out;

  auto& net = task.net();
  const int64_t collapsed = collapse_for_export(net);
  const std::string model_path = (fs::path(out.run_dir) / "model.safetensors").string();
  save_point_model(net, model_path, segmentation_metadata(cfg));
  spdlog::info("wrote {}", model_path);

  const auto& e = cfg.eval();
  auto ev = evaluate_scenes(splits.val, model_logits_fn(net), inference_options(cfg, e.mode(), e.tta()),
                            static_cast<int64_t>(d.class_names().size()), 0, cfg.train().progress() && !req.quiet);
  nlohmann::json j;
  j["task"] = "semantic_segmentation";
  j["split"] = "val";
  j["test_area"] = d.test_area();
  j["mode"] = e.mode();
  j["tta"] = e.tta();
  j["model"] = model_path;
  j["collapsed_moe_layers"] = collapsed;
  j["scenes"] = ev.scenes;
  j["seconds"] = ev.seconds;
  j["steps"] = fit->steps;
  j["metrics"] = metrics_json(ev.metrics, d.class_names());
  write_json((fs::path(out.run_dir) / "eval_val.json").string(), j);
  std::cout << "\n" << metrics_table(ev.metrics, d.class_names());
  std::cout << "val (" << ev.scenes.size() << " scenes, " << e.mode() << (e.tta() ? ", TTA" : "")
            << "): mIoU " << fmt_pct(ev.metrics.miou) << "  mAcc " << fmt_pct(ev.metrics.macc) << "  OA "
            << fmt_pct(ev.metrics.oa) << "\nmodel: " << model_path << "\n";
  out.finished = true;
  out.metrics = ev.metrics;
  return out;
}

}  // namespace

std::vector<std::array<int, 3>> class_palette(const std::vector<std::string>& names) {
  static const std::vector<std::array<int, 3>> s3dis = {
      {0, 255, 0},     {0, 0, 255},     {0, 255, 255},  {255, 255, 0},   {255, 0, 255},
      {100, 100, 255}, {200, 200, 100}, {170, 120, 200}, {255, 0, 0},     {200, 100, 100},
      {10, 200, 100},  {200, 200, 200}, {50, 50, 50}};
  static const std::vector<std::array<int, 3>> qual = {
      {190, 180, 160}, {31, 119, 180}, {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
      {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  if (names == datasets::s3dis_class_names()) return s3dis;
  std::vector<std::array<int, 3>> out;
  for (size_t i = 0; i < names.size(); ++i) out.push_back(qual[i % qual.size()]);
  return out;
}

std::map<std::string, std::string> segmentation_metadata(const SemSegConfig& cfg) {
  const auto& d = cfg.data();
  nlohmann::json pal = nlohmann::json::array();
  for (const auto& c : class_palette(d.class_names())) pal.push_back({c[0], c[1], c[2]});
  std::ostringstream g;
  g << std::setprecision(17) << d.grid_size();
  return {{kMetaTask, "semantic_segmentation"},
          {kMetaClasses, json_text(d.class_names())},
          {kMetaPalette, json_text(pal)},
          {kMetaFeatures, json_text(d.features())},
          {kMetaGridSize, g.str()},
          {kMetaLabelField, d.label_field()},
          {kMetaLabelMap, d.label_map()},
          {kMetaEvalMaxPoints, std::to_string(cfg.eval().max_points())}};
}

std::map<std::string, std::string> classification_metadata(const PointClsConfig& cfg,
                                                           const std::vector<std::string>& class_names) {
  std::map<std::string, std::string> md = {{kMetaTask, "point_classification"},
                                           {kMetaFeatures, json_text(cfg.data().features())},
                                           {kMetaNumPoints, std::to_string(cfg.data().num_points())}};
  if (!class_names.empty()) md[kMetaClasses] = json_text(class_names);
  return md;
}

namespace {
/// A finite, non-negative number from model metadata (no "stod" text on garbage).
double seg_meta_number(const std::string& text, const char* key) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end == nullptr || *end != '\0' || !std::isfinite(v) || v < 0) {
    throw std::runtime_error(std::string(key) + " is '" + text.substr(0, 40) + "', expected a finite number >= 0");
  }
  return v;
}
}  // namespace

SegModelInfo parse_segmentation_metadata(const std::map<std::string, std::string>& md, const std::string& source) {
  auto get = [&](const char* key) -> const std::string& {
    auto it = md.find(key);
    if (it == md.end()) {
      throw std::runtime_error(source + ": not a segmentation model written by `ewa train` (metadata '" +
                               std::string(key) + "' missing)");
    }
    return it->second;
  };
  SegModelInfo info;
  try {
    if (md.count(kMetaTask) && md.at(kMetaTask) != "semantic_segmentation") {
      throw std::runtime_error("it is a " + md.at(kMetaTask) + " model, not semantic_segmentation");
    }
    info.class_names = nlohmann::json::parse(get(kMetaClasses)).get<std::vector<std::string>>();
    info.features = nlohmann::json::parse(get(kMetaFeatures)).get<std::vector<std::string>>();
    info.grid_size = seg_meta_number(get(kMetaGridSize), kMetaGridSize);
    for (const auto& c : nlohmann::json::parse(get(kMetaPalette))) info.palette.push_back({c[0], c[1], c[2]});
    if (md.count(kMetaLabelField)) info.label_field = md.at(kMetaLabelField);
    if (md.count(kMetaLabelMap)) info.label_map = md.at(kMetaLabelMap);
    if (md.count(kMetaEvalMaxPoints)) {
      const double v = seg_meta_number(md.at(kMetaEvalMaxPoints), kMetaEvalMaxPoints);
      if (v != std::floor(v) || v > 1e15) {
        throw std::runtime_error(std::string(kMetaEvalMaxPoints) + " must be a whole number of points");
      }
      info.eval_max_points = static_cast<int64_t>(v);  // 0 = the default chunk; tiny values are raised by inference
    }
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(source + ": bad model metadata: " + e.what());
  } catch (const std::exception& e) {
    throw std::runtime_error(source + ": bad model metadata: " + e.what());
  }
  if (info.palette.size() != info.class_names.size()) info.palette = class_palette(info.class_names);
  return info;
}

PipelineResult train_semantic_segmentation(const SemSegConfig& cfg, const TrainRequest& req) {
  PipelineResult r;
  const std::string base = req.run_dir.empty()
                               ? (fs::path(cfg.run().output_dir()) / cfg.run().name()).string()
                               : req.run_dir;
  if (!cfg.data().six_fold()) {
    auto o = train_seg_once(cfg, req, req.run_dir);
    r.exit_code = o.exit_code;
    r.run_dir = o.run_dir.empty() ? base : o.run_dir;
    return r;
  }
  // 6-fold: one run per test area, confusion matrices summed.
  std::vector<torch::Tensor> confusions;
  for (int64_t area = 1; area <= 6; ++area) {
    SemSegConfig fold = cfg;
    fold.data().test_area(area).six_fold(false);
    const std::string dir = (fs::path(base) / ("fold_" + std::to_string(area))).string();
    const fs::path done = fs::path(dir) / "eval_val.json";
    TrainRequest freq = req;
    freq.run_dir = dir;
    freq.config_text = config::dump(fold);
    if (fs::exists(done)) {  // finished earlier: reuse its confusion matrix
      std::ifstream in(done);
      auto j = nlohmann::json::parse(in);
      auto rows = j.at("metrics").at("confusion").get<std::vector<std::vector<int64_t>>>();
      auto t = torch::zeros({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows.size())}, torch::kLong);
      for (size_t a = 0; a < rows.size(); ++a) {
        for (size_t b = 0; b < rows[a].size(); ++b) t[static_cast<int64_t>(a)][static_cast<int64_t>(b)] = rows[a][b];
      }
      spdlog::info("fold {}: reusing {}", area, done.string());
      confusions.push_back(t);
      continue;
    }
    if (!req.resume.empty()) freq.resume = fs::exists(fs::path(dir) / "checkpoints" / "last.ckpt") ? dir : "";
    spdlog::info("6-fold: training fold {} (test area {}) into {}", area, area, dir);
    auto o = train_seg_once(fold, freq, dir);
    if (o.exit_code != 0 || !o.finished) {
      r.exit_code = o.exit_code;
      r.run_dir = base;
      return r;
    }
    confusions.push_back(o.metrics.confusion);
  }
  auto m = combine_folds(confusions);
  nlohmann::json j;
  j["task"] = "semantic_segmentation";
  j["protocol"] = "six_fold";
  j["metrics"] = metrics_json(m, cfg.data().class_names());
  write_json((fs::path(base) / "eval_six_fold.json").string(), j);
  std::cout << "\n6-fold (intersections and unions summed over folds)\n" << metrics_table(m, cfg.data().class_names());
  r.run_dir = base;
  return r;
}

namespace {

// The network `ewa eval` evaluates: req.model (a model file) or req.checkpoint (best | last |
// model | a path; a model file is accepted too), RUP/EWA MoE layers collapsed (learned routers keep
// routing), on the run's device. `source`
// names what was loaded, `collapsed` counts the MoE linears that were averaged.
PointTransformer load_eval_model(const PointTransformerOptions& options, const std::string& device,
                                 const EvalRequest& req, std::string* source, int64_t* collapsed) {
  *source = req.model.empty() ? checkpoint_file(req.run_dir, req.checkpoint) : req.model;
  PointTransformer net{nullptr};
  if (is_model_file(*source) || !req.model.empty()) {
    net = load_point_model(*source);
  } else {
    net = PointTransformer(options);
    load_checkpoint(*source, *net, nullptr);
  }
  *collapsed = routes_at_eval(*net) ? 0 : net->collapse_to_dense();  // a learned router runs as trained
  net->to(resolve_device(device));
  return net;
}

}  // namespace

PipelineResult eval_semantic_segmentation(const SemSegConfig& cfg, const EvalRequest& req) {
  PipelineResult r;
  r.run_dir = req.run_dir;
  std::string source;
  int64_t collapsed = 0;
  PointTransformer net = load_eval_model(cfg.model().pt(), cfg.run().device(), req, &source, &collapsed);
  const auto& d = cfg.data();
  const std::string split = req.split.empty() ? "val" : req.split;
  if (split != "val" && split != "train") throw std::runtime_error("eval: --split must be val or train, got '" + split + "'");
  SegSplits splits = make_seg_splits(d, d.test_area());
  const SceneSet& scenes = split == "val" ? splits.val : splits.train;
  const auto& e = cfg.eval();
  auto ev = evaluate_scenes(scenes, model_logits_fn(net), inference_options(cfg, e.mode(), e.tta()),
                            static_cast<int64_t>(d.class_names().size()), 0, !req.quiet);
  nlohmann::json j;
  j["task"] = "semantic_segmentation";
  j["split"] = split;
  j["weights"] = source;
  j["mode"] = e.mode();
  j["tta"] = e.tta();
  j["collapsed_moe_layers"] = collapsed;
  j["scenes"] = ev.scenes;
  j["seconds"] = ev.seconds;
  j["metrics"] = metrics_json(ev.metrics, d.class_names());
  const std::string out = req.out.empty() ? (fs::path(req.run_dir) / ("eval_" + split + ".json")).string() : req.out;
  write_json(out, j);
  std::cout << metrics_table(ev.metrics, d.class_names()) << "weights: " << source << "\nwrote " << out << "\n";
  return r;
}

// ------------------------------------------------------------------------------ classification

PipelineResult train_point_classification(const PointClsConfig& cfg, const TrainRequest& req) {
  PipelineResult r;
  seed_everything(static_cast<uint64_t>(cfg.run().seed()));
  ShapeSet train = load_shapes(cfg.data(), cfg.data().train_split());
  ShapeSet val = load_shapes(cfg.data(), cfg.data().val_split());
  spdlog::info("point classification: {} training shapes, {} validation shapes, {} classes", train.size(), val.size(),
               train.class_names.size());
  ClsTask task(cfg, std::move(train), std::move(val));
  Trainer trainer(trainer_config(cfg.run(), cfg.train(), cfg.model().ewa(), req, req.run_dir), task);
  const auto fit = fit_for_export(trainer, r);
  if (!fit) return r;
  auto& net = task.net();
  const int64_t collapsed = collapse_for_export(net);
  const std::string model_path = (fs::path(r.run_dir) / "model.safetensors").string();
  save_point_model(net, model_path, classification_metadata(cfg, task.class_names()));
  auto ev = task.evaluate_shapes(task.val(), cfg.eval().voting());
  nlohmann::json j;
  j["task"] = "point_classification";
  j["split"] = cfg.data().val_split();
  j["voting"] = cfg.eval().voting();
  j["model"] = model_path;
  j["collapsed_moe_layers"] = collapsed;
  j["seconds"] = ev.seconds;
  j["metrics"] = metrics_json(ev.metrics, task.class_names());
  write_json((fs::path(r.run_dir) / "eval_val.json").string(), j);
  std::cout << "\nval (" << task.val().size() << " shapes, " << cfg.eval().voting() << " votes): OA "
            << fmt_pct(ev.metrics.oa) << "  mAcc " << fmt_pct(ev.metrics.macc) << "\nmodel: " << model_path << "\n";
  return r;
}

PipelineResult eval_point_classification(const PointClsConfig& cfg, const EvalRequest& req) {
  PipelineResult r;
  r.run_dir = req.run_dir;
  const std::string split = req.split.empty() ? cfg.data().val_split() : req.split;
  ShapeSet train = load_shapes(cfg.data(), cfg.data().train_split());
  ShapeSet val = load_shapes(cfg.data(), split);
  std::string source;
  int64_t collapsed = 0;
  PointTransformer net = load_eval_model(cfg.model().pt(), cfg.run().device(), req, &source, &collapsed);
  ClsTask task(cfg, std::move(train), std::move(val), net);
  auto ev = task.evaluate_shapes(task.val(), cfg.eval().voting());
  nlohmann::json j;
  j["task"] = "point_classification";
  j["split"] = split;
  j["weights"] = source;
  j["voting"] = cfg.eval().voting();
  j["collapsed_moe_layers"] = collapsed;
  j["metrics"] = metrics_json(ev.metrics, task.class_names());
  const std::string out = req.out.empty() ? (fs::path(req.run_dir) / ("eval_" + split + ".json")).string() : req.out;
  write_json(out, j);
  std::cout << metrics_table(ev.metrics, task.class_names()) << "weights: " << source << "\nwrote " << out << "\n";
  return r;
}

}  // namespace ewa::pointcloud
