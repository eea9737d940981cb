// Writers of tiny point/label files (PLY ascii/binary, PCD, .npy) for the viewer tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ewa::test {

struct FixturePoint {
  float x, y, z;
  uint8_t r, g, b;
  int label;  ///< written as `label`
  int gt;     ///< written as `gt` when with_gt
};

/// PLY with x y z red green blue label [gt]; binary little endian or ascii; an extra face
/// element after the vertices checks that readers skip it.
inline void write_ply(const std::string& path, const std::vector<FixturePoint>& pts, bool binary, bool with_gt,
                      bool with_faces = false) {
  std::ofstream out(path, std::ios::binary);
  out << "ply\nformat " << (binary ? "binary_little_endian" : "ascii") << " 1.0\ncomment test fixture\n"
      << "element vertex " << pts.size() << "\nproperty float x\nproperty float y\nproperty float z\n"
      << "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty int label\n";
  if (with_gt) out << "property short gt\n";
  if (with_faces) out << "element face 1\nproperty list uchar int vertex_indices\n";
  out << "end_header\n";
  for (const auto& p : pts) {
    if (binary) {
      out.write(reinterpret_cast<const char*>(&p.x), 4);
      out.write(reinterpret_cast<const char*>(&p.y), 4);
      out.write(reinterpret_cast<const char*>(&p.z), 4);
      out.put(static_cast<char>(p.r)).put(static_cast<char>(p.g)).put(static_cast<char>(p.b));
      int32_t l = p.label;
      out.write(reinterpret_cast<const char*>(&l), 4);
      if (with_gt) {
        int16_t g = static_cast<int16_t>(p.gt);
        out.write(reinterpret_cast<const char*>(&g), 2);
      }
    } else {
      out << p.x << " " << p.y << " " << p.z << " " << int(p.r) << " " << int(p.g) << " " << int(p.b) << " "
          << p.label;
      if (with_gt) out << " " << p.gt;
      out << "\n";
    }
  }
  if (with_faces) {
    if (binary) {
      out.put(3);
      int32_t idx[3] = {0, 1, 2};
      out.write(reinterpret_cast<const char*>(idx), 12);
    } else {
      out << "3 0 1 2\n";
    }
  }
}

/// PCD with x y z rgb(packed float) label, ascii or binary.
inline void write_pcd(const std::string& path, const std::vector<FixturePoint>& pts, bool binary) {
  std::ofstream out(path, std::ios::binary);
  out << "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z rgb label\n"
      << "SIZE 4 4 4 4 4\nTYPE F F F F U\nCOUNT 1 1 1 1 1\nWIDTH " << pts.size() << "\nHEIGHT 1\n"
      << "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS " << pts.size() << "\nDATA " << (binary ? "binary" : "ascii") << "\n";
  for (const auto& p : pts) {
    uint32_t packed = (uint32_t(p.r) << 16) | (uint32_t(p.g) << 8) | uint32_t(p.b);
    float rgb;
    std::memcpy(&rgb, &packed, 4);
    uint32_t l = static_cast<uint32_t>(p.label);
    if (binary) {
      out.write(reinterpret_cast<const char*>(&p.x), 4);
      out.write(reinterpret_cast<const char*>(&p.y), 4);
      out.write(reinterpret_cast<const char*>(&p.z), 4);
      out.write(reinterpret_cast<const char*>(&rgb), 4);
      out.write(reinterpret_cast<const char*>(&l), 4);
    } else {
      std::ostringstream os;
      os.precision(9);
      os << p.x << " " << p.y << " " << p.z << " " << rgb << " " << l << "\n";
      out << os.str();
    }
  }
}

/// .npy of `values` with dtype descr ("<i8", "<i4", "<f4", "<f8", "|u1") and shape.
inline void write_npy(const std::string& path, const std::vector<double>& values, const std::string& descr,
                      const std::vector<int64_t>& shape) {
  std::string sh = "(";
  for (size_t i = 0; i < shape.size(); ++i) sh += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
  sh += ")";
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + sh + ", }";
  size_t total = 10 + dict.size() + 1;
  dict += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  uint16_t hl = static_cast<uint16_t>(dict.size());
  out.write(reinterpret_cast<const char*>(&hl), 2);
  out << dict;
  for (double v : values) {
    if (descr == "<i8") { int64_t x = static_cast<int64_t>(v); out.write(reinterpret_cast<const char*>(&x), 8); }
    else if (descr == "<i4") { int32_t x = static_cast<int32_t>(v); out.write(reinterpret_cast<const char*>(&x), 4); }
    else if (descr == "|u1") { uint8_t x = static_cast<uint8_t>(v); out.write(reinterpret_cast<const char*>(&x), 1); }
    else if (descr == "<f4") { float x = static_cast<float>(v); out.write(reinterpret_cast<const char*>(&x), 4); }
    else { out.write(reinterpret_cast<const char*>(&v), 8); }
  }
}

inline void write_label_npy(const std::string& path, const std::vector<int>& labels, const std::string& descr = "<i8") {
  write_npy(path, std::vector<double>(labels.begin(), labels.end()), descr, {static_cast<int64_t>(labels.size())});
}

}  // namespace ewa::test
