// GUI-free scene model of the viewer: a loaded cloud with optional ground truth, prediction
// and confidence, a class palette, colour modes, visibility toggles, metrics and a display
// subsample. Everything the window shows comes from here, so it is testable without a display.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ewa::viewer {

using Rgb8 = std::array<uint8_t, 3>;

/// Class names and display colours (index = label id).
struct LabelTable {
  std::vector<std::string> names;
  std::vector<Rgb8> colors;

  int size() const { return static_cast<int>(names.size()); }

  /// The standard S3DIS 13 classes (ceiling ... clutter) with the usual palette.
  static LabelTable s3dis();
  /// A class file: one class per line, `name r g b` (0..255) or `name` (colour taken from a
  /// built-in palette); blank lines and lines starting with '#' are skipped. Throws
  /// std::runtime_error naming the file and line on bad input.
  static LabelTable from_file(const std::string& path);
  /// "s3dis" or a class-file path.
  static LabelTable from_spec(const std::string& spec);
};

enum class ColorMode { kRgb, kGt, kPred, kError, kConfidence };

/// "rgb" | "gt" | "pred" | "error" | "confidence"; throws std::invalid_argument otherwise.
ColorMode parse_color_mode(const std::string& s);
const char* color_mode_name(ColorMode m);

/// What to load. `pred_path` / `gt_path` override label fields found in the cloud file.
struct SceneInputs {
  std::string cloud_path;   ///< .ply .pcd .npy .txt or an S3DIS room folder
  std::string pred_path;    ///< optional: .npy / .txt / .label / .ply / .pcd (a PLY/PCD's
                            ///< `confidence` field is taken too, e.g. an `ewa segment` output)
  std::string gt_path;      ///< optional, same formats
  std::string classes = "s3dis";  ///< "s3dis" or a class file
  int64_t max_points = 2'000'000;  ///< display budget (0 = no limit)
};

/// Per-class statistics over all points (not just displayed ones).
struct ClassStats {
  int64_t gt_count = 0;    ///< points whose ground truth is this class
  int64_t pred_count = 0;  ///< points predicted as this class
  int64_t tp = 0, fp = 0, fn = 0;
  double iou = 0.0;        ///< tp / (tp + fp + fn); NaN when the union is empty or labels missing
};

struct Metrics {
  bool has_iou = false;           ///< both ground truth and prediction known
  std::vector<ClassStats> classes;
  int64_t evaluated = 0;          ///< points with a valid ground-truth label
  int64_t correct = 0;
  double overall_accuracy = 0.0;  ///< correct / evaluated (NaN without both labels)
  double miou = 0.0;              ///< mean IoU over classes with a non-empty union
};

/// One row of a legend: a colour swatch, a name and a value column ("12,345  IoU 0.812").
struct LegendRow {
  Rgb8 color{0, 0, 0};
  std::string name;
  std::string value;
};

/// What a legend shows for one colour mode; drawn in the window and burned into screenshots.
struct Legend {
  std::string title;               ///< "prediction", "ground truth", "error", ...
  std::vector<LegendRow> rows;     ///< classes present (gt/pred), correct/wrong (error), bins (confidence)
  std::vector<std::string> notes;  ///< OA / mIoU, the display-subsample count, ...
};

/// Everything known about one point (for picking). Labels are -1 when unknown.
struct PointInfo {
  int64_t index = -1;         ///< into the loaded cloud (a real point, also when subsampled)
  int64_t source_index = -1;  ///< its row in the file (differs when non-finite points were dropped)
  std::array<float, 3> xyz{0, 0, 0};
  bool has_gt = false, has_pred = false, has_confidence = false;
  int32_t gt = -1, pred = -1;
  float confidence = 0.f;
};

/// Error-mask values per point.
enum ErrorState : uint8_t { kCorrect = 0, kWrong = 1, kUnlabelled = 2 };

/// The scene model. Labels are ints in [0, num_classes); negative means unlabelled/ignored.
class Scene {
 public:
  Scene() = default;

  /// Loads files (see SceneInputs). Throws std::runtime_error naming the file and the counts
  /// on unknown types, point-count mismatches or labels outside the palette.
  static Scene load(const SceneInputs& in);

  /// Builds a scene from arrays. xyz: [n*3] float; rgb: [n*3] uint8 or empty; gt/pred: [n]
  /// int32 or empty; confidence: [n] float or empty. Validates like load().
  static Scene from_arrays(std::vector<float> xyz, std::vector<uint8_t> rgb, std::vector<int32_t> gt,
                           std::vector<int32_t> pred, std::vector<float> confidence, LabelTable table,
                           int64_t max_points = 0, const std::string& source = "arrays");

  int64_t num_points() const { return n_; }
  const LabelTable& labels() const { return table_; }
  const std::string& source() const { return source_; }
  bool has_rgb() const { return !rgb_.empty(); }
  bool has_gt() const { return !gt_.empty(); }
  bool has_pred() const { return !pred_.empty(); }
  bool has_confidence() const { return !confidence_.empty(); }
  const std::vector<float>& xyz() const { return xyz_; }         ///< [n*3]
  const std::vector<uint8_t>& rgb() const { return rgb_; }       ///< [n*3] or empty
  const std::vector<int32_t>& gt() const { return gt_; }         ///< [n] or empty
  const std::vector<int32_t>& pred() const { return pred_; }     ///< [n] or empty
  const std::vector<float>& confidence() const { return confidence_; }  ///< [n] or empty

  /// Modes that make sense for this scene (rgb always; gt/pred/error/confidence when known).
  std::vector<ColorMode> available_modes() const;
  bool mode_available(ColorMode m) const;
  /// The preferred initial mode: pred, else gt, else rgb.
  ColorMode default_mode() const;

  /// Per-point colour in [0,1], [n*3], for all points in `mode`. Throws std::invalid_argument
  /// when the mode is unavailable. rgb without colour: height-shaded grey; label modes:
  /// palette colour, dim grey for unlabelled; error: grey correct, red wrong, dim unlabelled;
  /// confidence: a blue-to-yellow colormap over [0,1].
  std::vector<float> colors(ColorMode mode) const;
  /// Colour of one label (palette as floats; dim grey for negative).
  std::array<float, 3> label_color(int32_t label) const;
  /// Colour of point i in `mode` (same values as colors(mode)[3i..3i+2]); the mode must be
  /// available.
  std::array<float, 3> point_color(ColorMode mode, int64_t i) const;
  /// [k*3] colours of the points `idx` in `mode` (what the renderer uploads).
  std::vector<float> colors_of(ColorMode mode, const std::vector<int64_t>& idx) const;

  /// The legend of `mode`: gt/pred list the classes present with point counts (and per-class
  /// IoU when both labels are known), error counts correct / wrong / unlabelled, confidence
  /// counts five bins (high to low) and the mean; notes carry OA / mIoU and the subsample count.
  Legend legend(ColorMode mode) const;

  /// Point i with its labels and confidence. Throws std::out_of_range outside [0, n).
  PointInfo point_info(int64_t i) const;
  /// Row of loaded point i in its source file (i itself unless non-finite points were dropped).
  int64_t source_index(int64_t i) const {
    return source_index_.empty() ? i : source_index_[static_cast<size_t>(i)];
  }
  /// One line for a picked point (numbered by its source row), e.g. "point 1,234 (1.200, 0.500, 0.800)  gt table  pred
  /// chair (wrong)  confidence 0.420".
  /// `sep` separates the parts ("\n" gives one part per line).
  std::string describe_point(int64_t i, const std::string& sep = "  ") const;
  /// Screen-space picking. `clip_from_world` is a column-major 4x4 matrix (projection * view)
  /// mapping world points to clip space; the viewport is width x height pixels with the origin
  /// at the top-left. Returns the index (into the full cloud) of the candidate nearest to the
  /// camera among those projected within `radius_px` of (px, py), or -1 when none is.
  int64_t pick(const std::array<float, 16>& clip_from_world, int width, int height, float px, float py,
               float radius_px, const std::vector<int64_t>& candidates) const;

  /// [n] ErrorState per point (needs gt and pred).
  std::vector<uint8_t> error_mask() const;

  /// Class visibility (all visible initially). Hidden classes are dropped from
  /// display_indices(); the label tested is the one of the mode (gt for gt/error/confidence/rgb
  /// when known, else pred; pred for pred).
  void set_class_visible(int cls, bool visible);
  bool class_visible(int cls) const;
  void set_all_visible(bool visible);

  /// Indices (into the full cloud) of the points to draw in `mode`: the deterministic display
  /// subsample, minus hidden classes.
  std::vector<int64_t> display_indices(ColorMode mode) const;
  /// The display subsample before class filtering (sorted, deterministic).
  const std::vector<int64_t>& subsample() const { return subsample_; }
  bool subsampled() const { return static_cast<int64_t>(subsample_.size()) < n_; }
  /// e.g. "showing 2,000,000 of 5,123,456 points (display subsample; metrics use all points)";
  /// empty when not subsampled.
  std::string subsample_note() const;
  /// Resets the display budget (0 = no limit) and recomputes the subsample.
  void set_max_points(int64_t max_points);

  /// Axis-aligned bounds: {min_x, min_y, min_z}, {max_x, max_y, max_z}.
  std::array<float, 3> bounds_min() const { return bmin_; }
  std::array<float, 3> bounds_max() const { return bmax_; }

  /// Counts and (with both labels) confusion-based IoU per class, OA and mIoU.
  const Metrics& metrics() const { return metrics_; }
  /// A text table of the metrics (class, gt count, pred count, IoU) for the console.
  std::string metrics_table() const;

 private:
  void validate_and_finish(int64_t max_points);
  int32_t mode_label(ColorMode mode, int64_t i) const;

  int64_t n_ = 0;
  std::string source_;
  LabelTable table_;
  std::vector<float> xyz_;
  std::vector<uint8_t> rgb_;
  std::vector<int32_t> gt_, pred_;
  std::vector<float> confidence_;
  std::vector<int64_t> source_index_;  ///< [n] source rows, or empty when they are 0..n-1
  std::vector<uint8_t> visible_;
  std::vector<int64_t> subsample_;
  std::array<float, 3> bmin_{0, 0, 0}, bmax_{0, 0, 0};
  Metrics metrics_;
};

}  // namespace ewa::viewer
