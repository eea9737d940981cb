// Scene loading tests (through the shared datasets reader table): PLY (ascii/binary,
// label/gt roles), PCD (ascii/binary and the real binary_compressed mOSD frames), .npy
// labels, S3DIS room folders, and bad-input messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "ewa/datasets/points/cloud_formats.h"
#include "ewa/datasets/points/pcd_ply.h"
#include "ewa/viewer/scene.h"
#include "test_util.h"
#include "viewer_fixtures.h"

namespace ewa::viewer {
namespace {

using ::testing::HasSubstr;

std::vector<test::FixturePoint> five_points() {
  return {{0, 0, 0, 255, 0, 0, 0, 0},    {1, 0, 0, 0, 255, 0, 1, 1},  {0, 1, 0, 0, 0, 255, 2, 1},
          {0, 0, 1, 10, 20, 30, 8, 8},   {1, 1, 1, 40, 50, 60, 12, -1}};
}

class PlyIo : public ::testing::TestWithParam<bool> {};

TEST_P(PlyIo, LabelIsGroundTruthWithoutGtField) {
  test::TempDir tmp;
  std::string p = tmp.str("c.ply");
  test::write_ply(p, five_points(), GetParam(), false, /*with_faces=*/true);
  SceneInputs in;
  in.cloud_path = p;
  Scene s = Scene::load(in);
  ASSERT_EQ(s.num_points(), 5);
  EXPECT_TRUE(s.has_gt());
  EXPECT_FALSE(s.has_pred());
  EXPECT_EQ(s.gt(), (std::vector<int32_t>{0, 1, 2, 8, 12}));
  EXPECT_EQ(s.rgb()[3 * 3 + 2], 30);
  EXPECT_EQ(s.xyz()[4 * 3 + 2], 1.0f);
  EXPECT_EQ(s.bounds_max(), (std::array<float, 3>{1, 1, 1}));
}

TEST_P(PlyIo, SegmentOutputWithGtFieldAndNpyPrediction) {
  test::TempDir tmp;
  std::string p = tmp.str("seg.ply");
  test::write_ply(p, five_points(), GetParam(), true);
  SceneInputs in;
  in.cloud_path = p;
  Scene s = Scene::load(in);  // label = prediction, gt = ground truth (as `ewa segment` writes)
  EXPECT_EQ(s.pred(), (std::vector<int32_t>{0, 1, 2, 8, 12}));
  EXPECT_EQ(s.gt(), (std::vector<int32_t>{0, 1, 1, 8, -1}));
  EXPECT_EQ(s.metrics().correct, 3);
  // An explicit --pred file replaces the field.
  test::write_label_npy(tmp.str("seg_pred.npy"), {0, 1, 1, 8, 3});
  in.pred_path = tmp.str("seg_pred.npy");
  Scene t = Scene::load(in);
  EXPECT_EQ(t.pred(), (std::vector<int32_t>{0, 1, 1, 8, 3}));
  EXPECT_EQ(t.metrics().correct, 4);
}

INSTANTIATE_TEST_SUITE_P(AsciiAndBinary, PlyIo, ::testing::Values(false, true));

TEST(SceneIo, PcdAsciiAndBinaryWithPackedRgbAndLabel) {
  test::TempDir tmp;
  auto pts = five_points();
  pts[4].label = 3;
  for (bool binary : {false, true}) {
    std::string p = tmp.str(binary ? "b.pcd" : "a.pcd");
    test::write_pcd(p, pts, binary);
    SceneInputs in;
    in.cloud_path = p;
    Scene c = Scene::load(in);  // through the shared datasets table
    ASSERT_EQ(c.num_points(), 5) << p;
    EXPECT_EQ(c.gt(), (std::vector<int32_t>{0, 1, 2, 8, 3})) << p;
    EXPECT_EQ(c.rgb()[0], 255) << p;
    EXPECT_EQ(c.rgb()[1 * 3 + 1], 255) << p;
    EXPECT_EQ(c.rgb()[3 * 3 + 0], 10) << p;
    EXPECT_EQ(c.rgb()[4 * 3 + 2], 60) << p;
    EXPECT_EQ(c.xyz()[3 * 3 + 2], 1.0f) << p;
  }
}

TEST(SceneIo, LzfDecodesLiteralsAndOverlappingReferences) {
  // "abc" literal, then a back reference of length 6 at distance 3 -> "abcabcabc".
  const uint8_t in[] = {2, 'a', 'b', 'c', (4 << 5) | 0, 2};
  auto out = datasets::lzf_decompress(in, sizeof(in), 9);
  EXPECT_EQ(std::string(out.begin(), out.end()), "abcabcabc");
  EXPECT_ANY_THROW(datasets::lzf_decompress(in, sizeof(in), 5));
}

TEST(SceneIo, NpyLabelsOfSeveralDtypesAndPointArrays) {
  test::TempDir tmp;
  test::write_label_npy(tmp.str("a.npy"), {3, 1, 2}, "<i4");
  test::write_label_npy(tmp.str("b.npy"), {3, 1, 2}, "|u1");
  test::write_npy(tmp.str("c.npy"), {3, 1, 2}, "<f4", {3, 1});
  for (const char* f : {"a.npy", "b.npy", "c.npy"})
    EXPECT_TRUE(torch::equal(datasets::read_point_labels(tmp.str(f), "pred"), torch::tensor({3, 1, 2}, torch::kLong)))
        << f;
  test::write_npy(tmp.str("d.npy"), {1.5}, "<f8", {1});
  EXPECT_THROW(datasets::read_point_labels(tmp.str("d.npy"), "pred"), std::runtime_error);
  // [N, 7] point array: x y z r g b label
  test::write_npy(tmp.str("pts.npy"), {0, 0, 0, 1, 0, 0, 4, 1, 2, 3, 0, 1, 0, 5}, "<f4", {2, 7});
  SceneInputs in;
  in.cloud_path = tmp.str("pts.npy");
  Scene s = Scene::load(in);
  EXPECT_EQ(s.gt(), (std::vector<int32_t>{4, 5}));
  EXPECT_EQ(s.rgb()[0], 255);  // float colours in [0,1] are scaled
  EXPECT_EQ(s.xyz()[5], 3.0f);
}

TEST(SceneIo, S3disRoomFolder) {
  test::TempDir tmp;
  auto room = tmp.path() / "office_1";
  test::write_file(room / "Annotations" / "chair_1.txt", "0 0 0 10 20 30\n1 0 0 10 20 30\n");
  test::write_file(room / "Annotations" / "floor_1.txt", "0 0 -1 1 2 3\n");
  test::write_file(room / "Annotations" / "stairs_1.txt", "5 5 5 1 1 1\n");
  SceneInputs in;
  in.cloud_path = room.string();
  Scene s = Scene::load(in);
  ASSERT_EQ(s.num_points(), 4);
  EXPECT_EQ(s.gt(), (std::vector<int32_t>{8, 8, 1, 12}));  // sorted files; stairs -> clutter
  EXPECT_EQ(s.metrics().classes[8].gt_count, 2);
  test::write_file(tmp.path() / "empty" / "x.txt", "");
  in.cloud_path = tmp.str("empty");
  EXPECT_THROW(Scene::load(in), std::runtime_error);
}

TEST(SceneIo, MismatchedPredictionSizeNamesFilesAndCounts) {
  test::TempDir tmp;
  test::write_ply(tmp.str("c.ply"), five_points(), true, false);
  test::write_label_npy(tmp.str("c_pred.npy"), {0, 1, 2, 3});
  SceneInputs in;
  in.cloud_path = tmp.str("c.ply");
  in.pred_path = tmp.str("c_pred.npy");
  try {
    Scene::load(in);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    EXPECT_THAT(m, HasSubstr("c_pred.npy"));
    EXPECT_THAT(m, HasSubstr("c.ply"));
    EXPECT_THAT(m, HasSubstr("4 labels"));
    EXPECT_THAT(m, HasSubstr("5 points"));
  }
  in.pred_path.clear();
  test::write_file(tmp.path() / "gt.txt", "1\n2\n");
  in.gt_path = tmp.str("gt.txt");
  EXPECT_THROW(Scene::load(in), std::runtime_error);
}

TEST(SceneIo, UnknownTypeAndOutOfPaletteLabelsAreRejected) {
  test::TempDir tmp;
  test::write_file(tmp.path() / "cloud.xyzq", "0 0 0\n");
  SceneInputs in;
  in.cloud_path = tmp.str("cloud.xyzq");
  try {
    Scene::load(in);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cloud.xyzq"));
    EXPECT_THAT(e.what(), HasSubstr("no known point format"));
  }
  test::write_ply(tmp.str("c.ply"), five_points(), false, false);
  test::write_label_npy(tmp.str("p.npy"), {0, 1, 2, 20, 3});
  in.cloud_path = tmp.str("c.ply");
  in.pred_path = tmp.str("p.npy");
  try {
    Scene::load(in);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("outside the palette"));
  }
  // The same labels are fine with a larger class table.
  std::string cls;
  for (int i = 0; i < 21; ++i) cls += "c" + std::to_string(i) + "\n";
  test::write_file(tmp.path() / "classes.txt", cls);
  in.classes = tmp.str("classes.txt");
  EXPECT_EQ(Scene::load(in).labels().size(), 21);
  test::write_file(tmp.path() / "trunc.ply", "ply\nformat binary_little_endian 1.0\nelement vertex 3\n"
                                             "property float x\nproperty float y\nproperty float z\nend_header\nab");
  in.cloud_path = tmp.str("trunc.ply");
  in.pred_path.clear();
  EXPECT_THROW(Scene::load(in), std::runtime_error);
}

TEST(SceneIo, RealMosdBinaryCompressedPcd) {
  EWA_REQUIRE_SHARED_DATA(data);
  std::string p = data + "/mosd/learn/learn0.pcd";
  if (!std::filesystem::exists(p)) GTEST_SKIP() << p << " not present";
  SceneInputs in;
  in.cloud_path = p;
  // mOSD labels are object ids (0 = background, up to ~30): too many for the S3DIS palette.
  EXPECT_THROW(Scene::load(in), std::runtime_error);
  test::TempDir tmp;
  std::string cls = "background\n";
  for (int i = 1; i < 64; ++i) cls += "object" + std::to_string(i) + "\n";
  test::write_file(tmp.path() / "objects.txt", cls);
  in.classes = tmp.str("objects.txt");
  Scene s = Scene::load(in);
  // the organised 640x480 frame: its NaN (no depth) points are dropped on reading
  EXPECT_LE(s.num_points(), 640 * 480);
  EXPECT_GT(s.num_points(), 100000);
  ASSERT_TRUE(s.has_gt());
  ASSERT_TRUE(s.has_rgb());
  // label 0 marks the invalid (NaN) points of the frame; those are dropped on reading
  int64_t labelled = 0;
  for (const auto& c : s.metrics().classes) labelled += c.gt_count;
  EXPECT_EQ(labelled, s.num_points());
  EXPECT_LT(s.bounds_max()[2], 10.f);  // Kinect depth in metres
  EXPECT_GT(s.display_indices(ColorMode::kRgb).size(), 100000u);
}

TEST(SceneIo, RealS3disFixtureRoom) {
  EWA_REQUIRE_SHARED_DATA(data);
  std::string p = data + "/s3dis-fixture/Stanford3dDataset_v1.2_Aligned_Version/Area_1/office_2";
  if (!std::filesystem::exists(p)) GTEST_SKIP() << p << " not present";
  SceneInputs in;
  in.cloud_path = p;
  Scene s = Scene::load(in);
  EXPECT_GT(s.num_points(), 0);
  EXPECT_GT(s.metrics().classes[0].gt_count, 0);  // ceiling_1.txt
  EXPECT_GT(s.metrics().classes[9].gt_count, 0);  // sofa_1.txt
}

}  // namespace
}  // namespace ewa::viewer
