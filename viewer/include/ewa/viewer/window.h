// The Open3D GUI on top of the scene model: an interactive window with a side panel, an
// offscreen screenshot renderer, and an error window. Without EWA_HAVE_VIEWER_GUI every entry
// point throws a runtime_error that says how to get the GUI build.
#pragma once

#include <array>
#include <string>

#include "ewa/viewer/scene.h"

namespace ewa::viewer {

struct ViewerOptions {
  std::string mode;                 ///< initial colour mode ("" = scene default)
  int width = 1280, height = 800;   ///< window or screenshot size in pixels
  float point_size = 3.0f;          ///< pixels
  std::array<float, 3> background{1.0f, 1.0f, 1.0f};
  std::string up = "z";             ///< world up axis: x|y|z|-x|-y|-z (-y for camera frames)
  std::string title = "ewa view";
};

/// True when this build has the Open3D window (EWA_HAVE_VIEWER_GUI).
bool gui_available();

/// Opens the interactive window and blocks until it is closed. Needs an X display.
void run_viewer_window(Scene& scene, const ViewerOptions& opt);

/// Renders `scene` offscreen in opt.mode at opt.width x opt.height and writes a PNG to
/// `png_path`. Needs an X display (use `xvfb-run -a` on headless machines).
void render_screenshot(const Scene& scene, const ViewerOptions& opt, const std::string& png_path);

/// Shows `message` in a small window (for load errors) and blocks until it is closed.
void show_error_window(const std::string& title, const std::string& message);

}  // namespace ewa::viewer
