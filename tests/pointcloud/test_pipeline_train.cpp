// In-process end-to-end segmentation: synthetic rooms -> prepared cache -> train the tiny
// config (MoE + EWA) -> collapsed model.safetensors + eval_val.json -> reload and segment a
// room with fragment voting -> PLY + .npy outputs. And the conversion of 3D runs (`ewa
// convert`): checkpoints exported as the training exports its model, learned routers averaged.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "ewa/core/config.h"
#include "ewa/core/router.h"
#include "ewa/core/safetensors.h"
#include "ewa/datasets/points/npy.h"
#include "ewa/datasets/points/room_cache.h"
#include "ewa/datasets/points/s3dis.h"
#include "ewa/datasets/points/synth_rooms.h"
#include "ewa/pointcloud/cls_task.h"
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

// Every tensor and metadata entry of two Point Transformer files (ewa.version aside) is equal.
void expect_same_model_file(const std::string& a, const std::string& b) {
  std::map<std::string, std::string> ma, mb;
  const auto ta = point_model_tensors(load_point_model(a, &ma));
  const auto tb = point_model_tensors(load_point_model(b, &mb));
  ASSERT_EQ(ta.size(), tb.size());
  for (const auto& [name, t] : ta) {
    ASSERT_TRUE(tb.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, tb.at(name))) << name;
  }
  ma.erase("ewa.version");
  mb.erase("ewa.version");
  EXPECT_EQ(ma, mb);
}

TrainRequest quiet_request(const std::string& file, const std::string& text, const std::string& run_dir) {
  TrainRequest req;
  req.config_file = file;
  req.config_text = text;
  req.run_dir = run_dir;
  req.quiet = true;
  return req;
}

// `ewa convert` of a segmentation run: the last checkpoint, exported through the convert path,
// is the training's model.safetensors bit for bit (same collapse, same metadata), verified on
// the probe clouds; a learned router is refused without `average`, and with it the routed score
// is the training's own final evaluation.
TEST(PipelineTrain, SegmentationCheckpointExportEqualsTheTrainedModel) {
  if (!datasets::have_hdf5()) GTEST_SKIP() << "built without HDF5 (room cache)";
  TempDir tmp;
  ASSERT_EQ(make_room_cache(tmp, 1, 50), 2);
  const std::string file = std::string(EWA_SOURCE_DIR) + "/configs/test/semseg-pt-tiny.yaml";
  auto cfg = config::load<SemSegConfig>(file, {"data.root=" + tmp.str("cache"), "run.device=cpu", "train.epochs=1"});
  const std::string run = tmp.str("rup");
  ASSERT_EQ(train_semantic_segmentation(cfg, quiet_request(file, config::dump(cfg), run)).exit_code, 0);
  const auto ex = export_point_checkpoint(cfg, run + "/checkpoints/last.ckpt", tmp.str("out/last.safetensors"), {});
  EXPECT_EQ(ex.convert.moe_layers, 4);
  EXPECT_EQ(ex.convert.router, "rup");
  EXPECT_EQ(ex.convert.num_experts, 2);
  EXPECT_LE(ex.convert.max_abs_diff, 1e-4);
  EXPECT_GE(ex.convert.probe_points, 4096);
  EXPECT_FALSE(ex.convert.averaged_learned);
  EXPECT_GT(ex.params_train, ex.params);
  EXPECT_EQ(ex.params, dense_parameter_count(cfg.model().pt()));
  expect_same_model_file(tmp.str("out/last.safetensors"), run + "/model.safetensors");

  auto tc = config::load<SemSegConfig>(file, {"data.root=" + tmp.str("cache"), "run.device=cpu", "train.epochs=1",
                                              "model.ewa.enabled=false",
                                              "model.pt.moe.router.name=softmax_token_choice"});
  const std::string run_tc = tmp.str("tc");
  ASSERT_EQ(train_semantic_segmentation(tc, quiet_request(file, config::dump(tc), run_tc)).exit_code, 0);
  std::ifstream in(run_tc + "/eval_val.json");
  const double logged = nlohmann::json::parse(in)["metrics"]["miou"].get<double>();
  auto net = load_point_model(run_tc + "/model.safetensors");
  PointConvertOptions o;
  EXPECT_THROW(convert_point_model(net, o, segmentation_eval_fn(tc)), std::invalid_argument);
  o.average = true;
  EXPECT_THROW(convert_point_model(net, o, {}), std::invalid_argument);
  EXPECT_EQ(net->num_moe_layers(), 4);
  const auto r = convert_point_model(net, o, segmentation_eval_fn(tc));
  EXPECT_TRUE(r.averaged_learned);
  EXPECT_EQ(r.router, "softmax_token_choice");
  EXPECT_EQ(r.routed.metric, "mIoU");
  EXPECT_EQ(r.routed.items, 1);
  EXPECT_DOUBLE_EQ(r.routed.value, logged);
  EXPECT_GE(r.averaged.value, 0.0);
  EXPECT_LE(r.averaged.value, 1.0);
  EXPECT_EQ(net->num_moe_layers(), 0);
  EXPECT_FALSE(routes_at_eval(*net));
}

// A ModelNet-layout OFF folder: classes cube and wedge, shapes scaled per file.
void write_off_dataset(const fs::path& root) {
  const std::string cube =
      "OFF\n8 12 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n0 0 1\n1 0 1\n1 1 1\n0 1 1\n"
      "3 0 2 1\n3 0 3 2\n3 4 5 6\n3 4 6 7\n3 0 1 5\n3 0 5 4\n3 2 3 7\n3 2 7 6\n3 1 2 6\n3 1 6 5\n3 0 4 7\n3 0 7 3\n";
  const std::string wedge = "OFF\n6 8 0\n0 0 0\n2 0 0\n0 1 0\n0 0 1\n2 0 1\n0 1 1\n"
                            "3 0 2 1\n3 3 4 5\n3 0 1 4\n3 0 4 3\n3 0 3 5\n3 0 5 2\n3 1 2 5\n3 1 5 4\n";
  for (const auto& [cls, text] : {std::pair{std::string("cube"), cube}, std::pair{std::string("wedge"), wedge}}) {
    for (const auto& [split, n] : {std::pair{std::string("train"), 4}, std::pair{std::string("test"), 2}}) {
      fs::create_directories(root / cls / split);
      for (int i = 0; i < n; ++i) {
        std::ofstream(root / cls / split / (cls + "_" + std::to_string(i) + ".off")) << text;
      }
    }
  }
}

// `ewa convert` of a classification run: the same equality, with the class names of the
// dataset in the metadata; the learned router's routed OA is the training's final one.
TEST(PipelineTrain, ClassificationCheckpointExportEqualsTheTrainedModel) {
  TempDir tmp;
  write_off_dataset(tmp.path() / "shapes");
  PointClsConfig cfg;
  cfg.run().device("cpu").seed(3);
  cfg.data().format("off_folder").root(tmp.str("shapes")).num_points(128);
  auto& pt = cfg.model().pt();
  pt.variant("custom").blocks({1, 1, 1}).channels({8, 16, 16}).nsample({8, 8, 8}).stride({1, 4, 4});
  pt.head("cls").in_channels(3).num_classes(2);
  pt.moe().enabled(true).num_experts(2).stages({1, 2});
  cfg.model().ewa().enabled(true);
  cfg.train().epochs(1).batch_size(4).progress(false);
  cfg.train().checkpoint().metric("val.oa");
  cfg.eval().voting(1);
  const std::string run = tmp.str("rup");
  ASSERT_EQ(train_point_classification(cfg, quiet_request("cls.yaml", config::dump(cfg), run)).exit_code, 0);
  const auto ex = export_point_checkpoint(cfg, run + "/checkpoints/last.ckpt", tmp.str("last.safetensors"), {});
  EXPECT_EQ(ex.convert.moe_layers, 4);
  EXPECT_LE(ex.convert.max_abs_diff, 1e-4);
  expect_same_model_file(tmp.str("last.safetensors"), run + "/model.safetensors");
  EXPECT_EQ(safetensors::read_header(tmp.str("last.safetensors")).metadata.at(kMetaClasses), "[\"cube\",\"wedge\"]");

  cfg.model().ewa().enabled(false);
  cfg.model().pt().moe().router().name("softmax_token_choice");
  const std::string run_tc = tmp.str("tc");
  ASSERT_EQ(train_point_classification(cfg, quiet_request("cls.yaml", config::dump(cfg), run_tc)).exit_code, 0);
  std::ifstream in(run_tc + "/eval_val.json");
  const double logged = nlohmann::json::parse(in)["metrics"]["oa"].get<double>();
  auto net = load_point_model(run_tc + "/model.safetensors");
  PointConvertOptions o;
  o.average = true;
  const auto r = convert_point_model(net, o, classification_eval_fn(cfg));
  EXPECT_TRUE(r.averaged_learned);
  EXPECT_EQ(r.routed.metric, "OA");
  EXPECT_EQ(r.routed.split, "test");
  EXPECT_EQ(r.routed.items, 4);
  EXPECT_DOUBLE_EQ(r.routed.value, logged);
  EXPECT_EQ(net->num_moe_layers(), 0);
}

}  // namespace
}  // namespace ewa::pointcloud
