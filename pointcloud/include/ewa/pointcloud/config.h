// Typed configs of the 3D tasks: `task: semantic_segmentation` (S3DIS raw/cache, PointNet
// HDF5, Pointcept npy, labelled PCD/PLY folders, synthetic rooms) and `task:
// point_classification` (ModelNet40 HDF5 / normal_resampled / OFF folders).
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ewa/core/options.h"
#include "ewa/core/train_options.h"
#include "ewa/pointcloud/point_transformer.h"

namespace ewa::pointcloud {

/// The 13 S3DIS classes in the standard order (ceiling ... clutter).
std::vector<std::string> default_s3dis_classes();
/// data.format values of segmentation: the dataset layouts below plus every point format of
/// datasets::cloud_formats() by name (scenes listed by that format under data.root).
std::vector<std::string> seg_data_formats();

/// Training augmentations of one scene (applied in this order before grid sampling).
/// Field names = YAML keys under `data.transforms`.
struct SegTransformOptions {
  TORCH_ARG(bool, centre_shift) = true;                   ///< centre x,y on 0, min z = 0
  TORCH_ARG(std::vector<double>, scale) = {0.9, 1.1};     ///< [lo, hi]; [] = off
  TORCH_ARG(bool, anisotropic_scale) = false;
  TORCH_ARG(double, flip_p) = 0.0;                        ///< x / y flip probability
  TORCH_ARG(double, rotate_z_deg) = 0.0;                  ///< max |angle| about z (degrees)
  TORCH_ARG(double, jitter_sigma) = 0.0;                  ///< metres; 0 = off
  TORCH_ARG(double, jitter_clip) = 0.05;
  TORCH_ARG(double, auto_contrast_p) = 0.2;               ///< chromatic auto-contrast
  TORCH_ARG(double, color_translation_p) = 0.95;
  TORCH_ARG(double, color_translation_ratio) = 0.05;
  TORCH_ARG(double, color_jitter_p) = 0.95;
  TORCH_ARG(double, color_jitter_std) = 0.05;
  TORCH_ARG(double, dropout_ratio) = 0.0;                 ///< point dropout ratio (0 = off)
  TORCH_ARG(double, dropout_p) = 0.2;

 public:
  template <class A>
  void visit(A& a) {
    a("centre_shift", centre_shift())("scale", scale())("anisotropic_scale", anisotropic_scale());
    a("flip_p", flip_p())("rotate_z_deg", rotate_z_deg())("jitter_sigma", jitter_sigma())("jitter_clip", jitter_clip());
    a("auto_contrast_p", auto_contrast_p())("color_translation_p", color_translation_p());
    a("color_translation_ratio", color_translation_ratio())("color_jitter_p", color_jitter_p());
    a("color_jitter_std", color_jitter_std())("dropout_ratio", dropout_ratio())("dropout_p", dropout_p());
    a.require(scale().empty() || (scale().size() == 2 && scale()[0] > 0 && scale()[0] <= scale()[1]), "scale",
              "[] or [lo, hi] with 0 < lo <= hi");
    for (auto [k, v] : {std::pair{"flip_p", flip_p()}, std::pair{"auto_contrast_p", auto_contrast_p()},
                        std::pair{"color_translation_p", color_translation_p()},
                        std::pair{"color_jitter_p", color_jitter_p()}, std::pair{"dropout_p", dropout_p()}}) {
      a.require(v >= 0 && v <= 1, k, "a probability in [0, 1]");
    }
    a.require(dropout_ratio() >= 0 && dropout_ratio() < 1, "dropout_ratio", "a number in [0, 1)");
    a.require(jitter_sigma() >= 0 && jitter_clip() >= 0, "jitter_sigma", "numbers >= 0");
  }
};

/// Where the scenes come from and how a training sample is built.
struct SegDataOptions {
  /// s3dis_raw (Area_N/<room>/Annotations) | s3dis_cache (`ewa data prepare s3dis` output,
  /// Area_N/<room>.h5) | pointnet_h5 (indoor3d_sem_seg_hdf5_data) | pointcept (per-room
  /// coord.npy ...) | labelled_folder (PCD/PLY files with a label field) | synth_rooms (the
  /// output of `ewa data synth-rooms`, raw or prepared: *.h5 files when present, else raw) |
  /// any point format name of the shared table (ply, pcd, npy, text, room_h5, ...): every
  /// scene of that format under root, split by val_files or else by Area_N.
  TORCH_ARG(std::string, format) = "s3dis_cache";
  TORCH_ARG(std::string, root) = "";
  /// Area formats: training areas ([] = every area except test_area) and the test area.
  TORCH_ARG(std::vector<int64_t>, train_areas) = {};
  TORCH_ARG(int64_t, test_area) = 5;
  /// Train six runs (test area 1..6) into RUN_DIR/fold_<a> and sum intersections / unions
  /// over the folds (S3DIS 6-fold protocol).
  TORCH_ARG(bool, six_fold) = false;
  /// pointcept / labelled_folder: scene paths or globs relative to root (`*`, `?`, and `{a,b}`
  /// are not expanded: list files). Empty train_files = every scene not in val_files.
  TORCH_ARG(std::vector<std::string>, train_files) = {};
  TORCH_ARG(std::vector<std::string>, val_files) = {};
  /// Class names (index = label). Default: the 13 S3DIS classes.
  TORCH_ARG(std::vector<std::string>, class_names) = default_s3dis_classes();
  /// labelled_folder: label field name in the PCD/PLY files.
  TORCH_ARG(std::string, label_field) = "label";
  /// labelled_folder: raw label -> class, "mosd" or rules like "0:-1,1-9:0,20-:1" ("" = identity).
  TORCH_ARG(std::string, label_map) = "";
  /// Per-point input features, concatenated in this order: xyz (3), rgb (3, colour / 255),
  /// normal (3). Their channel count must equal model.pt.in_channels.
  TORCH_ARG(std::vector<std::string>, features) = {"xyz", "rgb"};
  TORCH_ARG(double, grid_size) = 0.04;   ///< voxel size in metres (0 = no grid sampling)
  TORCH_ARG(int64_t, max_points) = 80000;  ///< training sphere crop (0 = no crop)
  TORCH_ARG(int64_t, loop) = 30;         ///< each training scene this many times per epoch
  /// Per-class loss weights ([] = uniform).
  TORCH_ARG(std::vector<double>, class_weights) = {};
  TORCH_ARG(bool, cache) = true;         ///< keep loaded scenes in memory
  TORCH_ARG(SegTransformOptions, transforms) = {};

 public:
  int64_t feature_channels() const;
  template <class A>
  void visit(A& a) {
    a.one_of("format", format(), seg_data_formats());
    a("root", root())("train_areas", train_areas())("test_area", test_area())("six_fold", six_fold());
    a("train_files", train_files())("val_files", val_files())("class_names", class_names());
    a("label_field", label_field())("label_map", label_map())("features", features());
    a("grid_size", grid_size())("max_points", max_points())("loop", loop());
    a("class_weights", class_weights())("cache", cache())("transforms", transforms());
    a.require(!root().empty(), "root", "the dataset folder (a path)");
    a.require(test_area() >= 1 && test_area() <= 6, "test_area", "an area number 1..6");
    a.require(!class_names().empty(), "class_names", "at least one class name");
    bool ok = !features().empty();
    for (const auto& f : features()) ok = ok && (f == "xyz" || f == "rgb" || f == "normal");
    a.require(ok, "features", "a non-empty list of xyz, rgb, normal");
    a.require(grid_size() >= 0, "grid_size", "a number >= 0 (0 = off)");
    a.require(max_points() >= 0, "max_points", "an integer >= 0 (0 = no crop)");
    a.require(loop() >= 1, "loop", "an integer >= 1");
    a.require(class_weights().empty() || class_weights().size() == class_names().size(), "class_weights",
              "[] or one weight per class (" + std::to_string(class_names().size()) + ")");
    a.require(format() != "labelled_folder" || !val_files().empty(), "val_files",
              "the validation scenes (files or globs under root) for format labelled_folder");
  }
};

/// The network (`model.pt`) and EWA (`model.ewa`). vanilla and EWA configs differ only in
/// model.pt.moe and model.ewa.
struct PointModelOptions {
  TORCH_ARG(std::string, name) = "pt";
  TORCH_ARG(PointTransformerOptions, pt) = {};
  TORCH_ARG(EwaOptions, ewa) = {};
  /// "" or a dense Point Transformer .safetensors (project names, e.g. a vanilla run's
  /// model.safetensors): its weights start the run and its MoE linears are upcycled into the
  /// experts (copies) for EWA fine-tuning (see build_point_model()).
  TORCH_ARG(std::string, init_from) = "";

 public:
  template <class A>
  void visit(A& a) {
    a.one_of("name", name(), {"pt"});
    a("pt", pt())("ewa", ewa())("init_from", init_from());
    a.require(!ewa().enabled() || pt().moe().enabled(), "ewa", "model.pt.moe.enabled: true when ewa.enabled is true");
  }
};

/// Whole-scene evaluation.
struct SegEvalOptions {
  /// Final evaluation: `fragments` = grid-sample test fragments that cover every point, logits
  /// summed per original point; `voxel` = one point per voxel, its logits copied to the voxel.
  TORCH_ARG(std::string, mode) = "fragments";
  /// Evaluation during training (every train.eval_every epochs): same choices; voxel is fast.
  TORCH_ARG(std::string, mode_during_training) = "voxel";
  /// Chunk size: fragments larger than this are covered by overlapping sphere crops, and a
  /// forward holds at most this many points (0 = the default, kDefaultChunkPoints = 150,000).
  TORCH_ARG(int64_t, max_points) = 0;
  /// At most this many test fragments per scene (1..32, kMaxFragments), one point per voxel
  /// each; points of voxels fuller than this take their voxel's mean logits. The evaluation
  /// default is the bound itself (closest to the full fragment protocol); `ewa segment`
  /// defaults to kDefaultFragments.
  TORCH_ARG(int64_t, fragments) = 32;
  /// Test-time augmentation (final evaluation and `ewa segment --tta`): every scale x
  /// (no flip, x flip, y flip, xy flip when tta_flip), logits summed.
  TORCH_ARG(bool, tta) = false;
  TORCH_ARG(std::vector<double>, tta_scales) = {0.9, 1.0, 1.1};
  TORCH_ARG(bool, tta_flip) = true;
  /// Evaluate at most this many validation scenes during training (0 = all).
  TORCH_ARG(int64_t, max_scenes_during_training) = 0;

 public:
  template <class A>
  void visit(A& a) {
    a.one_of("mode", mode(), {"fragments", "voxel"});
    a.one_of("mode_during_training", mode_during_training(), {"fragments", "voxel"});
    a("max_points", max_points())("fragments", fragments())("tta", tta())("tta_scales", tta_scales())("tta_flip", tta_flip());
    a("max_scenes_during_training", max_scenes_during_training());
    a.require(max_points() >= 0, "max_points", "an integer >= 0 (0 = the default chunk)");
    a.require(fragments() >= 1 && fragments() <= 32, "fragments", "an integer in 1..32");
    bool ok = !tta_scales().empty();
    for (double s : tta_scales()) ok = ok && s > 0;
    a.require(ok, "tta_scales", "a non-empty list of numbers > 0");
    a.require(max_scenes_during_training() >= 0, "max_scenes_during_training", "an integer >= 0");
  }
};

/// `task: semantic_segmentation`.
struct SemSegConfig {
  TORCH_ARG(std::string, task) = "semantic_segmentation";
  TORCH_ARG(RunOptions, run) = {};
  TORCH_ARG(SegDataOptions, data) = {};
  TORCH_ARG(PointModelOptions, model) = {};
  TORCH_ARG(TrainOptions, train) = {};
  TORCH_ARG(SegEvalOptions, eval) = {};

 public:
  template <class A>
  void visit(A& a) {
    a.one_of("task", task(), {"semantic_segmentation"});
    a("run", run())("data", data())("model", model())("train", train())("eval", eval());
    const auto& pt = model().pt();
    a.require(pt.head() == "seg", "model", "model.pt.head: seg for semantic_segmentation");
    a.require(pt.num_classes() == static_cast<int64_t>(data().class_names().size()), "model",
              "model.pt.num_classes = the number of data.class_names (" +
                  std::to_string(data().class_names().size()) + "), found " + std::to_string(pt.num_classes()));
    a.require(pt.in_channels() == data().feature_channels(), "model",
              "model.pt.in_channels = the channels of data.features (" + std::to_string(data().feature_channels()) +
                  "), found " + std::to_string(pt.in_channels()));
  }
};

/// Classification training augmentations (ModelNet style).
struct ClsTransformOptions {
  TORCH_ARG(std::vector<double>, scale) = {0.8, 1.25};  ///< anisotropic uniform scale; [] = off
  TORCH_ARG(double, translate) = 0.1;                   ///< uniform shift in [-t, t] per axis
  TORCH_ARG(double, jitter_sigma) = 0.0;
  TORCH_ARG(double, jitter_clip) = 0.05;
  TORCH_ARG(double, rotate_z_deg) = 0.0;
  TORCH_ARG(bool, shuffle) = true;                      ///< random subset of points per sample

 public:
  template <class A>
  void visit(A& a) {
    a("scale", scale())("translate", translate())("jitter_sigma", jitter_sigma())("jitter_clip", jitter_clip());
    a("rotate_z_deg", rotate_z_deg())("shuffle", shuffle());
    a.require(scale().empty() || (scale().size() == 2 && scale()[0] > 0 && scale()[0] <= scale()[1]), "scale",
              "[] or [lo, hi] with 0 < lo <= hi");
    a.require(translate() >= 0, "translate", "a number >= 0");
  }
};

struct ClsDataOptions {
  /// modelnet_h5 (modelnet40_ply_hdf5_2048) | modelnet_resampled (modelnet40_normal_resampled)
  /// | off_folder (ModelNet layout <root>/<class>/{train,test}/*.off, surface-sampled).
  TORCH_ARG(std::string, format) = "modelnet_resampled";
  TORCH_ARG(std::string, root) = "";
  TORCH_ARG(int64_t, num_points) = 1024;
  /// xyz (3) and optionally normal (3).
  TORCH_ARG(std::vector<std::string>, features) = {"xyz"};
  /// Classes ([] = from the dataset's shape-name file / folder names).
  TORCH_ARG(std::vector<std::string>, class_names) = {};
  TORCH_ARG(std::string, train_split) = "train";
  TORCH_ARG(std::string, val_split) = "test";
  TORCH_ARG(ClsTransformOptions, transforms) = {};

 public:
  int64_t feature_channels() const { return 3 * static_cast<int64_t>(features().size()); }
  template <class A>
  void visit(A& a) {
    a.one_of("format", format(), {"modelnet_h5", "modelnet_resampled", "off_folder"});
    a("root", root())("num_points", num_points())("features", features())("class_names", class_names());
    a("train_split", train_split())("val_split", val_split())("transforms", transforms());
    a.require(!root().empty(), "root", "the dataset folder (a path)");
    a.require(num_points() >= 1, "num_points", "an integer >= 1");
    bool ok = !features().empty() && features()[0] == "xyz" && features().size() <= 2;
    if (features().size() == 2) ok = ok && features()[1] == "normal";
    a.require(ok, "features", "[xyz] or [xyz, normal]");
  }
};

struct ClsEvalOptions {
  /// Votes: logits summed over this many augmented copies (scale) of each test shape.
  TORCH_ARG(int64_t, voting) = 1;
  TORCH_ARG(std::vector<double>, vote_scale) = {0.8, 1.25};

 public:
  template <class A>
  void visit(A& a) {
    a("voting", voting())("vote_scale", vote_scale());
    a.require(voting() >= 1, "voting", "an integer >= 1");
    a.require(vote_scale().size() == 2 && vote_scale()[0] > 0 && vote_scale()[0] <= vote_scale()[1], "vote_scale",
              "[lo, hi] with 0 < lo <= hi");
  }
};

/// `task: point_classification`.
struct PointClsConfig {
  TORCH_ARG(std::string, task) = "point_classification";
  TORCH_ARG(RunOptions, run) = {};
  TORCH_ARG(ClsDataOptions, data) = {};
  TORCH_ARG(PointModelOptions, model) = {};
  TORCH_ARG(TrainOptions, train) = {};
  TORCH_ARG(ClsEvalOptions, eval) = {};

 public:
  template <class A>
  void visit(A& a) {
    a.one_of("task", task(), {"point_classification"});
    a("run", run())("data", data())("model", model())("train", train())("eval", eval());
    const auto& pt = model().pt();
    a.require(pt.head() == "cls", "model", "model.pt.head: cls for point_classification");
    a.require(pt.in_channels() == data().feature_channels(), "model",
              "model.pt.in_channels = the channels of data.features (" + std::to_string(data().feature_channels()) +
                  "), found " + std::to_string(pt.in_channels()));
  }
};

}  // namespace ewa::pointcloud
