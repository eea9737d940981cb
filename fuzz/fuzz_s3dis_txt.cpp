// libFuzzer harness: S3DIS annotation text (x y z r g b per line, stray bytes repaired,
// damaged lines counted) through parse_xyzrgb_text and a whole room folder through
// open_cloud (Annotations/chair_1.txt holding the input).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "ewa/datasets/points/cloud_formats.h"
#include "ewa/datasets/points/s3dis.h"
#include "point_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ewa_fuzz_points::run("chair_1.txt", [&] {
    auto t = ewa::datasets::parse_xyzrgb_text(std::string_view(reinterpret_cast<const char*>(data), size), "chair_1.txt");
    if (t.xyz.size() != t.rgb.size() || t.xyz.size() % 3 != 0) std::abort();
    if (static_cast<int64_t>(t.issues.size()) > ewa::datasets::kKeptParseIssues) std::abort();  // bounded memory
  });
  std::filesystem::create_directories(ewa_fuzz::scratch_dir() + "/room_1/Annotations");
  ewa_fuzz::write_file("room_1/Annotations/chair_1.txt", data, size);
  const std::string room = ewa_fuzz::scratch_dir() + "/room_1";
  ewa_fuzz_points::run("room_1", [&] {
    auto s = ewa::datasets::open_cloud(room);
    if (s.cloud.size() == 0 || !torch::isfinite(s.cloud.coord).all().item<bool>()) std::abort();
    if (!s.cloud.has_segment() || s.cloud.segment.ne(8).any().item<bool>()) std::abort();  // chair = 8
  });
  return 0;
}
