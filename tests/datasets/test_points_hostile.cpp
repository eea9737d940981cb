// Hostile point files through the shared format table (open_cloud): truncated data, counts
// that overflow, negative counts, huge declared sizes, non-finite values, floods of damaged
// lines. None may crash or allocate from a header count; each fails with one line naming
// the file (or, for non-finite points, drops and counts them). The table itself: every
// format detected and listed, one error for unknown inputs.
#include <gmock/gmock.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "ewa/datasets/bounded_io.h"
#include "ewa/datasets/points/cloud_formats.h"
#include "ewa/datasets/points/npy.h"
#include "ewa/datasets/points/pcd_ply.h"
#include "ewa/datasets/points/room_cache.h"
#include "ewa/datasets/points/s3dis.h"
#include "test_util.h"

#ifdef EWA_HAVE_HDF5
#include <hdf5.h>
#endif

using namespace ewa::datasets;
using ewa::test::TempDir;
using ewa::test::write_file;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

template <class T>
std::string le_bytes(std::initializer_list<T> v) {
  std::string s;
  for (T x : v) s.append(reinterpret_cast<const char*>(&x), sizeof(T));
  return s;
}

// open_cloud must fail with one clean line that names `file`; returns the message.
std::string clean_failure(const std::string& path) {
  try {
    open_cloud(path);
  } catch (const DataError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_THAT(m, HasSubstr(fs::path(path).filename().string()));
    for (const char* lib : {"stoi", "stoll", "substr", "bad_alloc", "DefaultCPUAllocator", "Exception raised"}) {
      EXPECT_THAT(m, ::testing::Not(HasSubstr(lib))) << m;
    }
    return m;
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": not a DataError: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << path << ": accepted";
  return {};
}

const std::string kPlyHead =
    "ply\nformat binary_little_endian 1.0\nelement vertex {N}\nproperty float x\nproperty float y\n"
    "property float z\nend_header\n";

std::string ply_head(const std::string& n, const std::string& fmt = "binary_little_endian") {
  std::string h = kPlyHead;
  h.replace(h.find("{N}"), 3, n);
  h.replace(h.find("binary_little_endian"), 20, fmt);
  return h;
}

std::string pcd_head(const std::string& points, const std::string& kind, const std::string& count = "1 1 1",
                     const std::string& width = "") {
  return "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT " + count + "\nWIDTH " +
         (width.empty() ? points : width) + "\nHEIGHT 1\nPOINTS " + points + "\nDATA " + kind + "\n";
}

std::string npy(const std::string& descr, const std::string& shape, const std::string& payload) {
  std::string h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + h.size() + 1) % 16) h += ' ';
  h += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>(h.size() >> 8);
  return out + h + payload;
}

}  // namespace

TEST(BoundedIo, RequireBytesNamesCountSizeAndFile) {
  try {
    bounded::require_bytes("room.ply", "vertex count", 100000000, 12, 120);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "room.ply: vertex count 100000000 needs 1.2 GB but the file holds 120 bytes");
  }
  EXPECT_THROW(bounded::require_bytes("f", "n", -1, 4, 100), DataError);
  EXPECT_THROW(bounded::require_bytes("f", "n", INT64_MAX / 2, 12, 100), DataError);  // product overflows
  EXPECT_EQ(bounded::require_bytes("f", "n", 10, 12, 120), 120);
  EXPECT_THROW(bounded::checked_product({int64_t{1} << 32, int64_t{1} << 32}, "a.npy", "shape"), DataError);
  bounded::FirstFew<int> few(3);
  for (int i = 0; i < 1000; ++i) few.add(i);
  EXPECT_EQ(few.items().size(), 3u);
  EXPECT_EQ(few.omitted(), 997);
}

TEST(PointsHostile, PlyCountsAreCheckedBeforeAllocating) {
  TempDir tmp;
  write_file(tmp.path() / "huge.ply", ply_head("100000000") + std::string(120, '\0'));
  EXPECT_THAT(clean_failure(tmp.str("huge.ply")), HasSubstr("vertex count 100000000 needs 1.2 GB"));
  write_file(tmp.path() / "wrap.ply", ply_head("1537228672809129302") + std::string(24, '\0'));  // x12 wraps
  clean_failure(tmp.str("wrap.ply"));
  write_file(tmp.path() / "neg.ply", ply_head("-3") + std::string(24, '\0'));
  clean_failure(tmp.str("neg.ply"));
  write_file(tmp.path() / "trunc.ply", ply_head("3") + "abc");
  clean_failure(tmp.str("trunc.ply"));
  write_file(tmp.path() / "ascii_huge.ply", ply_head("100000000", "ascii") + "0 0 0\n");
  clean_failure(tmp.str("ascii_huge.ply"));
  // A negative list count in a binary face element must not move the read pointer back.
  const std::string faces = "ply\nformat binary_little_endian 1.0\nelement face 2\nproperty list int int idx\n"
                            "element vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n";
  write_file(tmp.path() / "neglist.ply", faces + le_bytes<int32_t>({-5}) + le_bytes<float>({1, 2, 3}));
  EXPECT_THAT(clean_failure(tmp.str("neglist.ply")), HasSubstr("negative"));
  write_file(tmp.path() / "biglist.ply", faces + le_bytes<int32_t>({0x7fffffff}) + le_bytes<float>({1, 2, 3}));
  clean_failure(tmp.str("biglist.ply"));
  // an element without properties and a huge count before the vertices: nothing to skip, no spin
  write_file(tmp.path() / "empty_elem.ply",
             "ply\nformat binary_little_endian 1.0\nelement junk 1000000000000000000\nelement vertex 1\n"
             "property float x\nproperty float y\nproperty float z\nend_header\n" + le_bytes<float>({1, 2, 3}));
  EXPECT_EQ(open_cloud(tmp.str("empty_elem.ply")).cloud.size(), 1);
}

TEST(PointsHostile, PlyListPropertiesInTheVertexElementAreSkipped) {
  TempDir tmp;
  const std::string h = "ply\nformat binary_big_endian 1.0\nelement vertex 2\nproperty float x\n"
                        "property list uchar int n\nproperty float y\nproperty float z\nend_header\n";
  auto be = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u = __builtin_bswap32(u);
    return std::string(reinterpret_cast<const char*>(&u), 4);
  };
  std::string body = be(1) + std::string("\x02", 1) + std::string(8, '\x01') + be(2) + be(3) + be(4) +
                     std::string("\x00", 1) + be(5) + be(6);
  write_file(tmp.path() / "l.ply", h + body);
  auto s = open_cloud(tmp.str("l.ply"));
  EXPECT_TRUE(torch::equal(s.cloud.coord, torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}).view({2, 3})));
  write_file(tmp.path() / "a.ply", "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty list uchar "
                                   "int n\nproperty float y\nproperty float z\nend_header\n1 2 7 7 2 3\n4 0 5 6\n");
  EXPECT_TRUE(torch::equal(open_cloud(tmp.str("a.ply")).cloud.coord,
                           torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}).view({2, 3})));
}

TEST(PointsHostile, PcdCountsSizesAndCompressedPayloads) {
  TempDir tmp;
  write_file(tmp.path() / "huge.pcd", pcd_head("100000000", "binary") + std::string(12, '\0'));
  EXPECT_THAT(clean_failure(tmp.str("huge.pcd")), HasSubstr("needs 1.2 GB"));
  write_file(tmp.path() / "negcount.pcd", pcd_head("1", "binary", "1 -1 1") + std::string(12, '\0'));
  EXPECT_THAT(clean_failure(tmp.str("negcount.pcd")), HasSubstr("negative"));
  write_file(tmp.path() / "negwidth.pcd", pcd_head("-4", "binary") + std::string(12, '\0'));
  clean_failure(tmp.str("negwidth.pcd"));
  write_file(tmp.path() / "wrapwh.pcd",
             "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 4294967296\nHEIGHT 4294967296\nDATA binary\n");
  clean_failure(tmp.str("wrapwh.pcd"));
  write_file(tmp.path() / "size.pcd", "VERSION 0.7\nFIELDS x y z\nSIZE 4294967300 4 4\nTYPE F F F\nWIDTH 1\n"
                                      "POINTS 1\nDATA binary\n" + std::string(12, '\0'));
  clean_failure(tmp.str("size.pcd"));
  // binary_compressed declaring a 2.4 GB payload from 4 compressed bytes
  write_file(tmp.path() / "bomb.pcd",
             pcd_head("200000000", "binary_compressed") + le_bytes<uint32_t>({4, 2400000000u}) + std::string(4, '\0'));
  EXPECT_THAT(clean_failure(tmp.str("bomb.pcd")), HasSubstr("implausible"));
  write_file(tmp.path() / "ascii.pcd", pcd_head("100000000", "ascii") + "0 0 0\n");
  clean_failure(tmp.str("ascii.pcd"));
}

TEST(PointsHostile, NpyShapesThatWrapOrLie) {
  TempDir tmp;
  write_file(tmp.path() / "wrap.npy", npy("<f4", "(4294967296, 4294967296, 3)", std::string(12, '\0')));
  clean_failure(tmp.str("wrap.npy"));
  write_file(tmp.path() / "neg.npy", npy("<f4", "(-1, 3)", std::string(12, '\0')));
  EXPECT_THAT(clean_failure(tmp.str("neg.npy")), HasSubstr("negative"));
  write_file(tmp.path() / "lie.npy", npy("<f4", "(100000000, 3)", std::string(12, '\0')));
  EXPECT_THAT(clean_failure(tmp.str("lie.npy")), HasSubstr("needs 1.2 GB"));
  write_file(tmp.path() / "scalar.npy", npy("<f4", "5", std::string(4, '\0')));
  clean_failure(tmp.str("scalar.npy"));
  write_file(tmp.path() / "short.npy", std::string("\x93NUMPY\x01\x00\xff\xff", 10));
  clean_failure(tmp.str("short.npy"));
}

TEST(PointsHostile, OffCountsAndFaceArityAreBoundedByTheFile) {
  TempDir tmp;
  write_file(tmp.path() / "counts.off", "OFF\n100000000 100000000 0\n0 0 0\n");
  clean_failure(tmp.str("counts.off"));
  write_file(tmp.path() / "arity.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n300000000 0 1 2\n");
  clean_failure(tmp.str("arity.off"));
  write_file(tmp.path() / "neg.off", "OFF\n-3 1 0\n0 0 0\n");
  clean_failure(tmp.str("neg.off"));
  // fuzz regression (UBSan): a count beyond int64 overflowed the integer parser
  write_file(tmp.path() / "ovf.off", "OFF\n1000000000000111111000 1 0\n0 0 0\n");
  clean_failure(tmp.str("ovf.off"));
  write_file(tmp.path() / "ovf.ply", ply_head("99999999999999999999999") + std::string(12, '\0'));
  clean_failure(tmp.str("ovf.ply"));
  write_file(tmp.path() / "ok.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n");
  EXPECT_EQ(open_cloud(tmp.str("ok.off")).cloud.size(), 3);
  CloudReadOptions o;
  o.mesh_samples = 50;
  EXPECT_EQ(open_cloud(tmp.str("ok.off"), o).cloud.size(), 50);
}

TEST(PointsHostile, NonFiniteCoordinatesAreDroppedAndCountedOrRefused) {
  TempDir tmp;
  write_file(tmp.path() / "c.ply",
             "ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
             "end_header\n0 0 0\nnan 1 1\n1e300 2 2\n3 3 3\n");
  auto s = open_cloud(tmp.str("c.ply"));
  EXPECT_EQ(s.cloud.size(), 2);
  EXPECT_EQ(s.non_finite, 2);
  EXPECT_EQ(s.source_points, 4);
  EXPECT_TRUE(torch::equal(s.cloud.index, torch::tensor({0, 3}, torch::kLong)));  // source order
  CloudReadOptions refuse;
  refuse.refuse_non_finite = true;
  try {
    open_cloud(tmp.str("c.ply"), refuse);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("c.ply"));
    EXPECT_THAT(e.what(), HasSubstr("non-finite"));
  }
  write_file(tmp.path() / "m.txt", "0.1,0.2,0.3,0,0,1\nnan,0,0,0,0,1\n1e300,0,0,0,0,1\n");
  s = open_cloud(tmp.str("m.txt"));
  EXPECT_EQ(s.format, "modelnet_txt");
  EXPECT_EQ(s.cloud.size(), 1);
  EXPECT_EQ(s.non_finite, 2);
  write_file(tmp.path() / "all_nan.xyz", "nan 0 0\ninf 1 1\n");
  EXPECT_THAT(clean_failure(tmp.str("all_nan.xyz")), HasSubstr("no finite points"));
  // S3DIS text: 1e300 is a finite double but not a float: the line is dropped and counted
  auto t = parse_xyzrgb_text("0 0 0 1 2 3\n1e300 0 0 1 2 3\nnan 0 0 1 1 1\n", "chair_1.txt");
  EXPECT_EQ(t.xyz.size(), 3u);
  EXPECT_EQ(t.non_finite_lines, 2);
  EXPECT_THROW(parse_xyzrgb_text("1e300 0 0 1 2 3\n", "chair_1.txt", /*refuse_non_finite=*/true), DataError);
}

TEST(PointsHostile, FloodsOfDamagedLinesKeepTheFirstFewAndACount) {
  TempDir tmp;
  std::string text = "0 0 0 1 2 3\n";
  for (int i = 0; i < 200000; ++i) text += "x 0 0 1 2 3\n";
  text += "1 1 1 1 2 3\n";
  auto t = parse_xyzrgb_text(text, "wall_1.txt");
  EXPECT_EQ(t.skipped_lines, 200000);
  EXPECT_EQ(static_cast<int64_t>(t.issues.size()), kKeptParseIssues);
  EXPECT_EQ(t.xyz.size(), 6u);
  write_file(tmp.path() / "d.xyz", text);
  auto s = open_cloud(tmp.str("d.xyz"));
  EXPECT_EQ(s.cloud.size(), 2);
  EXPECT_EQ(s.damaged_lines, 200000);
  EXPECT_EQ(static_cast<int64_t>(s.issues.size()), kKeptParseIssues);
  // a room made of it: the same bound through read_s3dis_room
  write_file(tmp.path() / "Area_1" / "r" / "Annotations" / "wall_1.txt", text);
  auto room = open_cloud(tmp.str("Area_1/r"));
  EXPECT_EQ(room.format, "s3dis_room");
  EXPECT_EQ(room.damaged_lines, 200000);
  EXPECT_LE(static_cast<int64_t>(room.issues.size()), kKeptParseIssues);
}

TEST(PointsHostile, UnknownAndMissingInputsNameThePath) {
  TempDir tmp;
  write_file(tmp.path() / "cloud.xyzq", "0 0 0\n");
  EXPECT_THAT(clean_failure(tmp.str("cloud.xyzq")), HasSubstr("no known point format"));
  EXPECT_THAT(clean_failure(tmp.str("missing.ply")), HasSubstr("no such file"));
  write_file(tmp.path() / "garbage.h5", "not hdf5 at all");
  clean_failure(tmp.str("garbage.h5"));
}

#ifdef EWA_HAVE_HDF5
TEST(PointsHostile, Hdf5DatasetsDeclaringHugeShapesAreRefused) {
  TempDir tmp;
  const std::string p = tmp.str("room.h5");
  {
    hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {1000000000, 3}, chunk[2] = {1024, 3};
    hid_t s = H5Screate_simple(2, dims, nullptr);
    hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(plist, 2, chunk);
    hid_t d = H5Dcreate2(f, "coord", H5T_NATIVE_FLOAT, s, H5P_DEFAULT, plist, H5P_DEFAULT);  // nothing written
    H5Dclose(d);
    H5Pclose(plist);
    H5Sclose(s);
    H5Fclose(f);
  }
  ASSERT_LT(fs::file_size(p), 1u << 20);
  EXPECT_THAT(clean_failure(p), HasSubstr("declares 3000000000 values"));
}

// Found by fuzz_room_h5: an integer type declaring 4 GB per value made libhdf5's conversion
// buffer (values x type size) a 4 GB allocation from a 4 KB file. Element sizes and chunk
// sizes are bounded like the shape.
TEST(PointsHostile, Hdf5TypesAndChunksDeclaringHugeSizesAreRefused) {
  TempDir tmp;
  auto write = [&](const std::string& name, hid_t type, const hsize_t* chunk) {
    const std::string p = tmp.str(name);
    hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {4, 3}, maxdims[2] = {H5S_UNLIMITED, 3};
    hid_t s = H5Screate_simple(2, dims, chunk ? maxdims : nullptr);
    hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk) H5Pset_chunk(plist, 2, chunk);
    hid_t d = H5Dcreate2(f, "coord", type, s, H5P_DEFAULT, plist, H5P_DEFAULT);
    EXPECT_GE(d, 0) << name;
    H5Dclose(d);
    H5Pclose(plist);
    H5Sclose(s);
    H5Fclose(f);
    EXPECT_LT(fs::file_size(p), 1u << 20);
    return p;
  };
  // 12 values of a 4 MB integer: 48 MB of conversion buffer before the fix.
  hid_t wide = H5Tcopy(H5T_NATIVE_INT32);
  ASSERT_GE(H5Tset_size(wide, size_t{4} << 20), 0);
  EXPECT_THAT(clean_failure(write("wide_int.h5", wide, nullptr)),
              HasSubstr("dataset 'coord' has a 4194304-byte integer type (expected 1, 2, 4 or 8 bytes)"));
  H5Tclose(wide);
  // Chunks of 4M x 3 floats (48 MB) for 12 values.
  const hsize_t big_chunk[2] = {hsize_t{4} << 20, 3};
  EXPECT_THAT(clean_failure(write("big_chunk.h5", H5T_NATIVE_FLOAT, big_chunk)),
              HasSubstr("dataset 'coord' declares chunks of"));
  // Ordinary chunks still read (unwritten: the fill value).
  const hsize_t small_chunk[2] = {2, 3};
  EXPECT_EQ(open_cloud(write("ok_chunk.h5", H5T_NATIVE_FLOAT, small_chunk)).cloud.size(), 4);
}

// Found by fuzz_room_h5: a 4 KB file whose local heap declares 3.4e18 bytes makes Debian's
// libhdf5 1.10.8 memcpy into the NULL its failed malloc returned (SIGSEGV inside libhdf5).
// Files are read in a child process, so this is one clean error, and the same reads still
// work (and match the in-process reader) for good files.
TEST(PointsHostile, Hdf5CrashesInsideLibhdf5BecomeOneCleanError) {
  TempDir tmp;
  const std::string bad = tmp.str("segv.h5");
  fs::copy_file(fs::path(EWA_SOURCE_DIR) / "tests/data/fuzz/libhdf5/room_h5/hdf5-segv-local-heap", bad);
  EXPECT_THAT(clean_failure(bad), HasSubstr("segv.h5: libhdf5 crashed reading this file (signal 11)"));
  EXPECT_THAT(clean_failure(bad), HasSubstr("libhdf5 crashed"));  // never trusted after a crash

  PointCloudData room;
  room.coord = torch::rand({50, 3});
  room.color = torch::randint(0, 256, {50, 3}).to(torch::kUInt8);
  room.segment = torch::randint(0, 13, {50});
  room.instance = torch::randint(0, 5, {50});
  const std::string good = tmp.str("room.h5");
  write_room_h5(good, room);
  const auto forked = read_room_h5(good);
  setenv("EWA_HDF5_IN_PROCESS", "1", 1);
  const auto direct = read_room_h5(good);
  unsetenv("EWA_HDF5_IN_PROCESS");
  for (const auto* c : {&forked, &direct}) {
    EXPECT_TRUE(torch::equal(c->coord, room.coord));
    EXPECT_TRUE(torch::equal(c->color, room.color));
    EXPECT_TRUE(torch::equal(c->segment, room.segment));
    EXPECT_TRUE(torch::equal(c->instance, room.instance));
  }
  // A missing required dataset is the child's clean error, passed through.
  const std::string empty = tmp.str("empty.h5");
  H5Fclose(H5Fcreate(empty.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  try {
    read_room_h5(empty);
    ADD_FAILURE() << "accepted";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("empty.h5: no dataset 'coord'"));
  }
}

// Pids of this process's child processes that are alive (not zombies).
std::set<int> live_children() {
  std::set<int> pids;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == static_cast<int>(getpid()) && state != 'Z') pids.insert(std::stoi(name));
  }
  return pids;
}

TEST(PointsHostile, Hdf5ReaderChildServesManyFilesAndExitsWhenIdle) {
  // One reader child reads a folder of rooms (not one fork per file), is replaced after a
  // libhdf5 crash, exits by itself after 5 s without a request and starts again for the next
  // file the process may not read itself.
  TempDir tmp;
  std::vector<PointCloudData> rooms(6);
  for (size_t i = 0; i < rooms.size(); ++i) {
    rooms[i].coord = torch::rand({100 + static_cast<int64_t>(i), 3});
    rooms[i].segment = torch::randint(0, 13, {100 + static_cast<int64_t>(i)});
    write_room_h5(tmp.str("room" + std::to_string(i) + ".h5"), rooms[i]);
  }
  std::set<int> readers;  // the children alive after each read (a previous test's may be reused)
  for (size_t i = 0; i < rooms.size(); ++i) {
    EXPECT_TRUE(torch::equal(open_cloud(tmp.str("room" + std::to_string(i) + ".h5")).cloud.coord, rooms[i].coord));
    for (int pid : live_children()) readers.insert(pid);
  }
  EXPECT_EQ(readers.size(), 1u) << "one reader child for all files";
  const std::string bad = tmp.str("segv.h5");
  fs::copy_file(fs::path(EWA_SOURCE_DIR) / "tests/data/fuzz/libhdf5/room_h5/hdf5-segv-local-heap", bad);
  EXPECT_THAT(clean_failure(bad), HasSubstr("libhdf5 crashed"));
  for (int pid : readers) EXPECT_EQ(live_children().count(pid), 0u) << "the crashed child is reaped";
  PointCloudData next;
  next.coord = torch::rand({70, 3});
  write_room_h5(tmp.str("next.h5"), next);
  EXPECT_TRUE(torch::equal(open_cloud(tmp.str("next.h5")).cloud.coord, next.coord));  // a new child
  const auto fresh = live_children();
  EXPECT_EQ(fresh.size(), 1u);
  for (int pid : fresh) EXPECT_EQ(readers.count(pid), 0u);
  // A file a child read whole is read in this process later only when it was settled at that
  // read (modified more than 2 s before: here an hour ago). One modified within 2 s (here
  // stamped an hour ahead) could be rewritten in place with the same size and time, so it goes
  // through a child every time.
  const std::string settled = tmp.str("settled.h5"), racy = tmp.str("racy.h5");
  write_room_h5(settled, rooms[1]);
  fs::last_write_time(settled, fs::file_time_type::clock::now() - std::chrono::hours(1));
  write_room_h5(racy, rooms[2]);
  fs::last_write_time(racy, fs::file_time_type::clock::now() + std::chrono::hours(1));
  EXPECT_TRUE(torch::equal(open_cloud(settled).cloud.coord, rooms[1].coord));
  EXPECT_TRUE(torch::equal(open_cloud(racy).cloud.coord, rooms[2].coord));
  std::this_thread::sleep_for(std::chrono::milliseconds(6500));
  EXPECT_TRUE(live_children().empty()) << "the idle reader child exits";
  EXPECT_TRUE(torch::equal(open_cloud(settled).cloud.coord, rooms[1].coord));
  EXPECT_TRUE(live_children().empty()) << "a vetted, settled file is read in this process";
  EXPECT_TRUE(torch::equal(open_cloud(racy).cloud.coord, rooms[2].coord));
  EXPECT_EQ(live_children().size(), 1u)  // and the reader child is started again after its idle exit
      << "a file modified within 2 s of its read goes through a child again";
}

TEST(PointsHostile, Hdf5ReaderThatHangsIsStoppedAfterTheTimeout) {
  // A reader child that sends nothing within EWA_HDF5_TIMEOUT_S is killed and the read fails
  // with one line (a room of 200k points takes the child far longer than 1 ms to read).
  TempDir tmp;
  PointCloudData room;
  room.coord = torch::rand({200000, 3});
  room.segment = torch::randint(0, 13, {200000});
  const std::string path = tmp.str("slow.h5");
  write_room_h5(path, room);
  setenv("EWA_HDF5_TIMEOUT_S", "0.001", 1);
  EXPECT_THAT(clean_failure(path), HasSubstr("slow.h5: libhdf5 did not finish reading this file within 0.001 s"));
  setenv("EWA_HDF5_TIMEOUT_S", "soon", 1);
  try {
    open_cloud(path);
    ADD_FAILURE() << "accepted EWA_HDF5_TIMEOUT_S=soon";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("EWA_HDF5_TIMEOUT_S='soon' is not a number of seconds"));
  }
  unsetenv("EWA_HDF5_TIMEOUT_S");
  EXPECT_TRUE(torch::equal(read_room_h5(path).coord, room.coord));  // never vetted by the stopped child
}
#endif

TEST(PointsTable, EveryFormatIsDetectedListedAndReadAlike) {
  TempDir tmp;
  auto coord = torch::tensor({0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f, 0.f}).view({3, 3});
  auto label = torch::tensor({0, 1, 2}, torch::kLong);
  write_labelled_ply(tmp.str("d/a.ply"), coord, {}, label);
  write_file(tmp.path() / "d" / "b.pcd", pcd_head("3", "ascii") + "0 0 0\n1 0 0\n0 1 0\n");
  write_npy(tmp.str("d/c.npy"), coord);
  write_file(tmp.path() / "d" / "e.xyz", "0 0 0 0\n1 0 0 1\n0 1 0 2\n");
  write_file(tmp.path() / "d" / "f.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n");
  write_file(tmp.path() / "d" / "g.txt", "0,0,0\n1,0,0\n0,1,0\n");
  write_file(tmp.path() / "d" / "Area_1" / "room_1" / "Annotations" / "chair_1.txt", "0 0 0 1 2 3\n1 0 0 1 2 3\n0 1 0 1 2 3\n");
  write_npy(tmp.str("d/scene0/coord.npy"), coord);
  if (have_hdf5()) {
    PointCloudData c;
    c.coord = coord;
    c.segment = label;
    write_room_h5(tmp.str("d/h.h5"), c);
  }
  std::map<std::string, std::string> expect = {{"a.ply", "ply"},   {"b.pcd", "pcd"},          {"c.npy", "npy"},
                                                {"e.xyz", "text"},  {"f.off", "off"},          {"g.txt", "modelnet_txt"},
                                                {"room_1", "s3dis_room"}, {"scene0", "pointcept"}};
  if (have_hdf5()) expect["h.h5"] = "room_h5";
  auto scenes = list_cloud_scenes(tmp.str("d"));
  EXPECT_EQ(scenes.size(), expect.size());
  for (const auto& p : scenes) {
    const std::string base = fs::path(p).filename().string();
    ASSERT_TRUE(expect.count(base)) << p;
    auto s = open_cloud(p);
    EXPECT_EQ(s.format, expect[base]) << p;
    EXPECT_EQ(s.cloud.size(), 3) << p;
    EXPECT_TRUE(torch::allclose(s.cloud.coord, coord)) << p;
  }
  EXPECT_NE(cloud_format_names().find("pointnet_h5"), std::string::npos);
  EXPECT_THROW(cloud_format("nope"), DataError);
}
