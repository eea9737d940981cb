// Segmentation data: scene splits of synthetic S3DIS areas and labelled folders, training
// samples (crop size, origin shift, determinism), features, and bad inputs (missing
// Annotations, wrong array shapes, NaN coordinates, labels out of range) named by path.
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>

#include "ewa/datasets/points/npy.h"
#include "ewa/datasets/points/pcd_ply.h"
#include "ewa/datasets/points/synth_rooms.h"
#include "ewa/datasets/points/transforms.h"
#include "ewa/pointcloud/scene_data.h"
#include "test_util.h"

namespace ewa::pointcloud {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

SegDataOptions synth_options(const std::string& root) {
  SegDataOptions o;
  o.format("synth_rooms").root(root).train_areas({1}).test_area(2).grid_size(0.1).max_points(3000).loop(1);
  return o;
}

void write_synth(const std::string& root) {
  datasets::SynthRoomsOptions so;
  so.density = 40;
  so.threads = 1;
  for (int a = 1; a <= 2; ++a) {
    so.area = a;
    datasets::synth_rooms(root, a == 1 ? 2 : 1, 10 + a, so);
  }
}

TEST(PipelineData, SyntheticAreasSplitAndSample) {
  TempDir tmp;
  write_synth(tmp.str("raw"));
  auto o = synth_options(tmp.str("raw"));
  auto s = make_seg_splits(o, 2);
  ASSERT_EQ(s.train.size(), 2);
  ASSERT_EQ(s.val.size(), 1);
  EXPECT_EQ(s.val.entry(0).name.rfind("Area_2/", 0), 0u) << s.val.entry(0).name;
  auto scene = s.train.load(0);
  ASSERT_TRUE(scene.has_segment());
  EXPECT_LT(scene.segment.max().item<int64_t>(), 13);

  auto g1 = datasets::make_point_generator(5), g2 = datasets::make_point_generator(5);
  auto a = make_training_sample(scene, o, g1);
  auto b = make_training_sample(scene, o, g2);
  EXPECT_LE(a.size(), 3000);
  EXPECT_GT(a.size(), 100);
  EXPECT_TRUE(torch::equal(a.coord, b.coord));  // same seed, same sample
  EXPECT_NEAR(a.coord.min().item<float>(), 0.0f, 1e-6);
  auto f = make_features(a, {"xyz", "rgb"});
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{a.size(), 6}));
  EXPECT_LE(f.slice(1, 3, 6).max().item<float>(), 1.0f);
  EXPECT_THROW(make_features(a, {"normal"}), std::runtime_error);

  // unknown split area -> clear error naming root
  try {
    make_seg_splits(o, 5);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no validation scenes"), std::string::npos) << e.what();
  }
}

TEST(PipelineData, LabelledFolderWithLabelMapAndOutOfRangeLabels) {
  TempDir tmp;
  auto coord = torch::rand({50, 3});
  auto label = torch::randint(0, 3, {50}, torch::kLong);
  for (const char* name : {"a", "b", "c"}) {
    datasets::write_labelled_ply(tmp.str(std::string("d/") + name + ".ply"), coord, {}, label);
  }
  SegDataOptions o;
  o.format("labelled_folder").root(tmp.str("d")).val_files({"c.ply"}).class_names({"x", "y", "z"});
  o.features({"xyz"});
  auto s = make_seg_splits(o, 5);
  EXPECT_EQ(s.train.size(), 2);
  ASSERT_EQ(s.val.size(), 1);
  EXPECT_EQ(s.val.entry(0).name, "c");
  EXPECT_TRUE(torch::equal(s.val.load(0).segment, label));

  o.class_names({"x", "y"});  // label 2 is now out of range
  auto s2 = make_seg_splits(o, 5);
  try {
    s2.train.load(0);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("a.ply"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("outside"), std::string::npos) << e.what();
  }
  o.val_files({"nothing*.ply"});
  EXPECT_THROW(make_seg_splits(o, 5), std::runtime_error);

  // A root spelt with ".." still keeps the validation scenes out of training, whether they are
  // named explicitly or by a pattern.
  fs::create_directories(tmp.path() / "other");
  o.root((tmp.path() / "other" / ".." / "d").string()).class_names({"x", "y", "z"});
  for (const std::vector<std::string>& val : {std::vector<std::string>{"c.ply"}, std::vector<std::string>{"c*"}}) {
    o.val_files(val);
    auto s3 = make_seg_splits(o, 5);
    EXPECT_EQ(s3.train.size(), 2) << val[0];
    ASSERT_EQ(s3.val.size(), 1) << val[0];
    for (int64_t i = 0; i < s3.train.size(); ++i) EXPECT_NE(s3.train.entry(i).name, "c") << val[0];
  }
}

TEST(PipelineData, ReadSceneFileBadInputsNamePath) {
  TempDir tmp;
  SceneReadSpec spec;
  spec.class_names = default_s3dis_classes();
  fs::create_directories(tmp.path() / "room");
  try {
    read_scene_file(tmp.str("room"), spec);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("Annotations"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(tmp.str("room")), std::string::npos) << e.what();
  }
  datasets::write_npy(tmp.str("bad.npy"), torch::zeros({10, 2}));
  try {
    read_scene_file(tmp.str("bad.npy"), spec);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.npy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[N,C]"), std::string::npos) << e.what();
  }
  // NaN rows are dropped and the source order kept in `index`
  auto a = torch::rand({6, 7});
  a.select(1, 6).fill_(1);
  a[2][0] = std::numeric_limits<float>::quiet_NaN();
  datasets::write_npy(tmp.str("nan.npy"), a);
  int64_t source = 0;
  auto c = read_scene_file(tmp.str("nan.npy"), spec, &source);
  EXPECT_EQ(source, 6);
  EXPECT_EQ(c.size(), 5);
  EXPECT_TRUE(torch::equal(c.index, torch::tensor({0, 1, 3, 4, 5}, torch::kLong)));
  EXPECT_TRUE(c.has_segment());
  // labels beyond the model's classes: ground truth dropped, not an error
  a.select(1, 6).fill_(40);
  datasets::write_npy(tmp.str("far.npy"), a);
  EXPECT_FALSE(read_scene_file(tmp.str("far.npy"), spec).has_segment());
  EXPECT_THROW(read_scene_file(tmp.str("missing.ply"), spec), std::runtime_error);
}

TEST(PipelineData, TrainingSceneWithNanCoordinatesDropsThosePoints) {
  TempDir tmp;
  auto coord = torch::rand({20, 3});
  coord[3][1] = std::numeric_limits<float>::quiet_NaN();
  auto room = fs::path(tmp.str("pc/Area_1/r1"));
  fs::create_directories(room);
  datasets::write_npy((room / "coord.npy").string(), coord);
  datasets::write_npy((room / "color.npy").string(), torch::zeros({20, 3}, torch::kUInt8));
  datasets::write_npy((room / "segment.npy").string(), torch::zeros({20}, torch::kLong));
  auto room2 = fs::path(tmp.str("pc/Area_5/r2"));
  fs::create_directories(room2);
  for (const char* f : {"coord.npy", "color.npy", "segment.npy"}) fs::copy_file(room / f, room2 / f);
  SegDataOptions o;
  o.format("pointcept").root(tmp.str("pc"));
  auto s = make_seg_splits(o, 5);
  ASSERT_EQ(s.train.size(), 1);
  auto c = s.train.load(0);  // read through the shared table: the NaN point is dropped
  EXPECT_EQ(c.size(), 19);
  EXPECT_TRUE(torch::isfinite(c.coord).all().item<bool>());
  EXPECT_EQ(c.index[3].item<int64_t>(), 4);  // source positions of the kept points
}

}  // namespace
}  // namespace ewa::pointcloud
