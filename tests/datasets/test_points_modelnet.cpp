// ModelNet readers: HDF5 2048 split (fixture via the HDF5 C API), normal_resampled text,
// OFF meshes incl. the glued `OFF6586 5534 0` header, area-weighted surface sampling, and
// the real ../shared/data pieces when present.
#include "ewa/datasets/points/cloud_formats.h"
#include "ewa/datasets/points/modelnet.h"
#include "test_util.h"

#include <gmock/gmock.h>

#include <chrono>

#ifdef EWA_HAVE_HDF5
#include <hdf5.h>
#endif

using namespace ewa::datasets;
using ewa::test::TempDir;
using ewa::test::write_file;
namespace fs = std::filesystem;

TEST(PointsModelNet, OffGluedHeaderQuadsAndComments) {
  TempDir tmp;
  write_file(tmp.path() / "glued.off", "OFF4 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2\n3 0 2 3\n");
  write_file(tmp.path() / "std.off", "OFF\n# comment\n4 1 0\n\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3 255 0 0\n");
  for (const char* name : {"glued.off", "std.off"}) {
    auto m = read_off(tmp.str(name));
    EXPECT_EQ(m.vertices.size(0), 4) << name;
    EXPECT_EQ(m.faces.sizes(), (std::vector<int64_t>{2, 3})) << name;
    EXPECT_TRUE(torch::equal(m.faces[1], torch::tensor({0, 2, 3}, torch::kInt64))) << name;
  }
  write_file(tmp.path() / "bad.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n1 1 0\n3 0 1 7\n");
  try {
    read_off(tmp.str("bad.off"));
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("bad.off:6"));
  }
  write_file(tmp.path() / "notoff.off", "PLY\n");
  EXPECT_THROW(read_off(tmp.str("notoff.off")), std::exception);
}

TEST(PointsModelNet, SurfaceSamplingIsAreaWeightedAndSeeded) {
  TriMesh m;
  // Triangle A (area 0.5) near the origin, triangle B (area 1.5) at x >= 10.
  m.vertices = torch::tensor({0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f, 0.f, 10.f, 0.f, 0.f, 13.f, 0.f, 0.f, 10.f, 1.f, 0.f})
                   .view({6, 3});
  m.faces = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kInt64).view({2, 3});
  auto s = sample_mesh_surface(m, 4000, 7);
  EXPECT_EQ(s.coord.sizes(), (std::vector<int64_t>{4000, 3}));
  double frac_b = s.coord.select(1, 0).ge(10).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(frac_b, 0.75, 0.03);
  // Every point lies inside its triangle: x + y <= 1 (A) or (x-10)/3 + y <= 1 (B), z = 0.
  auto x = s.coord.select(1, 0), y = s.coord.select(1, 1);
  auto in_a = (x + y).le(1 + 1e-5).logical_and(x.ge(-1e-6)).logical_and(y.ge(-1e-6));
  auto in_b = ((x - 10) / 3 + y).le(1 + 1e-5).logical_and(x.ge(10 - 1e-5)).logical_and(y.ge(-1e-6));
  EXPECT_TRUE(in_a.logical_or(in_b).all().item<bool>());
  EXPECT_TRUE(s.coord.select(1, 2).eq(0).all().item<bool>());
  EXPECT_TRUE(torch::allclose(s.normal.select(1, 2).abs(), torch::ones({4000})));
  EXPECT_TRUE(torch::equal(sample_mesh_surface(m, 100, 7).coord, sample_mesh_surface(m, 100, 7).coord));
  EXPECT_FALSE(torch::equal(sample_mesh_surface(m, 100, 7).coord, sample_mesh_surface(m, 100, 8).coord));
}

TEST(PointsModelNet, NormalResampledTextAndLists) {
  TempDir tmp;
  fs::path r = tmp.path() / "modelnet40_normal_resampled";
  write_file(r / "modelnet40_shape_names.txt", "airplane\nnight_stand\n");
  write_file(r / "modelnet40_train.txt", "airplane_0001\nnight_stand_0002\n");
  write_file(r / "modelnet40_test.txt", "lamp_0001\n");
  write_file(r / "airplane" / "airplane_0001.txt", "0.1,0.2,0.3,0,0,1\n-0.5,0.5,0,1,0,0\n1e-1,2,3,0,1,0\n");
  write_file(r / "night_stand" / "night_stand_0002.txt", "0,0,0,0,0,1\n0,0\n");
  auto train = list_modelnet_resampled(r.string(), "train");
  ASSERT_EQ(train.size(), 2u);
  EXPECT_EQ(train[1].label, 1);
  EXPECT_EQ(fs::path(train[1].path).parent_path().filename(), "night_stand");
  EXPECT_THROW(list_modelnet_resampled(r.string(), "test"), std::exception);  // unknown class lamp
  auto c = read_modelnet_txt(train[0].path);
  EXPECT_EQ(c.size(), 3);
  EXPECT_FLOAT_EQ(c.coord[2][0].item<float>(), 0.1f);
  EXPECT_FLOAT_EQ(c.normal[1][0].item<float>(), 1.f);
  EXPECT_EQ(read_modelnet_txt(train[0].path, 2).size(), 2);
  try {
    read_modelnet_txt(train[1].path);
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("night_stand_0002.txt:2"));
  }
}

#ifdef EWA_HAVE_HDF5
TEST(PointsModelNet, Hdf5SplitWithAndWithoutNormals) {
  TempDir tmp;
  fs::path dir = tmp.path() / "modelnet40_ply_hdf5_2048";
  fs::create_directories(dir);
  write_file(dir / "shape_names.txt", "airplane\nbathtub\nbed\n");
  auto write = [&](const std::string& name, int n, bool normals, float base = 0.f) {
    std::vector<float> data(static_cast<size_t>(n * 8 * 3));
    for (size_t i = 0; i < data.size(); ++i) data[i] = base + static_cast<float>(i);
    std::vector<uint8_t> label(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) label[static_cast<size_t>(i)] = static_cast<uint8_t>(i % 3);
    hid_t f = H5Fcreate((dir / name).c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t d3[3] = {hsize_t(n), 8, 3}, d2[2] = {hsize_t(n), 1};
    hid_t s3 = H5Screate_simple(3, d3, nullptr), s2 = H5Screate_simple(2, d2, nullptr);
    hid_t a = H5Dcreate2(f, "data", H5T_NATIVE_FLOAT, s3, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(a, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
    H5Dclose(a);
    if (normals) {
      hid_t nn = H5Dcreate2(f, "normal", H5T_NATIVE_FLOAT, s3, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(nn, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
      H5Dclose(nn);
    }
    hid_t l = H5Dcreate2(f, "label", H5T_NATIVE_UINT8, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(l, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, label.data());
    H5Dclose(l);
    H5Sclose(s3);
    H5Sclose(s2);
    H5Fclose(f);
  };
  write("ply_data_train0.h5", 4, true);
  write("ply_data_train1.h5", 2, true);
  write("ply_data_test0.h5", 3, false);
  write_file(dir / "train_files.txt",
             "data/modelnet40_ply_hdf5_2048/ply_data_train0.h5\ndata/modelnet40_ply_hdf5_2048/ply_data_train1.h5\n");
  write_file(dir / "test_files.txt", "ply_data_test0.h5\n");
  auto train = read_modelnet_h5(dir.string(), "train");
  EXPECT_EQ(train.points.sizes(), (std::vector<int64_t>{6, 8, 3}));
  EXPECT_EQ(train.label.sizes(), (std::vector<int64_t>{6}));
  EXPECT_EQ(train.label[4].item<int64_t>(), 0);
  EXPECT_TRUE(train.normal.defined());
  EXPECT_EQ(train.class_names.size(), 3u);
  auto test = read_modelnet_h5(dir.string(), "test");
  EXPECT_FALSE(test.normal.defined());
  EXPECT_THROW(read_modelnet_h5(dir.string(), "val"), std::exception);

  // The same files as items of the format table (file.h5#k, as `ewa data info` lists them):
  // each item right, the file's datasets read once for all its items but never shared with
  // the returned clouds, and a rewritten file read again.
  EXPECT_EQ(list_cloud_scenes(dir.string(), "modelnet_h5").size(), 9u);
  const std::string f0 = (dir / "ply_data_train0.h5").string();
  // A file modified in the last 2 s (here: stamped 1 h ahead, a clock-skewed file server) is
  // not kept: rewritten in place with the same size and the same modification time (a rewrite
  // within one timestamp tick), it is still read afresh.
  const auto recent = fs::file_time_type::clock::now() + std::chrono::hours(1);
  fs::last_write_time(f0, recent);
  EXPECT_FLOAT_EQ(open_cloud(f0 + "#1").cloud.coord[0][0].item<float>(), 24.f);
  write("ply_data_train0.h5", 4, true, 500.f);
  fs::last_write_time(f0, recent);
  EXPECT_FLOAT_EQ(open_cloud(f0 + "#1").cloud.coord[0][0].item<float>(), 524.f);
  write("ply_data_train0.h5", 4, true);
  fs::last_write_time(f0, fs::file_time_type::clock::now() - std::chrono::hours(1));  // a settled file: kept
  for (int k = 0; k < 4; ++k) {
    auto s = open_cloud(f0 + "#" + std::to_string(k));
    ASSERT_EQ(s.cloud.size(), 8);
    EXPECT_FLOAT_EQ(s.cloud.coord[0][0].item<float>(), static_cast<float>(k * 24));
    EXPECT_FLOAT_EQ(s.cloud.normal[7][2].item<float>(), static_cast<float>(k * 24 + 23));
    EXPECT_EQ(s.cloud.extra.at("shape_label")[0].item<int64_t>(), k % 3);
    s.cloud.coord.fill_(-1.f);  // the caller owns the item's tensors
    s.cloud.normal.fill_(-1.f);
  }
  EXPECT_FLOAT_EQ(open_cloud(f0 + "#2").cloud.coord[0][0].item<float>(), 48.f);
  EXPECT_FLOAT_EQ(open_cloud(f0 + "#2").cloud.normal[0][0].item<float>(), 48.f);
  write("ply_data_train0.h5", 5, true, 1000.f);
  EXPECT_FLOAT_EQ(open_cloud(f0 + "#2").cloud.coord[0][0].item<float>(), 1048.f);
  EXPECT_NO_THROW(open_cloud(f0 + "#4"));
  write("ply_data_train0.h5", 4, true);

  write_file(dir / "shape_names.txt", "airplane\n");  // labels 1,2 now out of range
  EXPECT_THROW(read_modelnet_h5(dir.string(), "test"), std::exception);
}
#endif

TEST(PointsModelNet, RealNormalResampled156Shapes) {
  EWA_REQUIRE_SHARED_DATA(data);
  fs::path tgz = fs::path(data) / "modelnet40-normal-resampled-156shapes.tar.gz";
  if (!fs::exists(tgz)) GTEST_SKIP() << "tarball absent";
  TempDir tmp;
  ASSERT_EQ(std::system(("tar xzf '" + tgz.string() + "' -C '" + tmp.str() + "'").c_str()), 0);
  fs::path root = tmp.path() / "modelnet40_normal_resampled";
  EXPECT_EQ(read_modelnet_class_names(root.string()).size(), 40u);
  auto train = list_modelnet_resampled(root.string(), "train");
  auto test = list_modelnet_resampled(root.string(), "test");
  EXPECT_EQ(train.size(), 127u);
  EXPECT_EQ(test.size(), 29u);
  auto c = read_modelnet_txt(test[0].path);
  EXPECT_EQ(c.size(), 10000);
  ASSERT_TRUE(c.has_normal());
  EXPECT_NEAR(c.normal.norm(2, 1).mean().item<double>(), 1.0, 1e-2);
  EXPECT_EQ(read_modelnet_txt(test[0].path, 1024).size(), 1024);
}

TEST(PointsModelNet, RealModelNet10OffBathtubs) {
  EWA_REQUIRE_SHARED_DATA(data);
  fs::path tgz = fs::path(data) / "modelnet10-off-bathtub-5.tar.gz";
  if (!fs::exists(tgz)) GTEST_SKIP() << "tarball absent";
  TempDir tmp;
  ASSERT_EQ(std::system(("tar xzf '" + tgz.string() + "' -C '" + tmp.str() + "'").c_str()), 0);
  for (int i = 1; i <= 5; ++i) {
    auto p = tmp.path() / "ModelNet10" / "bathtub" / "train" / ("bathtub_000" + std::to_string(i) + ".off");
    auto m = read_off(p.string());
    EXPECT_GT(m.faces.size(0), 0);
    auto s = sample_mesh_surface(m, 1024, 1);
    auto lo = std::get<0>(m.vertices.min(0)) - 1e-3, hi = std::get<0>(m.vertices.max(0)) + 1e-3;
    EXPECT_TRUE(s.coord.ge(lo).all().item<bool>() && s.coord.le(hi).all().item<bool>()) << p;
  }
}
