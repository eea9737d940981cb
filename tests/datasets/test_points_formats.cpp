// .npy reader/writer (dtypes, big-endian, fortran rejection), Pointcept room folders,
// PointNet indoor3d HDF5 (fixture written with the HDF5 C API) and the HDF5 room cache.
#include "ewa/datasets/points/npy.h"
#include "ewa/datasets/points/pointnet.h"
#include "ewa/datasets/points/room_cache.h"
#include "test_util.h"

#include <gmock/gmock.h>

#ifdef EWA_HAVE_HDF5
#include <hdf5.h>
#endif

using namespace ewa::datasets;
using ewa::test::TempDir;
using ewa::test::write_file;
namespace fs = std::filesystem;

namespace {
// A hand-written .npy (independent of write_npy).
std::string npy_bytes(const std::string& descr, const std::string& shape, const std::string& payload,
                      const std::string& fortran = "False") {
  std::string h = "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
  while ((10 + h.size() + 1) % 16) h += ' ';
  h += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(h.size());
  out += '\0';
  return out + h + payload;
}
}  // namespace

TEST(PointsNpy, ReadsHandWrittenLittleAndBigEndian) {
  TempDir tmp;
  int32_t le[3] = {1, -2, 300000};
  write_file(tmp.path() / "le.npy", npy_bytes("<i4", "(3,)", std::string(reinterpret_cast<char*>(le), 12)));
  auto a = read_npy(tmp.str("le.npy"));
  EXPECT_EQ(a.scalar_type(), torch::kInt32);
  EXPECT_TRUE(torch::equal(a, torch::tensor({1, -2, 300000}, torch::kInt32)));
  // Big-endian float64 [2,1]: 1.5 and -2.0.
  std::string be;
  for (double v : {1.5, -2.0}) {
    char b[8];
    std::memcpy(b, &v, 8);
    std::reverse(b, b + 8);
    be.append(b, 8);
  }
  write_file(tmp.path() / "be.npy", npy_bytes(">f8", "(2, 1)", be));
  auto b = read_npy(tmp.str("be.npy"));
  EXPECT_EQ(b.sizes(), (std::vector<int64_t>{2, 1}));
  EXPECT_DOUBLE_EQ(b[0][0].item<double>(), 1.5);
  EXPECT_DOUBLE_EQ(b[1][0].item<double>(), -2.0);
}

TEST(PointsNpy, RejectsFortranUnknownDtypeAndShortPayload) {
  TempDir tmp;
  write_file(tmp.path() / "f.npy", npy_bytes("<f4", "(1, 1)", std::string(4, '\0'), "True"));
  EXPECT_THROW(read_npy(tmp.str("f.npy")), std::exception);
  write_file(tmp.path() / "c.npy", npy_bytes("<c8", "(1,)", std::string(8, '\0')));
  EXPECT_THROW(read_npy(tmp.str("c.npy")), std::exception);
  write_file(tmp.path() / "s.npy", npy_bytes("<f4", "(4,)", std::string(8, '\0')));
  try {
    read_npy(tmp.str("s.npy"));
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("s.npy"));
  }
  write_file(tmp.path() / "x.npy", "not numpy");
  EXPECT_THROW(read_npy(tmp.str("x.npy")), std::exception);
}

TEST(PointsNpy, WriteReadRoundTripAllDtypes) {
  TempDir tmp;
  torch::manual_seed(0);
  std::vector<torch::Tensor> ts = {
      torch::randn({5, 3}), torch::randn({2, 3, 4}, torch::kFloat64), torch::randint(0, 255, {7}, torch::kUInt8),
      torch::randint(-100, 100, {4, 2}, torch::kInt16), torch::randint(-1000, 1000, {6}, torch::kInt32),
      torch::randint(-1, 13, {9}, torch::kInt64), torch::zeros({0, 3}), torch::tensor(3.5)};
  for (size_t i = 0; i < ts.size(); ++i) {
    std::string p = tmp.str("a" + std::to_string(i) + ".npy");
    write_npy(p, ts[i]);
    auto back = read_npy(p);
    EXPECT_EQ(back.scalar_type(), ts[i].scalar_type()) << i;
    EXPECT_TRUE(torch::equal(back, ts[i])) << i;
    // Header length is a multiple of 64 bytes (npy alignment).
    std::string bytes = ewa::test::read_file(p);
    size_t hl = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    EXPECT_EQ((10 + hl) % 64, 0u);
  }
}

TEST(PointsPointcept, ReadsRoomFolderAndChecksShapes) {
  TempDir tmp;
  fs::path room = tmp.path() / "Area_5" / "office_1";
  fs::create_directories(room);
  auto coord = torch::rand({10, 3}, torch::kFloat64);
  write_npy((room / "coord.npy").string(), coord);
  write_npy((room / "color.npy").string(), torch::randint(0, 256, {10, 3}).to(torch::kUInt8));
  write_npy((room / "segment.npy").string(), torch::randint(-1, 13, {10, 1}).to(torch::kInt16));
  write_npy((room / "instance.npy").string(), torch::arange(10, torch::kInt32));
  write_npy((room / "normal.npy").string(), torch::randn({10, 3}));
  auto c = read_pointcept_room(room.string());
  EXPECT_EQ(c.size(), 10);
  EXPECT_EQ(c.coord.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::allclose(c.coord.to(torch::kFloat64), coord, 1e-6, 1e-6));
  EXPECT_EQ(c.segment.scalar_type(), torch::kInt64);
  EXPECT_EQ(c.segment.dim(), 1);
  EXPECT_TRUE(c.has_normal());
  EXPECT_EQ(c.name, "Area_5/office_1");
  auto rooms = list_pointcept_rooms(tmp.str());
  ASSERT_EQ(rooms.size(), 1u);
  write_npy((room / "segment.npy").string(), torch::zeros({9}, torch::kInt64));
  EXPECT_THROW(read_pointcept_room(room.string()), std::exception);
  EXPECT_THROW(read_pointcept_room(tmp.str()), std::exception);
}

TEST(PointsRoomCache, RoundTripAndNoHalfFiles) {
  if (!have_hdf5()) {
    EXPECT_THROW(read_room_h5("x.h5"), std::exception);
    GTEST_SKIP() << "built without HDF5";
  }
  TempDir tmp;
  PointCloudData c;
  c.coord = torch::randn({50, 3});
  c.color = torch::randint(0, 256, {50, 3}).to(torch::kUInt8);
  c.segment = torch::randint(-1, 13, {50}, torch::kInt64);
  c.instance = torch::randint(0, 20, {50}, torch::kInt64);
  std::string p = tmp.str("Area_1/office_1.h5");
  write_room_h5(p, c);
  auto b = read_room_h5(p);
  EXPECT_TRUE(torch::equal(b.coord, c.coord));
  EXPECT_TRUE(torch::equal(b.color, c.color));
  EXPECT_TRUE(torch::equal(b.segment, c.segment));
  EXPECT_TRUE(torch::equal(b.instance, c.instance));
  EXPECT_FALSE(b.has_normal());
  EXPECT_EQ(b.name, "Area_1/office_1");
  EXPECT_TRUE(room_h5_valid(p));
  c.segment[0] = 40000;  // does not fit int16: error, nothing written
  EXPECT_THROW(write_room_h5(tmp.str("bad.h5"), c), std::exception);
  EXPECT_FALSE(fs::exists(tmp.path() / "bad.h5"));
  write_file(tmp.path() / "junk.h5", "junk");
  EXPECT_FALSE(room_h5_valid(tmp.str("junk.h5")));
  EXPECT_THROW(read_room_h5(tmp.str("junk.h5")), std::exception);
}

#ifdef EWA_HAVE_HDF5
namespace {
void h5_write(hid_t f, const char* name, hid_t type, std::vector<hsize_t> dims, const void* data) {
  hid_t s = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t d = H5Dcreate2(f, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(d);
  H5Sclose(s);
}
}  // namespace

TEST(PointsPointNet, ReadsIndoor3dBlocksAndFiltersAreas) {
  TempDir tmp;
  fs::path dir = tmp.path() / "indoor3d_sem_seg_hdf5_data";
  fs::create_directories(dir);
  const int P = 16;
  std::vector<std::string> rooms = {"Area_1_office_1", "Area_1_office_1", "Area_5_hallway_6", "Area_6_lobby_1",
                                    "Area_5_office_2"};
  int at = 0;
  std::string all;
  for (int file = 0; file < 2; ++file) {
    int B = file == 0 ? 3 : 2;
    std::vector<float> data(static_cast<size_t>(B * P * 9));
    std::vector<uint8_t> label(static_cast<size_t>(B * P));
    for (int b = 0; b < B; ++b) {
      for (int i = 0; i < P * 9; ++i) data[static_cast<size_t>(b * P * 9 + i)] = static_cast<float>(at + b) + i * 1e-3f;
      for (int i = 0; i < P; ++i) label[static_cast<size_t>(b * P + i)] = static_cast<uint8_t>((at + b + i) % 13);
    }
    std::string name = "ply_data_all_" + std::to_string(file) + ".h5";
    hid_t f = H5Fcreate((dir / name).c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    h5_write(f, "data", H5T_NATIVE_FLOAT, {hsize_t(B), hsize_t(P), 9}, data.data());
    h5_write(f, "label", H5T_NATIVE_UINT8, {hsize_t(B), hsize_t(P)}, label.data());
    H5Fclose(f);
    all += "indoor3d_sem_seg_hdf5_data/" + name + "\n";  // as in the release: relative to the parent
    at += B;
  }
  write_file(dir / "all_files.txt", all);
  std::string rl;
  for (const auto& r : rooms) rl += r + "\n";
  write_file(dir / "room_filelist.txt", rl);
  auto d = read_pointnet_indoor3d(dir.string());
  EXPECT_EQ(d.data.sizes(), (std::vector<int64_t>{5, P, 9}));
  EXPECT_EQ(d.label.scalar_type(), torch::kInt64);
  EXPECT_EQ(d.label[3][2].item<int64_t>(), (3 + 2) % 13);
  EXPECT_FLOAT_EQ(d.data[4][0][0].item<float>(), 4.f);
  EXPECT_EQ(d.areas, (std::vector<int>{1, 1, 5, 6, 5}));
  auto test = read_pointnet_indoor3d(dir.string(), {5});
  EXPECT_EQ(test.data.size(0), 2);
  EXPECT_FLOAT_EQ(test.data[1][0][0].item<float>(), 4.f);
  EXPECT_EQ(test.rooms[0], "Area_5_hallway_6");
  write_file(dir / "room_filelist.txt", "Area_1_office_1\n");
  EXPECT_THROW(read_pointnet_indoor3d(dir.string()), std::exception);
  write_file(dir / "all_files.txt", "missing.h5\n");
  EXPECT_THROW(read_pointnet_indoor3d(dir.string()), std::exception);
}
#endif
