// Raster overlays for the viewer: legends, pane titles, pick markers and text boxes drawn onto
// RGB images (OpenCV), so screenshots carry the same legend as the window. GUI-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ewa/viewer/scene.h"

namespace ewa::viewer {

/// An 8-bit RGB image, row-major [height * width * 3].
struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> data;

  RgbImage() = default;
  RgbImage(int w, int h, Rgb8 fill = {255, 255, 255});
  bool empty() const { return width == 0 || height == 0; }
  const uint8_t* at(int x, int y) const { return &data[(static_cast<size_t>(y) * width + x) * 3]; }
  uint8_t* at(int x, int y) { return &data[(static_cast<size_t>(y) * width + x) * 3]; }
};

/// True when this build can draw text (OpenCV found); without it the functions below draw
/// nothing and render_legend() returns an empty image.
bool overlay_text_available();

/// The legend as an opaque box (light background, thin border): title, one row per entry
/// (colour swatch, name, value), then the notes. `scale` 1.0 suits an 800-pixel-high image.
/// At most `max_rows` rows are drawn; the rest are summarised in one "... N more" line.
RgbImage render_legend(const Legend& legend, double scale = 1.0, int max_rows = 24);

/// Copies `src` into `dst` with its top-left corner at (x, y), clipped to `dst`.
void paste(RgbImage& dst, const RgbImage& src, int x, int y);

/// Text on a light box with its top-left corner at (x, y) (clipped); returns the box height.
int draw_text_box(RgbImage& dst, const std::string& text, int x, int y, double scale = 1.0);

/// Height of one draw_text_box() line at `scale` (0 without OpenCV).
int text_box_height(double scale = 1.0);

/// A ring of radius r (pixels) around (x, y), black outside and white inside, for picks.
void draw_marker(RgbImage& dst, int x, int y, int r);

/// Horizontal concatenation with a `gap`-pixel separator of colour `sep`; heights must match.
RgbImage hconcat(const std::vector<RgbImage>& images, int gap = 2, Rgb8 sep = {90, 90, 90});

/// The scale used for overlays on an image of this size (font grows with the image).
double overlay_scale(int width, int height);

}  // namespace ewa::viewer
