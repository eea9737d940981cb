// In-process end-to-end segmentation: synthetic rooms -> prepared cache -> train the tiny
// config (MoE + EWA) -> collapsed model.safetensors + eval_val.json -> reload and segment a
// room with fragment voting -> PLY + .npy outputs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "ewa/core/config.h"
#include "ewa/datasets/points/npy.h"
#include "ewa/datasets/points/room_cache.h"
#include "ewa/datasets/points/s3dis.h"
#include "ewa/datasets/points/synth_rooms.h"
#include "ewa/pointcloud/pipeline.h"
#include "ewa/pointcloud/scene_data.h"
#include "ewa/pointcloud/segment.h"
#include "test_util.h"

namespace ewa::pointcloud {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// Synthetic rooms in tmp/raw (Area_1: `train_rooms` rooms, Area_2: one room) prepared into
// tmp/cache; returns the number of rooms written.
int64_t make_room_cache(const TempDir& tmp, int train_rooms, int seed) {
  datasets::SynthRoomsOptions so;
  so.density = 30;
  so.threads = 1;
  for (int a = 1; a <= 2; ++a) {
    so.area = a;
    datasets::synth_rooms(tmp.str("raw"), a == 1 ? train_rooms : 1, seed + a, so);
  }
  return datasets::prepare_s3dis(tmp.str("raw"), tmp.str("cache")).rooms_written;
}

TEST(PipelineTrain, TinySemsegEndToEnd) {
  if (!datasets::have_hdf5()) GTEST_SKIP() << "built without HDF5 (room cache)";
  TempDir tmp;
  ASSERT_EQ(make_room_cache(tmp, 2, 20), 3);

  const std::string file = std::string(EWA_SOURCE_DIR) + "/configs/test/semseg-pt-tiny.yaml";
  auto cfg = config::load<SemSegConfig>(file, {"data.root=" + tmp.str("cache"), "run.device=cpu"});
  TrainRequest req;
  req.config_file = file;
  req.config_text = config::dump(cfg);
  req.run_dir = tmp.str("run");
  req.quiet = true;
  auto r = train_semantic_segmentation(cfg, req);
  ASSERT_EQ(r.exit_code, 0);
  ASSERT_TRUE(fs::exists(tmp.str("run/model.safetensors")));
  std::ifstream in(tmp.str("run/eval_val.json"));
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["split"], "val");
  EXPECT_GT(j["collapsed_moe_layers"].get<int64_t>(), 0);
  const double miou = j["metrics"]["miou"].get<double>();
  EXPECT_GE(miou, 0.0);
  EXPECT_LE(miou, 1.0);
  EXPECT_EQ(j["metrics"]["classes"].size(), 13u);

  // reload the deployed (dense) model and segment the validation room
  std::map<std::string, std::string> meta;
  auto model = load_point_model(tmp.str("run/model.safetensors"), &meta);
  EXPECT_EQ(model->num_moe_layers(), 0);
  auto info = parse_segmentation_metadata(meta, "model");
  EXPECT_EQ(info.class_names, default_s3dis_classes());
  EXPECT_DOUBLE_EQ(info.grid_size, cfg.data().grid_size());
  SceneReadSpec spec;
  spec.class_names = info.class_names;
  int64_t source = 0;
  auto cloud = read_scene_file(tmp.str("raw/Area_2/room_1"), spec, &source);
  ASSERT_TRUE(cloud.has_segment());
  SegmentOptions opt;
  opt.fragments = cfg.eval().fragments();  // the evaluation's cap (32), not the CLI default
  auto res = segment_cloud(model, info, cloud, opt);
  ASSERT_EQ(res.pred.size(0), cloud.size());
  ASSERT_TRUE(res.metrics.has_value());
  EXPECT_EQ(res.metrics->total, cloud.size());
  // the same evaluation as the training run's final one (fragments, no TTA)
  EXPECT_NEAR(res.metrics->oa, j["metrics"]["oa"].get<double>(), 1e-9);
  write_prediction_ply(tmp.str("out/pred.ply"), cloud, res.pred, res.confidence);
  datasets::write_npy(tmp.str("out/pred.npy"), prediction_in_source_order(cloud, res.pred, source));
  EXPECT_EQ(datasets::read_npy(tmp.str("out/pred.npy")).size(0), source);
  const std::string head = test::read_file(tmp.str("out/pred.ply")).substr(0, 300);
  EXPECT_NE(head.find("property int pred"), std::string::npos) << head;
  EXPECT_NE(head.find("property int gt"), std::string::npos) << head;
  EXPECT_NE(head.find("property float confidence"), std::string::npos) << head;
  EXPECT_NE(head.find("element vertex " + std::to_string(cloud.size())), std::string::npos);
}

// Export what was trained, 3D: with a learned router the run's model.safetensors is the routed
// MoE (no collapse), and `ewa eval` of that file reproduces the training's logged evaluation.
TEST(PipelineTrain, LearnedRouterModelIsExportedAndEvaluatedAsTrained) {
  if (!datasets::have_hdf5()) GTEST_SKIP() << "built without HDF5 (room cache)";
  TempDir tmp;
  ASSERT_EQ(make_room_cache(tmp, 1, 40), 2);
  const std::string file = std::string(EWA_SOURCE_DIR) + "/configs/test/semseg-pt-tiny.yaml";
  for (const char* router : {"softmax_token_choice", "sinkhorn_token_choice", "softmax_expert_choice",
                             "sinkhorn_expert_choice", "sparsity_constrained_expert_choice", "soft_moe"}) {
    SCOPED_TRACE(router);
    auto cfg = config::load<SemSegConfig>(
        file, {"data.root=" + tmp.str("cache"), "run.device=cpu", "train.epochs=1", "model.ewa.enabled=false",
               std::string("model.pt.moe.router.name=") + router});
    TrainRequest req;
    req.config_file = file;
    req.config_text = config::dump(cfg);
    req.run_dir = tmp.str(std::string("run-") + router);
    req.quiet = true;
    ASSERT_EQ(train_semantic_segmentation(cfg, req).exit_code, 0);
    std::ifstream in(req.run_dir + "/eval_val.json");
    const auto logged = nlohmann::json::parse(in);
    EXPECT_EQ(logged["collapsed_moe_layers"].get<int64_t>(), 0);
    // Telemetry of the Point Transformer's MoE linears in metrics.jsonl.
    std::ifstream metrics(req.run_dir + "/metrics.jsonl");
    bool routing = false;
    for (std::string line; std::getline(metrics, line) && !routing;) {
      const auto r = nlohmann::json::parse(line);
      if (!r.contains("routing")) continue;
      routing = r["routing"].contains("enc2.1.linear1") && r["routing"]["enc2.1.linear1"].contains("router_entropy") &&
                r["expert_load"]["enc2.1.linear1"].size() == 2;
      EXPECT_TRUE(routing) << line;
    }
    EXPECT_TRUE(routing);
    EXPECT_GT(load_point_model(req.run_dir + "/model.safetensors")->num_moe_layers(), 0);
    EvalRequest er;
    er.run_dir = req.run_dir;
    er.model = req.run_dir + "/model.safetensors";
    er.out = req.run_dir + "/eval_again.json";
    er.quiet = true;
    eval_semantic_segmentation(cfg, er);
    std::ifstream in2(er.out);
    const auto again = nlohmann::json::parse(in2);
    EXPECT_EQ(again["collapsed_moe_layers"].get<int64_t>(), 0);
    EXPECT_EQ(again["metrics"]["miou"], logged["metrics"]["miou"]);
    EXPECT_EQ(again["metrics"]["oa"], logged["metrics"]["oa"]);
  }
}

}  // namespace
}  // namespace ewa::pointcloud
