// Class tables of the viewer: the standard S3DIS 13-class palette and user class files.
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "ewa/datasets/points/s3dis.h"
#include "ewa/viewer/scene.h"

namespace ewa::viewer {

namespace {

// The palette used by the common S3DIS tools (PointNet / Point Transformer visualisations),
// in the order of datasets::s3dis_class_names() (ceiling ... clutter).
const Rgb8 kS3disPalette[13] = {{0, 255, 0},     {0, 0, 255},     {0, 255, 255},   {255, 255, 0}, {255, 0, 255},
                                {100, 100, 255}, {200, 200, 100}, {170, 120, 200}, {255, 0, 0},   {200, 100, 100},
                                {10, 200, 100},  {200, 200, 200}, {50, 50, 50}};

// Colours for class-file lines without r g b (distinct, saturated; cycles after 20).
const Rgb8 kFallback[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                          {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
                          {174, 199, 232}, {255, 187, 120}, {152, 223, 138}, {255, 152, 150}, {197, 176, 213},
                          {196, 156, 148}, {247, 182, 210}, {199, 199, 199}, {219, 219, 141}, {158, 218, 229}};

}  // namespace

LabelTable LabelTable::s3dis() {
  LabelTable t;
  const auto& names = datasets::s3dis_class_names();  // the one S3DIS class list
  for (size_t i = 0; i < names.size(); ++i) {
    t.names.push_back(names[i]);
    t.colors.push_back(i < 13 ? kS3disPalette[i] : kFallback[i % 20]);
  }
  return t;
}

LabelTable LabelTable::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open class file");
  LabelTable t;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::istringstream is(line);
    std::vector<std::string> tok;
    std::string s;
    while (is >> s) tok.push_back(s);
    if (tok.empty() || tok[0][0] == '#') continue;
    if (tok.size() != 1 && tok.size() != 4)
      throw std::runtime_error(path + ":" + std::to_string(lineno) + ": expected 'name' or 'name r g b', got '" +
                               line + "'");
    Rgb8 c = kFallback[t.names.size() % (sizeof(kFallback) / sizeof(kFallback[0]))];
    if (tok.size() == 4) {
      for (int k = 0; k < 3; ++k) {
        int v = -1;
        try {
          size_t used = 0;
          v = std::stoi(tok[static_cast<size_t>(k + 1)], &used);
          if (used != tok[static_cast<size_t>(k + 1)].size()) v = -1;
        } catch (const std::exception&) {
        }
        if (v < 0 || v > 255)
          throw std::runtime_error(path + ":" + std::to_string(lineno) + ": colour component '" +
                                   tok[static_cast<size_t>(k + 1)] + "' is not an integer in 0..255");
        c[static_cast<size_t>(k)] = static_cast<uint8_t>(v);
      }
    }
    t.names.push_back(tok[0]);
    t.colors.push_back(c);
  }
  if (t.names.empty()) throw std::runtime_error(path + ": class file lists no classes");
  return t;
}

LabelTable LabelTable::from_spec(const std::string& spec) {
  if (spec.empty() || spec == "s3dis") return s3dis();
  return from_file(spec);
}

}  // namespace ewa::viewer
