// `ewa segment MODEL INPUT... --out pred.ply [--npy pred.npy] [--probabilities p.npy] [--tta]`:
// label any scene of the shared point-format table with a trained Point Transformer (bounded
// fragment voting), with progress, a PLY with confidence, and a JSON summary per scene.
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>

#include "commands.h"
#include "ewa/core/checkpoint.h"
#include "ewa/core/cpu.h"
#include "ewa/core/progress.h"
#include "ewa/core/trainer.h"
#include "ewa/datasets/points/npy.h"
#include "ewa/pointcloud/scene_data.h"
#include "ewa/pointcloud/segment.h"

namespace fs = std::filesystem;

namespace ewa::app {

void add_segment_command(CLI::App& app, GlobalOptions& global) {
  struct Args {
    std::string model;
    std::vector<std::string> inputs;
    std::string out, npy, probabilities, summary, mode = "fragments", device = "auto", precision = "auto";
    bool tta = false, quiet = false;
    double grid = -1;
    int64_t chunk_points = -1;
    int64_t fragments = pointcloud::kDefaultFragments;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "segment",
      "Label point clouds with a trained segmentation model (bounded fragment voting over the whole scene)");
  cmd->footer(point_formats_footer() +
              "A label field of the input is read as ground truth. Every scene also gets <out>.summary.json "
              "(points, fragments, forwards, seconds, peak RSS; with ground truth per-class IoU, mIoU, OA, "
              "confusion) and <out>.classes.txt.");
  cmd->add_option("model", args->model, "model.safetensors written by `ewa train`")->required()->check(CLI::ExistingFile);
  cmd->add_option("input", args->inputs, "Scenes to segment")->required()->expected(1, -1);
  cmd->add_option("-o,--out", args->out,
                  "Output PLY (x y z r g b pred [gt] confidence); with several inputs a folder "
                  "(default: <scene>_pred.ply)");
  cmd->add_option("--npy", args->npy, "Labels as .npy in source point order (default: <scene>_pred.npy next to the PLY)");
  cmd->add_option("--probabilities", args->probabilities,
                  "Per-class probabilities as float16 .npy [source points, classes] (NaN rows: dropped points); "
                  "with several inputs a folder receiving <scene>_prob.npy");
  cmd->add_option("--summary", args->summary,
                  "JSON summary of the scene (default: <out without .ply>.summary.json); one input only");
  cmd->add_flag("--tta", args->tta, "Test-time augmentation (scales 0.9/1/1.1 x flips), streamed into one sum");
  cmd->add_option("--mode", args->mode, "fragments (bounded fragment voting) | voxel (fast: one point per voxel)")
      ->check(CLI::IsMember({"fragments", "voxel"}))
      ->capture_default_str();
  cmd->add_option("--grid", args->grid, "Voxel size in metres (default: the model's)");
  cmd->add_option("--fragments", args->fragments,
                  "At most this many test fragments per scene (1-32), each one point per voxel; points of "
                  "voxels fuller than this take their voxel's mean prediction")
      ->check(CLI::Range(int64_t{1}, pointcloud::kMaxFragments))
      ->capture_default_str();
  cmd->add_option("--chunk-points,--max-points", args->chunk_points,
                  "Points per chunk and per forward: larger fragments are cut into spatial blocks (3/4 core, 1/4 halo), so "
                  "peak memory follows this, not the scene (default: the model's eval.max_points, else " +
                      std::to_string(pointcloud::kDefaultChunkPoints) + ")")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--device", args->device, "auto | cpu | cuda")->capture_default_str();
  cmd->add_option("--precision", args->precision,
                  "auto (bf16 autocast on a CPU with native bf16 matmuls, as training evaluates) | fp32 | bf16")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}))
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", args->quiet, "Only the summary line per scene (no progress bar)");
  cmd->callback([&global, args] {
    apply_global_options(global);
    const bool many = args->inputs.size() > 1;
    if (many && !args->npy.empty()) {
      throw UsageError("segment: --npy names one file; with several inputs the .npy files go next to the PLYs");
    }
    if (many && !args->summary.empty()) {
      throw UsageError("segment: --summary names one file; with several inputs the summaries go next to the PLYs");
    }
    std::map<std::string, std::string> meta;
    auto model = pointcloud::load_point_model(args->model, &meta);
    const auto info = pointcloud::parse_segmentation_metadata(meta, args->model);
    const auto device = resolve_device(args->device);
    model->to(device);
    model->eval();
    pointcloud::SceneReadSpec spec;
    spec.class_names = info.class_names;
    spec.label_field = info.label_field;
    spec.label_map = info.label_map;
    pointcloud::SegmentOptions so;
    so.mode = args->mode;
    so.tta = args->tta;
    so.grid_size = args->grid;
    so.max_points = args->chunk_points;
    so.fragments = args->fragments;
    so.keep_probabilities = !args->probabilities.empty();
    so.bf16 = resolve_bf16_autocast(args->precision, device.is_cpu());
    if (many && !args->out.empty()) fs::create_directories(args->out);
    if (many && !args->probabilities.empty()) fs::create_directories(args->probabilities);
    for (const auto& input : args->inputs) {
      int64_t source_points = 0;
      auto cloud = pointcloud::read_scene_file(input, spec, &source_points);
      std::string scene = fs::path(cloud.name).filename().string();
      if (scene.empty()) scene = "scene";
      const fs::path ply = many ? fs::path(args->out.empty() ? "." : args->out) / (scene + "_pred.ply")
                                : fs::path(args->out.empty() ? scene + "_pred.ply" : args->out);
      const fs::path npy = (!many && !args->npy.empty()) ? fs::path(args->npy)
                                                         : ply.parent_path() / (scene + "_pred.npy");
      const fs::path classes = fs::path(ply).replace_extension(".classes.txt");
      const fs::path summary = !args->summary.empty() ? fs::path(args->summary)
                                                      : fs::path(ply).replace_extension(".summary.json");
      const fs::path prob = args->probabilities.empty() ? fs::path()
                            : many                      ? fs::path(args->probabilities) / (scene + "_prob.npy")
                                                        : fs::path(args->probabilities);
      // progress with ETA on stderr: one redrawn line on a TTY, a line per 10% otherwise
      std::unique_ptr<ProgressBar> bar;
      int64_t shown = 0;
      if (!args->quiet) {
        so.progress = [&bar, &shown, &scene](const pointcloud::SceneProgress& p) {
          if (!bar) bar = std::make_unique<ProgressBar>(std::max<int64_t>(p.total, 1), scene, "pt");
          bar->update(std::max<int64_t>(p.done - shown, 0), {{"forwards", static_cast<double>(p.forwards)}});
          shown = std::max(shown, p.done);
        };
      }
      auto r = pointcloud::segment_cloud(model, info, cloud, so);
      if (bar) bar->finish();
      pointcloud::write_prediction_ply(ply.string(), cloud, r.pred, r.confidence);
      datasets::write_npy(npy.string(), pointcloud::prediction_in_source_order(cloud, r.pred, source_points));
      if (!prob.empty()) pointcloud::write_probabilities_npy(prob.string(), cloud, r.probabilities, source_points);
      r.probabilities = torch::Tensor();
      pointcloud::write_class_file(classes.string(), info);
      auto js = pointcloud::segment_summary(r, cloud, info, so, source_points);
      js["outputs"] = {{"ply", ply.string()}, {"labels_npy", npy.string()}, {"classes", classes.string()}};
      if (!prob.empty()) js["outputs"]["probabilities_npy"] = prob.string();
      atomic_write_file(summary.string(), js.dump(2) + "\n");
      std::cout << input << ": " << cloud.size() << " points";
      if (source_points != cloud.size()) std::cout << " (" << source_points - cloud.size() << " non-finite dropped)";
      std::cout << ", " << r.stats.fragments << " fragments, " << r.stats.forwards << " forwards, " << std::fixed
                << std::setprecision(1) << r.seconds << " s, peak RSS "
                << static_cast<double>(pointcloud::peak_rss_bytes()) / (1 << 20) << " MiB\n";
      if (!args->quiet) {
        if (r.metrics) {
          std::cout << pointcloud::metrics_table(*r.metrics, info.class_names);
        } else {
          auto counts = torch::bincount(r.pred, {}, static_cast<int64_t>(info.class_names.size()));
          for (size_t c = 0; c < info.class_names.size(); ++c) {
            std::cout << "  " << std::left << std::setw(12) << info.class_names[c] << std::right << std::setw(10)
                      << counts[static_cast<int64_t>(c)].item<int64_t>() << "\n";
          }
        }
      }
      std::cout << "wrote " << ply.string() << ", " << npy.string() << ", " << summary.string();
      if (!prob.empty()) std::cout << ", " << prob.string();
      std::cout << "\nview: ewa view " << ply.string() << " --classes " << classes.string() << "\n";
    }
  });
}

}  // namespace ewa::app
