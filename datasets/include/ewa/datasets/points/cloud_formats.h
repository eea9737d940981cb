// The one entry to point data: a table of point formats (name, detection, scene listing,
// loading) and open_cloud(), used by training, `ewa segment` and `ewa view`, so all of
// them accept exactly the same inputs. A new format is one file plus one table line.
#pragma once

#include "ewa/datasets/points/point_cloud.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ewa::datasets {

/// How a scene is read. Fields that a format does not use are ignored.
struct CloudReadOptions {
  /// PLY/PCD: the field holding per-point labels (-> `segment`); "" = none; a missing field
  /// means no labels. Common spellings (class, semantic, scalar_label, ...) are accepted.
  std::string label_field = "label";
  /// PLY/PCD: "" (labels as stored), "mosd", or a parse_label_map() spec.
  std::string label_map;
  /// S3DIS rooms: class order (index = label); empty = the 13 standard S3DIS classes.
  std::vector<std::string> class_names;
  /// A non-finite coordinate is an error (naming the file) instead of a dropped point.
  bool refuse_non_finite = false;
  /// OFF meshes: > 0 samples this many points on the surface (area-weighted, seeded by the
  /// file name) instead of returning the vertices.
  int64_t mesh_samples = 0;
  /// Text and ModelNet shapes: read at most this many points (0 = all).
  int64_t max_points = 0;
};

/// One scene as read: the cloud (coord, optional color / normal / segment / instance,
/// `extra` scalar fields such as gt, pred, confidence) whose `index` [N] int64 holds the
/// source position of every kept point, plus what the reader noticed.
struct CloudScene {
  PointCloudData cloud;
  std::string format;              ///< table name of the format that read it
  int64_t source_points = 0;       ///< points in the source order `cloud.index` refers to
  int64_t non_finite = 0;          ///< points dropped for a NaN/Inf coordinate
  std::vector<ParseIssue> issues;  ///< the first kKeptParseIssues damaged lines
  int64_t damaged_lines = 0;       ///< all damaged (repaired or skipped) lines
  std::vector<std::string> comments;     ///< PLY/PCD header comments
  std::vector<std::string> class_names;  ///< class names the format defines (S3DIS rooms), else empty
};

/// One row of the format table. `list` returns the scenes of this format under a folder
/// (files, room folders, or "file.h5#k" for files holding many shapes), naturally sorted.
struct CloudFormat {
  const char* name;         ///< "ply", "pcd", "npy", "text", "s3dis_room", ...
  const char* description;  ///< one line for help texts and the README table
  bool (*detect)(const std::string& path);
  std::vector<std::string> (*list)(const std::string& root);
  CloudScene (*load)(const std::string& path, const CloudReadOptions& options);
};

/// Every supported format, in detection order.
const std::vector<const CloudFormat*>& cloud_formats();
/// The format named `name`, or an error listing the names.
const CloudFormat& cloud_format(const std::string& name);
/// The format that recognises `path` (a file, a folder, or "file.h5#k"), or nullptr.
const CloudFormat* detect_cloud_format(const std::string& path);
/// "ply, pcd, npy, ..." (for messages).
std::string cloud_format_names();

/// Reads one scene with the format that recognises it. Non-finite points are dropped and
/// counted (or refused, by option); damaged text lines are counted with the first few kept.
/// Errors are one line naming the file (DataError or c10::Error, both std::exception).
CloudScene open_cloud(const std::string& path, const CloudReadOptions& options = {});

/// Scenes of format `format` under `root` ("" = every format's scenes, deduplicated).
std::vector<std::string> list_cloud_scenes(const std::string& root, const std::string& format = "");

/// Per-point labels from a file: .npy ([N] or [N,1] integers, or floats holding integers),
/// .txt/.label/.labels (one integer per line, the last column), or any cloud format whose
/// pred / label / gt field is taken (that order for role "pred", reversed for "gt").
/// Returns int64 [N].
torch::Tensor read_point_labels(const std::string& path, const std::string& role);

/// One line of a class file (`ewa segment` writes them; `ewa view --classes` reads them).
struct ClassFileEntry {
  std::string name;
  int r = -1, g = -1, b = -1;  ///< 0..255, or -1 when the line gives no colour
};
/// Reads a class file: one class per line, `name r g b` (0..255) or `name`; blank lines and
/// lines starting with '#' skipped. Errors are one line naming file:line (files over 16 MB
/// and files without classes are refused).
std::vector<ClassFileEntry> read_class_file(const std::string& path);

}  // namespace ewa::datasets
