// Internal point-file readers of the viewer (PLY, PCD, .npy, text, S3DIS room folders) behind
// one small interface; the scene model only sees RawCloud. Swappable for the shared
// ewa::datasets point readers once those exist.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ewa::viewer::detail {

/// A cloud as read from disk: coordinates, optional colour, named integer fields (label, gt,
/// pred, ...) and optional confidence. Sizes are all `n` (or empty when absent).
struct RawCloud {
  int64_t n = 0;
  std::vector<float> xyz;       ///< [n*3] x y z
  std::vector<uint8_t> rgb;     ///< [n*3] 0..255, empty when the file has no colour
  std::map<std::string, std::vector<int32_t>> ints;  ///< integer fields by canonical name
  std::vector<float> confidence;                    ///< [n] or empty
  std::vector<std::string> comments;                ///< header comments (PLY/PCD)
  std::vector<std::string> class_names;             ///< set by the S3DIS room reader
};

/// Reads a point cloud: .ply (ascii / binary little or big endian), .pcd (ascii / binary /
/// binary_compressed), .npy ([N,3+] float: xyz [rgb] [label]), .txt/.xyz/.pts (x y z [r g b]
/// [label] per line), or an S3DIS room folder (Annotations/<class>_<i>.txt). Throws
/// std::runtime_error naming the path on anything it cannot read.
RawCloud read_point_file(const std::string& path);

/// Reads a per-point label file: .npy (1-D or [N,1] of any integer dtype, or floats holding
/// integers), .txt/.label/.labels (one integer per line), or a .ply/.pcd whose `pred`, `label`
/// or `gt` field is taken (in that order for role "pred", reversed for role "gt").
std::vector<int32_t> read_label_file(const std::string& path, const std::string& role);

/// A parsed .npy array, values widened to double, row-major [shape[0], shape[1]...].
struct NpyArray {
  std::vector<int64_t> shape;
  std::string descr;  ///< numpy dtype string, e.g. "<i8"
  std::vector<double> data;
};
NpyArray read_npy(const std::string& path);

/// LZF decompression (the PCD binary_compressed codec); throws on corrupt input.
void lzf_decompress(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_len);

/// The lower-case extension of `path` including the dot ("" when none).
std::string lower_ext(const std::string& path);

}  // namespace ewa::viewer::detail
