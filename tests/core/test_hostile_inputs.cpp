// Hostile inputs for core's parsers (issue #16): YAML configs (non-finite numbers, nested and
// self-referencing aliases, many keys, odd keys), safetensors, checkpoints and the CSV files.
// Each runs in a child with a 512 MB address-space budget and a 10 s alarm and must end
// with one clean line naming the file.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <string>

#include "ewa/core/checkpoint.h"
#include "ewa/core/config.h"
#include "ewa/core/error_text.h"
#include "ewa/core/options.h"
#include "ewa/core/report.h"
#include "ewa/core/routers.h"
#include "ewa/core/safetensors.h"
#include "ewa/core/train_options.h"
#include "hostile_util.h"
#include "test_util.h"

namespace {

using ewa::test::fails_cleanly;
using ewa::test::run_limited;

struct HostileModel {
  ewa::VisionTransformerOptions vit;
  template <class A>
  void visit(A& a) {
    a("vit", vit);
  }
};
struct HostileDoc {
  ewa::TrainOptions train;
  HostileModel model;
  template <class A>
  void visit(A& a) {
    a("train", train)("model", model);
  }
};

void decode_doc(const std::string& text) {
  auto root = ewa::config::parse_yaml_string(text, "hostile.yaml");
  ewa::config::decode<HostileDoc>(root, "hostile.yaml");
}

std::string config_error(const std::string& text) {
  try {
    decode_doc(text);
  } catch (const ewa::config::ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(HostileConfig, NonFiniteNumbersAreRefusedWithKeyPath) {
  for (const char* v : {".inf", "-.inf", ".nan", ".NaN", "inf", "nan", "infinity", "1e999", "-1e999"}) {
    const std::string lr = config_error(std::string("train:\n  optimizer:\n    lr: ") + v + "\n");
    EXPECT_NE(lr.find("hostile.yaml:3: train.optimizer.lr: expected a finite number, found '" + std::string(v) + "'"),
              std::string::npos)
        << lr;
    const std::string mlp = config_error(std::string("model:\n  vit:\n    mlp_ratio: ") + v + "\n");
    EXPECT_NE(mlp.find("model.vit.mlp_ratio: expected a finite number"), std::string::npos) << mlp;
  }
  // Through --set as well, and in lists of numbers.
  auto root = ewa::config::parse_yaml_string("train: {}\n", "hostile.yaml");
  ewa::config::apply_override(root, "train.schedule.milestones=[1, .inf]");
  try {
    ewa::config::decode<HostileDoc>(root, "hostile.yaml");
    FAIL() << "accepted .inf";
  } catch (const ewa::config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.schedule.milestones[1]: expected a finite number"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(config_error("train:\n  optimizer:\n    weight_decay: 1e-400\n"), "(no error)");  // underflow reads as 0
}

TEST(HostileConfig, BillionLaughsFailsFastWithOneLine) {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 12; ++i) {  // 10^12 values once expanded
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) text += std::string(j ? ", " : "") + "*a" + std::to_string(i - 1);
    text += "]\n";
  }
  auto run = run_limited([&] { ewa::config::parse_yaml_string(text, "laughs.yaml"); });
  EXPECT_TRUE(fails_cleanly(run, "laughs.yaml"));
  EXPECT_NE(run.message.find("aliases"), std::string::npos) << run.message;
}

TEST(HostileConfig, SelfReferencingAliasIsRefused) {
  auto run = run_limited([&] { ewa::config::parse_yaml_string("a: &a [1, *a]\n", "loop.yaml"); });
  EXPECT_TRUE(fails_cleanly(run, "loop.yaml"));
}

TEST(HostileConfig, ManyKeysParseAndDuplicatesAreFound) {
  std::string text;
  // 19,000 keys (the expansion budget is 20,000 values): a quadratic duplicate check would
  // take ~1.8e8 key comparisons here.
  for (int i = 0; i < 19000; ++i) text += "k" + std::to_string(i) + ": " + std::to_string(i) + "\n";
  auto ok = run_limited([&] {
    auto root = ewa::config::parse_yaml_string(text, "wide.yaml");
    if (root.entries.size() != 19000) throw std::runtime_error("wrong count");
  });
  EXPECT_EQ(ok.end, ewa::test::LimitedRun::End::kNoError) << ok.describe();
  auto dup = run_limited([&] { ewa::config::parse_yaml_string(text + "k17: 1\n", "wide.yaml"); });
  EXPECT_TRUE(fails_cleanly(dup, "wide.yaml:19001: k17: duplicate key"));
}

TEST(HostileConfig, OddKeysAndNonScalarKeys) {
  auto root = ewa::config::parse_yaml_string("\"a: b\": 1\n\"#c\": 2\n\"null\": 3\n\"\": 4\n\"-x\": 5\n", "keys.yaml");
  const std::string again = ewa::config::to_yaml(root);
  auto back = ewa::config::parse_yaml_string(again, "again.yaml");
  ASSERT_EQ(back.entries.size(), 5u) << again;
  EXPECT_EQ(back.entries[0].first, "a: b");
  EXPECT_EQ(back.entries[2].first, "null");
  // Found by fuzz_yaml (tests/data/fuzz/regressions/yaml): scalars holding flow indicators or bytes
  // that are not UTF-8 were written plain into flow lists and did not read back.
  auto flow = ewa::config::parse_yaml_string("a: [\"x, y\", \"[z]\", \"#c\", \"a: b\", \"\\xff\", -1, plain]\n",
                                             "flow.yaml");
  const std::string flow_text = ewa::config::to_yaml(flow);
  auto flow_back = ewa::config::parse_yaml_string(flow_text, "flow2.yaml");
  ASSERT_EQ(flow_back.find("a")->items.size(), 7u) << flow_text;
  EXPECT_EQ(flow_back.find("a")->items[0].scalar, "x, y");
  EXPECT_EQ(flow_back.find("a")->items[5].scalar, "-1");
  EXPECT_FALSE(flow_back.find("a")->items[5].quoted) << flow_text;  // numbers stay numbers
  // Also found by fuzz_yaml: a key too long for YAML's 1024-character implicit keys once written.
  try {
    ewa::config::parse_yaml_string(std::string(300, 'k') + ": 1\n", "long.yaml");
    FAIL() << "accepted a 300-byte key";
  } catch (const ewa::config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("long.yaml:1: map key of 300 bytes (at most 200)"), std::string::npos)
        << e.what();
  }
  try {
    ewa::config::parse_yaml_string("? [1, 2]\n: x\n", "complex.yaml");
    FAIL() << "accepted a sequence as a key";
  } catch (const ewa::config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("complex.yaml:1: map keys must be plain strings"), std::string::npos)
        << e.what();
  }
}

// Found by fuzz_yaml: yaml-cpp 0.7's LoadAll() loops for ever (allocating) on this text; and
// bytes that are not UTF-8 did not survive the write-back of the resolved config.
TEST(HostileConfig, UnplaceableTextAndNonUtf8FailWithOneLine) {
  for (const char* text : {"&a ,a]", "&a1.,a]\a", ",\n", "a: 1\n--- \nb: 2\n"}) {
    auto run = run_limited([&] { ewa::config::parse_yaml_string(text, "odd.yaml"); });
    EXPECT_TRUE(fails_cleanly(run, "odd.yaml")) << text;
  }
  auto bad = run_limited([&] { ewa::config::parse_yaml_string("a: 1\nname: \xf3gd\n", "bytes.yaml"); });
  EXPECT_TRUE(fails_cleanly(bad, "bytes.yaml:2: not UTF-8 text: byte 0xF3 at column 7")) << bad.message;
  // Valid UTF-8 (2-, 3- and 4-byte sequences) reads and writes back byte for byte.
  const std::string text = "name: \"gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x99\x82\"\nk\xc3\xa9: 1\n";
  auto root = ewa::config::parse_yaml_string(text, "utf8.yaml");
  auto back = ewa::config::parse_yaml_string(ewa::config::to_yaml(root), "utf8-again.yaml");
  EXPECT_EQ(back.find("name")->scalar, root.find("name")->scalar);
  EXPECT_EQ(back.entries[1].first, "k\xc3\xa9");
  // Found by CI's fuzz_yaml: a --set value with a duplicate key named "<config>", not --set.
  try {
    ewa::config::apply_override(root, "train.optimizer.lr={a: 1, a: 2}");
    FAIL() << "accepted a duplicate key in a --set value";
  } catch (const ewa::config::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--set: train.optimizer.lr: value '{a: 1, a: 2}': ", 0), 0u) << e.what();
  }
  EXPECT_THROW(ewa::config::apply_override(root, "name=\xff"), ewa::config::ConfigError);
}

// ---------------------------------------------------------------------------------------
std::string st_file(const std::string& json, const std::string& data = "") {
  std::string out(8, '\0');
  const uint64_t n = json.size();
  std::memcpy(out.data(), &n, 8);
  return out + json + data;
}

TEST(HostileSafetensors, CountsAndSizesAreCheckedBeforeAllocating) {
  ewa::test::TempDir tmp;
  const std::string cases[] = {
      st_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}})"),
      st_file(R"({"a":{"dtype":"F32","shape":[100000000000],"data_offsets":[0,400000000000]}})"),
      st_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"),
      st_file(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "abcd"),
      st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,0]}})", "abcdefgh"),
      st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd"),
      st_file(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", "abcd"),
      st_file(R"({"__metadata__":{"k":1}})"),
      st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "ab"),  // truncated data
      std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10),                        // header length 2^63
      std::string("\x04\x00\x00", 3),                                                // shorter than the prefix
  };
  int i = 0;
  for (const auto& bytes : cases) {
    const std::string path = tmp.str("bad" + std::to_string(i++) + ".safetensors");
    ewa::test::write_file(path, bytes);
    EXPECT_TRUE(fails_cleanly(run_limited([&] { ewa::safetensors::load_file(path); }), path)) << i;
    EXPECT_TRUE(fails_cleanly(run_limited([&] { ewa::safetensors::read_header(path); }), path)) << i;
  }
}

// ---------------------------------------------------------------------------------------
std::string ckpt_file(const std::string& payload, int64_t declared = -1) {
  std::string out = "EWACKPT1";
  const uint64_t n = declared < 0 ? payload.size() : static_cast<uint64_t>(declared);
  const uint32_t crc = static_cast<uint32_t>(
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size())));
  out.append(reinterpret_cast<const char*>(&n), 8);
  out.append(reinterpret_cast<const char*>(&crc), 4);
  return out + payload;
}

TEST(HostileCheckpoint, DamagedFilesFailWithOneLine) {
  ewa::test::TempDir tmp;
  // A real checkpoint, then damaged copies of it.
  torch::nn::Linear model(3, 2);
  const std::string good = tmp.str("good.ckpt");
  ewa::save_checkpoint(good, *model, nullptr, {});
  const std::string bytes = ewa::test::read_file(good);
  const std::string payload = bytes.substr(20);
  std::string flipped = payload;
  for (size_t i = 0; i < flipped.size(); i += 97) flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
  const std::string cases[] = {
      bytes.substr(0, bytes.size() / 2),                    // truncated
      ckpt_file(payload, int64_t{1} << 62),                 // declared size 2^62
      ckpt_file(payload.substr(0, payload.size() / 3)),     // valid CRC over a cut archive
      ckpt_file(flipped),                                   // valid CRC over damaged bytes
      ckpt_file(std::string(5000, 'x')),                    // not an archive
      "EWACKPT2" + bytes.substr(8),                          // wrong magic
  };
  int i = 0;
  for (const auto& c : cases) {
    const std::string path = tmp.str("bad" + std::to_string(i++) + ".ckpt");
    ewa::test::write_file(path, c);
    EXPECT_TRUE(fails_cleanly(run_limited([&] { ewa::read_checkpoint_state(path); }), path)) << i;
    EXPECT_TRUE(fails_cleanly(run_limited([&] {
                                torch::nn::Linear m(3, 2);
                                ewa::load_checkpoint(path, *m, nullptr);
                              }),
                              path))
        << i;
  }
}

// ---------------------------------------------------------------------------------------
TEST(HostileCsv, ConfusionMatrixValuesAndShape) {
  ewa::test::TempDir tmp;
  const std::pair<std::string, std::string> cases[] = {
      {"1,2\n3,inf\n", "finite"},
      {"1,2\nnan,3\n", "finite"},
      {"1,-2\n3,4\n", ">= 0"},
      {"1,2\n3,1e999\n", "finite"},
      {"1,2\n3\n", "1 columns, expected 2"},
      {"1,2\n3,4\n5,6\n", "must be square"},
      {"1,2,3\n4,5,6\n", "must be square"},
      {"a,b\n1,2\nx,y\n", "expected numbers only"},
  };
  int i = 0;
  for (const auto& [text, why] : cases) {
    const std::string path = tmp.str("c" + std::to_string(i++) + ".csv");
    ewa::test::write_file(path, text);
    auto run = run_limited([&] { ewa::read_confusion_csv(path); });
    EXPECT_TRUE(fails_cleanly(run, path)) << text;
    EXPECT_NE(run.message.find(why), std::string::npos) << run.message;
  }
  // One long row of a million numbers: refused at the second row, no quadratic work.
  std::string wide;
  for (int j = 0; j < 500000; ++j) wide += "1,";
  wide += "1\n1\n";
  ewa::test::write_file(tmp.path() / "wide.csv", wide);
  EXPECT_TRUE(fails_cleanly(run_limited([&] { ewa::read_confusion_csv(tmp.str("wide.csv")); }), "wide.csv"));
  // Separators other than commas, comments and a header row.
  ewa::test::write_file(tmp.path() / "ok.txt", "# c\nx y\n1 2\n3;4\n");
  auto m = ewa::read_confusion_csv(tmp.str("ok.txt"));
  ASSERT_EQ(m.counts.size(), 2u);
  EXPECT_EQ(m.counts[1][1], 4.0);
}

TEST(HostileCsv, SuperclassIdsThatOverflow) {
  ewa::test::TempDir tmp;
  const std::string path = tmp.str("sc.csv");
  ewa::test::write_file(path, "0,0\n9223372036854775807,1\n");
  auto run = run_limited([&] { ewa::load_superclasses(path, 2); });
  EXPECT_TRUE(fails_cleanly(run, path));
  EXPECT_NE(run.message.find("each exactly once"), std::string::npos) << run.message;
  ewa::test::write_file(path, "0,99999999999999999999999\n");
  EXPECT_TRUE(fails_cleanly(run_limited([&] { ewa::load_superclasses(path, 2); }), path));
}

// ---------------------------------------------------------------------------------------
TEST(ErrorText, LibraryTextAndAllocatorMessagesBecomeOneCleanLine) {
  EXPECT_EQ(ewa::error_line(std::bad_alloc()), "out of memory");
  try {
    (void)std::stoi("x");
  } catch (const std::exception& e) {
    EXPECT_EQ(ewa::error_line(e).find("stoi"), std::string::npos) << ewa::error_line(e);
  }
  try {
    std::string("abc").substr(10);
  } catch (const std::exception& e) {
    EXPECT_EQ(ewa::error_line(e).find("basic_string"), std::string::npos) << ewa::error_line(e);
  }
  try {
    TORCH_CHECK(false, "first line\nsecond line");
  } catch (const std::exception& e) {
    EXPECT_EQ(ewa::error_line(e), "first line");
  }
  try {
    (void)torch::empty({int64_t{1} << 60}, torch::kByte);
  } catch (const std::exception& e) {
    const std::string line = ewa::error_line(e);
    EXPECT_NE(line.find("out of memory (an allocation of"), std::string::npos) << line;
    EXPECT_EQ(line.find("DefaultCPUAllocator"), std::string::npos) << line;
  }
}

}  // namespace
