// Legend, title and pick overlays drawn with OpenCV onto RGB images; the window shows the same
// legend image, and screenshots have it burned in. Without OpenCV only paste/hconcat work.
#include "ewa/viewer/legend_image.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#ifdef EWA_VIEWER_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace ewa::viewer {

RgbImage::RgbImage(int w, int h, Rgb8 fill) : width(w), height(h), data(static_cast<size_t>(w) * h * 3) {
  for (size_t i = 0; i < data.size(); i += 3) std::memcpy(&data[i], fill.data(), 3);
}

void paste(RgbImage& dst, const RgbImage& src, int x, int y) {
  const int x0 = std::max(0, x), y0 = std::max(0, y);
  const int x1 = std::min(dst.width, x + src.width), y1 = std::min(dst.height, y + src.height);
  if (x0 >= x1 || y0 >= y1) return;
  for (int r = y0; r < y1; ++r) std::memcpy(dst.at(x0, r), src.at(x0 - x, r - y), static_cast<size_t>(x1 - x0) * 3);
}

RgbImage hconcat(const std::vector<RgbImage>& images, int gap, Rgb8 sep) {
  if (images.empty()) return {};
  int w = 0;
  for (const auto& im : images) {
    if (im.height != images[0].height) throw std::invalid_argument("hconcat: images of different heights");
    w += im.width;
  }
  w += gap * static_cast<int>(images.size() - 1);
  RgbImage out(w, images[0].height, sep);
  int x = 0;
  for (const auto& im : images) {
    paste(out, im, x, 0);
    x += im.width + gap;
  }
  return out;
}

double overlay_scale(int width, int height) {
  return std::clamp(std::min(width * 1.25, static_cast<double>(height)) / 800.0, 0.55, 2.5);
}

#ifdef EWA_VIEWER_HAVE_OPENCV

namespace {

constexpr int kOverlayFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kOverlayInk(20, 20, 20);
const cv::Scalar kOverlayPaper(248, 248, 248);
const cv::Scalar kOverlayEdge(150, 150, 150);

cv::Mat as_mat(RgbImage& im) { return cv::Mat(im.height, im.width, CV_8UC3, im.data.data()); }

cv::Size overlay_text_size(const std::string& s, double fs, int thick) {
  int base = 0;
  return cv::getTextSize(s.empty() ? " " : s, kOverlayFont, fs, thick, &base);
}

}  // namespace

bool overlay_text_available() { return true; }

RgbImage render_legend(const Legend& lg, double scale, int max_rows) {
  const double fs = 0.45 * scale;
  const int thick = std::max(1, static_cast<int>(scale + 0.25));
  const int pad = static_cast<int>(8 * scale), gap = static_cast<int>(6 * scale);
  const int line = overlay_text_size("Hg", fs, thick).height + static_cast<int>(8 * scale);
  const int sw = line - static_cast<int>(4 * scale);  // swatch side

  std::vector<LegendRow> rows(lg.rows.begin(), lg.rows.begin() + std::min<size_t>(lg.rows.size(), static_cast<size_t>(max_rows)));
  std::vector<std::string> notes;
  if (lg.rows.size() > rows.size()) notes.push_back("... " + std::to_string(lg.rows.size() - rows.size()) + " more classes");
  notes.insert(notes.end(), lg.notes.begin(), lg.notes.end());

  int name_w = 0, value_w = 0;
  for (const auto& r : rows) {
    name_w = std::max(name_w, overlay_text_size(r.name, fs, thick).width);
    value_w = std::max(value_w, overlay_text_size(r.value, fs, thick).width);
  }
  int width = rows.empty() ? 0 : sw + gap + name_w + (value_w > 0 ? 2 * gap + value_w : 0);
  width = std::max(width, overlay_text_size(lg.title, fs * 1.15, thick).width);
  for (const auto& n : notes) width = std::max(width, overlay_text_size(n, fs, thick).width);
  width += 2 * pad;
  const int height = 2 * pad + line * static_cast<int>(1 + rows.size() + notes.size());

  RgbImage out(width, height, {248, 248, 248});
  cv::Mat m = as_mat(out);
  cv::rectangle(m, cv::Rect(0, 0, width, height), kOverlayEdge, 1);
  int y = pad;
  auto baseline = [&](int top) { return top + line - static_cast<int>(6 * scale); };
  cv::putText(m, lg.title, {pad, baseline(y)}, kOverlayFont, fs * 1.15, kOverlayInk, thick, cv::LINE_AA);
  y += line;
  for (const auto& r : rows) {
    const int top = y + (line - sw) / 2;
    cv::rectangle(m, cv::Rect(pad, top, sw, sw), cv::Scalar(r.color[0], r.color[1], r.color[2]), cv::FILLED);
    cv::rectangle(m, cv::Rect(pad, top, sw, sw), kOverlayEdge, 1);
    cv::putText(m, r.name, {pad + sw + gap, baseline(y)}, kOverlayFont, fs, kOverlayInk, thick, cv::LINE_AA);
    if (!r.value.empty())
      cv::putText(m, r.value, {pad + sw + 3 * gap + name_w, baseline(y)}, kOverlayFont, fs, kOverlayInk, thick, cv::LINE_AA);
    y += line;
  }
  for (const auto& n : notes) {
    cv::putText(m, n, {pad, baseline(y)}, kOverlayFont, fs, kOverlayInk, thick, cv::LINE_AA);
    y += line;
  }
  return out;
}

int draw_text_box(RgbImage& dst, const std::string& text, int x, int y, double scale) {
  if (dst.empty()) return 0;
  const double fs = 0.5 * scale;
  const int thick = std::max(1, static_cast<int>(scale + 0.25));
  const int pad = static_cast<int>(6 * scale);
  cv::Size ts = overlay_text_size(text, fs, thick);
  ts.height = overlay_text_size("Hg", fs, thick).height;
  RgbImage box(ts.width + 2 * pad, text_box_height(scale), {248, 248, 248});
  cv::Mat m = as_mat(box);
  cv::rectangle(m, cv::Rect(0, 0, box.width, box.height), kOverlayEdge, 1);
  cv::putText(m, text, {pad, pad + ts.height}, kOverlayFont, fs, kOverlayInk, thick, cv::LINE_AA);
  paste(dst, box, x, y);
  return box.height;
}

int text_box_height(double scale) {
  const int thick = std::max(1, static_cast<int>(scale + 0.25));
  return overlay_text_size("Hg", 0.5 * scale, thick).height + 2 * static_cast<int>(6 * scale) + static_cast<int>(4 * scale);
}

void draw_marker(RgbImage& dst, int x, int y, int r) {
  if (dst.empty()) return;
  cv::Mat m = as_mat(dst);
  cv::circle(m, {x, y}, r + 1, cv::Scalar(0, 0, 0), 2, cv::LINE_AA);
  cv::circle(m, {x, y}, std::max(1, r - 1), cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
}

#else  // no OpenCV: no text

bool overlay_text_available() { return false; }
RgbImage render_legend(const Legend&, double, int) { return {}; }
int draw_text_box(RgbImage&, const std::string&, int, int, double) { return 0; }
int text_box_height(double) { return 0; }
void draw_marker(RgbImage&, int, int, int) {}

#endif

}  // namespace ewa::viewer
