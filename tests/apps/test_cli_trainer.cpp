// `ewa launch` (torchrun environment, first non-zero status) and `ewa report` smoke tests.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ewa::test
