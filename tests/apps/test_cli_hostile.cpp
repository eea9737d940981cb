// `ewa` on hostile inputs (issue #16): one clean line naming the file, exit 2 for config
// errors and 1 for bad data files, no library text, bounded memory (prlimit when available).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "test_util.h"

namespace {

using ewa::test::run_command;
using ewa::test::run_ewa;
namespace fs = std::filesystem;

/// `ewa ARGS` with a 4 GiB address-space cap when util-linux's prlimit is there.
ewa::test::CommandResult run_ewa_capped(const std::string& args) {
  static const bool have_prlimit = std::system("command -v prlimit >/dev/null 2>&1") == 0;
  if (!have_prlimit) return run_ewa(args);
  return run_command("prlimit --as=" + std::to_string(4ull << 30) + " '" + EWA_CLI_PATH + "' " + args);
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

void expect_clean_line(const ewa::test::CommandResult& r, int status, const std::string& must_name) {
  EXPECT_EQ(r.status, status) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(must_name), std::string::npos) << r.err;
  for (const char* lib : {"stoi", "stoll", "basic_string", "bad_alloc", "DefaultCPUAllocator", "Exception raised",
                          "OpenCV(", "[json.exception"}) {
    EXPECT_EQ(r.err.find(lib), std::string::npos) << r.err;
  }
}

TEST(CliHostile, NonFiniteSettingsFailConfigCheck) {
  ewa::test::TempDir tmp;
  const std::string base = ewa::test::read_file(fs::path(EWA_SOURCE_DIR) / "configs/test/cls-vit-tiny.yaml");
  const std::string lr = tmp.str("lr.yaml");
  ewa::test::write_file(lr, base + "  optimizer:\n    lr: .inf\n");  // `train:` is the last section
  auto r = run_ewa("config check " + lr);
  expect_clean_line(r, 2, lr);
  EXPECT_NE(r.err.find("train.optimizer.lr: expected a finite number, found '.inf'"), std::string::npos) << r.err;

  auto m = run_ewa("config check " + std::string(EWA_SOURCE_DIR) +
                   "/configs/test/cls-vit-tiny.yaml --set model.vit.mlp_ratio=.inf");
  EXPECT_EQ(m.status, 2) << m.err;
  EXPECT_NE(m.err.find("model.vit.mlp_ratio: expected a finite number, found '.inf'"), std::string::npos) << m.err;
}

TEST(CliHostile, NestedAliasesFailFast) {
  ewa::test::TempDir tmp;
  std::string text = "task: image_classification\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) text += std::string(j ? ", " : "") + "*a" + std::to_string(i - 1);
    text += "]\n";
  }
  const std::string path = tmp.str("laughs.yaml");
  ewa::test::write_file(path, text);
  auto r = run_ewa_capped("config check " + path);
  expect_clean_line(r, 2, path);
  EXPECT_NE(r.err.find("aliases"), std::string::npos) << r.err;
}

TEST(CliHostile, DamagedDataFilesFailWithOneLine) {
  ewa::test::TempDir tmp;
  const std::string csv = tmp.str("confusion.csv");
  ewa::test::write_file(csv, "a,b\n1,2\n3,inf\n");
  expect_clean_line(run_ewa_capped("superclasses --confusion " + csv + " --groups 2 --out " + tmp.str("s.csv")), 1,
                    csv);
  const std::string st = tmp.str("model.safetensors");
  std::string bytes(8, '\0');
  const std::string json = R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})";
  const uint64_t n = json.size();
  std::memcpy(bytes.data(), &n, 8);
  ewa::test::write_file(st, bytes + json + std::string(16, '\0'));
  expect_clean_line(run_ewa_capped("inspect " + st), 1, st);
}

}  // namespace
