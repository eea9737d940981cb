// PCD (ascii / binary / binary_compressed, organised with NaN points) and PLY (ascii /
// binary) readers with label fields, LZF, label maps, the PLY writer, and real mOSD/Kinect.
#include "ewa/datasets/points/cloud_formats.h"
#include "ewa/datasets/points/npy.h"
#include "ewa/datasets/points/pcd_ply.h"
#include "test_util.h"

#include <gmock/gmock.h>

#include <cmath>

using namespace ewa::datasets;
using ewa::test::TempDir;
using ewa::test::write_file;
namespace fs = std::filesystem;

namespace {
struct Pt {
  float x, y, z;
  uint32_t rgb;
  uint32_t label;
};
// 2x2 organised cloud, one NaN point.
std::vector<Pt> points() {
  return {{0.5f, 1.f, 2.f, 0x00FF8001u, 0}, {NAN, NAN, NAN, 0, 0}, {-1.f, 0.25f, 3.f, 0x00102030u, 5},
          {2.f, 2.f, 2.f, 0x00000000u, 23}};
}
float as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
std::string header(const std::string& data) {
  return "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z rgb label\nSIZE 4 4 4 4 4\n"
         "TYPE F F F F U\nCOUNT 1 1 1 1 1\nWIDTH 2\nHEIGHT 2\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 4\nDATA " + data + "\n";
}
// Valid LZF made of literal runs only (the decoder's back references are tested separately).
std::string lzf_literals(const std::string& raw) {
  std::string out;
  for (size_t i = 0; i < raw.size(); i += 32) {
    size_t n = std::min<size_t>(32, raw.size() - i);
    out += static_cast<char>(n - 1);
    out += raw.substr(i, n);
  }
  return out;
}
void check_cloud(const PointFields& f) {
  EXPECT_EQ(f.width, 2);
  EXPECT_EQ(f.height, 2);
  EXPECT_EQ(f.names, (std::vector<std::string>{"x", "y", "z", "rgb", "label"}));
  EXPECT_EQ(f.get("label").scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(f.get("label"), torch::tensor({0, 0, 5, 23}, torch::kInt64)));
  EXPECT_TRUE(std::isnan(f.get("x")[1].item<float>()));
  EXPECT_FLOAT_EQ(f.get("y")[2].item<float>(), 0.25f);
  auto c = fields_to_cloud(f, {"label", true, mosd_label_map(), true});
  EXPECT_EQ(c.size(), 3);
  EXPECT_TRUE(torch::equal(c.index, torch::tensor({0, 2, 3}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(c.segment, torch::tensor({-1, 0, 1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(c.color[0], torch::tensor({255, 128, 1}, torch::kUInt8)));
  EXPECT_TRUE(torch::equal(c.color[1], torch::tensor({16, 32, 48}, torch::kUInt8)));
  EXPECT_THROW(f.get("intensity"), std::exception);
}
}  // namespace

TEST(PointsLzf, DecodesLiteralsAndOverlappingBackReferences) {
  // "abc" literal, then a 6-byte back reference at distance 3 -> "abcabcabc".
  const uint8_t in[] = {0x02, 'a', 'b', 'c', (4 << 5) | 0, 2};
  auto out = lzf_decompress(in, sizeof in, 9);
  EXPECT_EQ(std::string(out.begin(), out.end()), "abcabcabc");
  // Long back reference (len field 7 + extra byte): "x" then 20 more 'x'.
  const uint8_t in2[] = {0x00, 'x', (7 << 5) | 0, 20 - 9, 0};
  auto out2 = lzf_decompress(in2, sizeof in2, 21);
  EXPECT_EQ(std::string(out2.begin(), out2.end()), std::string(21, 'x'));
  EXPECT_THROW(lzf_decompress(in, sizeof in, 8), std::exception);   // too long for the buffer
  EXPECT_THROW(lzf_decompress(in, sizeof in, 12), std::exception);  // too short
  const uint8_t bad[] = {(1 << 5) | 0, 5};                      // reference before start
  EXPECT_THROW(lzf_decompress(bad, sizeof bad, 3), std::exception);
}

TEST(PointsPcd, AsciiBinaryAndCompressedAgree) {
  TempDir tmp;
  auto pts = points();
  std::string ascii = header("ascii");
  for (const auto& p : pts) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "%.9g %.9g %.9g %.9g %u\n", p.x, p.y, p.z, as_float(p.rgb), p.label);
    ascii += buf;
  }
  // nan prints as "nan": PCL writes it so.
  write_file(tmp.path() / "a.pcd", ascii);
  std::string bin = header("binary");
  bin.append(reinterpret_cast<const char*>(pts.data()), pts.size() * sizeof(Pt));
  write_file(tmp.path() / "b.pcd", bin);
  std::string soa;
  for (int field = 0; field < 5; ++field) {
    for (const auto& p : pts) soa.append(reinterpret_cast<const char*>(&p) + 4 * field, 4);
  }
  std::string comp = lzf_literals(soa);
  uint32_t sizes[2] = {static_cast<uint32_t>(comp.size()), static_cast<uint32_t>(soa.size())};
  std::string bc = header("binary_compressed") + std::string(reinterpret_cast<char*>(sizes), 8) + comp;
  write_file(tmp.path() / "c.pcd", bc);
  for (const char* n : {"a.pcd", "b.pcd", "c.pcd"}) {
    SCOPED_TRACE(n);
    check_cloud(read_point_fields(tmp.str(n)));
  }
  write_file(tmp.path() / "t.pcd", header("binary_compressed") + std::string(reinterpret_cast<char*>(sizes), 8));
  EXPECT_THROW(read_pcd(tmp.str("t.pcd")), std::exception);
  write_file(tmp.path() / "short.pcd", header("binary") + "xx");
  EXPECT_THROW(read_pcd(tmp.str("short.pcd")), std::exception);
}

TEST(PointsPly, AsciiAndBinaryWithLabelsAndFaces) {
  TempDir tmp;
  std::string h = "ply\nformat ascii 1.0\ncomment test\nelement vertex 3\nproperty float x\nproperty float y\n"
                  "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
                  "property int label\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n";
  write_file(tmp.path() / "a.ply", h + "0 0 0 255 0 0 -1\n1 0 0 0 255 0 2\n0 1 0 0 0 255 7\n3 0 1 2\n");
  auto a = read_ply(tmp.str("a.ply"));
  EXPECT_EQ(a.size(), 3);
  EXPECT_EQ(a.get("red").scalar_type(), torch::kUInt8);
  auto c = fields_to_cloud(a);
  EXPECT_TRUE(torch::equal(c.segment, torch::tensor({-1, 2, 7}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(c.color[1], torch::tensor({0, 255, 0}, torch::kUInt8)));
  // Binary, with a face element *before* the vertices (must be skipped), big-endian variant too.
  for (bool big : {false, true}) {
    std::string b = std::string("ply\nformat ") + (big ? "binary_big_endian" : "binary_little_endian") +
                    " 1.0\nelement face 1\nproperty list uchar int vertex_indices\nelement vertex 2\n"
                    "property double x\nproperty double y\nproperty double z\nproperty ushort label\nend_header\n";
    auto put = [&](const void* p, int n) {
      std::string s(static_cast<const char*>(p), static_cast<size_t>(n));
      if (big) std::reverse(s.begin(), s.end());
      b += s;
    };
    uint8_t three = 3;
    put(&three, 1);
    for (int32_t i : {0, 1, 1}) put(&i, 4);
    for (int v = 0; v < 2; ++v) {
      for (double d : {1.5 * v, -2.0, 0.5}) put(&d, 8);
      uint16_t l = static_cast<uint16_t>(60000 + v);
      put(&l, 2);
    }
    write_file(tmp.path() / "b.ply", b);
    auto f = read_ply(tmp.str("b.ply"));
    EXPECT_EQ(f.get("x").scalar_type(), torch::kFloat64);
    EXPECT_DOUBLE_EQ(f.get("x")[1].item<double>(), 1.5);
    EXPECT_EQ(f.get("label")[1].item<int64_t>(), 60001);  // ushort widened, not negative
  }
  write_file(tmp.path() / "bad.ply", "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nend_header\n1\n");
  EXPECT_THROW(read_ply(tmp.str("bad.ply")), std::exception);
}

TEST(PointsPly, WriterRoundTripsBinaryAndAscii) {
  TempDir tmp;
  torch::manual_seed(1);
  auto coord = torch::randn({20, 3});
  auto color = torch::randint(0, 256, {20, 3}).to(torch::kUInt8);
  auto label = torch::randint(0, 13, {20}, torch::kInt64);
  auto gt = torch::randint(-1, 13, {20}, torch::kInt64);
  for (bool binary : {true, false}) {
    std::string p = tmp.str(binary ? "b.ply" : "a.ply");
    write_labelled_ply(p, coord, color, label, gt, binary);
    auto f = read_ply(p);
    auto c = fields_to_cloud(f);
    EXPECT_TRUE(torch::allclose(c.coord, coord, 1e-6, 1e-6));
    EXPECT_TRUE(torch::equal(c.color, color));
    EXPECT_TRUE(torch::equal(c.segment, label));
    EXPECT_TRUE(torch::equal(f.get("gt").to(torch::kInt64), gt));
  }
  write_labelled_ply(tmp.str("nogt.ply"), coord, {}, label);
  EXPECT_FALSE(read_ply(tmp.str("nogt.ply")).has("gt"));
  EXPECT_THROW(write_labelled_ply(tmp.str("x.ply"), coord, color, label.narrow(0, 0, 5)), std::exception);
}

TEST(PointsPly, PointWriterColumnsRoundTripThroughOpenCloud) {
  // `ewa segment`'s layout: pred (int), gt (int), confidence (float), binary and ascii, read
  // back by the shared reader into `extra`; a bad column is refused.
  TempDir tmp;
  torch::manual_seed(2);
  auto coord = torch::randn({30, 3});
  auto pred = torch::randint(0, 5, {30}, torch::kInt64);
  auto gt = torch::randint(-1, 5, {30}, torch::kInt64);
  auto conf = torch::rand({30});
  for (bool binary : {true, false}) {
    const std::string p = tmp.str(binary ? "b.ply" : "a.ply");
    write_point_ply(p, coord, {}, {{"pred", pred}, {"gt", gt}, {"confidence", conf}}, binary);
    auto s = open_cloud(p);
    ASSERT_EQ(s.cloud.size(), 30) << binary;
    EXPECT_FALSE(s.cloud.has_segment()) << binary;
    EXPECT_TRUE(torch::equal(s.cloud.extra.at("pred").to(torch::kInt64), pred)) << binary;
    EXPECT_TRUE(torch::equal(s.cloud.extra.at("gt").to(torch::kInt64), gt)) << binary;
    ASSERT_TRUE(s.cloud.extra.at("confidence").is_floating_point()) << binary;
    EXPECT_TRUE(torch::allclose(s.cloud.extra.at("confidence").to(torch::kFloat), conf, 0, 1e-7)) << binary;
  }
  EXPECT_THROW(write_point_ply(tmp.str("x.ply"), coord, {}, {{"pred", pred.narrow(0, 0, 3)}}), std::exception);
  EXPECT_THROW(write_point_ply(tmp.str("y.ply"), coord, {}, {{"bad name", pred}}), std::exception);
}

TEST(PointsNpy, Float16RoundTrips) {
  TempDir tmp;
  auto t = torch::tensor({{0.25f, 1.0f}, {std::nanf(""), 0.5f}}).to(torch::kHalf);
  write_npy(tmp.str("h.npy"), t);
  auto back = read_npy(tmp.str("h.npy"));
  ASSERT_EQ(back.scalar_type(), torch::kHalf);
  auto f = back.to(torch::kFloat), want = t.to(torch::kFloat);
  EXPECT_TRUE(torch::equal(torch::isnan(f), torch::isnan(want)));
  EXPECT_TRUE(torch::equal(torch::nan_to_num(f, 0.0), torch::nan_to_num(want, 0.0)));
}

TEST(PointsLabelMap, ParsesAndAppliesFirstMatchingRule) {
  auto m = parse_label_map("0:-1, 1-9:0, 20-:1");
  ASSERT_EQ(m.rules.size(), 3u);
  auto out = apply_label_map(torch::tensor({0, 1, 9, 10, 19, 20, 35, 1000}, torch::kInt64), m);
  EXPECT_TRUE(torch::equal(out, torch::tensor({-1, 0, 0, -1, -1, 1, 1, 1}, torch::kInt64)));
  EXPECT_THROW(parse_label_map("1-x:0"), std::exception);
  EXPECT_THROW(parse_label_map(""), std::exception);
  EXPECT_THROW(apply_label_map(torch::ones({2}), m), std::exception);
}

TEST(PointsPcd, RealMosdLearn0) {
  EWA_REQUIRE_SHARED_DATA(data);
  fs::path p = fs::path(data) / "mosd" / "learn" / "learn0.pcd";
  if (!fs::exists(p)) GTEST_SKIP() << "mOSD absent";
  auto f = read_pcd(p.string());
  EXPECT_EQ(f.size(), 307200);
  EXPECT_EQ(f.width, 640);
  EXPECT_EQ(f.height, 480);
  EXPECT_EQ(f.names, (std::vector<std::string>{"label", "x", "y", "z", "rgba"}));
  auto l = f.get("label");
  EXPECT_TRUE(l.ge(1).logical_and(l.le(9)).any().item<bool>());  // table
  EXPECT_TRUE(l.ge(20).any().item<bool>());                      // objects
  // Label 0 marks the invalid (NaN) points.
  auto nan = torch::isnan(f.get("x"));
  EXPECT_TRUE(nan.any().item<bool>());
  EXPECT_TRUE(l.index({nan}).eq(0).all().item<bool>());
  FieldsToCloudOptions opt;
  opt.use_label_map = true;
  opt.label_map = mosd_label_map();
  auto c = fields_to_cloud(f, opt);
  EXPECT_LT(c.size(), 307200);
  EXPECT_TRUE(torch::isfinite(c.coord).all().item<bool>());
  EXPECT_TRUE(c.segment.eq(0).any().item<bool>());
  EXPECT_TRUE(c.segment.eq(1).any().item<bool>());
  EXPECT_TRUE(c.segment.ge(-1).logical_and(c.segment.le(1)).all().item<bool>());
  EXPECT_TRUE(c.has_color());
  EXPECT_GT(c.color.to(torch::kFloat32).std().item<float>(), 5.f);  // real colours, not zeros
}

TEST(PointsPcd, RealKinectOffice) {
  EWA_REQUIRE_SHARED_DATA(data);
  fs::path p = fs::path(data) / "kinect-office1.pcd";
  if (!fs::exists(p)) GTEST_SKIP() << "kinect-office1.pcd absent";
  auto f = read_pcd(p.string());
  EXPECT_EQ(f.size(), 307200);
  auto c = fields_to_cloud(f);
  EXPECT_FALSE(c.has_segment());
  EXPECT_TRUE(c.has_color());
  EXPECT_GT(c.size(), 100000);
  EXPECT_TRUE(torch::isfinite(c.coord).all().item<bool>());
}
