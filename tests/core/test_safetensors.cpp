// safetensors: bit-exact round trips for every dtype, the on-disk layout, a hand-written
// file, and rejection (with a message naming the file) of truncated or malicious files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>

#include "ewa/core/safetensors.h"
#include "test_util.h"

namespace {

namespace st = ewa::safetensors;

bool same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  auto ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

st::TensorMap all_dtypes() {
  torch::manual_seed(0);
  st::TensorMap m;
  m["f32"] = torch::randn({3, 4});
  m["f32"][0][0] = std::numeric_limits<float>::quiet_NaN();
  m["f32"][0][1] = -0.0f;
  m["f64"] = torch::randn({2, 3, 2}, torch::kDouble);
  m["f16"] = torch::randn({5}).to(torch::kHalf);
  m["bf16"] = torch::randn({2, 2}).to(torch::kBFloat16);
  m["i64"] = torch::randint(-1000000000000LL, 1000000000000LL, {4}, torch::kLong);
  m["i32"] = torch::randint(-100000, 100000, {3}, torch::kInt);
  m["i16"] = torch::randint(-30000, 30000, {3}, torch::kShort);
  m["i8"] = torch::randint(-128, 127, {7}, torch::kChar);
  m["u8"] = torch::randint(0, 255, {2, 3}, torch::kByte);
  m["bool"] = torch::rand({6}) > 0.5;
  m["scalar"] = torch::tensor(3.5);
  m["empty"] = torch::zeros({0, 3});
  m["strided"] = torch::randn({4, 4}).t();  // non-contiguous input
  return m;
}

std::string valid_file() { return st::serialize(all_dtypes(), {{"k", "v"}}); }

/// A file from a raw JSON header and `data` bytes.
std::string raw_file(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = json.size();
  std::memcpy(out.data(), &n, 8);
  return out + json + data;
}

void expect_rejected(const std::string& bytes, const std::string& fragment) {
  try {
    st::deserialize(bytes, "evil.safetensors");
    FAIL() << "accepted a malformed file (expected: " << fragment << ")";
  } catch (const st::SafetensorsError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("evil.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  }
}

TEST(Safetensors, RoundTripIsBitExactForEveryDtype) {
  auto tensors = all_dtypes();
  auto back = st::deserialize(st::serialize(tensors, {{"ewa.vit", "a: 1\nb: [2]\n"}}), "mem");
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(back.tensors.count(name)) << name;
    EXPECT_TRUE(same_bytes(t, back.tensors.at(name))) << name;
  }
  EXPECT_EQ(back.metadata.at("ewa.vit"), "a: 1\nb: [2]\n");
  // and through a file
  ewa::test::TempDir tmp;
  st::save_file(tmp.str("m.safetensors"), tensors);
  auto loaded = st::load_file(tmp.str("m.safetensors"));
  for (const auto& [name, t] : tensors) EXPECT_TRUE(same_bytes(t, loaded.tensors.at(name))) << name;
  EXPECT_TRUE(loaded.metadata.empty());
  auto header = st::read_header(tmp.str("m.safetensors"));
  EXPECT_EQ(header.tensors.size(), tensors.size());
  EXPECT_EQ(header.tensors.front().name, "bf16");  // sorted by name
}

TEST(Safetensors, LayoutFollowsTheFormat) {
  const std::string bytes = st::serialize({{"a", torch::tensor({1.0f, 2.0f})}});
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 8);
  EXPECT_EQ(bytes[8], '{');
  float v[2];
  std::memcpy(v, bytes.data() + 8 + n, 8);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], 2.0f);
}

TEST(Safetensors, ReadsAHandWrittenFile) {
  float data[3] = {1.5f, -2.0f, 4.0f};
  int8_t b[2] = {7, -3};
  std::string raw(reinterpret_cast<char*>(data), 12);
  raw.append(reinterpret_cast<char*>(b), 2);
  auto c = st::deserialize(raw_file(R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[3,1],"data_offsets":[0,12]},"b":{"dtype":"I8","shape":[2],"data_offsets":[12,14]}})", raw), "hand");
  EXPECT_TRUE(torch::equal(c.tensors.at("w"), torch::tensor({1.5f, -2.0f, 4.0f}).view({3, 1})));
  EXPECT_TRUE(torch::equal(c.tensors.at("b"), torch::tensor({7, -3}, torch::kChar)));
  EXPECT_EQ(c.metadata.at("format"), "pt");
}

TEST(Safetensors, EveryTruncationIsRejected) {
  const std::string bytes = valid_file();
  for (size_t k = 0; k < bytes.size(); ++k) {
    EXPECT_THROW(st::deserialize(bytes.substr(0, k), "cut"), st::SafetensorsError) << "prefix " << k;
  }
  EXPECT_NO_THROW(st::deserialize(bytes, "whole"));
  expect_rejected(bytes + "x", "cover");  // trailing garbage
}

TEST(Safetensors, MaliciousHeadersAreRejected) {
  const std::string d8(8, '\0');
  expect_rejected("abc", "too short");
  std::string huge(8, '\0');
  const uint64_t big = 1ULL << 62;
  std::memcpy(huge.data(), &big, 8);
  expect_rejected(huge + "{}", "exceeds the limit");
  std::string longer(8, '\0');
  const uint64_t ten = 10;
  std::memcpy(longer.data(), &ten, 8);
  expect_rejected(longer + "{}", "exceeds the file size");
  expect_rejected(raw_file("[1, 2]", ""), "does not start");
  expect_rejected(raw_file("{\"a\": ", ""), "not valid JSON");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", d8), "out of range");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8), "need 12");
  expect_rejected(raw_file(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", d8), "unknown dtype 'Q4'");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8), "non-negative");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", d8), "out of range");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}})", d8), "overlap");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8), "gap");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d8), "cover");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904, 8],"data_offsets":[0,8]}})", d8),
                  "overflows");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2]}})", d8), "data_offsets");
  expect_rejected(raw_file(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", d8), "dtype");
  expect_rejected(raw_file(R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d8),
                  "not a string");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0.5,8]}})", d8), "non-negative");
}

TEST(Safetensors, FileErrorsNameThePath) {
  ewa::test::TempDir tmp;
  try {
    st::load_file(tmp.str("missing.safetensors"));
    FAIL();
  } catch (const st::SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.safetensors"), std::string::npos);
  }
  ewa::test::write_file(tmp.path() / "short.safetensors", "\x05\x00");
  EXPECT_THROW(st::read_header(tmp.str("short.safetensors")), st::SafetensorsError);
  EXPECT_THROW(st::serialize({{"c", torch::randn({2}, torch::kComplexFloat)}}), st::SafetensorsError);
}

}  // namespace
