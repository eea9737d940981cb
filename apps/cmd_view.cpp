// `ewa view`: opens a point cloud with optional ground truth / prediction in the Open3D
// viewer (one pane or ground truth | prediction side by side), or renders it offscreen with
// --screenshot (legend burned in, --pick to probe points); prints the per-class metrics table.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "commands.h"
#include "ewa/viewer/scene.h"
#include "ewa/viewer/window.h"

namespace ewa::app {

namespace {

struct ViewArgs {
  viewer::SceneInputs in;
  std::vector<std::string> inputs;
  std::vector<std::string> picks;
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
  cmd->add_option("input", args->inputs,
                  "Point cloud file, room folder or file.h5#k; optionally a second file with the prediction "
                  "(e.g. the `ewa segment` output for a ground-truth file)")
      ->required()
      ->expected(1, 2);
  cmd->add_option("--pred", args->in.pred_path, "Prediction labels (.npy/.txt/.label/.ply/.pcd)");
  cmd->add_option("--gt", args->in.gt_path, "Ground-truth labels (.npy/.txt/.label/.ply/.pcd)");
  cmd->add_option("--classes", args->in.classes, "Class table: s3dis or a file of 'name [r g b]' lines")
      ->capture_default_str();
  cmd->add_option("--max-points", args->in.max_points,
                  "Display budget (level of detail): larger clouds show a fixed random subsample of this many "
                  "points; metrics and picking use the real points (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--screenshot", args->screenshot, "Render offscreen to this PNG (legend included) and exit");
  const auto modes = CLI::IsMember({"rgb", "gt", "pred", "error", "confidence"});
  cmd->add_option("--color,--mode", args->opt.mode,
                  "Colouring: rgb|gt|pred|error|confidence (default: pred, else gt, else rgb; the right pane "
                  "with --side-by-side)")
      ->check(modes);
  cmd->add_flag("--side-by-side", args->opt.side_by_side,
                "Two panes with one camera: ground truth (--left-color) | prediction (--color)");
  cmd->add_option("--left-color", args->opt.left_mode, "Colouring of the left pane with --side-by-side")
      ->check(modes)
      ->capture_default_str();
  cmd->add_flag("!--no-legend", args->opt.legend, "No legend overlay in the window / screenshot");
  cmd->add_option("--pick", args->picks,
                  "With --screenshot: pick the point under pixel X,Y as a click would (repeatable); prints it "
                  "and marks it in the image");
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
    args->in.cloud_path = args->inputs.front();
    if (args->inputs.size() == 2) {
      if (!args->in.pred_path.empty())
        throw UsageError("view: give the prediction either as the second file or with --pred, not both");
      args->in.pred_path = args->inputs[1];
    }
    if (!args->picks.empty() && args->screenshot.empty())
      throw UsageError("view: --pick needs --screenshot (in the window, click a point)");
    for (const auto& p : args->picks) {
      float x = 0, y = 0;
      char tail = 0;
      if (std::sscanf(p.c_str(), "%f,%f%c", &x, &y, &tail) != 2 || x < 0 || y < 0 || x >= args->opt.width ||
          y >= args->opt.height)
        throw UsageError("view: --pick '" + p + "' is not a pixel X,Y inside the " + std::to_string(args->opt.width) +
                         "x" + std::to_string(args->opt.height) + " image");
      args->opt.picks.push_back({x, y});
    }
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
      auto picked = viewer::render_screenshot(scene, args->opt, args->screenshot);
      for (size_t k = 0; k < picked.size(); ++k)
        std::cout << "pick " << args->picks[k] << ": "
                  << (picked[k] < 0 ? std::string("no point") : scene.describe_point(picked[k])) << "\n";
      if (!args->quiet) std::cout << "wrote " << args->screenshot << "\n";
      return;
    }
    viewer::run_viewer_window(scene, args->opt);
  });
}

}  // namespace ewa::app
