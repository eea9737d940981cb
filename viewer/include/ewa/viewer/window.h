// The Open3D GUI on top of the scene model: an interactive window (one pane, or ground truth |
// prediction side by side with linked cameras; click picking; legend overlay; help), an
// offscreen screenshot renderer with the legend burned in, and an error window. Without
// EWA_HAVE_VIEWER_GUI every entry point throws a runtime_error that says how to get the GUI build.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "ewa/viewer/scene.h"

namespace ewa::viewer {

struct ViewerOptions {
  std::string mode;                 ///< colour mode of the (right) pane ("" = scene default)
  bool side_by_side = false;        ///< two panes, `left_mode` | `mode`, one shared camera
  std::string left_mode = "gt";     ///< colour mode of the left pane in side-by-side view
  bool legend = true;               ///< legend overlay (window and screenshots)
  int width = 1280, height = 800;   ///< window or screenshot size in pixels (all panes)
  float point_size = 3.0f;          ///< pixels
  std::array<float, 3> background{1.0f, 1.0f, 1.0f};
  std::string up = "z";             ///< world up axis: x|y|z|-x|-y|-z (-y for camera frames)
  std::string title = "ewa view";
  /// Screenshot only: pixels (x, y) of the whole image to pick, as a click would; the picked
  /// points are marked in every pane and described at the bottom of the image.
  std::vector<std::array<float, 2>> picks;
};

/// The colour mode of each pane (one, or two for side by side), validated against the scene:
/// an unavailable mode is a runtime_error saying what data it needs.
std::vector<ColorMode> pane_modes(const Scene& scene, const ViewerOptions& opt);

/// True when this build has the Open3D window (EWA_HAVE_VIEWER_GUI).
bool gui_available();

/// Opens the interactive window and blocks until it is closed. Needs an X display.
void run_viewer_window(Scene& scene, const ViewerOptions& opt);

/// Renders `scene` offscreen (every pane of pane_modes(), legends unless opt.legend is false)
/// at opt.width x opt.height and writes a PNG to `png_path`. Returns, per opt.picks entry,
/// the picked point index (into the full cloud) or -1. Needs an X display (use `xvfb-run -a`
/// on headless machines).
std::vector<int64_t> render_screenshot(const Scene& scene, const ViewerOptions& opt, const std::string& png_path);

/// Shows `message` in a small window (for load errors) and blocks until it is closed.
void show_error_window(const std::string& title, const std::string& message);

}  // namespace ewa::viewer
