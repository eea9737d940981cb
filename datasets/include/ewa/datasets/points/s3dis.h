// S3DIS (Stanford 3D Indoor Spaces) raw reader: Area_N/<room>/Annotations/<class>_<k>.txt,
// a fast tolerant `x y z r g b` parser, alignment angles of the non-aligned v1.2, and
// `prepare_s3dis` writing one HDF5 cache file per room (see room_cache.h).
#pragma once

#include "ewa/datasets/points/point_cloud.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ewa::datasets {

/// The 13 S3DIS classes in the standard order (ceiling=0 ... clutter=12).
const std::vector<std::string>& s3dis_class_names();

struct S3disReadOptions {
  /// Class order (index = label). Annotation classes not listed (after aliases) are an error.
  std::vector<std::string> class_names = s3dis_class_names();
  /// Annotation class renames applied first; S3DIS puts `stairs` into clutter.
  std::map<std::string, std::string> class_aliases = {{"stairs", "clutter"}};
  /// Worker threads over annotation files (0 = hardware concurrency).
  int threads = 0;
  /// Apply Area_N/Area_N_alignmentAngle.txt when it exists and lists the room (v1.2
  /// non-aligned): rotation by -angle about z around the room's bounding-box centre, the
  /// convention that maps v1.2 rooms onto the aligned version (as Pointcept's preprocessing).
  bool apply_alignment = true;
  /// Fail on a non-finite coordinate instead of dropping (and counting) its line.
  bool refuse_non_finite = false;
};

/// Result of parsing `x y z r g b` text.
struct XyzRgbText {
  std::vector<float> xyz;    ///< 3 per point
  std::vector<uint8_t> rgb;  ///< 3 per point
  std::vector<ParseIssue> issues;  ///< the first kKeptParseIssues damaged lines only
  int64_t repaired_lines = 0;
  int64_t skipped_lines = 0;       ///< includes non_finite_lines
  int64_t non_finite_lines = 0;    ///< dropped: NaN/Inf coordinate, or beyond float range (1e300)
};

/// Parses S3DIS-style text (6 numbers per line, whitespace separated). A token with stray
/// non-numeric bytes (e.g. "103.0\x10" "0000") is repaired by dropping them when what is left
/// is a valid number; a line with the wrong column count, an unparsable token or a colour
/// outside [0,255] is skipped. Both are counted, and the first kKeptParseIssues recorded in
/// `issues` with `file` and the 1-based line (memory stays bounded for a file of damaged
/// lines). A NaN/Inf coordinate, or one beyond float range, drops the line (counted in
/// `non_finite_lines`), or throws naming file:line when `refuse_non_finite`. Never logs.
XyzRgbText parse_xyzrgb_text(std::string_view text, const std::string& file, bool refuse_non_finite = false);

/// One room read from the raw layout.
struct S3disRoom {
  PointCloudData cloud;  ///< coord, color, segment (class index), instance (annotation file index)
  std::vector<ParseIssue> issues;
  int64_t repaired_lines = 0;
  int64_t skipped_lines = 0;
  int64_t non_finite_lines = 0;
  int64_t bytes = 0;                ///< text bytes parsed
  double alignment_angle_deg = 0;   ///< rotation applied (0 when none)
  std::vector<std::string> annotation_files;  ///< instance id i = annotation_files[i]
};

/// Reads `room_dir` (= .../Area_N/<room>). Throws naming the path for a missing
/// Annotations folder, an unknown class, an empty room (NaN coordinates: see
/// parse_xyzrgb_text). `issues` keeps the first kKeptParseIssues of all files.
S3disRoom read_s3dis_room(const std::string& room_dir, const S3disReadOptions& options = {});

/// Room folders under `raw_root` (folders Area_N/<room> with an Annotations folder or a
/// <room>.txt), naturally sorted; `areas` (e.g. {1,2,3,4,6}) filters, empty = all.
std::vector<std::string> list_s3dis_rooms(const std::string& raw_root, const std::vector<int>& areas = {});

/// Parses Area_N_alignmentAngle.txt: `## ...` comment lines then `<room> <angle deg>`.
std::map<std::string, double> read_s3dis_alignment(const std::string& path);

struct S3disPrepareProgress {
  int64_t done = 0;       ///< rooms finished (written, skipped or failed)
  int64_t total = 0;
  std::string room;       ///< "Area_1/office_2"
  int64_t points = 0;     ///< points of this room (0 when skipped)
  bool skipped = false;   ///< cache already present and valid
};

struct S3disPrepareOptions {
  int threads = 0;                ///< rooms in parallel (0 = hardware concurrency)
  std::vector<int> areas;         ///< empty = all areas found
  S3disReadOptions read;          ///< its `threads` is ignored (one thread per room)
  bool overwrite = false;         ///< rewrite rooms whose cache already exists
  std::function<void(const S3disPrepareProgress&)> progress;  ///< called after each room (serialised)
};

struct S3disPrepareSummary {
  int64_t rooms = 0;          ///< rooms found
  int64_t rooms_written = 0;
  int64_t rooms_skipped = 0;  ///< already prepared (resume)
  int64_t points = 0;         ///< points in written rooms
  int64_t repaired_lines = 0;
  int64_t skipped_lines = 0;
  int64_t non_finite_lines = 0;
  std::vector<ParseIssue> issues;                           ///< the first kKeptParseIssues damaged lines
  std::vector<std::pair<std::string, std::string>> failed;  ///< (room, error message)
};

/// Reads every room under `raw_root` and writes `out_root/Area_N/<room>.h5` (room_cache.h),
/// parallel over rooms, resumable (valid existing outputs are skipped). A failing room is
/// reported in `failed` and writes nothing; the others continue. Needs HDF5.
S3disPrepareSummary prepare_s3dis(const std::string& raw_root, const std::string& out_root,
                                  const S3disPrepareOptions& options = {});

}  // namespace ewa::datasets
