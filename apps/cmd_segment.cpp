// `ewa segment MODEL INPUT... --out pred.ply [--npy pred.npy] [--tta]`: label any scene of the
// shared point-format table with a trained Point Transformer (fragment voting).
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>

#include "commands.h"
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
    std::string out, npy, mode = "fragments", device = "auto";
    bool tta = false, quiet = false;
    double grid = -1;
    int64_t max_points = -1;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "segment",
      "Label point clouds with a trained segmentation model (fragment voting over the whole scene)");
  cmd->footer(point_formats_footer() + "A label field of the input is read as ground truth.");
  cmd->add_option("model", args->model, "model.safetensors written by `ewa train`")->required()->check(CLI::ExistingFile);
  cmd->add_option("input", args->inputs, "Scenes to segment")->required()->expected(1, -1);
  cmd->add_option("-o,--out", args->out,
                  "Output PLY (x y z r g b label [gt]); with several inputs a folder (default: <scene>_pred.ply)");
  cmd->add_option("--npy", args->npy, "Labels as .npy in source point order (default: <scene>_pred.npy next to the PLY)");
  cmd->add_flag("--tta", args->tta, "Test-time augmentation (scales 0.9/1/1.1 x flips)");
  cmd->add_option("--mode", args->mode, "fragments (every point voted) | voxel (fast: one point per voxel)")
      ->check(CLI::IsMember({"fragments", "voxel"}))
      ->capture_default_str();
  cmd->add_option("--grid", args->grid, "Voxel size in metres (default: the model's)");
  cmd->add_option("--max-points", args->max_points, "Split fragments larger than this into crops (default: the model's)");
  cmd->add_option("--device", args->device, "auto | cpu | cuda")->capture_default_str();
  cmd->add_flag("-q,--quiet", args->quiet, "Only the summary line per scene");
  cmd->callback([&global, args] {
    apply_global_options(global);
    if (args->inputs.size() > 1 && !args->npy.empty()) {
      throw UsageError("segment: --npy names one file; with several inputs the .npy files go next to the PLYs");
    }
    std::map<std::string, std::string> meta;
    auto model = pointcloud::load_point_model(args->model, &meta);
    const auto info = pointcloud::parse_segmentation_metadata(meta, args->model);
    model->to(resolve_device(args->device));
    model->eval();
    pointcloud::SceneReadSpec spec;
    spec.class_names = info.class_names;
    spec.label_field = info.label_field;
    spec.label_map = info.label_map;
    pointcloud::SegmentOptions so;
    so.mode = args->mode;
    so.tta = args->tta;
    so.grid_size = args->grid;
    so.max_points = args->max_points;
    const bool many = args->inputs.size() > 1;
    if (many && !args->out.empty()) fs::create_directories(args->out);
    for (const auto& input : args->inputs) {
      int64_t source_points = 0;
      auto cloud = pointcloud::read_scene_file(input, spec, &source_points);
      std::string scene = fs::path(cloud.name).filename().string();
      if (scene.empty()) scene = "scene";
      fs::path ply = many ? fs::path(args->out.empty() ? "." : args->out) / (scene + "_pred.ply")
                          : fs::path(args->out.empty() ? scene + "_pred.ply" : args->out);
      fs::path npy = (!many && !args->npy.empty()) ? fs::path(args->npy)
                                                   : ply.parent_path() / (scene + "_pred.npy");
      const fs::path classes = fs::path(ply).replace_extension(".classes.txt");
      auto r = pointcloud::segment_cloud(model, info, cloud, so);
      pointcloud::write_prediction_ply(ply.string(), cloud, r.pred);
      datasets::write_npy(npy.string(), pointcloud::prediction_in_source_order(cloud, r.pred, source_points));
      pointcloud::write_class_file(classes.string(), info);
      std::cout << input << ": " << cloud.size() << " points";
      if (source_points != cloud.size()) std::cout << " (" << source_points - cloud.size() << " non-finite dropped)";
      std::cout << ", " << r.stats.chunks << " fragments, " << std::fixed << std::setprecision(1) << r.seconds << " s\n";
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
      std::cout << "wrote " << ply.string() << ", " << npy.string() << "\nview: ewa view " << ply.string()
                << " --classes " << classes.string() << "\n";
    }
  });
}

}  // namespace ewa::app
