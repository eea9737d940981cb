// `ewa view`: opens a point cloud with optional ground truth / prediction in the Open3D
// viewer, or renders it offscreen with --screenshot; prints the per-class metrics table.
#include <unistd.h>

#include <iostream>

#include "commands.h"
#include "ewa/viewer/scene.h"
#include "ewa/viewer/window.h"

namespace ewa::app {

namespace {

struct ViewArgs {
  viewer::SceneInputs in;
  std::string screenshot;
  std::string background = "white";
  viewer::ViewerOptions opt;
  bool quiet = false;
};

}  // namespace

void add_view_command(CLI::App& app, GlobalOptions& global) {
  auto args = std::make_shared<ViewArgs>();
  auto* cmd = app.add_subcommand(
      "view",
      "View a point cloud with ground truth / prediction / error colouring, or render it with --screenshot");
  cmd->footer(point_formats_footer());
  cmd->add_option("input", args->in.cloud_path, "Point cloud file, room folder or file.h5#k")->required();
  cmd->add_option("--pred", args->in.pred_path, "Prediction labels (.npy/.txt/.label/.ply/.pcd)");
  cmd->add_option("--gt", args->in.gt_path, "Ground-truth labels (.npy/.txt/.label/.ply/.pcd)");
  cmd->add_option("--classes", args->in.classes, "Class table: s3dis or a file of 'name [r g b]' lines")
      ->capture_default_str();
  cmd->add_option("--max-points", args->in.max_points, "Display budget; larger clouds are subsampled (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--screenshot", args->screenshot, "Render offscreen to this PNG and exit");
  cmd->add_option("--mode", args->opt.mode, "Colour mode (default: pred, else gt, else rgb)")
      ->check(CLI::IsMember({"rgb", "gt", "pred", "error", "confidence"}));
  cmd->add_option("--width", args->opt.width, "Window / screenshot width")->check(CLI::Range(16, 8192))->capture_default_str();
  cmd->add_option("--height", args->opt.height, "Window / screenshot height")->check(CLI::Range(16, 8192))->capture_default_str();
  cmd->add_option("--point-size", args->opt.point_size, "Point size in pixels")->check(CLI::Range(1.0, 20.0))->capture_default_str();
  cmd->add_option("--background", args->background, "white|black")
      ->check(CLI::IsMember({"white", "black"}))
      ->capture_default_str();
  cmd->add_option("--up", args->opt.up, "World up axis (z for rooms, -y for camera frames)")
      ->check(CLI::IsMember({"x", "y", "z", "-x", "-y", "-z"}))
      ->capture_default_str();
  cmd->add_flag("--quiet", args->quiet, "Do not print the metrics table");
  cmd->callback([args, &global] {
    apply_global_options(global);
    if (args->background == "black") args->opt.background = {0.f, 0.f, 0.f};
    viewer::Scene scene;
    try {
      scene = viewer::Scene::load(args->in);
    } catch (const std::exception& e) {
      // Interactive sessions also get the message in a window; scripts only on stderr.
      if (args->screenshot.empty() && viewer::gui_available() && isatty(0) && std::getenv("DISPLAY")) {
        std::cerr << "ewa: error: " << e.what() << "\n";
        try {
          viewer::show_error_window("ewa view: cannot load", e.what());
        } catch (const std::exception&) {
        }
      }
      throw;
    }
    if (!args->quiet) {
      std::cout << scene.source() << ": " << scene.num_points() << " points"
                << (scene.has_gt() ? ", ground truth" : "") << (scene.has_pred() ? ", prediction" : "")
                << (scene.has_confidence() ? ", confidence" : "") << "\n";
      if (scene.subsampled()) std::cout << scene.subsample_note() << "\n";
      if (scene.has_gt() || scene.has_pred()) std::cout << scene.metrics_table();
    }
    if (!args->screenshot.empty()) {
      viewer::render_screenshot(scene, args->opt, args->screenshot);
      if (!args->quiet) std::cout << "wrote " << args->screenshot << "\n";
      return;
    }
    viewer::run_viewer_window(scene, args->opt);
  });
}

}  // namespace ewa::app
