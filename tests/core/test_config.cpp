// Config system: typed decoding, unknown keys, type errors, overrides, round trip.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "ewa/core/config.h"
#include "ewa/core/options.h"
#include "ewa/core/runtime.h"
#include "ewa/core/train_options.h"
#include "test_util.h"

namespace {

using ewa::config::ConfigError;
using ewa::config::Node;

struct Small {
  int64_t depth = 2;
  double lr = 0.1;
  std::string name = "x";
  std::vector<int64_t> blocks;
  ewa::EwaOptions ewa;
  template <class A>
  void visit(A& a) {
    a("depth", depth)("lr", lr)("name", name)("blocks", blocks)("ewa", ewa);
    a.require(depth >= 1, "depth", "an integer >= 1");
  }
};

Small decode_text(const std::string& text, const std::vector<std::string>& sets = {}) {
  Node root = ewa::config::parse_yaml_string(text, "test.yaml");
  ewa::config::apply_overrides(root, sets);
  return ewa::config::decode<Small>(root, "test.yaml");
}

std::string error_of(const std::string& text, const std::vector<std::string>& sets = {}) {
  try {
    decode_text(text, sets);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsKeptForAbsentKeys) {
  Small s = decode_text("depth: 5\n");
  EXPECT_EQ(s.depth, 5);
  EXPECT_DOUBLE_EQ(s.lr, 0.1);
  EXPECT_EQ(s.name, "x");
  EXPECT_DOUBLE_EQ(s.ewa.share_rate(), 0.3);
}

TEST(Config, NestedAndSequences) {
  Small s = decode_text("blocks: [1, 3, 5]\newa:\n  enabled: true\n  share_rate: 0.5\n  schedule: cosine\n");
  EXPECT_EQ(s.blocks, (std::vector<int64_t>{1, 3, 5}));
  EXPECT_TRUE(s.ewa.enabled());
  EXPECT_DOUBLE_EQ(s.ewa.share_rate(), 0.5);
  EXPECT_EQ(s.ewa.schedule(), "cosine");
}

TEST(Config, UnknownKeyNamesFilePathAndValidKeys) {
  std::string e = error_of("depth: 3\newa:\n  share_rat: 0.2\n");
  EXPECT_NE(e.find("test.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("ewa.share_rat"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("share_rate"), std::string::npos) << e;
  EXPECT_NE(e.find("warmup_steps"), std::string::npos) << e;
}

TEST(Config, WrongTypeNamesExpectedAndFound) {
  std::string e = error_of("depth: ten\n");
  EXPECT_NE(e.find("depth"), std::string::npos) << e;
  EXPECT_NE(e.find("expected an integer"), std::string::npos) << e;
  EXPECT_NE(e.find("'ten'"), std::string::npos) << e;
  e = error_of("ewa:\n  enabled: maybe\n");
  EXPECT_NE(e.find("ewa.enabled"), std::string::npos) << e;
  EXPECT_NE(e.find("expected a boolean"), std::string::npos) << e;
  e = error_of("blocks: {a: 1}\n");
  EXPECT_NE(e.find("expected a sequence, found a map"), std::string::npos) << e;
  e = error_of("lr: 1.5.2\n");
  EXPECT_NE(e.find("expected a number"), std::string::npos) << e;
  e = error_of("depth: 2.5\n");
  EXPECT_NE(e.find("expected an integer"), std::string::npos) << e;
}

TEST(Config, ChoicesAndConstraints) {
  std::string e = error_of("ewa:\n  schedule: exponential\n");
  EXPECT_NE(e.find("ewa.schedule"), std::string::npos) << e;
  EXPECT_NE(e.find("constant, linear, cosine"), std::string::npos) << e;
  e = error_of("depth: 0\n");
  EXPECT_NE(e.find("expected an integer >= 1, found '0'"), std::string::npos) << e;
  e = error_of("ewa:\n  share_rate: 1.5\n");
  EXPECT_NE(e.find("in [0, 1]"), std::string::npos) << e;
}

TEST(Config, OverridesApplyBeforeValidation) {
  Small s = decode_text("depth: 3\n", {"ewa.share_rate=0.1", "blocks=[2,4]", "name=abc", "depth=7"});
  EXPECT_EQ(s.depth, 7);
  EXPECT_DOUBLE_EQ(s.ewa.share_rate(), 0.1);
  EXPECT_EQ(s.blocks, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(s.name, "abc");
  std::string e = error_of("depth: 3\n", {"ewa.sharerate=0.1"});
  EXPECT_NE(e.find("ewa.sharerate"), std::string::npos) << e;
  e = error_of("depth: 3\n", {"novalue"});
  EXPECT_NE(e.find("KEY.PATH=VALUE"), std::string::npos) << e;
  e = error_of("depth: 3\n", {"depth.x=1"});
  EXPECT_NE(e.find("not a map"), std::string::npos) << e;
}

TEST(Config, SyntaxErrorNamesFileAndLine) {
  try {
    ewa::config::parse_yaml_string("a: 1\nb: [1, 2\n", "bad.yaml");
    FAIL() << "expected a syntax error";
  } catch (const ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("bad.yaml"), std::string::npos) << m;
    EXPECT_NE(m.find("syntax"), std::string::npos) << m;
  }
  EXPECT_THROW(ewa::config::parse_yaml_string("a: 1\na: 2\n", "dup.yaml"), ConfigError);
  EXPECT_THROW(ewa::config::parse_yaml_file("/nonexistent/x.yaml"), ConfigError);
}

TEST(Config, ResolvedYamlRoundTrips) {
  ewa::TrainOptions t;
  t.epochs(7).label_smoothing(0.1);
  t.optimizer().lr(3e-4);
  t.schedule().milestones({3.0, 5.5});
  std::string yaml = ewa::config::dump(t);
  auto back = ewa::config::decode<ewa::TrainOptions>(ewa::config::parse_yaml_string(yaml, "rt"), "rt");
  EXPECT_EQ(back.epochs(), 7);
  EXPECT_DOUBLE_EQ(back.label_smoothing(), 0.1);
  EXPECT_DOUBLE_EQ(back.optimizer().lr(), 3e-4);
  EXPECT_EQ(back.schedule().milestones(), (std::vector<double>{3.0, 5.5}));
  EXPECT_EQ(ewa::config::dump(back), yaml);
}

TEST(Config, StringsThatLookLikeNumbersStayStrings) {
  ewa::RunOptions r;
  r.name("123");
  std::string yaml = ewa::config::dump(r);
  auto back = ewa::config::decode<ewa::RunOptions>(ewa::config::parse_yaml_string(yaml, "rt"), "rt");
  EXPECT_EQ(back.name(), "123");
}

TEST(Config, RealConfigsInRepositoryDecode) {
  // Every shipped config must at least parse; task-level validation is in the CLI tests.
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(EWA_SOURCE_DIR) / "configs")) {
    if (e.path().extension() != ".yaml") continue;
    EXPECT_NO_THROW(ewa::config::parse_yaml_file(e.path().string())) << e.path();
    ++n;
  }
  EXPECT_GT(n, 0);
}

}  // namespace

namespace {
TEST(Runtime, ThreadsAndAllocatorTuning) {
  EXPECT_EQ(ewa::set_num_threads(1), 1);
  // Idempotent, process-wide: the second call reports the first call's result.
  const bool first = ewa::configure_allocator();
  EXPECT_EQ(ewa::configure_allocator(), first);
#ifdef __GLIBC__
  const char* opt_out = std::getenv("EWA_MALLOC_TUNING");
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_") && !std::getenv("MALLOC_TRIM_THRESHOLD_") && !std::getenv("MALLOC_MMAP_MAX_") &&
      !(opt_out && std::string(opt_out) == "0")) {
    EXPECT_TRUE(first);  // glibc accepts both thresholds
  }
#endif
  EXPECT_EQ(ewa::set_num_threads(0), ewa::hardware_threads());
}
}  // namespace
