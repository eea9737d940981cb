// synth_rooms output read back by the S3DIS reader (all 13 classes, determinism) and the
// seeded point transforms (invariants: shapes, ranges, rigidity, reproducibility).
#include "ewa/datasets/points/s3dis.h"
#include "ewa/datasets/points/synth_rooms.h"
#include "ewa/datasets/points/transforms.h"
#include "test_util.h"

#include <gmock/gmock.h>

#include <cmath>

using namespace ewa::datasets;
using ewa::test::TempDir;
namespace fs = std::filesystem;

TEST(PointsSynthRooms, WritesS3disLayoutWithAllClasses) {
  TempDir tmp;
  SynthRoomsOptions opt;
  opt.density = 60;  // small rooms for the test
  opt.threads = 2;
  auto s = synth_rooms(tmp.str(), 2, 11, opt);
  ASSERT_EQ(s.room_dirs.size(), 2u);
  EXPECT_THAT(ewa::test::read_file(tmp.path() / "README.txt"), ::testing::HasSubstr("SYNTHETIC"));
  auto rooms = list_s3dis_rooms(tmp.str());
  ASSERT_EQ(rooms.size(), 2u);
  EXPECT_EQ(fs::path(rooms[0]).filename(), "room_1");
  EXPECT_TRUE(fs::exists(fs::path(rooms[0]) / "room_1.txt"));
  int64_t total = 0;
  for (const auto& r : rooms) {
    auto room = read_s3dis_room(r);
    EXPECT_TRUE(room.issues.empty());
    total += room.cloud.size();
    auto counts = torch::bincount(room.cloud.segment, {}, 13);
    EXPECT_TRUE(counts.gt(0).all().item<bool>()) << r << " class counts " << counts;
    // Floor points sit near the lowest z, ceiling points near the highest.
    auto z = room.cloud.coord.select(1, 2);
    auto floor_z = z.index({room.cloud.segment.eq(1)}).mean().item<float>();
    auto ceil_z = z.index({room.cloud.segment.eq(0)}).mean().item<float>();
    EXPECT_NEAR(floor_z, 0.f, 0.02f);
    EXPECT_GT(ceil_z, 2.7f);
  }
  EXPECT_EQ(total, s.points);
  // Same seed -> identical files; density scales the point count.
  TempDir again;
  synth_rooms(again.str(), 1, 11, opt);
  EXPECT_EQ(ewa::test::read_file(fs::path(rooms[0]) / "room_1.txt"),
            ewa::test::read_file(again.path() / "Area_1" / "room_1" / "room_1.txt"));
}

TEST(PointsSynthRooms, DefaultDensityGivesTypicalRoomSize) {
  TempDir tmp;
  auto s = synth_rooms(tmp.str(), 1, 3);
  EXPECT_GT(s.points, 50000);
  EXPECT_LT(s.points, 150000);
}

namespace {
PointCloudData cloud(int64_t n = 200) {
  torch::manual_seed(5);
  PointCloudData c;
  c.coord = torch::rand({n, 3}) * 4 + 10;
  c.color = torch::randint(60, 200, {n, 3}).to(torch::kUInt8);
  c.normal = torch::nn::functional::normalize(torch::randn({n, 3}), torch::nn::functional::NormalizeFuncOptions().dim(1));
  c.segment = torch::randint(0, 13, {n}, torch::kInt64);
  return c;
}
torch::Tensor pairwise(const torch::Tensor& x) { return torch::cdist(x.to(torch::kFloat64), x.to(torch::kFloat64)); }
}  // namespace

TEST(PointsTransforms, CentreShiftAndNormalize) {
  auto c = cloud();
  centre_shift(c);
  auto mn = std::get<0>(c.coord.min(0)), mx = std::get<0>(c.coord.max(0));
  EXPECT_NEAR((mn[0] + mx[0]).item<float>(), 0.f, 1e-5);
  EXPECT_NEAR((mn[1] + mx[1]).item<float>(), 0.f, 1e-5);
  EXPECT_NEAR(mn[2].item<float>(), 0.f, 1e-6);
  normalize_coord(c);
  EXPECT_NEAR(c.coord.norm(2, 1).max().item<float>(), 1.f, 1e-5);
  EXPECT_NEAR(c.coord.mean(0).abs().max().item<float>(), 0.f, 1e-5);
}

TEST(PointsTransforms, RotateAndFlipAreRigidAndSeeded) {
  auto c = cloud();
  auto d0 = pairwise(c.coord);
  auto g = make_point_generator(1);
  random_rotate_z(c, M_PI, g);
  random_flip(c, 0.5, g);
  EXPECT_TRUE(torch::allclose(pairwise(c.coord), d0, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(c.normal.norm(2, 1), torch::ones({c.size()}), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(c.coord.select(1, 2), cloud().coord.select(1, 2)));  // z untouched
  auto c2 = cloud();
  auto g2 = make_point_generator(1);
  random_rotate_z(c2, M_PI, g2);
  random_flip(c2, 0.5, g2);
  EXPECT_TRUE(torch::equal(c.coord, c2.coord));
}

TEST(PointsTransforms, ScaleJitterDropout) {
  auto c = cloud();
  auto base = c.coord.clone();
  auto g = make_point_generator(2);
  random_scale(c, 0.9, 1.1, false, g);
  auto ratio = c.coord / base;
  EXPECT_NEAR((ratio.max() - ratio.min()).item<float>(), 0.f, 1e-5);
  EXPECT_TRUE(ratio.ge(0.9 - 1e-6).all().item<bool>() && ratio.le(1.1 + 1e-6).all().item<bool>());
  auto before = c.coord.clone();
  random_jitter(c, 0.01, 0.02, g);
  EXPECT_LE((c.coord - before).abs().max().item<float>(), 0.02f + 1e-6f);
  auto full = c;
  random_dropout(c, 0.25, 1.0, g);
  EXPECT_EQ(c.size(), 150);
  c.validate();
  EXPECT_TRUE(torch::equal(c.segment, full.segment.index_select(0, c.index)));
  EXPECT_TRUE(torch::equal(c.coord, full.coord.index_select(0, c.index)));
}

TEST(PointsTransforms, ChromaticOpsKeepUint8RangeAndNormalise) {
  auto c = cloud();
  auto g = make_point_generator(3);
  chromatic_auto_contrast(c, 1.0, 1.0, g);
  EXPECT_EQ(c.color.scalar_type(), torch::kUInt8);
  EXPECT_EQ(c.color.min().item<int>(), 0);
  EXPECT_EQ(c.color.max().item<int>(), 255);
  auto before = c.color.clone();
  chromatic_translation(c, 0.0, 0.1, g);  // p = 0: unchanged
  EXPECT_TRUE(torch::equal(c.color, before));
  chromatic_jitter(c, 1.0, 0.05, g);
  EXPECT_FALSE(torch::equal(c.color, before));
  auto n = normalized_color(c, true);
  EXPECT_GE(n.min().item<float>(), -1.f);
  EXPECT_LE(n.max().item<float>(), 1.f);
  EXPECT_EQ(n.scalar_type(), torch::kFloat32);
}
