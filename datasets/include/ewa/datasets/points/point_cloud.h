// PointCloudData: the plain per-point record every 3D reader returns and every point
// transform / writer consumes, plus diagnostics returned by tolerant text parsers.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <exception>
#include <string>
#include <vector>

namespace ewa::datasets {

/// One point cloud (a room, a shape, a scan). Optional fields are undefined tensors.
struct PointCloudData {
  torch::Tensor coord;     ///< float32 [N,3]
  torch::Tensor color;     ///< uint8 [N,3] or undefined
  torch::Tensor normal;    ///< float32 [N,3] or undefined
  torch::Tensor segment;   ///< int64 [N] semantic class, -1 = ignore; or undefined
  torch::Tensor instance;  ///< int64 [N] instance id (-1 = none); or undefined
  torch::Tensor index;     ///< int64 [N] index of each point in the source file when points
                           ///< were dropped on reading (e.g. NaN points); or undefined
  /// Other per-point scalar fields of the file by name (e.g. "gt", "pred", "confidence",
  /// "intensity"), each [N] in the file's dtype (widened as PointFields documents).
  std::map<std::string, torch::Tensor> extra;
  std::string name;        ///< e.g. "Area_1/office_2", "airplane_0001"
  std::string source;      ///< file or folder it was read from

  int64_t size() const { return coord.defined() ? coord.size(0) : 0; }
  bool has_color() const { return color.defined() && color.numel() > 0; }
  bool has_normal() const { return normal.defined() && normal.numel() > 0; }
  bool has_segment() const { return segment.defined() && segment.numel() > 0; }
  bool has_instance() const { return instance.defined() && instance.numel() > 0; }
  /// Throws (naming `source`) unless every defined field has the documented dtype and N rows.
  void validate() const;
};

/// Keeps the points `idx` (int64 [M] or bool [N]) of every per-point field.
PointCloudData select_points(const PointCloudData& cloud, const torch::Tensor& idx);

/// Concatenates clouds (all must have the same set of optional fields).
PointCloudData concat_clouds(const std::vector<PointCloudData>& clouds);

/// A damaged line found by a tolerant parser (returned, never logged by the library).
struct ParseIssue {
  std::string file;
  int64_t line = 0;      ///< 1-based
  bool repaired = false; ///< true: a stray byte was dropped; false: the line was skipped
  std::string what;      ///< short reason, e.g. "stray byte 0x10 in column 1"
  std::string to_string() const;  ///< "file:line: what (repaired|skipped)"
};

/// Tolerant parsers keep this many ParseIssue records (the first ones) and count the rest.
constexpr int64_t kKeptParseIssues = 10;

/// Drops the points whose coordinates are not all finite, keeping the source position of
/// every kept point in `index` (composed with an existing `index`). Returns the number
/// dropped; when `refuse` is set a non-finite point throws DataError naming `source`.
int64_t drop_non_finite_points(PointCloudData& cloud, bool refuse = false);

/// The first line of an exception's message, without LibTorch's backtrace
/// (c10::Error::what_without_backtrace for c10 errors).
std::string one_line_error(const std::exception& e);

}  // namespace ewa::datasets
