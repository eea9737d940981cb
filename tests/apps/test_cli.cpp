// `ewa` CLI contract: help, exit codes, config check messages, shipped configs validate.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace {

using ewa::test::run_ewa;
namespace fs = std::filesystem;

TEST(Cli, HelpListsSubcommands) {
  auto r = run_ewa("--help");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Subcommands:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("config"), std::string::npos);
  EXPECT_NE(r.out.find("version"), std::string::npos);
}

TEST(Cli, VersionNamesLibTorch) {
  auto r = run_ewa("--version");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("LibTorch"), std::string::npos) << r.out;
}

TEST(Cli, UnknownSubcommandIsUsageError) {
  auto r = run_ewa("nonsense");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("nonsense"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Usage"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(Cli, UnknownOptionIsUsageError) {
  auto r = run_ewa("config check --bogus " + std::string(EWA_SOURCE_DIR) + "/configs/test/cls-vit-tiny.yaml");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("bogus"), std::string::npos) << r.err;
}

TEST(Cli, EverySubcommandHasHelp) {
  auto r = run_ewa("--help");
  auto pos = r.out.find("Subcommands:");
  ASSERT_NE(pos, std::string::npos);
  std::istringstream lines(r.out.substr(pos));
  std::string line;
  std::getline(lines, line);
  int n = 0;
  while (std::getline(lines, line)) {
    std::istringstream ls(line);
    std::string name;
    if (!(ls >> name)) continue;
    auto h = run_ewa(name + " --help");
    EXPECT_EQ(h.status, 0) << name << ": " << h.err;
    EXPECT_NE(h.out.find("Usage"), std::string::npos) << name;
    ++n;
  }
  EXPECT_GE(n, 2);
}

TEST(Cli, ConfigCheckMisspeltKey) {
  ewa::test::TempDir tmp;
  fs::path cfg = tmp.path() / "bad.yaml";
  ewa::test::write_file(cfg, "task: image_classification\ntrain:\n  epochs: 3\n  optimiser:\n    lr: 0.1\n");
  auto r = run_ewa("config check " + cfg.string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("bad.yaml:4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("train.optimiser"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("optimizer"), std::string::npos) << r.err;  // listed as valid
  EXPECT_NE(r.err.find("batch_size"), std::string::npos) << r.err;
}

TEST(Cli, ConfigCheckWrongType) {
  ewa::test::TempDir tmp;
  fs::path cfg = tmp.path() / "type.yaml";
  ewa::test::write_file(cfg, "task: image_classification\nmodel:\n  vit:\n    depth: deep\n");
  auto r = run_ewa("config check " + cfg.string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("model.vit.depth"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("expected an integer"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'deep'"), std::string::npos) << r.err;
}

TEST(Cli, ConfigCheckOverridesAndPrintsResolved) {
  fs::path cfg = fs::path(EWA_SOURCE_DIR) / "configs/fashion_mnist/cls-vit-ewa.yaml";
  auto r = run_ewa("config check " + cfg.string() + " --set train.epochs=3 --set model.ewa.share_rate=0.2");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("epochs: 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("share_rate: 0.2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("weight_decay:"), std::string::npos);  // defaults filled in
  auto bad = run_ewa("config check " + cfg.string() + " --set train.epoch=3");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("train.epoch"), std::string::npos) << bad.err;
}

TEST(Cli, UnknownTaskListsKnownTasks) {
  ewa::test::TempDir tmp;
  fs::path cfg = tmp.path() / "task.yaml";
  ewa::test::write_file(cfg, "task: painting\n");
  auto r = run_ewa("config check " + cfg.string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("image_classification"), std::string::npos) << r.err;
}

TEST(Cli, EveryShippedConfigValidates) {
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(EWA_SOURCE_DIR) / "configs")) {
    if (e.path().extension() != ".yaml") continue;
    auto r = run_ewa("config check " + e.path().string());
    EXPECT_EQ(r.status, 0) << e.path() << ": " << r.err;
    ++n;
  }
  EXPECT_GT(n, 0);
}

}  // namespace
