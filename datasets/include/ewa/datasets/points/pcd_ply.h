// Labelled point-cloud files: PCD (ascii / binary / binary_compressed with LZF) and PLY
// (ascii / binary little/big endian) readers keeping every field, conversion to
// PointCloudData with a label map (e.g. mOSD), and a PLY writer for predictions.
#pragma once

#include "ewa/datasets/points/point_cloud.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ewa::datasets {

/// Every per-point field of a PCD/PLY file, in file order, in its own dtype:
/// F4 float32, F8 float64, U1 uint8, I1 int8, I2 int16, U2 int32, I4 int32, U4 int64,
/// I8/U8 int64. Shape [N] (count 1) or [N,count]. N = width*height (organised clouds keep
/// their NaN points).
struct PointFields {
  std::vector<std::string> names;
  std::map<std::string, torch::Tensor> fields;
  int64_t width = 0;
  int64_t height = 1;  ///< > 1 for organised clouds
  std::string source;
  std::vector<std::string> comments;  ///< header comments (PLY `comment`, PCD `#` lines)

  int64_t size() const { return width * height; }
  bool has(const std::string& name) const { return fields.count(name) > 0; }
  /// The field or an error naming the file and listing the fields present.
  const torch::Tensor& get(const std::string& name) const;
};

PointFields read_pcd(const std::string& path);
PointFields read_ply(const std::string& path);  ///< the `vertex` element
/// By extension (.pcd / .ply).
PointFields read_point_fields(const std::string& path);

/// LZF decompression (liblzf format, as in PCD binary_compressed). Throws on corrupt input
/// or when the output would not be exactly `out_size` bytes.
std::vector<uint8_t> lzf_decompress(const uint8_t* in, size_t in_size, size_t out_size);

/// Maps raw labels by the first matching rule lo <= label <= hi -> target; unmatched
/// labels get `fallback` (-1 = ignore).
struct LabelRule {
  int64_t lo = 0;
  int64_t hi = 0;
  int64_t target = -1;
};
struct LabelMap {
  std::vector<LabelRule> rules;
  int64_t fallback = -1;
};
/// "0:-1,1-9:0,20-:1" -> rules {0..0 -> -1}, {1..9 -> 0}, {20..max -> 1}. Throws on syntax.
LabelMap parse_label_map(const std::string& spec);
/// The mOSD map: 0 invalid -> -1, 1-9 table -> 0, >= 20 objects -> 1.
LabelMap mosd_label_map();
/// labels: any integer dtype [N] -> int64 [N].
torch::Tensor apply_label_map(const torch::Tensor& labels, const LabelMap& map);

struct FieldsToCloudOptions {
  std::string label_field = "label";  ///< "" = no labels; missing field = no labels
  bool use_label_map = false;
  LabelMap label_map;
  bool drop_non_finite = true;  ///< drop NaN/Inf points (kept indices go to `index`)
  bool refuse_non_finite = false;  ///< a NaN/Inf point is an error naming the file
};

/// x,y,z -> coord; rgb (packed float) / rgba (packed uint) / red,green,blue -> color;
/// normal_x.. / nx.. -> normal; label field -> segment (mapped); instance/object -> instance.
PointCloudData fields_to_cloud(const PointFields& f, const FieldsToCloudOptions& options = {});

/// One per-vertex scalar column of write_point_ply: integer tensors are written as PLY `int`
/// (int32), floating tensors as `float` (float32); values [N].
struct PlyColumn {
  std::string name;
  torch::Tensor values;
};

/// The one labelled-PLY writer: `x y z` (float) `red green blue` (uchar) then `columns` in
/// order, with `comments` in the header. coord float [N,3]; color uint8 [N,3] or undefined
/// (grey). `ewa segment` writes columns pred, gt (when known), confidence; open_cloud reads
/// `label` as the label field and every other column into PointCloudData::extra. Binary
/// little-endian or ascii; temp + rename.
void write_point_ply(const std::string& path, const torch::Tensor& coord, const torch::Tensor& color,
                     const std::vector<PlyColumn>& columns, bool binary = true,
                     const std::vector<std::string>& comments = {"written by ewa-vision"});

/// write_point_ply with the columns `label` (int), when `gt` is defined `gt` (int), then
/// `float_fields` as float columns in order (e.g. {"confidence", float [N]}). label integer
/// [N]; gt integer [N] or undefined. A "label=pred" comment marks the labels as predictions
/// for the viewer (files of older versions of `ewa segment`).
void write_labelled_ply(const std::string& path, const torch::Tensor& coord, const torch::Tensor& color,
                        const torch::Tensor& label, const torch::Tensor& gt = {}, bool binary = true,
                        const std::vector<std::string>& comments = {"written by ewa-vision"},
                        const std::vector<std::pair<std::string, torch::Tensor>>& float_fields = {});

}  // namespace ewa::datasets
