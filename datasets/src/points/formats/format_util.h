// Internal helpers shared by the point-format files (formats/*.cpp) behind the table of
// cloud_formats.h: path tests, recursive listings, the common scene finishing step.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "ewa/datasets/points/cloud_formats.h"
#include "ewa/datasets/points/pcd_ply.h"

namespace ewa::datasets::fmt {

namespace fs = std::filesystem;

/// True when `path` is a regular file whose lower-case extension is one of `exts`.
bool file_with_ext(const std::string& path, std::initializer_list<const char*> exts);
/// Regular files under `root` (recursively, depth <= 4) accepted by `keep`, naturally sorted.
std::vector<std::string> list_files(const std::string& root, bool (*keep)(const std::string&));
/// Folders under `root` (itself included, depth <= 4) accepted by `keep`, naturally sorted;
/// no recursion below an accepted folder.
std::vector<std::string> list_dirs(const std::string& root, bool (*keep)(const std::string&));
/// "file.h5#12" -> ("file.h5", 12); (path, -1) when there is no "#<digits>" suffix.
std::pair<std::string, int64_t> split_item(const std::string& path);
/// The first `max_bytes` bytes of a file ("" when unreadable).
std::string head_bytes(const std::string& path, size_t max_bytes);

/// Names the scene after `path`, counts its points, drops (or refuses) non-finite points.
CloudScene finish_scene(CloudScene s, const std::string& path, const CloudReadOptions& o);
/// PLY/PCD fields -> scene: x y z, colour, normals, the label field (aliases accepted,
/// label map applied), instance, and every other scalar field in `extra` (gt, pred and
/// confidence under those names whatever their common spelling).
CloudScene scene_from_fields(const PointFields& f, const CloudReadOptions& o);

}  // namespace ewa::datasets::fmt
