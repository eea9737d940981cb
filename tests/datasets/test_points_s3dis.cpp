// S3DIS raw reader tests: fast tolerant parser (damaged bytes, stray letters, wrong column
// counts, NaN), room assembly (classes, stairs, instances), alignment, errors, prepare_s3dis.
#include "ewa/datasets/points/room_cache.h"
#include "ewa/datasets/points/s3dis.h"
#include "test_util.h"

#include <gmock/gmock.h>

using namespace ewa::datasets;
using ewa::test::TempDir;
using ewa::test::write_file;
namespace fs = std::filesystem;

namespace {
// The known S3DIS damage: a 0x10 byte inside "103.00000".
const std::string kDamaged = std::string("1.5 2.5 103.0") + '\x10' + "0000 10 20 30\n";

void make_room(const fs::path& room) {
  write_file(room / "Annotations" / "ceiling_1.txt", "0 0 3 200 200 200\n1 0 3 201 201 201\n");
  write_file(room / "Annotations" / "wall_1.txt", "0 0 0 100 100 100\n" + kDamaged + "4 4 4 1 2 3\n");
  write_file(room / "Annotations" / "wall_2.txt", "1 1 1 1 1 1\n1 2 3 4 5\n2 2 2 2 2 2\n");  // line 2: 5 columns
  write_file(room / "Annotations" / "stairs_1.txt", "5 5 5 9 9 9\n");
  write_file(room / "Annotations" / "chair_1.txt", "3 3 0.5 7 7 7\n3.2 3.a1 0.5 7 7 7\n");  // stray letter
  write_file(room / (room.filename().string() + ".txt"), "ignored 0 0\n");
}
}  // namespace

TEST(PointsS3dis, ClassOrder) {
  const auto& c = s3dis_class_names();
  ASSERT_EQ(c.size(), 13u);
  EXPECT_EQ(c.front(), "ceiling");
  EXPECT_EQ(c[7], "table");
  EXPECT_EQ(c.back(), "clutter");
}

TEST(PointsS3dis, ParserCleanValues) {
  auto r = parse_xyzrgb_text("1.25 -2.5e1 +3 0 128 255\r\n\n  -0.001\t4 5.5 1 2 3", "f.txt");
  ASSERT_EQ(r.xyz.size(), 6u);
  EXPECT_FLOAT_EQ(r.xyz[0], 1.25f);
  EXPECT_FLOAT_EQ(r.xyz[1], -25.f);
  EXPECT_FLOAT_EQ(r.xyz[2], 3.f);
  EXPECT_FLOAT_EQ(r.xyz[3], -0.001f);
  EXPECT_FLOAT_EQ(r.xyz[5], 5.5f);
  EXPECT_EQ(r.rgb[1], 128);
  EXPECT_EQ(r.rgb[2], 255);
  EXPECT_TRUE(r.issues.empty());
}

TEST(PointsS3dis, ParserAgreesWithStrtod) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(-500, 500);
  std::string text;
  std::vector<double> ref;
  for (int i = 0; i < 2000; ++i) {
    char buf[128];
    double a = u(rng), b = u(rng) * 1e-3, c = u(rng) * 1e4;
    std::snprintf(buf, sizeof buf, "%.6f %.9g %.3e 1 2 3\n", a, b, c);
    text += buf;
    char* end;
    const char* q = buf;
    for (int k = 0; k < 3; ++k) {
      ref.push_back(std::strtod(q, &end));
      q = end;
    }
  }
  auto r = parse_xyzrgb_text(text, "f");
  ASSERT_EQ(r.xyz.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(r.xyz[i], static_cast<float>(ref[i])) << i;
}

TEST(PointsS3dis, ParserRepairsOrSkipsDamagedLines) {
  std::string text = "0 0 0 1 1 1\n" + kDamaged + "1 2 3 4 5\n7 8 9 1 2 3 4\n1.0 2.x0 3.0 5 5 5\n" +
                     "1 2 3 4 5 300\n9 9 9 9 9 9\n";
  auto r = parse_xyzrgb_text(text, "room/wall_1.txt");
  ASSERT_EQ(r.xyz.size() / 3, 4u);  // lines 1, 2 (repaired), 5 (repaired), 7
  EXPECT_FLOAT_EQ(r.xyz[3], 1.5f);
  EXPECT_FLOAT_EQ(r.xyz[5], 103.0f);  // not shifted, not 103.00000 misread
  EXPECT_EQ(r.rgb[3], 10);
  EXPECT_FLOAT_EQ(r.xyz[7], 2.0f);  // "2.x0" -> 2.0
  EXPECT_FLOAT_EQ(r.xyz[9], 9.0f);
  EXPECT_EQ(r.repaired_lines, 2);
  EXPECT_EQ(r.skipped_lines, 3);
  ASSERT_EQ(r.issues.size(), 5u);
  EXPECT_EQ(r.issues[0].line, 2);
  EXPECT_TRUE(r.issues[0].repaired);
  EXPECT_THAT(r.issues[0].what, ::testing::HasSubstr("0x10"));
  EXPECT_EQ(r.issues[1].line, 3);
  EXPECT_FALSE(r.issues[1].repaired);
  EXPECT_EQ(r.issues[2].line, 4);
  EXPECT_EQ(r.issues[3].line, 5);
  EXPECT_EQ(r.issues[4].line, 6);
  EXPECT_THAT(r.issues[1].to_string(), ::testing::HasSubstr("room/wall_1.txt:3"));
}

TEST(PointsS3dis, NanCoordinateIsDroppedAndCountedOrRefusedWithFileAndLine) {
  auto t = parse_xyzrgb_text("1 2 3 4 5 6\n1 nan 3 4 5 6\n", "a/b.txt");
  EXPECT_EQ(t.xyz.size(), 3u);
  EXPECT_EQ(t.non_finite_lines, 1);
  ASSERT_EQ(t.issues.size(), 1u);
  EXPECT_EQ(t.issues[0].line, 2);
  try {
    parse_xyzrgb_text("1 2 3 4 5 6\n1 nan 3 4 5 6\n", "a/b.txt", /*refuse_non_finite=*/true);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("a/b.txt:2"));
  }
}

TEST(PointsS3dis, ReadsRoomWithClassesInstancesStairsAndIssues) {
  TempDir tmp;
  fs::path room = tmp.path() / "Area_3" / "office_7";
  make_room(room);
  S3disReadOptions opt;
  opt.threads = 2;
  auto r = read_s3dis_room(room.string(), opt);
  const auto& c = r.cloud;
  c.validate();
  EXPECT_EQ(c.name, "Area_3/office_7");
  ASSERT_EQ(c.size(), 2 + 3 + 2 + 1 + 2);
  EXPECT_EQ(r.repaired_lines, 2);
  EXPECT_EQ(r.skipped_lines, 1);
  ASSERT_EQ(r.issues.size(), 3u);
  // Instances are annotation files in natural order: ceiling_1 chair_1 stairs_1 wall_1 wall_2.
  ASSERT_EQ(r.annotation_files.size(), 5u);
  EXPECT_EQ(r.annotation_files[0], "ceiling_1.txt");
  EXPECT_EQ(c.instance.max().item<int64_t>(), 4);
  auto seg = c.segment;
  auto ins = c.instance;
  for (int64_t i = 0; i < c.size(); ++i) {
    const std::string& f = r.annotation_files[ins[i].item<int64_t>()];
    int64_t expect = f.rfind("ceiling", 0) == 0 ? 0 : f.rfind("chair", 0) == 0 ? 8 : f.rfind("wall", 0) == 0 ? 2 : 12;
    EXPECT_EQ(seg[i].item<int64_t>(), expect) << f;  // stairs -> clutter (12)
  }
  // Damaged line kept with the right z.
  auto z = c.coord.select(1, 2);
  EXPECT_TRUE(z.eq(103.0f).any().item<bool>());
  EXPECT_EQ(c.color.scalar_type(), torch::kUInt8);
}

TEST(PointsS3dis, ConfigurableClassOrderAndUnknownClass) {
  TempDir tmp;
  fs::path room = tmp.path() / "Area_1" / "r";
  write_file(room / "Annotations" / "wall_1.txt", "0 0 0 1 1 1\n");
  write_file(room / "Annotations" / "floor_1.txt", "0 0 0 1 1 1\n");
  S3disReadOptions opt;
  opt.class_names = {"wall", "floor"};
  auto r = read_s3dis_room(room.string(), opt);
  EXPECT_EQ(r.cloud.segment[0].item<int64_t>(), 1);  // floor_1 sorts first
  EXPECT_EQ(r.cloud.segment[1].item<int64_t>(), 0);
  write_file(room / "Annotations" / "lamp_1.txt", "0 0 0 1 1 1\n");
  EXPECT_THROW(read_s3dis_room(room.string(), opt), std::exception);
}

TEST(PointsS3dis, AlignmentAngleRotatesAboutRoomCentre) {
  TempDir tmp;
  fs::path area = tmp.path() / "Area_2";
  write_file(area / "Area_2_alignmentAngle.txt",
             "## Global alignment angle per disjoint space in Area_2 ##\n"
             "## Disjoint Space Name Global Alignment Angle ##\nhallway_1 90\nroom_2 0\n");
  write_file(area / "hallway_1" / "Annotations" / "wall_1.txt", "0 0 1 1 1 1\n4 0 1 1 1 1\n4 2 2 1 1 1\n");
  auto angles = read_s3dis_alignment((area / "Area_2_alignmentAngle.txt").string());
  EXPECT_DOUBLE_EQ(angles.at("hallway_1"), 90.0);
  auto r = read_s3dis_room((area / "hallway_1").string());
  EXPECT_DOUBLE_EQ(r.alignment_angle_deg, 90.0);
  // Centre (2,1); rotation by -90 deg: (dx,dy) -> (dy,-dx).
  auto expect = torch::tensor({1.f, 3.f, 1.f, 1.f, -1.f, 1.f, 3.f, -1.f, 2.f}).view({3, 3});
  EXPECT_TRUE(torch::allclose(r.cloud.coord, expect, 1e-5, 1e-5)) << r.cloud.coord;
  S3disReadOptions no;
  no.apply_alignment = false;
  auto raw = read_s3dis_room((area / "hallway_1").string(), no);
  EXPECT_FLOAT_EQ(raw.cloud.coord[1][0].item<float>(), 4.f);
  write_file(area / "Area_2_alignmentAngle.txt", "hallway_1 ninety\n");
  EXPECT_THROW(read_s3dis_room((area / "hallway_1").string()), std::exception);
}

TEST(PointsS3dis, BadRoomsGiveClearErrors) {
  TempDir tmp;
  fs::path room = tmp.path() / "Area_1" / "noann";
  write_file(room / "noann.txt", "0 0 0 1 1 1\n");
  try {
    read_s3dis_room(room.string());
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("missing Annotations"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("noann"));
  }
  fs::path empty = tmp.path() / "Area_1" / "empty";
  fs::create_directories(empty / "Annotations");
  EXPECT_THROW(read_s3dis_room(empty.string()), std::exception);
  write_file(empty / "Annotations" / "wall_1.txt", "x y z\n");
  EXPECT_THROW(read_s3dis_room(empty.string()), std::exception);  // only a skipped line: no points
}

TEST(PointsS3dis, ListsRoomsByArea) {
  TempDir tmp;
  make_room(tmp.path() / "Area_1" / "office_10");
  make_room(tmp.path() / "Area_1" / "office_2");
  make_room(tmp.path() / "Area_5" / "hallway_6");
  fs::create_directories(tmp.path() / "Area_1" / "not_a_room");
  auto all = list_s3dis_rooms(tmp.str());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(fs::path(all[0]).filename(), "office_2");
  EXPECT_EQ(fs::path(all[1]).filename(), "office_10");
  EXPECT_EQ(list_s3dis_rooms(tmp.str(), {5}).size(), 1u);
}

TEST(PointsS3dis, PrepareWritesCacheResumesAndReportsFailures) {
  if (!have_hdf5()) GTEST_SKIP() << "built without HDF5";
  TempDir raw, out;
  make_room(raw.path() / "Area_1" / "office_1");
  make_room(raw.path() / "Area_2" / "office_1");
  write_file(raw.path() / "Area_2" / "broken" / "broken.txt", "0 0 0 1 1 1\n");  // no Annotations
  S3disPrepareOptions opt;
  opt.threads = 2;
  int calls = 0;
  opt.progress = [&](const S3disPrepareProgress& p) {
    ++calls;
    EXPECT_EQ(p.total, 3);
  };
  auto s = prepare_s3dis(raw.str(), out.str(), opt);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(s.rooms, 3);
  EXPECT_EQ(s.rooms_written, 2);
  EXPECT_EQ(s.points, 20);
  EXPECT_EQ(s.repaired_lines, 4);
  EXPECT_EQ(s.skipped_lines, 2);
  ASSERT_EQ(s.failed.size(), 1u);
  EXPECT_EQ(s.failed[0].first, "Area_2/broken");
  EXPECT_FALSE(fs::exists(out.path() / "Area_2" / "broken.h5"));
  auto direct = read_s3dis_room((raw.path() / "Area_1" / "office_1").string());
  auto cached = read_room_h5((out.path() / "Area_1" / "office_1.h5").string());
  EXPECT_TRUE(torch::equal(cached.coord, direct.cloud.coord));
  EXPECT_TRUE(torch::equal(cached.color, direct.cloud.color));
  EXPECT_TRUE(torch::equal(cached.segment, direct.cloud.segment));
  EXPECT_TRUE(torch::equal(cached.instance, direct.cloud.instance));
  for (const auto& e : fs::recursive_directory_iterator(out.path())) {
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
  }
  // Resume: valid outputs are skipped; a corrupt one is rewritten.
  write_file(out.path() / "Area_2" / "office_1.h5", "garbage");
  auto s2 = prepare_s3dis(raw.str(), out.str(), opt);
  EXPECT_EQ(s2.rooms_skipped, 1);
  EXPECT_EQ(s2.rooms_written, 1);
  EXPECT_TRUE(room_h5_valid((out.path() / "Area_2" / "office_1.h5").string()));
}

TEST(PointsS3dis, RealFixtureOffice2) {
  EWA_REQUIRE_SHARED_DATA(data);
  fs::path room = fs::path(data) / "s3dis-fixture" / "Stanford3dDataset_v1.2_Aligned_Version" / "Area_1" / "office_2";
  if (!fs::exists(room)) GTEST_SKIP() << "s3dis-fixture absent";
  auto r = read_s3dis_room(room.string());
  EXPECT_EQ(r.cloud.size(), 100);
  EXPECT_TRUE(r.issues.empty());
  EXPECT_GE(r.cloud.segment.min().item<int64_t>(), 0);
  EXPECT_LE(r.cloud.segment.max().item<int64_t>(), 12);
  EXPECT_EQ(r.cloud.instance.max().item<int64_t>() + 1, static_cast<int64_t>(r.annotation_files.size()));
  auto rooms = list_s3dis_rooms((fs::path(data) / "s3dis-fixture" / "Stanford3dDataset_v1.2_Aligned_Version").string());
  EXPECT_EQ(rooms.size(), 1u);
}
