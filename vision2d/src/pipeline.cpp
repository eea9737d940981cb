// train / eval entry points of the image-classification pipeline.
#include "ewa/vision2d/pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "ewa/core/checkpoint.h"
#include "ewa/core/collapse.h"
#include "ewa/core/config.h"
#include "ewa/core/metrics_log.h"
#include "ewa/core/model_io.h"
#include "ewa/core/report.h"
#include "ewa/core/trainer.h"

namespace fs = std::filesystem;

namespace ewa::vision2d {

namespace {

std::string json_array(const std::vector<double>& v) { return nlohmann::json(v).dump(); }

std::string pct(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << 100.0 * v << "%";
  return s.str();
}

std::string human_count(int64_t n) {
  std::ostringstream s;
  if (n >= 1000000) {
    s << std::fixed << std::setprecision(2) << static_cast<double>(n) / 1e6 << "M";
  } else if (n >= 1000) {
    s << std::fixed << std::setprecision(1) << static_cast<double>(n) / 1e3 << "k";
  } else {
    s << n;
  }
  return s.str();
}

void write_json(const std::string& path, const nlohmann::json& j) { atomic_write_file(path, j.dump(2) + "\n"); }

// File/report name of an evaluation split: the carved validation split is "val".
std::string split_label(const std::string& eval_name) { return eval_name == "val_fraction" ? "val" : eval_name; }

// Training images/s over the finished epochs of metrics.jsonl (data waits included,
// evaluation excluded); 0 when there is no epoch record.
double train_images_per_sec(const std::string& run_dir, int64_t images_per_epoch) {
  const std::string path = (fs::path(run_dir) / "metrics.jsonl").string();
  if (!fs::exists(path)) return 0.0;
  double seconds = 0.0;
  int64_t epochs = 0;
  for (const auto& r : read_metrics(path)) {
    if (r.value("kind", "") == "epoch" && r.contains("epoch_time_s")) {
      seconds += r["epoch_time_s"].get<double>();
      ++epochs;
    }
  }
  return seconds > 0 ? static_cast<double>(images_per_epoch * epochs) / seconds : 0.0;
}

// The checkpoint a resume request names (a directory means its checkpoints/last.ckpt).
void check_resume_target(const std::string& resume) {
  if (resume.empty()) return;
  if (fs::is_directory(resume)) {
    const fs::path last = fs::path(resume) / "checkpoints" / "last.ckpt";
    if (!fs::exists(last)) {
      throw std::runtime_error("cannot resume: " + last.string() + " not found (is " + resume +
                               " a run directory of ewa train?)");
    }
  } else if (!fs::exists(resume)) {
    throw std::runtime_error("cannot resume: checkpoint '" + resume + "' not found");
  }
}

// The dataset of `split` ("" = the config's evaluation split) and its name.
std::pair<img::ImageDatasetPtr, std::string> eval_dataset(const ImageClassificationConfig& cfg,
                                                          const std::string& split) {
  const auto spec = data_spec(cfg);
  if (split.empty() || split == "train" || (split == "val" && cfg.data().val_fraction() > 0)) {
    auto s = img::load_image_splits(spec);
    if (split == "train") return {s.train, "train"};
    return {s.eval, split_label(s.eval_name)};
  }
  if (split != "test" && split != "val") {
    throw std::invalid_argument("--split must be train, test or val, got '" + split + "'");
  }
  auto ds = img::open_image_dataset(spec, split);
  return {img::random_subset(ds, spec.eval_limit, spec.seed + 1), split};
}

}  // namespace


void write_confusion_csv(const std::string& path, const torch::Tensor& confusion,
                         const std::vector<std::string>& class_names) {
  auto c = confusion.to(torch::kLong).contiguous();
  const int64_t k = c.size(0);
  std::ostringstream s;
  for (int64_t i = 0; i < k; ++i) {
    std::string name = i < static_cast<int64_t>(class_names.size()) ? class_names[static_cast<size_t>(i)]
                                                                     : std::to_string(i);
    std::replace(name.begin(), name.end(), ',', ' ');
    s << (i ? "," : "") << name;
  }
  s << "\n";
  const int64_t* p = c.data_ptr<int64_t>();
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) s << (j ? "," : "") << p[i * k + j];
    s << "\n";
  }
  atomic_write_file(path, s.str());
}

nlohmann::json eval_report(const EvalMetrics& m, const std::vector<std::string>& class_names,
                           const std::string& split, const std::string& weights, int64_t params) {
  nlohmann::json j;
  j["split"] = split;
  j["weights"] = weights;
  j["images"] = m.count;
  j["top1"] = m.top1;
  j["top5"] = m.top5;
  j["loss"] = m.loss;
  j["params"] = params;
  j["inference_ms_per_image"] = m.count > 0 ? 1000.0 * m.seconds / static_cast<double>(m.count) : 0.0;
  j["inference_images_per_sec"] = m.seconds > 0 ? static_cast<double>(m.count) / m.seconds : 0.0;
  auto c = m.confusion.to(torch::kLong).contiguous();
  const int64_t k = c.size(0);
  const int64_t* p = c.data_ptr<int64_t>();
  nlohmann::json per_class = nlohmann::json::array(), conf = nlohmann::json::array();
  for (int64_t i = 0; i < k; ++i) {
    int64_t total = 0;
    std::vector<int64_t> row;
    for (int64_t jj = 0; jj < k; ++jj) {
      total += p[i * k + jj];
      row.push_back(p[i * k + jj]);
    }
    conf.push_back(row);
    const std::string name =
        i < static_cast<int64_t>(class_names.size()) ? class_names[static_cast<size_t>(i)] : std::to_string(i);
    per_class.push_back({{"class", name},
                         {"count", total},
                         {"correct", p[i * k + i]},
                         {"accuracy", total > 0 ? static_cast<double>(p[i * k + i]) / static_cast<double>(total)
                                                : 0.0}});
  }
  j["class_names"] = class_names;
  j["per_class"] = per_class;
  j["confusion"] = conf;
  return j;
}

std::string format_eval_table(const nlohmann::json& r) {
  std::ostringstream s;
  s << "split " << r.value("split", "") << ": " << r.value("images", 0) << " images  top-1 "
    << pct(r.value("top1", 0.0)) << "  top-5 " << pct(r.value("top5", 0.0)) << "  loss " << std::fixed
    << std::setprecision(4) << r.value("loss", 0.0) << "\n";
  size_t w = 5;
  for (const auto& c : r["per_class"]) w = std::max(w, c["class"].get<std::string>().size());
  w = std::min<size_t>(w, 24);
  s << std::left << std::setw(static_cast<int>(w)) << "class" << std::right << std::setw(8) << "images"
    << std::setw(10) << "accuracy" << "\n";
  for (const auto& c : r["per_class"]) {
    s << std::left << std::setw(static_cast<int>(w)) << c["class"].get<std::string>().substr(0, w) << std::right
      << std::setw(8) << c["count"].get<int64_t>() << std::setw(10) << pct(c["accuracy"].get<double>()) << "\n";
  }
  const auto& conf = r["confusion"];
  if (!conf.empty() && conf.size() <= 20) {
    s << "confusion matrix (rows: true class, columns: predicted, in class order above):\n";
    for (const auto& row : conf) {
      for (const auto& v : row) s << std::setw(7) << v.get<int64_t>();
      s << "\n";
    }
  }
  return s.str();
}

PipelineResult train(const ImageClassificationConfig& cfg, const TrainRequest& req) {
  check_resume_target(req.resume);
  ImageClassificationTask task(cfg);
  TrainerConfig tc;
  tc.train = cfg.train();
  tc.run = cfg.run();
  tc.ewa = cfg.model().ewa();
  tc.run_dir = req.run_dir;
  tc.config_text = req.config_text.empty() ? config::dump(cfg) : req.config_text;
  tc.resume_command = req.resume_command.empty() ? "ewa train " + req.config_file : req.resume_command;
  if (!req.resume.empty()) tc.train.checkpoint().resume(req.resume);
  if (req.quiet) tc.train.progress(false);
  Trainer trainer(tc, task);
  auto& model = task.vit();
  const int64_t params_train = count_parameters(*model);
  spdlog::info("model: ViT {}x{} px, patch {}, dim {}, depth {}, {} classes; {} parameters during training{}",
               cfg.model().vit().img_size(), cfg.model().vit().img_size(), cfg.model().vit().patch_size(),
               cfg.model().vit().embed_dim(), cfg.model().vit().depth(), cfg.model().vit().num_classes(),
               human_count(params_train),
               model->moe_blocks().empty() ? "" : " (MoE layers in blocks " + nlohmann::json(model->moe_blocks()).dump() + ")");
  PipelineResult result;
  FitResult fit;
  try {
    fit = trainer.fit();
  } catch (const DivergenceError&) {
    // The trainer logged the message (step, kept checkpoint, advice).
    result.exit_code = 1;
    result.run_dir = trainer.run_dir();
    return result;
  }
  result.run_dir = fit.run_dir;
  if (fit.interrupted || !trainer.is_main()) return result;

  const std::string run_dir = fit.run_dir;
  const torch::Device device = trainer.device();
  auto& loader = task.eval_loader();
  auto probe = loader.make_batch(0, 0).images;
  probe = probe.narrow(0, 0, std::min<int64_t>(8, probe.size(0))).to(device);  // [b, C, H, W]
  // Export what was trained: RUP/EWA layers collapse to the dense FFN (their eval forward is
  // the averaged expert); a learned router's model is saved and evaluated as the routed MoE.
  const bool routed = routes_at_eval(*model);
  CollapseReport cr;
  if (routed) {
    spdlog::info("kept {} MoE layers routed by '{}' (a learned router): model.safetensors is the routed MoE; "
                 "`ewa convert --average` averages its experts and reports the accuracy that costs",
                 model->moe_blocks().size(), cfg.model().moe().router().name());
  } else {
    cr = collapse_to_dense(model, probe);
  }
  if (!cr.blocks.empty()) {
    const std::string msg = "collapsed " + std::to_string(cr.blocks.size()) + " MoE layers (" +
                            std::to_string(cr.num_experts) + " experts each) into dense FFNs; max |logit diff| on " +
                            std::to_string(probe.size(0)) + " images: " + std::to_string(cr.max_abs_diff);
    if (cr.max_abs_diff > 1e-3) {
      spdlog::warn("{} (expected ~0 for RUP/EWA layers)", msg);
    } else {
      spdlog::info("{}", msg);
    }
  }
  model->eval();
  const auto& names = task.splits().train->class_names();
  const std::string model_path = (fs::path(run_dir) / "model.safetensors").string();
  save_model(model, model_path, export_metadata(cfg, names));

  EvalMetrics m = evaluate_model(model, loader, device);
  const int64_t params = count_parameters(*model);
  const std::string split = split_label(task.splits().eval_name);
  nlohmann::json rep = eval_report(
      m, names, split,
      routed ? "model.safetensors (final weights, routed MoE)" : "model.safetensors (final weights, collapsed)", params);
  const std::string eval_path = (fs::path(run_dir) / ("eval_" + split + ".json")).string();
  write_json(eval_path, rep);
  write_confusion_csv((fs::path(run_dir) / "confusion.csv").string(), m.confusion, names);

  nlohmann::json summary;
  summary["top1"] = m.top1;
  summary["top5"] = m.top5;
  summary["loss"] = m.loss;
  summary["split"] = split;
  summary["eval_images"] = m.count;
  summary["params"] = params;
  summary["params_training"] = params_train;
  summary["inference_ms_per_image"] = rep["inference_ms_per_image"];
  summary["train_images"] = task.splits().train->size();
  summary["train_images_per_sec"] = train_images_per_sec(run_dir, task.splits().train->size());
  summary["steps"] = fit.steps;
  summary["moe_blocks"] = routed ? model->moe_blocks() : cr.blocks;
  summary["routed_moe"] = routed;
  summary["collapse_max_abs_diff"] = cr.max_abs_diff;
  summary["ewa"] = cfg.model().ewa().enabled();
  write_json((fs::path(run_dir) / "summary.json").string(), summary);
  std::string report_path;
  try {
    report_path = write_report(run_dir);
  } catch (const std::exception& e) {
    spdlog::warn("report.html not written: {}", e.what());
  }

  std::cout << "top-1 " << pct(m.top1) << "  top-5 " << pct(m.top5) << " on " << split << " (" << m.count
            << " images); " << human_count(params) << " parameters ("
            << (routed ? "routed MoE" : cr.blocks.empty() ? "dense" : "dense, collapsed from " + human_count(params_train))
            << "); "
            << std::fixed << std::setprecision(3) << rep["inference_ms_per_image"].get<double>() << " ms/image\n"
            << "  model:  " << model_path << "\n"
            << "  eval:   " << eval_path << "\n";
  if (!report_path.empty()) std::cout << "  report: " << report_path << "\n";
  std::cout << "  classify an image: ewa classify " << model_path << " IMAGE\n";
  return result;
}

safetensors::Metadata export_metadata(const ImageClassificationConfig& cfg,
                                      const std::vector<std::string>& class_names) {
  const img::NormStats ns = norm_stats(cfg);
  safetensors::Metadata meta;
  meta[kMetaTask] = "image_classification";
  if (!class_names.empty()) meta[kMetaClassNames] = nlohmann::json(class_names).dump();
  meta[kMetaMean] = json_array(ns.mean);
  meta[kMetaStd] = json_array(ns.std);
  meta[kMetaImageSize] = std::to_string(cfg.model().vit().img_size());
  meta[kMetaDataset] = cfg.data().dataset();
  return meta;
}

ConvertResult convert_model(VisionTransformer& model, const ConvertOptions& options,
                            const ImageClassificationConfig* cfg) {
  ConvertResult r;
  r.moe_blocks = model->moe_blocks();
  if (r.moe_blocks.empty()) return r;
  r.router = model->moe_options() ? model->moe_options()->router().name() : "";
  r.num_experts = model->blocks()[static_cast<size_t>(r.moe_blocks[0])]->moe_mlp()->experts->num_experts();
  const bool was_training = model->is_training();
  model->eval();
  if (!routes_at_eval(*model)) {
    const auto& v = model->options();
    torch::manual_seed(options.seed);
    auto probe = torch::randn({options.probe_batch, v.in_chans(), v.img_size(), v.img_size()},
                              model->pos_embed.options().requires_grad(false));  // [b, C, H, W]
    r.max_abs_diff = collapse_to_dense(model, probe).max_abs_diff;
    model->train(was_training);
    if (!(r.max_abs_diff <= options.tolerance)) {
      throw std::runtime_error("convert: collapse verification failed: max |diff| " + std::to_string(r.max_abs_diff) +
                               " > tolerance " + std::to_string(options.tolerance));
    }
    return r;
  }
  if (!options.average) {
    throw std::invalid_argument("convert: the MoE layers route with the learned router '" + r.router +
                                "': the model is served as the routed MoE it was trained as (ewa eval / classify "
                                "run it); pass --average to replace each MoE layer by the mean of its experts (the "
                                "accuracy this costs on the run's evaluation split is reported)");
  }
  if (!cfg) {
    throw std::invalid_argument("convert --average: the run's config is needed to measure the accuracy averaging "
                                "costs (pass --config RUN/config.yaml)");
  }
  auto [ds, split] = eval_dataset(*cfg, "");
  check_data_matches_model(*cfg, *ds);
  img::ImageLoader loader(ds, loader_options(*cfg, false));
  const torch::Device device = model->pos_embed.device();
  const EvalMetrics before = evaluate_model(model, loader, device);
  collapse_to_dense(model, torch::Tensor());
  model->eval();
  const EvalMetrics after = evaluate_model(model, loader, device);
  model->train(was_training);
  r.averaged_learned = true;
  r.split = split;
  r.eval_images = before.count;
  r.top1_routed = before.top1;
  r.top1_averaged = after.top1;
  return r;
}

CheckpointExport export_checkpoint(const ImageClassificationConfig& cfg, const std::string& checkpoint,
                                   const std::string& out, const ConvertOptions& options) {
  CheckpointExport ex;
  VisionTransformer model = build_model(cfg);
  ex.step = load_checkpoint(checkpoint, *model, nullptr).step;  // verifies the file first
  model->eval();
  ex.params_train = count_parameters(*model);
  ex.convert = convert_model(model, options, &cfg);
  ex.params = count_parameters(*model);
  std::vector<std::string> names;
  try {
    names = img::load_image_splits(data_spec(cfg)).train->class_names();
  } catch (const std::exception& e) {
    spdlog::warn("class names not stored in {} (the run's dataset is not readable here: {}); ewa classify will "
                 "print class indices",
                 out, e.what());
  }
  ex.has_class_names = !names.empty();
  if (!out.empty() && fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
  save_model(model, out, export_metadata(cfg, names));
  return ex;
}

PipelineResult evaluate(const ImageClassificationConfig& cfg, const EvalRequest& req) {
  const fs::path run_dir = req.run_dir;
  std::string weights = req.model;
  std::string label;
  if (weights.empty()) {
    const std::string& c = req.checkpoint;
    if (c == "best" || c == "last") {
      weights = (run_dir / "checkpoints" / (c + ".ckpt")).string();
      if (c == "best" && !fs::exists(weights)) {
        spdlog::info("{} has no best checkpoint (train.checkpoint.metric unset?); using last", run_dir.string());
        weights = (run_dir / "checkpoints" / "last.ckpt").string();
      }
    } else if (c == "model") {
      weights = (run_dir / "model.safetensors").string();
    } else {
      weights = c;
    }
  }
  if (!fs::exists(weights)) throw std::runtime_error("eval: weights not found: " + weights);
  label = weights;

  const torch::Device device = resolve_device(cfg.run().device());
  VisionTransformer model{nullptr};
  if (fs::path(weights).extension() == ".safetensors") {
    model = load_model(weights);
    const auto& v = model->options();
    if (v.num_classes() != cfg.model().vit().num_classes() || v.img_size() != cfg.model().vit().img_size() ||
        v.in_chans() != cfg.model().vit().in_chans()) {
      throw std::runtime_error("eval: " + weights + " is a " + std::to_string(v.img_size()) + " px, " +
                               std::to_string(v.in_chans()) + "-channel, " + std::to_string(v.num_classes()) +
                               "-class model; the config's data needs model.vit img_size/in_chans/num_classes " +
                               std::to_string(cfg.model().vit().img_size()) + "/" +
                               std::to_string(cfg.model().vit().in_chans()) + "/" +
                               std::to_string(cfg.model().vit().num_classes()));
    }
  } else {
    model = build_model(cfg);
    load_checkpoint(weights, *model, nullptr);
  }
  model->to(device);
  model->eval();

  auto [ds, split] = eval_dataset(cfg, req.split);
  check_data_matches_model(cfg, *ds);
  img::ImageLoader loader(ds, loader_options(cfg, false));
  spdlog::info("evaluating {} on {}", weights, ds->describe());
  const EvalMetrics m = evaluate_model(model, loader, device);
  nlohmann::json rep = eval_report(m, ds->class_names(), split, label, count_parameters(*model));
  std::cout << format_eval_table(rep);
  const std::string out = req.out.empty() ? (run_dir / ("eval_" + split + ".json")).string() : req.out;
  if (!fs::path(out).parent_path().empty()) fs::create_directories(fs::path(out).parent_path());
  write_json(out, rep);
  std::cout << "wrote " << out << "\n";
  PipelineResult r;
  r.run_dir = run_dir.string();
  return r;
}

}  // namespace ewa::vision2d
