// Open3D GUI window over the scene model (side panel: colour mode, legend with per-class
// toggles, counts and IoU, point size, background, reset view, help, screenshot) and an
// offscreen renderer for --screenshot. Compiled to throwing stubs without EWA_HAVE_VIEWER_GUI.
#include "ewa/viewer/window.h"

#include <stdexcept>

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
void render_screenshot(const Scene&, const ViewerOptions&, const std::string&) { no_gui(); }
void show_error_window(const std::string&, const std::string&) { no_gui(); }

}  // namespace ewa::viewer

#else  // EWA_HAVE_VIEWER_GUI

#include <open3d/Open3D.h>
#include <open3d/visualization/gui/ColorEdit.h>
#include <open3d/visualization/rendering/ColorGrading.h>
#include <open3d/visualization/rendering/Open3DScene.h>
#include <open3d/visualization/rendering/filament/FilamentEngine.h>
#include <open3d/visualization/rendering/filament/FilamentRenderer.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>

namespace ewa::viewer {

namespace gui = open3d::visualization::gui;
namespace rendering = open3d::visualization::rendering;

namespace {

constexpr const char* kGeometry = "cloud";
constexpr float kFovDeg = 60.0f;

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

// An oblique view from the "front" side of the cloud, framing its bounding sphere.
CameraPose default_pose(const Scene& s, const std::string& up_axis) {
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
  float dist = 0.95f * r / std::sin(kFovDeg * 0.5f * static_cast<float>(M_PI) / 180.f);
  return {c, c + dir * dist, u, r};
}

// Filament treats vertex colours as linear and writes sRGB; the scene's colours (palette,
// photos) are sRGB, so decode them first to get the same colours on screen.
double srgb_to_linear(float c) {
  return c <= 0.04045f ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
}

std::shared_ptr<open3d::geometry::PointCloud> make_cloud(const Scene& s, ColorMode mode) {
  auto idx = s.display_indices(mode);
  auto col = s.colors(mode);
  const auto& xyz = s.xyz();
  auto pc = std::make_shared<open3d::geometry::PointCloud>();
  pc->points_.resize(idx.size());
  pc->colors_.resize(idx.size());
  for (size_t k = 0; k < idx.size(); ++k) {
    size_t i = static_cast<size_t>(idx[k]) * 3;
    pc->points_[k] = Eigen::Vector3d(xyz[i], xyz[i + 1], xyz[i + 2]);
    pc->colors_[k] = Eigen::Vector3d(srgb_to_linear(col[i]), srgb_to_linear(col[i + 1]), srgb_to_linear(col[i + 2]));
  }
  return pc;
}

rendering::MaterialRecord point_material(float size) {
  rendering::MaterialRecord m;
  m.shader = "defaultUnlit";
  m.point_size = size;
  return m;
}

// Unlit shading + linear tone mapping: palette colours reach the image unchanged.
void configure_view(rendering::Open3DScene& scene, const std::array<float, 3>& bg) {
  scene.SetBackground({bg[0], bg[1], bg[2], 1.0f});
  scene.ShowAxes(false);
  scene.GetView()->SetColorGrading(rendering::ColorGradingParams(rendering::ColorGradingParams::Quality::kUltra,
                                                                 rendering::ColorGradingParams::ToneMapping::kLinear));
}

ColorMode initial_mode(const Scene& s, const ViewerOptions& opt) {
  ColorMode m = opt.mode.empty() ? s.default_mode() : parse_color_mode(opt.mode);
  if (!s.mode_available(m))
    throw std::runtime_error(s.source() + ": colour mode '" + opt.mode +
                             "' is not available (needs " +
                             (m == ColorMode::kError ? "both --gt and --pred labels"
                              : m == ColorMode::kConfidence ? "a confidence field"
                                                            : std::string(color_mode_name(m)) + " labels") +
                             ")");
  return m;
}

std::string fmt_iou(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", v);
  return buf;
}

const char* kHelp =
    "Mouse: left drag rotate, right drag / ctrl+left pan,\n"
    "  wheel zoom, shift+left drag roll\n"
    "1..5   colour: rgb / gt / pred / error / confidence\n"
    "+ / -  point size up / down\n"
    "R      reset view\n"
    "B      toggle black / white background\n"
    "A      show all classes\n"
    "S      save screenshot (ewa_view_<mode>_<k>.png)\n"
    "H      show / hide this help\n"
    "Q, Esc close the window";

class ViewerWindow : public gui::Window {
 public:
  ViewerWindow(Scene& scene, const ViewerOptions& opt)
      : gui::Window(opt.title + " - " + scene.source(), opt.width, opt.height), scene_(scene), opt_(opt) {
    mode_ = initial_mode(scene, opt);
    point_size_ = opt.point_size;
    bg_ = opt.background;
    const float em = static_cast<float>(GetTheme().font_size);
    const int sp = static_cast<int>(0.4f * em);

    widget_ = std::make_shared<gui::SceneWidget>();
    widget_->SetScene(std::make_shared<rendering::Open3DScene>(GetRenderer()));
    configure_view(*widget_->GetScene(), bg_);
    AddChild(widget_);

    panel_ = std::make_shared<gui::ScrollableVert>(sp, gui::Margins(sp, sp, sp, sp));
    std::ostringstream head;
    head << std::filesystem::path(scene.source()).filename().string() << "\n" << scene.num_points() << " points";
    if (scene.subsampled()) head << "\n" << scene.subsample_note();
    panel_->AddChild(std::make_shared<gui::Label>(head.str().c_str()));

    // Colour mode.
    auto mode_row = std::make_shared<gui::Horiz>(sp);
    mode_row->AddChild(std::make_shared<gui::Label>("Colour"));
    modes_ = scene.available_modes();
    mode_combo_ = std::make_shared<gui::Combobox>();
    for (size_t k = 0; k < modes_.size(); ++k) {
      mode_combo_->AddItem(color_mode_name(modes_[k]));
      if (modes_[k] == mode_) mode_combo_->SetSelectedIndex(static_cast<int>(k));
    }
    mode_combo_->SetOnValueChanged([this](const char*, int i) { set_mode(modes_[static_cast<size_t>(i)]); });
    mode_row->AddChild(mode_combo_);
    panel_->AddChild(mode_row);

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

    // Metrics summary and legend.
    const Metrics& m = scene.metrics();
    if (m.has_iou) {
      std::ostringstream os;
      os << "Overall accuracy " << fmt_iou(m.overall_accuracy) << "   mIoU " << fmt_iou(m.miou);
      panel_->AddChild(std::make_shared<gui::Label>(os.str().c_str()));
    }
    auto legend = std::make_shared<gui::CollapsableVert>("Classes", sp, gui::Margins(sp, 0, 0, 0));
    auto all_row = std::make_shared<gui::Horiz>(sp);
    auto show_all = std::make_shared<gui::Button>("Show all");
    show_all->SetOnClicked([this] { set_all_visible(true); });
    auto hide_all = std::make_shared<gui::Button>("Hide all");
    hide_all->SetOnClicked([this] { set_all_visible(false); });
    all_row->AddChild(show_all);
    all_row->AddChild(hide_all);
    legend->AddChild(all_row);
    auto grid = std::make_shared<gui::VGrid>(3, sp);
    for (int c = 0; c < scene.labels().size(); ++c) {
      auto col = scene.label_color(c);
      auto swatch = std::make_shared<gui::Button>("    ");
      swatch->SetBackgroundColor(gui::Color(col[0], col[1], col[2]));
      auto box = std::make_shared<gui::Checkbox>(scene.labels().names[static_cast<size_t>(c)].c_str());
      box->SetChecked(true);
      box->SetOnChecked([this, c](bool on) {
        scene_.set_class_visible(c, on);
        update_geometry();
      });
      checkboxes_.push_back(box);
      const ClassStats& cs = m.classes[static_cast<size_t>(c)];
      std::ostringstream os;
      if (scene.has_gt()) os << "gt " << cs.gt_count;
      if (scene.has_pred()) os << (scene.has_gt() ? "  pred " : "pred ") << cs.pred_count;
      if (m.has_iou) os << "  IoU " << fmt_iou(cs.iou);
      grid->AddChild(swatch);
      grid->AddChild(box);
      grid->AddChild(std::make_shared<gui::Label>(os.str().c_str()));
    }
    legend->AddChild(grid);
    panel_->AddChild(legend);

    help_ = std::make_shared<gui::CollapsableVert>("Help (H)", sp, gui::Margins(sp, 0, 0, 0));
    help_->AddChild(std::make_shared<gui::Label>(kHelp));
    help_->SetIsOpen(false);
    panel_->AddChild(help_);
    status_ = std::make_shared<gui::Label>("");
    panel_->AddChild(status_);
    AddChild(panel_);

    SetOnKeyEvent([this](const gui::KeyEvent& e) { return on_key(e); });
    update_geometry();
    reset_view();
  }

  void Layout(const gui::LayoutContext& context) override {
    auto r = GetContentRect();
    const int em = context.theme.font_size;
    int pw = std::min(r.width / 2, 26 * em);
    widget_->SetFrame(gui::Rect(r.x, r.y, r.width - pw, r.height));
    panel_->SetFrame(gui::Rect(r.GetRight() - pw, r.y, pw, r.height));
    gui::Window::Layout(context);
  }

 private:
  void set_mode(ColorMode m) {
    if (!scene_.mode_available(m)) return;
    mode_ = m;
    for (size_t k = 0; k < modes_.size(); ++k)
      if (modes_[k] == m) mode_combo_->SetSelectedIndex(static_cast<int>(k));
    update_geometry();
  }

  void update_geometry() {
    auto pc = make_cloud(scene_, mode_);
    auto s = widget_->GetScene();
    if (s->HasGeometry(kGeometry)) s->RemoveGeometry(kGeometry);
    if (!pc->points_.empty()) s->AddGeometry(kGeometry, pc.get(), point_material(point_size_));
    widget_->ForceRedraw();
  }

  void set_point_size(float v) {
    point_size_ = std::clamp(v, 1.0f, 12.0f);
    size_slider_->SetValue(point_size_);
    auto s = widget_->GetScene();
    if (s->HasGeometry(kGeometry)) s->ModifyGeometryMaterial(kGeometry, point_material(point_size_));
    widget_->ForceRedraw();
  }

  void set_background(const std::array<float, 3>& c) {
    bg_ = c;
    bg_edit_->SetValue(c[0], c[1], c[2]);
    widget_->GetScene()->SetBackground({c[0], c[1], c[2], 1.0f});
    widget_->ForceRedraw();
  }

  void set_all_visible(bool on) {
    scene_.set_all_visible(on);
    for (auto& b : checkboxes_) b->SetChecked(on);
    update_geometry();
  }

  void reset_view() {
    CameraPose p = default_pose(scene_, opt_.up);
    auto mn = scene_.bounds_min(), mx = scene_.bounds_max();
    open3d::geometry::AxisAlignedBoundingBox bb(Eigen::Vector3d(mn[0], mn[1], mn[2]), Eigen::Vector3d(mx[0], mx[1], mx[2]));
    widget_->SetupCamera(kFovDeg, bb, p.center);
    widget_->LookAt(p.center, p.eye, p.up);
    widget_->ForceRedraw();
  }

  void screenshot() {
    std::string path;
    for (int k = 0;; ++k) {
      path = std::string("ewa_view_") + color_mode_name(mode_) + "_" + std::to_string(k) + ".png";
      if (!std::filesystem::exists(path)) break;
    }
    widget_->GetScene()->GetScene()->RenderToImage([this, path](std::shared_ptr<open3d::geometry::Image> img) {
      bool ok = img && open3d::io::WriteImage(path, *img);
      std::string msg = ok ? "saved " + path : "could not write " + path;
      gui::Application::GetInstance().PostToMainThread(this, [this, msg] { status_->SetText(msg.c_str()); });
    });
  }

  bool on_key(const gui::KeyEvent& e) {
    if (e.type != gui::KeyEvent::DOWN) return false;
    switch (e.key) {
      case gui::KEY_1: set_mode(ColorMode::kRgb); return true;
      case gui::KEY_2: set_mode(ColorMode::kGt); return true;
      case gui::KEY_3: set_mode(ColorMode::kPred); return true;
      case gui::KEY_4: set_mode(ColorMode::kError); return true;
      case gui::KEY_5: set_mode(ColorMode::kConfidence); return true;
      case gui::KEY_EQUALS:
      case gui::KEY_PLUS: set_point_size(point_size_ + 1); return true;
      case gui::KEY_MINUS: set_point_size(point_size_ - 1); return true;
      case gui::KEY_R: reset_view(); return true;
      case gui::KEY_B: set_background(bg_[0] > 0.5f ? std::array<float, 3>{0, 0, 0} : std::array<float, 3>{1, 1, 1}); return true;
      case gui::KEY_A: set_all_visible(true); return true;
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
  ColorMode mode_ = ColorMode::kRgb;
  float point_size_ = 3.0f;
  std::array<float, 3> bg_{1, 1, 1};
  std::vector<ColorMode> modes_;
  std::shared_ptr<gui::SceneWidget> widget_;
  std::shared_ptr<gui::ScrollableVert> panel_;
  std::shared_ptr<gui::Combobox> mode_combo_;
  std::shared_ptr<gui::Slider> size_slider_;
  std::shared_ptr<gui::ColorEdit> bg_edit_;
  std::shared_ptr<gui::CollapsableVert> help_;
  std::shared_ptr<gui::Label> status_;
  std::vector<std::shared_ptr<gui::Checkbox>> checkboxes_;
};

}  // namespace

bool gui_available() { return true; }

void run_viewer_window(Scene& scene, const ViewerOptions& opt) {
  initial_mode(scene, opt);  // validate before opening anything
  init_application();
  auto& app = gui::Application::GetInstance();
  app.AddWindow(std::make_shared<ViewerWindow>(scene, opt));
  app.Run();
}

void render_screenshot(const Scene& scene, const ViewerOptions& opt, const std::string& png_path) {
  ColorMode mode = initial_mode(scene, opt);
  if (opt.width < 16 || opt.height < 16 || opt.width > 8192 || opt.height > 8192)
    throw std::invalid_argument("screenshot size " + std::to_string(opt.width) + "x" + std::to_string(opt.height) +
                                " outside 16..8192");
  auto pc = make_cloud(scene, mode);
  init_application();
  auto& app = gui::Application::GetInstance();
  auto renderer = std::make_unique<rendering::FilamentRenderer>(rendering::EngineInstance::GetInstance(), opt.width,
                                                                opt.height, rendering::EngineInstance::GetResourceManager());
  std::shared_ptr<open3d::geometry::Image> img;
  {
    auto o3d_scene = std::make_unique<rendering::Open3DScene>(*renderer);
    configure_view(*o3d_scene, opt.background);
    if (!pc->points_.empty()) o3d_scene->AddGeometry(kGeometry, pc.get(), point_material(opt.point_size));
    CameraPose p = default_pose(scene, opt.up);
    float aspect = static_cast<float>(opt.width) / static_cast<float>(opt.height);
    float dist = (p.eye - p.center).norm();
    o3d_scene->GetCamera()->SetProjection(kFovDeg, aspect, std::max(1e-3f, 0.01f * p.radius), dist + 4.f * p.radius,
                                          rendering::Camera::FovType::Vertical);
    o3d_scene->GetCamera()->LookAt(p.center, p.eye, p.up);
    img = app.RenderToImage(*renderer, o3d_scene->GetView(), o3d_scene->GetScene(), opt.width, opt.height);
  }
  renderer.reset();
  rendering::EngineInstance::DestroyInstance();
  if (!img || img->width_ != opt.width || img->height_ != opt.height)
    throw std::runtime_error("offscreen rendering returned no image of the requested size");
  std::filesystem::path out(png_path);
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  if (!open3d::io::WriteImage(png_path, *img)) throw std::runtime_error(png_path + ": cannot write PNG");
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
