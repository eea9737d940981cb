// Class tables of the viewer: the standard S3DIS 13-class palette and user class files.
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "ewa/datasets/points/cloud_formats.h"
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
  LabelTable t;  // the file is parsed by datasets (the viewer reads no file itself)
  for (const auto& e : datasets::read_class_file(path)) {
    Rgb8 c = kFallback[t.names.size() % (sizeof(kFallback) / sizeof(kFallback[0]))];
    if (e.r >= 0) c = {static_cast<uint8_t>(e.r), static_cast<uint8_t>(e.g), static_cast<uint8_t>(e.b)};
    t.names.push_back(e.name);
    t.colors.push_back(c);
  }
  return t;
}

LabelTable LabelTable::from_spec(const std::string& spec) {
  if (spec.empty() || spec == "s3dis") return s3dis();
  return from_file(spec);
}

}  // namespace ewa::viewer
