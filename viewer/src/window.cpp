// Open3D GUI window over the scene model: one pane or two side by side (ground truth |
// prediction, linked cameras), click picking, legend overlays, a side panel (colour modes,
// classes with counts and IoU, picked point, help) and an offscreen renderer for --screenshot
// that burns the legends in. Compiled to throwing stubs without EWA_HAVE_VIEWER_GUI.
#include "ewa/viewer/window.h"

#include <stdexcept>

namespace ewa::viewer {

namespace {
ColorMode checked_mode(const Scene& s, const std::string& name, ColorMode fallback) {
  ColorMode m = name.empty() ? fallback : parse_color_mode(name);
  if (!s.mode_available(m))
    throw std::runtime_error(s.source() + ": colour mode '" + color_mode_name(m) + "' is not available (needs " +
                             (m == ColorMode::kError        ? "both ground-truth and prediction labels"
                              : m == ColorMode::kConfidence ? "a confidence field"
                                                            : std::string(color_mode_name(m)) + " labels") +
                             ")");
  return m;
}
}  // namespace

std::vector<ColorMode> pane_modes(const Scene& scene, const ViewerOptions& opt) {
  if (!opt.side_by_side) return {checked_mode(scene, opt.mode, scene.default_mode())};
  if (!scene.has_gt() || !scene.has_pred())
    throw std::runtime_error(scene.source() +
                             ": side-by-side view needs ground truth and prediction (a file with both, or "
                             "--gt / --pred / a second file)");
  return {checked_mode(scene, opt.left_mode, ColorMode::kGt), checked_mode(scene, opt.mode, ColorMode::kPred)};
}

}  // namespace ewa::viewer

#ifndef EWA_HAVE_VIEWER_GUI

namespace ewa::viewer {

namespace {
[[noreturn]] void no_gui() {
  throw std::runtime_error(
      "built without the viewer GUI (EWA_BUILD_VIEWER=OFF or Open3D missing: install libopen3d-dev "
      "open3d-gui-data)");
}
}  // namespace

bool gui_available() { return false; }
void run_viewer_window(Scene&, const ViewerOptions&) { no_gui(); }
std::vector<int64_t> render_screenshot(const Scene&, const ViewerOptions&, const std::string&) { no_gui(); }
void show_error_window(const std::string&, const std::string&) { no_gui(); }

}  // namespace ewa::viewer

#else  // EWA_HAVE_VIEWER_GUI

#include <open3d/Open3D.h>
#include <open3d/visualization/gui/ColorEdit.h>
#include <open3d/visualization/gui/ImageWidget.h>
#include <open3d/visualization/rendering/ColorGrading.h>
#include <open3d/visualization/rendering/Open3DScene.h>
#include <open3d/visualization/rendering/filament/FilamentEngine.h>
#include <open3d/visualization/rendering/filament/FilamentRenderer.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "ewa/viewer/legend_image.h"

namespace ewa::viewer {

namespace gui = open3d::visualization::gui;
namespace rendering = open3d::visualization::rendering;

namespace {

constexpr const char* kGeometry = "cloud";
constexpr const char* kPickGeometry = "picked";
constexpr float kFovDeg = 60.0f;
constexpr int kPaneGap = 2;  // pixels between side-by-side panes

void require_display() {
  const char* d = std::getenv("DISPLAY");
  if (d == nullptr || *d == '\0')
    throw std::runtime_error(
        "no X display for the viewer (DISPLAY is unset); on a headless machine run it under "
        "Xvfb: xvfb-run -a -s \"-screen 0 1280x1024x24\" ewa view ...");
}

void init_application() {
  static bool done = false;
  if (done) return;
  require_display();
  if (!std::filesystem::exists(EWA_OPEN3D_RESOURCES))
    throw std::runtime_error(std::string("Open3D GUI resources not found at ") + EWA_OPEN3D_RESOURCES +
                             " (install open3d-gui-data)");
  open3d::utility::SetVerbosityLevel(open3d::utility::VerbosityLevel::Warning);
  gui::Application::GetInstance().Initialize(EWA_OPEN3D_RESOURCES);
  done = true;
}

Eigen::Vector3f axis_vector(const std::string& up) {
  if (up == "x") return {1, 0, 0};
  if (up == "-x") return {-1, 0, 0};
  if (up == "y") return {0, 1, 0};
  if (up == "-y") return {0, -1, 0};
  if (up == "z") return {0, 0, 1};
  if (up == "-z") return {0, 0, -1};
  throw std::invalid_argument("unknown up axis '" + up + "' (x|y|z|-x|-y|-z)");
}

struct CameraPose {
  Eigen::Vector3f center, eye, up;
  float radius;
};

// An oblique view from the "front" side of the cloud, framing its bounding sphere in a
// viewport of this aspect (width / height; narrow side-by-side panes step back).
CameraPose default_pose(const Scene& s, const std::string& up_axis, float aspect = 1.5f) {
  auto mn = s.bounds_min(), mx = s.bounds_max();
  Eigen::Vector3f lo(mn[0], mn[1], mn[2]), hi(mx[0], mx[1], mx[2]);
  Eigen::Vector3f c = 0.5f * (lo + hi);
  float r = std::max(0.5f * (hi - lo).norm(), 1e-3f);
  Eigen::Vector3f u = axis_vector(up_axis);
  // Eye side: -y for z-up rooms, -z for camera frames (y down), +z for y-up models.
  Eigen::Vector3f f = std::abs(u.z()) > 0.5f ? Eigen::Vector3f(0, -1, 0)
                      : u.y() < -0.5f        ? Eigen::Vector3f(0, 0, -1)
                      : u.y() > 0.5f         ? Eigen::Vector3f(0, 0, 1)
                                             : Eigen::Vector3f(0, -1, 0);
  Eigen::Vector3f side = f.cross(u);
  // Rooms are seen from well above; camera frames from near the sensor (little occlusion).
  float elevation = std::abs(u.z()) > 0.5f ? 0.8f : 0.3f;
  Eigen::Vector3f dir = (1.0f * f + elevation * u + 0.35f * side).normalized();
  const float half_v = kFovDeg * 0.5f * static_cast<float>(M_PI) / 180.f;
  const float half_h = std::atan(std::max(aspect, 0.05f) * std::tan(half_v));
  float dist = 0.95f * r / std::sin(std::min(half_v, half_h));
  return {c, c + dir * dist, u, r};
}

// Filament treats vertex colours as linear and writes sRGB; the scene's colours (palette,
// photos) are sRGB, so decode them first to get the same colours on screen.
double srgb_to_linear(float c) {
  return c <= 0.04045f ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
}

// The displayed points `idx` (the level-of-detail subsample) coloured in `mode`.
std::shared_ptr<open3d::geometry::PointCloud> make_cloud(const Scene& s, ColorMode mode,
                                                         const std::vector<int64_t>& idx) {
  auto col = s.colors_of(mode, idx);
  const auto& xyz = s.xyz();
  auto pc = std::make_shared<open3d::geometry::PointCloud>();
  pc->points_.resize(idx.size());
  pc->colors_.resize(idx.size());
  for (size_t k = 0; k < idx.size(); ++k) {
    size_t i = static_cast<size_t>(idx[k]) * 3;
    pc->points_[k] = Eigen::Vector3d(xyz[i], xyz[i + 1], xyz[i + 2]);
    pc->colors_[k] = Eigen::Vector3d(srgb_to_linear(col[k * 3]), srgb_to_linear(col[k * 3 + 1]),
                                     srgb_to_linear(col[k * 3 + 2]));
  }
  return pc;
}

rendering::MaterialRecord point_material(float size) {
  rendering::MaterialRecord m;
  m.shader = "defaultUnlit";
  m.point_size = size;
  return m;
}

// A small magenta sphere at a picked point (visible over any colouring).
std::shared_ptr<open3d::geometry::TriangleMesh> pick_marker(const Scene& s, const std::array<float, 3>& p) {
  auto mn = s.bounds_min(), mx = s.bounds_max();
  Eigen::Vector3d ext(mx[0] - mn[0], mx[1] - mn[1], mx[2] - mn[2]);
  auto mesh = open3d::geometry::TriangleMesh::CreateSphere(std::max(1e-4, 0.008 * ext.norm()), 12);
  mesh->Translate(Eigen::Vector3d(p[0], p[1], p[2]));
  mesh->PaintUniformColor(Eigen::Vector3d(1.0, 0.0, 1.0));
  return mesh;
}

// Unlit shading + linear tone mapping: palette colours reach the image unchanged.
void configure_view(rendering::Open3DScene& scene, const std::array<float, 3>& bg) {
  scene.SetBackground({bg[0], bg[1], bg[2], 1.0f});
  scene.ShowAxes(false);
  scene.GetView()->SetColorGrading(rendering::ColorGradingParams(rendering::ColorGradingParams::Quality::kUltra,
                                                                 rendering::ColorGradingParams::ToneMapping::kLinear));
}

// projection * view, column-major, for Scene::pick and marker placement.
std::array<float, 16> clip_from_world(const rendering::Camera& cam) {
  Eigen::Matrix4f m = cam.GetProjectionMatrix().matrix() * cam.GetViewMatrix().matrix();
  std::array<float, 16> a{};
  std::copy(m.data(), m.data() + 16, a.begin());
  return a;
}

// Pixel position of a world point in a width x height viewport; false when not in front.
bool project_to_pixel(const std::array<float, 16>& m, int width, int height, const std::array<float, 3>& p,
                      float& sx, float& sy) {
  const float cx = m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12];
  const float cy = m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13];
  const float cw = m[3] * p[0] + m[7] * p[1] + m[11] * p[2] + m[15];
  if (!(cw > 0.f)) return false;
  sx = (cx / cw * 0.5f + 0.5f) * static_cast<float>(width);
  sy = (0.5f - cy / cw * 0.5f) * static_cast<float>(height);
  return true;
}

float pick_radius(float point_size) { return std::max(4.0f, point_size + 1.0f); }

RgbImage from_o3d_image(const open3d::geometry::Image& im) {
  if (im.bytes_per_channel_ != 1 || im.num_of_channels_ < 3)
    throw std::runtime_error("offscreen rendering returned an unexpected image format");
  RgbImage out(im.width_, im.height_);
  const size_t ch = static_cast<size_t>(im.num_of_channels_);
  for (size_t i = 0, n = static_cast<size_t>(im.width_) * im.height_; i < n; ++i)
    for (size_t c = 0; c < 3; ++c) out.data[i * 3 + c] = im.data_[i * ch + c];
  return out;
}

std::shared_ptr<open3d::geometry::Image> to_o3d_image(const RgbImage& im) {
  auto out = std::make_shared<open3d::geometry::Image>();
  out->Prepare(std::max(1, im.width), std::max(1, im.height), 3, 1);
  if (!im.empty()) std::copy(im.data.begin(), im.data.end(), out->data_.begin());
  return out;
}

// The panes as one image: pick markers, a legend in each pane's top-left corner, the picked
// points described at the bottom-left.
RgbImage compose_panes(const Scene& s, std::vector<RgbImage> panes, const std::vector<ColorMode>& modes,
                       const std::vector<std::array<float, 16>>& clips, const std::vector<int64_t>& picked,
                       bool legend, float point_size) {
  const double scale = overlay_scale(panes.empty() ? 1 : panes[0].width, panes.empty() ? 1 : panes[0].height);
  const int margin = static_cast<int>(8 * scale);
  for (size_t k = 0; k < panes.size(); ++k) {
    for (int64_t p : picked) {
      float sx = 0, sy = 0;
      if (p >= 0 && project_to_pixel(clips[k], panes[k].width, panes[k].height, s.point_info(p).xyz, sx, sy))
        draw_marker(panes[k], static_cast<int>(std::lround(sx)), static_cast<int>(std::lround(sy)),
                    static_cast<int>(pick_radius(point_size) + 3));
    }
    if (legend) paste(panes[k], render_legend(s.legend(modes[k]), scale), margin, margin);
  }
  RgbImage out = hconcat(panes, kPaneGap);
  int y = out.height - margin;
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) {
    if (*it < 0) continue;
    y -= text_box_height(scale);
    draw_text_box(out, s.describe_point(*it), margin, y, scale);
    y -= margin / 2;
  }
  return out;
}

void write_png(const RgbImage& img, const std::string& png_path) {
  std::filesystem::path out(png_path);
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  if (!open3d::io::WriteImage(png_path, *to_o3d_image(img))) throw std::runtime_error(png_path + ": cannot write PNG");
}

const char* kHelp =
    "Mouse: left drag rotate, right drag / ctrl+left drag pan,\n"
    "  wheel zoom, shift+left drag roll; click a point to pick it\n"
    "1..5   colour of the pane under the mouse:\n"
    "       rgb / gt / pred / error / confidence\n"
    "V      side by side: ground truth | prediction\n"
    "L      show / hide the legend overlay\n"
    "+ / -  point size up / down\n"
    "R      reset view\n"
    "B      toggle black / white background\n"
    "A      show all classes\n"
    "C      clear the picked point\n"
    "S      save screenshot (ewa_view_<mode>_<k>.png)\n"
    "H      show / hide this help\n"
    "Q, Esc close the window";

// A SceneWidget that reports clicks (button down and up without a drag) and mouse activity.
class PickSceneWidget : public gui::SceneWidget {
 public:
  std::function<void(int, int)> on_click;  ///< widget-local pixel coordinates
  std::function<void()> on_mouse;

  gui::Widget::EventResult Mouse(const gui::MouseEvent& e) override {
    if (on_mouse) on_mouse();
    if (e.type == gui::MouseEvent::BUTTON_DOWN && e.button.button == gui::MouseButton::LEFT) {
      down_x_ = e.x;
      down_y_ = e.y;
      pressed_ = true;
    } else if (e.type == gui::MouseEvent::DRAG && pressed_) {
      if (std::abs(e.x - down_x_) + std::abs(e.y - down_y_) > 3) pressed_ = false;
    } else if (e.type == gui::MouseEvent::BUTTON_UP && pressed_) {
      pressed_ = false;
      if (on_click) on_click(e.x - GetFrame().x, e.y - GetFrame().y);
    }
    return gui::SceneWidget::Mouse(e);
  }

 private:
  int down_x_ = 0, down_y_ = 0;
  bool pressed_ = false;
};

class ViewerWindow : public gui::Window {
 public:
  ViewerWindow(Scene& scene, const ViewerOptions& opt)
      : gui::Window(opt.title + " - " + scene.source(), opt.width, opt.height), scene_(scene), opt_(opt) {
    auto modes = pane_modes(scene, opt);
    two_ = modes.size() == 2;
    can_compare_ = scene.has_gt() && scene.has_pred();
    panes_[1].mode = modes.back();
    panes_[0].mode = two_ ? modes.front() : (scene.has_gt() ? ColorMode::kGt : modes.back());
    active_ = 1;
    point_size_ = opt.point_size;
    bg_ = opt.background;
    legend_on_ = opt.legend && overlay_text_available();
    const float em = static_cast<float>(GetTheme().font_size);
    const int sp = static_cast<int>(0.4f * em);

    for (int k = 0; k < 2; ++k) {
      Pane& p = panes_[k];
      p.widget = std::make_shared<PickSceneWidget>();
      p.widget->SetScene(std::make_shared<rendering::Open3DScene>(GetRenderer()));
      configure_view(*p.widget->GetScene(), bg_);
      p.widget->on_click = [this, k](int x, int y) { pick_at(k, x, y); };
      p.widget->on_mouse = [this, k] { active_ = k; };
      p.widget->SetOnCameraChanged([this, k](rendering::Camera* cam) { sync_camera(k, cam); });
      AddChild(p.widget);
    }
    for (int k = 0; k < 2; ++k) {  // legends after the scenes: drawn on top
      panes_[k].legend = std::make_shared<gui::ImageWidget>(to_o3d_image(RgbImage(1, 1)));
      AddChild(panes_[k].legend);
    }

    panel_ = std::make_shared<gui::ScrollableVert>(sp, gui::Margins(sp, sp, sp, sp));
    std::ostringstream head;
    head << std::filesystem::path(scene.source()).filename().string() << "\n" << scene.num_points() << " points";
    if (scene.subsampled()) head << "\n" << scene.subsample_note();
    panel_->AddChild(std::make_shared<gui::Label>(head.str().c_str()));

    // Colour modes: one combo per pane, and the side-by-side switch.
    modes_ = scene.available_modes();
    for (int k = 1; k >= 0; --k) {
      auto row = std::make_shared<gui::Horiz>(sp);
      row_labels_[k] = std::make_shared<gui::Label>(k == 1 ? "Colour" : "Left  ");
      row->AddChild(row_labels_[k]);
      combos_[k] = std::make_shared<gui::Combobox>();
      for (size_t m = 0; m < modes_.size(); ++m) {
        combos_[k]->AddItem(color_mode_name(modes_[m]));
        if (modes_[m] == panes_[k].mode) combos_[k]->SetSelectedIndex(static_cast<int>(m));
      }
      combos_[k]->SetOnValueChanged([this, k](const char*, int i) { set_mode(k, modes_[static_cast<size_t>(i)]); });
      row->AddChild(combos_[k]);
      rows_[k] = row;
    }
    panel_->AddChild(rows_[1]);
    panel_->AddChild(rows_[0]);
    if (can_compare_) {
      compare_box_ = std::make_shared<gui::Checkbox>("Side by side (V)");
      compare_box_->SetChecked(two_);
      compare_box_->SetOnChecked([this](bool on) { set_side_by_side(on); });
      panel_->AddChild(compare_box_);
    }
    legend_box_ = std::make_shared<gui::Checkbox>("Legend overlay (L)");
    legend_box_->SetChecked(legend_on_);
    legend_box_->SetOnChecked([this](bool on) { set_legend(on); });
    panel_->AddChild(legend_box_);

    // Point size and background.
    auto size_row = std::make_shared<gui::Horiz>(sp);
    size_row->AddChild(std::make_shared<gui::Label>("Point size"));
    size_slider_ = std::make_shared<gui::Slider>(gui::Slider::INT);
    size_slider_->SetLimits(1, 12);
    size_slider_->SetValue(point_size_);
    size_slider_->SetOnValueChanged([this](double v) { set_point_size(static_cast<float>(v)); });
    size_row->AddChild(size_slider_);
    panel_->AddChild(size_row);
    auto bg_row = std::make_shared<gui::Horiz>(sp);
    bg_row->AddChild(std::make_shared<gui::Label>("Background"));
    bg_edit_ = std::make_shared<gui::ColorEdit>();
    bg_edit_->SetValue(bg_[0], bg_[1], bg_[2]);
    bg_edit_->SetOnValueChanged([this](const gui::Color& c) { set_background({c.GetRed(), c.GetGreen(), c.GetBlue()}); });
    bg_row->AddChild(bg_edit_);
    panel_->AddChild(bg_row);

    auto buttons = std::make_shared<gui::Horiz>(sp);
    auto reset = std::make_shared<gui::Button>("Reset view");
    reset->SetOnClicked([this] { reset_view(); });
    auto shot = std::make_shared<gui::Button>("Screenshot");
    shot->SetOnClicked([this] { screenshot(); });
    buttons->AddChild(reset);
    buttons->AddChild(shot);
    panel_->AddChild(buttons);

    // Picked point.
    auto pick_box = std::make_shared<gui::CollapsableVert>("Picked point (click)", sp, gui::Margins(sp, 0, 0, 0));
    pick_label_ = std::make_shared<gui::Label>("click a point in the view");
    pick_box->AddChild(pick_label_);
    panel_->AddChild(pick_box);

    // Metrics summary and classes (toggles, counts, IoU).
    const Metrics& m = scene.metrics();
    if (m.has_iou) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), "Overall accuracy %.3f   mIoU %.3f", m.overall_accuracy, m.miou);
      panel_->AddChild(std::make_shared<gui::Label>(buf));
    }
    auto classes = std::make_shared<gui::CollapsableVert>("Classes", sp, gui::Margins(sp, 0, 0, 0));
    auto all_row = std::make_shared<gui::Horiz>(sp);
    auto show_all = std::make_shared<gui::Button>("Show all");
    show_all->SetOnClicked([this] { set_all_visible(true); });
    auto hide_all = std::make_shared<gui::Button>("Hide all");
    hide_all->SetOnClicked([this] { set_all_visible(false); });
    all_row->AddChild(show_all);
    all_row->AddChild(hide_all);
    classes->AddChild(all_row);
    auto grid = std::make_shared<gui::VGrid>(3, sp);
    for (int c = 0; c < scene.labels().size(); ++c) {
      auto col = scene.label_color(c);
      auto swatch = std::make_shared<gui::Button>("    ");
      swatch->SetBackgroundColor(gui::Color(col[0], col[1], col[2]));
      auto box = std::make_shared<gui::Checkbox>(scene.labels().names[static_cast<size_t>(c)].c_str());
      box->SetChecked(true);
      box->SetOnChecked([this, c](bool on) {
        scene_.set_class_visible(c, on);
        update_all();
      });
      checkboxes_.push_back(box);
      const ClassStats& cs = m.classes[static_cast<size_t>(c)];
      std::ostringstream os;
      if (scene.has_gt()) os << "gt " << cs.gt_count;
      if (scene.has_pred()) os << (scene.has_gt() ? "  pred " : "pred ") << cs.pred_count;
      if (m.has_iou && !std::isnan(cs.iou)) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "  IoU %.3f", cs.iou);
        os << buf;
      }
      grid->AddChild(swatch);
      grid->AddChild(box);
      grid->AddChild(std::make_shared<gui::Label>(os.str().c_str()));
    }
    classes->AddChild(grid);
    panel_->AddChild(classes);

    help_ = std::make_shared<gui::CollapsableVert>("Keys (H)", sp, gui::Margins(sp, 0, 0, 0));
    help_->AddChild(std::make_shared<gui::Label>(kHelp));
    help_->SetIsOpen(true);
    panel_->AddChild(help_);
    status_ = std::make_shared<gui::Label>("");
    panel_->AddChild(status_);
    AddChild(panel_);

    SetOnKeyEvent([this](const gui::KeyEvent& e) { return on_key(e); });
    apply_pane_visibility();
    update_all();
    reset_view();
  }

  void Layout(const gui::LayoutContext& context) override {
    auto r = GetContentRect();
    const int em = context.theme.font_size;
    const int pw = std::min(r.width / 2, 26 * em);
    const int view_w = r.width - pw;
    if (two_) {
      const int w0 = (view_w - kPaneGap) / 2;
      panes_[0].widget->SetFrame(gui::Rect(r.x, r.y, w0, r.height));
      panes_[1].widget->SetFrame(gui::Rect(r.x + w0 + kPaneGap, r.y, view_w - w0 - kPaneGap, r.height));
    } else {
      panes_[0].widget->SetFrame(gui::Rect(r.x, r.y, 1, 1));
      panes_[1].widget->SetFrame(gui::Rect(r.x, r.y, view_w, r.height));
    }
    for (int k = 0; k < 2; ++k) {
      Pane& p = panes_[k];
      const auto f = p.widget->GetFrame();
      const double scale = overlay_scale(f.width, f.height);
      if (legend_on_ && std::abs(scale - p.legend_scale) > 1e-3) refresh_legend(k, scale);
      const int margin = static_cast<int>(8 * p.legend_scale);
      p.legend->SetFrame(gui::Rect(f.x + margin, f.y + margin, p.legend_w, p.legend_h));
    }
    panel_->SetFrame(gui::Rect(r.GetRight() - pw, r.y, pw, r.height));
    gui::Window::Layout(context);
  }

 private:
  struct Pane {
    std::shared_ptr<PickSceneWidget> widget;
    std::shared_ptr<gui::ImageWidget> legend;
    ColorMode mode = ColorMode::kRgb;
    std::vector<int64_t> shown;  // display indices (level-of-detail subsample, visible classes)
    double legend_scale = 0;
    int legend_w = 1, legend_h = 1;
  };

  bool visible(int k) const { return k == 1 || two_; }

  void refresh_legend(int k, double scale) {
    Pane& p = panes_[k];
    p.legend_scale = scale;
    RgbImage img = render_legend(scene_.legend(p.mode), scale);
    if (img.empty()) img = RgbImage(1, 1);
    p.legend_w = img.width;
    p.legend_h = img.height;
    p.legend->UpdateImage(to_o3d_image(img));
  }

  void apply_pane_visibility() {
    panes_[0].widget->SetVisible(two_);
    for (int k = 0; k < 2; ++k) panes_[k].legend->SetVisible(legend_on_ && visible(k));
    rows_[0]->SetVisible(two_);
    row_labels_[1]->SetText(two_ ? "Right " : "Colour");
    SetNeedsLayout();
  }

  void set_mode(int k, ColorMode m) {
    if (!scene_.mode_available(m)) {
      status_->SetText((std::string("colour mode '") + color_mode_name(m) + "' needs data this file lacks").c_str());
      return;
    }
    if (!visible(k)) k = 1;
    panes_[k].mode = m;
    for (size_t i = 0; i < modes_.size(); ++i)
      if (modes_[i] == m) combos_[k]->SetSelectedIndex(static_cast<int>(i));
    update_pane(k);
  }

  void set_side_by_side(bool on) {
    if (on && !can_compare_) return;
    two_ = on;
    if (compare_box_) compare_box_->SetChecked(on);
    if (on) {
      panes_[0].widget->GetScene()->GetCamera()->CopyFrom(panes_[1].widget->GetScene()->GetCamera());
      panes_[0].widget->SetCenterOfRotation(panes_[1].widget->GetCenterOfRotation());
      update_pane(0);
    }
    apply_pane_visibility();
  }

  void set_legend(bool on) {
    legend_on_ = on && overlay_text_available();
    legend_box_->SetChecked(legend_on_);
    if (legend_on_)
      for (int k = 0; k < 2; ++k) panes_[k].legend_scale = 0;  // re-render at layout
    apply_pane_visibility();
  }

  void sync_camera(int k, rendering::Camera* cam) {
    active_ = k;
    if (!two_) return;
    Pane& o = panes_[1 - k];
    o.widget->GetScene()->GetCamera()->CopyFrom(cam);
    o.widget->SetCenterOfRotation(panes_[k].widget->GetCenterOfRotation());
    o.widget->ForceRedraw();
  }

  void update_pane(int k) {
    Pane& p = panes_[k];
    p.shown = scene_.display_indices(p.mode);
    auto pc = make_cloud(scene_, p.mode, p.shown);
    auto s = p.widget->GetScene();
    if (s->HasGeometry(kGeometry)) s->RemoveGeometry(kGeometry);
    if (!pc->points_.empty()) s->AddGeometry(kGeometry, pc.get(), point_material(point_size_));
    if (legend_on_) refresh_legend(k, p.legend_scale > 0 ? p.legend_scale : 1.0);
    p.widget->ForceRedraw();
    SetNeedsLayout();
  }

  void update_all() {
    for (int k = 0; k < 2; ++k)
      if (visible(k)) update_pane(k);
  }

  void clear_pick() {
    show_pick(-1);
    pick_label_->SetText("click a point in the view");
  }

  void pick_at(int k, int x, int y) {
    Pane& p = panes_[k];
    const auto f = p.widget->GetFrame();
    show_pick(scene_.pick(clip_from_world(*p.widget->GetScene()->GetCamera()), f.width, f.height,
                          static_cast<float>(x), static_cast<float>(y), pick_radius(point_size_), p.shown));
  }

  // Marks point i (or nothing for -1) in every pane and describes it in the panel.
  void show_pick(int64_t i) {
    picked_ = i;
    for (auto& q : panes_) {
      auto s = q.widget->GetScene();
      if (s->HasGeometry(kPickGeometry)) s->RemoveGeometry(kPickGeometry);
      if (i >= 0) {
        rendering::MaterialRecord mat;
        mat.shader = "defaultUnlit";
        s->AddGeometry(kPickGeometry, pick_marker(scene_, scene_.point_info(i).xyz).get(), mat);
      }
      q.widget->ForceRedraw();
    }
    if (i < 0) {
      pick_label_->SetText("no point under the cursor");
    } else {
      pick_label_->SetText(scene_.describe_point(i, "\n").c_str());
      std::cout << scene_.describe_point(i) << std::endl;
    }
    SetNeedsLayout();
  }

  void set_point_size(float v) {
    point_size_ = std::clamp(v, 1.0f, 12.0f);
    size_slider_->SetValue(point_size_);
    for (auto& p : panes_) {
      auto s = p.widget->GetScene();
      if (s->HasGeometry(kGeometry)) s->ModifyGeometryMaterial(kGeometry, point_material(point_size_));
      p.widget->ForceRedraw();
    }
  }

  void set_background(const std::array<float, 3>& c) {
    bg_ = c;
    bg_edit_->SetValue(c[0], c[1], c[2]);
    for (auto& p : panes_) {
      p.widget->GetScene()->SetBackground({c[0], c[1], c[2], 1.0f});
      p.widget->ForceRedraw();
    }
  }

  void set_all_visible(bool on) {
    scene_.set_all_visible(on);
    for (auto& b : checkboxes_) b->SetChecked(on);
    update_all();
  }

  void reset_view() {
    const auto f = panes_[1].widget->GetFrame();
    const float aspect = f.height > 0 ? static_cast<float>(f.width) / static_cast<float>(f.height) : 1.5f;
    CameraPose p = default_pose(scene_, opt_.up, two_ ? 0.5f * aspect : aspect);
    auto mn = scene_.bounds_min(), mx = scene_.bounds_max();
    open3d::geometry::AxisAlignedBoundingBox bb(Eigen::Vector3d(mn[0], mn[1], mn[2]), Eigen::Vector3d(mx[0], mx[1], mx[2]));
    for (auto& q : panes_) {
      q.widget->SetupCamera(kFovDeg, bb, p.center);
      q.widget->LookAt(p.center, p.eye, p.up);
      q.widget->ForceRedraw();
    }
  }

  // Renders the visible panes (asynchronously, in the render thread), then composes them with
  // legends and the pick marker like --screenshot and writes the PNG on the main thread.
  void screenshot() {
    std::string path;
    for (int k = 0;; ++k) {
      path = std::string("ewa_view_") + color_mode_name(panes_[1].mode) + "_" + std::to_string(k) + ".png";
      if (!std::filesystem::exists(path)) break;
    }
    struct Shot {
      std::vector<std::shared_ptr<open3d::geometry::Image>> images;
      std::vector<ColorMode> modes;
      std::vector<std::array<float, 16>> clips;
      std::atomic<int> done{0};
    };
    auto shot = std::make_shared<Shot>();
    std::vector<int> ks = two_ ? std::vector<int>{0, 1} : std::vector<int>{1};
    shot->images.resize(ks.size());
    for (int k : ks) {
      shot->modes.push_back(panes_[k].mode);
      shot->clips.push_back(clip_from_world(*panes_[k].widget->GetScene()->GetCamera()));
    }
    for (size_t j = 0; j < ks.size(); ++j) {
      panes_[ks[j]].widget->GetScene()->GetScene()->RenderToImage(
          [this, shot, j, path](std::shared_ptr<open3d::geometry::Image> img) {
            shot->images[j] = img;
            if (++shot->done != static_cast<int>(shot->images.size())) return;
            gui::Application::GetInstance().PostToMainThread(this, [this, shot, path] {
              std::string msg;
              try {
                std::vector<RgbImage> panes;
                for (auto& im : shot->images) {
                  if (!im) throw std::runtime_error("the renderer returned no image");
                  panes.push_back(from_o3d_image(*im));
                }
                int h = panes[0].height;
                for (auto& pimg : panes)
                  if (pimg.height != h) throw std::runtime_error("pane images of different heights");
                write_png(compose_panes(scene_, panes, shot->modes, shot->clips, {picked_}, legend_on_, point_size_), path);
                msg = "saved " + path;
              } catch (const std::exception& e) {
                msg = std::string("screenshot failed: ") + e.what();
              }
              status_->SetText(msg.c_str());
            });
          });
    }
  }

  bool on_key(const gui::KeyEvent& e) {
    if (e.type != gui::KeyEvent::DOWN) return false;
    const int k = visible(active_) ? active_ : 1;
    switch (e.key) {
      case gui::KEY_1: set_mode(k, ColorMode::kRgb); return true;
      case gui::KEY_2: set_mode(k, ColorMode::kGt); return true;
      case gui::KEY_3: set_mode(k, ColorMode::kPred); return true;
      case gui::KEY_4: set_mode(k, ColorMode::kError); return true;
      case gui::KEY_5: set_mode(k, ColorMode::kConfidence); return true;
      case gui::KEY_V:
        if (!can_compare_) status_->SetText("side by side needs ground truth and prediction");
        else set_side_by_side(!two_);
        return true;
      case gui::KEY_L: set_legend(!legend_on_); return true;
      case gui::KEY_EQUALS:
      case gui::KEY_PLUS: set_point_size(point_size_ + 1); return true;
      case gui::KEY_MINUS: set_point_size(point_size_ - 1); return true;
      case gui::KEY_R: reset_view(); return true;
      case gui::KEY_B: set_background(bg_[0] > 0.5f ? std::array<float, 3>{0, 0, 0} : std::array<float, 3>{1, 1, 1}); return true;
      case gui::KEY_A: set_all_visible(true); return true;
      case gui::KEY_C: clear_pick(); return true;
      case gui::KEY_S: screenshot(); return true;
      case gui::KEY_H:
        help_->SetIsOpen(!help_->GetIsOpen());
        SetNeedsLayout();
        return true;
      case gui::KEY_Q:
      case gui::KEY_ESCAPE: Close(); return true;
      default: return false;
    }
  }

  Scene& scene_;
  ViewerOptions opt_;
  Pane panes_[2];  // [0] left (side by side only), [1] the main / right pane
  bool two_ = false, can_compare_ = false, legend_on_ = true;
  int active_ = 1;
  int64_t picked_ = -1;
  float point_size_ = 3.0f;
  std::array<float, 3> bg_{1, 1, 1};
  std::vector<ColorMode> modes_;
  std::shared_ptr<gui::ScrollableVert> panel_;
  std::shared_ptr<gui::Horiz> rows_[2];
  std::shared_ptr<gui::Label> row_labels_[2];
  std::shared_ptr<gui::Combobox> combos_[2];
  std::shared_ptr<gui::Checkbox> compare_box_, legend_box_;
  std::shared_ptr<gui::Slider> size_slider_;
  std::shared_ptr<gui::ColorEdit> bg_edit_;
  std::shared_ptr<gui::CollapsableVert> help_;
  std::shared_ptr<gui::Label> pick_label_, status_;
  std::vector<std::shared_ptr<gui::Checkbox>> checkboxes_;
};

}  // namespace

bool gui_available() { return true; }

void run_viewer_window(Scene& scene, const ViewerOptions& opt) {
  pane_modes(scene, opt);  // validate before opening anything
  init_application();
  auto& app = gui::Application::GetInstance();
  app.AddWindow(std::make_shared<ViewerWindow>(scene, opt));
  app.Run();
}

std::vector<int64_t> render_screenshot(const Scene& scene, const ViewerOptions& opt, const std::string& png_path) {
  const std::vector<ColorMode> modes = pane_modes(scene, opt);
  if (opt.width < 16 || opt.height < 16 || opt.width > 8192 || opt.height > 8192)
    throw std::invalid_argument("screenshot size " + std::to_string(opt.width) + "x" + std::to_string(opt.height) +
                                " outside 16..8192");
  const int n = static_cast<int>(modes.size());
  std::vector<int> widths(static_cast<size_t>(n), opt.width), offsets(static_cast<size_t>(n), 0);
  if (n == 2) {
    widths[0] = (opt.width - kPaneGap) / 2;
    widths[1] = opt.width - kPaneGap - widths[0];
    offsets[1] = widths[0] + kPaneGap;
  }
  init_application();
  auto& app = gui::Application::GetInstance();
  std::vector<RgbImage> panes;
  std::vector<std::array<float, 16>> clips;
  std::vector<std::vector<int64_t>> shown;
  const CameraPose pose = default_pose(scene, opt.up, static_cast<float>(widths.back()) / static_cast<float>(opt.height));
  for (int k = 0; k < n; ++k) {
    shown.push_back(scene.display_indices(modes[static_cast<size_t>(k)]));
    auto pc = make_cloud(scene, modes[static_cast<size_t>(k)], shown.back());
    const int w = widths[static_cast<size_t>(k)];
    auto renderer = std::make_unique<rendering::FilamentRenderer>(rendering::EngineInstance::GetInstance(), w,
                                                                  opt.height, rendering::EngineInstance::GetResourceManager());
    std::shared_ptr<open3d::geometry::Image> img;
    {
      auto o3d_scene = std::make_unique<rendering::Open3DScene>(*renderer);
      configure_view(*o3d_scene, opt.background);
      if (!pc->points_.empty()) o3d_scene->AddGeometry(kGeometry, pc.get(), point_material(opt.point_size));
      float aspect = static_cast<float>(w) / static_cast<float>(opt.height);
      float dist = (pose.eye - pose.center).norm();
      auto* cam = o3d_scene->GetCamera();
      cam->SetProjection(kFovDeg, aspect, std::max(1e-3f, 0.01f * pose.radius), dist + 4.f * pose.radius,
                         rendering::Camera::FovType::Vertical);
      cam->LookAt(pose.center, pose.eye, pose.up);
      clips.push_back(clip_from_world(*cam));
      img = app.RenderToImage(*renderer, o3d_scene->GetView(), o3d_scene->GetScene(), w, opt.height);
    }
    renderer.reset();
    if (!img || img->width_ != w || img->height_ != opt.height)
      throw std::runtime_error("offscreen rendering returned no image of the requested size");
    panes.push_back(from_o3d_image(*img));
  }
  rendering::EngineInstance::DestroyInstance();

  // Picks, as clicks at whole-image pixels: the pane under the pixel, then Scene::pick.
  std::vector<int64_t> picked;
  for (const auto& px : opt.picks) {
    int64_t i = -1;
    for (int k = 0; k < n; ++k) {
      const float lx = px[0] - static_cast<float>(offsets[static_cast<size_t>(k)]);
      if (lx < 0 || lx >= static_cast<float>(widths[static_cast<size_t>(k)])) continue;
      i = scene.pick(clips[static_cast<size_t>(k)], widths[static_cast<size_t>(k)], opt.height, lx, px[1],
                     pick_radius(opt.point_size), shown[static_cast<size_t>(k)]);
    }
    picked.push_back(i);
  }
  write_png(compose_panes(scene, std::move(panes), modes, clips, picked, opt.legend, opt.point_size), png_path);
  return picked;
}

void show_error_window(const std::string& title, const std::string& message) {
  init_application();
  auto& app = gui::Application::GetInstance();
  auto w = std::make_shared<gui::Window>(title, 640, 200);
  const int em = w->GetTheme().font_size;
  auto layout = std::make_shared<gui::Vert>(em / 2, gui::Margins(em, em, em, em));
  auto label = std::make_shared<gui::Label>(message.c_str());
  label->SetTextColor(gui::Color(0.9f, 0.2f, 0.2f));
  layout->AddChild(label);
  auto ok = std::make_shared<gui::Button>("Close");
  gui::Window* raw = w.get();
  ok->SetOnClicked([raw] { raw->Close(); });
  layout->AddStretch();
  layout->AddChild(ok);
  w->AddChild(layout);
  app.AddWindow(w);
  app.Run();
}

}  // namespace ewa::viewer

#endif  // EWA_HAVE_VIEWER_GUI
