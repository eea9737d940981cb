// `ewa launch` (torchrun environment, first non-zero status), `ewa report` smoke tests and
// `ewa sweep` (grid x seeds, paired table, resumable).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

#include "test_util.h"

namespace ewa::test {
namespace {

TEST(CliLaunch, SetsTorchrunEnvironmentPerRank) {
  TempDir dir;
  auto r = run_ewa("--log-level warn launch --nproc 2 -- sh -c 'echo $RANK $LOCAL_RANK $WORLD_SIZE $MASTER_ADDR "
                   "$MASTER_PORT > " + dir.str() + "/rank$RANK.txt'");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string a = read_file(dir.path() / "rank0.txt"), b = read_file(dir.path() / "rank1.txt");
  EXPECT_EQ(a.rfind("0 0 2 127.0.0.1 ", 0), 0u) << a;
  EXPECT_EQ(b.rfind("1 1 2 127.0.0.1 ", 0), 0u) << b;
  EXPECT_EQ(a.substr(a.rfind(' ')), b.substr(b.rfind(' ')));  // same MASTER_PORT
}

TEST(CliLaunch, ReturnsTheFailingRanksStatus) {
  auto r = run_ewa("--log-level warn launch --nproc 2 -- sh -c 'if [ $RANK = 1 ]; then exit 5; fi'");
  EXPECT_EQ(r.status, 5);
  EXPECT_EQ(run_ewa("launch --nproc 2").status, 2);  // no command: usage error
}

TEST(CliReport, WritesSelfContainedHtml) {
  TempDir dir;
  write_file(dir.path() / "metrics.jsonl",
             "{\"kind\":\"step\",\"step\":1,\"loss\":2.0,\"lr\":0.1,\"share_rate\":0.3,\"samples_per_sec\":50,"
             "\"expert_load\":{\"blocks.1.mlp\":[0.3,0.7]}}\n"
             "{\"kind\":\"step\",\"step\":2,\"loss\":1.5,\"lr\":0.05,\"share_rate\":0.3,\"samples_per_sec\":60,"
             "\"expert_load\":{\"blocks.1.mlp\":[0.4,0.6]}}\n"
             "{\"kind\":\"epoch\",\"epoch\":1,\"step\":2,\"train_loss\":1.7,\"val.top1\":0.5}\n"
             "{\"kind\":\"step\",\"step\":3,\"lo");  // a line cut by a kill is skipped
  write_file(dir.path() / "confusion.csv", "a,b\n3,1\n0,4\n");
  auto r = run_ewa("report " + dir.str());
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string html = read_file(dir.path() / "report.html");
  for (const char* s : {"<svg", "blocks.1.mlp", "share_rate", "Confusion matrix", "val.top1", "samples/s"}) {
    EXPECT_NE(html.find(s), std::string::npos) << s;
  }
  EXPECT_EQ(html.find("<script"), std::string::npos);
  auto bad = run_ewa("report " + dir.str("missing"));
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("metrics.jsonl"), std::string::npos);
}


TEST(CliSweep, GridTimesSeedsPairedTableAndContinues) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }
  TempDir dir;
  const std::string cfg = std::string(EWA_SOURCE_DIR) + "/configs/test/cls-vit-tiny.yaml";
  const std::string common = "--log-level warn sweep " + cfg +
                             " --grid model.ewa.share_rate=0.1,0.5 --seeds 2 --set train.max_steps=2"
                             " --set data.train_limit=128 --set data.eval_limit=64 --set run.threads=1 --out " +
                             dir.str("sw");
  auto dry = run_ewa(common + " --dry-run");
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find("2 cells x 2 seeds = 4 runs"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("--set model.ewa.share_rate=0.5 --set run.seed=1"), std::string::npos) << dry.out;
  auto r = run_ewa(common);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(read_file(dir.path() / "sw" / "sweep.json"));
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_TRUE(j["rows"][0]["baseline"].get<bool>());
  for (const auto& row : j["rows"]) {
    EXPECT_EQ(row["n"].get<int>(), 2) << row.dump();
    for (const auto& v : row["values"]) EXPECT_TRUE(v.get<double>() >= 0 && v.get<double>() <= 1) << row.dump();
  }
  // Paired difference = mean of the per-seed differences of the two cells.
  const auto& a = j["rows"][0]["values"];
  const auto& b = j["rows"][1]["values"];
  const double diff = ((b[0].get<double>() - a[0].get<double>()) + (b[1].get<double>() - a[1].get<double>())) / 2;
  EXPECT_NEAR(j["rows"][1]["diff_mean"].get<double>(), diff, 1e-12);
  EXPECT_EQ(j["rows"][1]["pairs"].get<int>(), 2);
  const std::string md = read_file(dir.path() / "sw" / "sweep.md");
  EXPECT_NE(md.find("model.ewa.share_rate=0.1 (baseline)"), std::string::npos) << md;
  EXPECT_NE(md.find("ewa train "), std::string::npos) << md;
  // The same command again trains nothing and writes the same table.
  auto again = run_ewa(common);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.out.find("[1/4]"), std::string::npos) << again.out;
  EXPECT_EQ(nlohmann::json::parse(read_file(dir.path() / "sw" / "sweep.json"))["rows"], j["rows"]);
  auto bad = run_ewa(common + " --baseline nope");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("model.ewa.share_rate=0.5"), std::string::npos) << bad.err;  // the cells are listed
}

}  // namespace
}  // namespace ewa::test
