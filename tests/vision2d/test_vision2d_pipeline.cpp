// End-to-end image classification on a stripes fixture the tests write: `ewa train` ->
// collapsed model.safetensors + eval JSON (per-class, confusion) + report, `ewa eval`,
// `ewa classify` on fresh PNGs, exact resume from a run directory, and clear errors on bad
// input (missing dataset root, corrupt image, wrong class count, missing model).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "ewa/core/safetensors.h"
#include "ewa/core/trainer.h"
#include "ewa/core/hooks.h"
#include "ewa/core/config.h"
#include "ewa/core/metrics_log.h"
#include "ewa/core/model_io.h"
#include "ewa/vision2d/classifier.h"
#include "ewa/vision2d/pipeline.h"
#include "ewa/vision2d/presets.h"
#include "ewa/vision2d/task.h"
#include "test_util.h"
#include "vision2d_fixtures.h"

namespace ewa::test {
namespace {

namespace v2 = ewa::vision2d;
using vision2d_fixtures::stripes;
using vision2d_fixtures::stripes_config;
using vision2d_fixtures::write_stripes_folder;

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_file(p)); }

TEST(Vision2dPipeline, TrainEvalClassifyOnStripes) {
  TempDir dir;
  write_stripes_folder(dir.path() / "data", 32, 8);
  write_file(dir.path() / "cfg.yaml", stripes_config(dir.path() / "data", dir.path() / "runs"));
  const fs::path run = dir.path() / "run";
  auto r = run_ewa("--threads 2 train " + dir.str("cfg.yaml") + " --run-dir " + run.string() + " -q");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("top-1"), std::string::npos) << r.out;
  for (const char* f : {"model.safetensors", "eval_val.json", "confusion.csv", "summary.json", "report.html",
                        "config.yaml", "metrics.jsonl", "checkpoints/last.ckpt", "checkpoints/best.ckpt"}) {
    EXPECT_TRUE(fs::exists(run / f)) << f;
  }
  // Final evaluation: learned, per-class accuracy and a confusion matrix over all 16 images.
  auto ev = read_json(run / "eval_val.json");
  EXPECT_GE(ev["top1"].get<double>(), 0.9) << ev.dump();
  ASSERT_EQ(ev["per_class"].size(), 2u);
  EXPECT_EQ(ev["per_class"][0]["class"], "horizontal");
  EXPECT_EQ(ev["per_class"][1]["count"], 8);
  ASSERT_EQ(ev["confusion"].size(), 2u);
  int64_t total = 0, diag = 0;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) total += ev["confusion"][i][j].get<int64_t>();
    diag += ev["confusion"][i][i].get<int64_t>();
  }
  EXPECT_EQ(total, 16);
  EXPECT_NEAR(static_cast<double>(diag) / 16.0, ev["top1"].get<double>(), 1e-12);
  // The exported model is dense (experts averaged) and self-describing.
  auto header = safetensors::read_header((run / "model.safetensors").string());
  for (const auto& t : header.tensors) EXPECT_EQ(t.name.find("experts"), std::string::npos) << t.name;
  EXPECT_EQ(header.metadata.at(v2::kMetaClassNames), "[\"horizontal\",\"vertical\"]");
  EXPECT_EQ(header.metadata.at(v2::kMetaImageSize), "16");
  EXPECT_TRUE(header.metadata.count(v2::kMetaMean));
  auto summary = read_json(run / "summary.json");
  EXPECT_EQ(summary["params"], ev["params"]);
  EXPECT_GT(summary["params_training"].get<int64_t>(), summary["params"].get<int64_t>());
  EXPECT_LT(summary["collapse_max_abs_diff"].get<double>(), 1e-4);

  // `ewa eval` on the MoE checkpoint (averaged experts at eval) equals the collapsed model.
  auto e = run_ewa("--threads 2 eval " + run.string() + " --checkpoint last -o " + dir.str("last.json"));
  ASSERT_EQ(e.status, 0) << e.err;
  EXPECT_NE(e.out.find("horizontal"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("confusion"), std::string::npos) << e.out;
  auto last = read_json(dir.path() / "last.json");
  EXPECT_EQ(last["confusion"], ev["confusion"]);
  EXPECT_NEAR(last["loss"].get<double>(), ev["loss"].get<double>(), 1e-4);
  auto m = run_ewa("eval " + run.string() + " --checkpoint model --split train");
  ASSERT_EQ(m.status, 0) << m.err;
  EXPECT_EQ(read_json(run / "eval_train.json")["images"], 64);

  // `ewa classify` on fresh images the model never saw.
  ewa::datasets::image::write_image(dir.str("h.png"), stripes(true, 777));
  ewa::datasets::image::write_image(dir.str("v.png"), stripes(false, 778));
  auto c = run_ewa("classify " + run.string() + " " + dir.str("h.png") + " " + dir.str("v.png") + " --json --top 2");
  ASSERT_EQ(c.status, 0) << c.err;
  auto pred = nlohmann::json::parse(c.out);
  ASSERT_EQ(pred.size(), 2u);
  EXPECT_EQ(pred[0]["top"][0]["class"], "horizontal") << c.out;
  EXPECT_EQ(pred[1]["top"][0]["class"], "vertical") << c.out;
  EXPECT_NEAR(pred[0]["top"][0]["probability"].get<double>() + pred[0]["top"][1]["probability"].get<double>(), 1.0,
              1e-5);
  auto t = run_ewa("classify " + (run / "model.safetensors").string() + " " + dir.str("h.png"));
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_NE(t.out.find("horizontal"), std::string::npos) << t.out;

  // `ewa convert` of the trainer checkpoint (MoE weights + optimizer state) gives exactly the
  // model.safetensors the training exported (same final weights, same collapse, same metadata).
  const auto exported = safetensors::load_file((run / "model.safetensors").string());
  for (const std::string& src : {run.string(), (run / "checkpoints" / "last.ckpt").string()}) {
    const std::string out = dir.str("conv.safetensors");
    auto cv = run_ewa("--threads 2 convert " + src + " --out " + out);
    ASSERT_EQ(cv.status, 0) << src << "\n" << cv.out << cv.err;
    EXPECT_NE(cv.out.find("collapsed 1 MoE layers (blocks 1, 2 experts each)"), std::string::npos) << cv.out;
    EXPECT_NE(cv.out.find("class names"), std::string::npos) << cv.out;
    const auto conv = safetensors::load_file(out);
    ASSERT_EQ(conv.tensors.size(), exported.tensors.size());
    for (const auto& [name, tensor] : exported.tensors) {
      ASSERT_TRUE(conv.tensors.count(name)) << name;
      EXPECT_TRUE(torch::equal(conv.tensors.at(name), tensor)) << name;
    }
    EXPECT_EQ(conv.metadata.at(v2::kMetaClassNames), exported.metadata.at(v2::kMetaClassNames));
    auto cc = run_ewa("classify " + out + " " + dir.str("v.png"));
    ASSERT_EQ(cc.status, 0) << cc.err;
    EXPECT_NE(cc.out.find("vertical"), std::string::npos) << cc.out;
    fs::remove(out);
  }
  // A checkpoint without its run's config: a usage error that names the way out.
  fs::copy_file(run / "checkpoints" / "last.ckpt", dir.path() / "lonely.ckpt");
  auto lonely = run_ewa("convert " + dir.str("lonely.ckpt") + " --out " + dir.str("x.safetensors"));
  EXPECT_EQ(lonely.status, 2) << lonely.out << lonely.err;
  EXPECT_NE(lonely.err.find("--config"), std::string::npos) << lonely.err;
  auto with_cfg = run_ewa("convert " + dir.str("lonely.ckpt") + " --config " + (run / "config.yaml").string() +
                          " --out " + dir.str("x.safetensors"));
  EXPECT_EQ(with_cfg.status, 0) << with_cfg.err;
}

// The same flow through the library entry points (no CLI): train, evaluate a checkpoint,
// classify fresh images with the exported model.
TEST(Vision2dPipeline, LibraryTrainEvaluateClassify) {
  TempDir dir;
  write_stripes_folder(dir.path() / "data", 32, 8);
  const std::string yaml = stripes_config(dir.path() / "data", dir.path() / "runs");
  auto cfg = v2::decode_config(config::parse_yaml_string(yaml, "stripes.yaml"), "stripes.yaml");
  TrainRequest req;
  req.run_dir = dir.str("run");
  req.quiet = true;
  ASSERT_EQ(v2::train(cfg, req).exit_code, 0);
  auto ev = read_json(dir.path() / "run" / "eval_val.json");
  EXPECT_GE(ev["top1"].get<double>(), 0.9) << ev.dump();
  EvalRequest er;
  er.run_dir = dir.str("run");
  er.checkpoint = "last";
  er.out = dir.str("last.json");
  ASSERT_EQ(v2::evaluate(cfg, er).exit_code, 0);
  auto last = read_json(dir.path() / "last.json");
  EXPECT_EQ(last["confusion"], ev["confusion"]);  // MoE checkpoint (averaged experts) == collapsed model
  v2::ImageClassifier clf(dir.str("run"));
  EXPECT_EQ(clf.class_names(), (std::vector<std::string>{"horizontal", "vertical"}));
  ewa::datasets::image::write_image(dir.str("h.png"), stripes(true, 777));
  ewa::datasets::image::write_image(dir.str("v.png"), stripes(false, 778));
  auto h = clf.classify(dir.str("h.png"), 5);
  ASSERT_EQ(h.top.size(), 2u);  // k clipped to the class count
  EXPECT_EQ(h.top[0].first, "horizontal");
  EXPECT_NEAR(h.top[0].second + h.top[1].second, 1.0, 1e-5);
  EXPECT_EQ(clf.classify(dir.str("v.png"), 1).top[0].first, "vertical");
  write_file(dir.path() / "bad.png", "not an image");
  try {
    clf.classify(dir.str("bad.png"));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("bad.png"), std::string::npos) << e.what();
  }
}

// Export what was trained: for every learned router the run's model.safetensors is the routed
// MoE, and evaluating it afresh (`ewa eval --checkpoint model`) reproduces the evaluation the
// training process logged (same top-1 and confusion matrix). Averaging it is only done by
// convert_model(average), which reports the top-1 before and after on the evaluation split.
TEST(Vision2dPipeline, LearnedRoutersExportAndServeTheRoutedModel) {
  TempDir dir;
  write_stripes_folder(dir.path() / "data", 16, 6);
  const std::string yaml = stripes_config(dir.path() / "data", dir.path() / "runs", 2);
  for (const char* router : {"softmax_token_choice", "sinkhorn_token_choice", "softmax_expert_choice",
                             "sinkhorn_expert_choice", "sparsity_constrained_expert_choice", "soft_moe", "per_image"}) {
    SCOPED_TRACE(router);
    auto root = config::parse_yaml_string(yaml, "stripes.yaml");
    config::apply_overrides(root, {std::string("model.moe.router.name=") + router, "model.ewa.enabled=false",
                                   "model.moe.router.importance_loss=0.01"});
    const auto cfg = v2::decode_config(root, "stripes.yaml");
    const std::string run = dir.str(std::string("run-") + router);
    TrainRequest req;
    req.run_dir = run;
    req.quiet = true;
    ASSERT_EQ(v2::train(cfg, req).exit_code, 0);
    const auto logged = read_json(fs::path(run) / "eval_val.json");
    // Telemetry: per-layer routing statistics and each aux loss in metrics.jsonl, heat map in the report.
    bool found = false;
    std::istringstream lines(read_file(fs::path(run) / "metrics.jsonl"));
    for (std::string line; std::getline(lines, line) && !found;) {
      const auto r = nlohmann::json::parse(line);
      if (!r.contains("routing")) continue;
      const auto& layer = r["routing"]["blocks.1.mlp"];
      for (const char* k : {"dropped_fraction", "mean_gate", "router_entropy"}) {
        EXPECT_TRUE(layer.contains(k)) << k << " in " << line;
      }
      if (std::string(router) != "soft_moe") {
        EXPECT_TRUE(layer.contains("aux.importance")) << line;
      }
      EXPECT_EQ(r["expert_load"]["blocks.1.mlp"].size(), 2u) << line;
      found = true;
    }
    EXPECT_TRUE(found) << "no routing record in metrics.jsonl";
    EXPECT_NE(read_file(fs::path(run) / "report.html").find("all MoE layers x experts"), std::string::npos);
    auto model = load_model(run + "/model.safetensors");
    EXPECT_FALSE(model->moe_blocks().empty());  // the routed MoE, not the expert mean
    EXPECT_TRUE(routes_at_eval(*model));
    EvalRequest er;
    er.run_dir = run;
    er.checkpoint = "model";
    er.out = run + "/eval_again.json";
    ASSERT_EQ(v2::evaluate(cfg, er).exit_code, 0);
    const auto again = read_json(fs::path(run) / "eval_again.json");
    EXPECT_EQ(again["top1"], logged["top1"]);
    EXPECT_EQ(again["confusion"], logged["confusion"]);

    // Refused without --average; with it, the cost is measured on the evaluation split.
    EXPECT_THROW(v2::convert_model(model, v2::ConvertOptions(), &cfg), std::invalid_argument);
    v2::ConvertOptions avg;
    avg.average = true;
    const auto res = v2::convert_model(model, avg, &cfg);
    EXPECT_TRUE(res.averaged_learned);
    EXPECT_EQ(res.router, router);
    EXPECT_DOUBLE_EQ(res.top1_routed, logged["top1"].get<double>());
    EXPECT_EQ(res.eval_images, logged["images"].get<int64_t>());
    EXPECT_TRUE(model->moe_blocks().empty());
  }
}

// EWA fine-tuning of a pretrained dense ViT: model.init_from loads the dense (timm-named) file
// and upcycles its FFNs into RUP experts; at step 0 the MoE model computes the dense model's
// outputs. A file of another width fails with one line naming the file and the tensor.
TEST(Vision2dTask, InitFromUpcyclesADenseModel) {
  TempDir dir;
  const std::string yaml = stripes_config(dir.path() / "data", dir.path() / "runs");
  auto root = config::parse_yaml_string(yaml, "stripes.yaml");
  config::apply_overrides(root, {"model.init_from=" + dir.str("dense.safetensors"), "model.moe.every=1",
                                 "model.moe.num_experts=3"});
  const auto cfg = v2::decode_config(root, "stripes.yaml");
  torch::manual_seed(11);
  VisionTransformer dense(cfg.model().vit());
  save_model(dense, dir.str("dense.safetensors"));
  auto moe = v2::build_model(cfg, /*load_init=*/true);
  EXPECT_EQ(moe->moe_blocks(), (std::vector<int64_t>{0, 1}));
  EXPECT_FALSE(routes_at_eval(*moe));
  dense->eval();
  moe->eval();
  auto x = torch::randn({4, 3, 16, 16});
  EXPECT_TRUE(torch::allclose(dense->forward(x), moe->forward(x), 1e-6, 1e-6));
  {
    torch::NoGradGuard no_grad;  // train mode (RUP routing over identical experts), no dropout
    moe->train();
    dense->train();
    EXPECT_TRUE(torch::allclose(dense->forward(x), moe->forward(x), 1e-5, 1e-5));
  }
  // Without load_init (evaluation of a checkpoint) the file is not read.
  EXPECT_EQ(v2::build_model(cfg)->moe_blocks(), (std::vector<int64_t>{0, 1}));

  VisionTransformer other(VisionTransformerOptions(cfg.model().vit()).embed_dim(16));
  save_model(other, dir.str("dense.safetensors"));
  try {
    v2::build_model(cfg, true);
    FAIL() << "no error";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("dense.safetensors"), std::string::npos) << what;
    EXPECT_NE(what.find("mis-shaped blocks.0.attn.proj.bias (file [16], model [32])"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

// A run stopped mid-epoch and resumed from its run directory ends with the same weights as
// an uninterrupted run.
TEST(Vision2dPipeline, ResumeFromRunDirMatchesUninterrupted) {
  TempDir dir;
  write_stripes_folder(dir.path() / "data", 16, 4);
  const std::string yaml = stripes_config(dir.path() / "data", dir.path() / "runs", 3);
  auto cfg = v2::decode_config(config::parse_yaml_string(yaml, "stripes.yaml"), "stripes.yaml");
  const std::string text = config::dump(cfg);

  TrainRequest full;
  full.config_text = text;
  full.run_dir = dir.str("full");
  full.quiet = true;
  ASSERT_EQ(v2::train(cfg, full).exit_code, 0);

  {  // the same run, stopped after step 3 (mid-epoch 2: 2 batches per epoch)
    v2::ImageClassificationTask task(cfg);
    TrainerConfig tc;
    tc.train = cfg.train();
    tc.run = cfg.run();
    tc.ewa = cfg.model().ewa();
    tc.run_dir = dir.str("resumed");
    tc.config_text = text;
    tc.log_file = false;
    Trainer trainer(tc, task);
    struct StopAt : Hook {
      std::string name() const override { return "stop"; }
      void after_step(Trainer& t) override {
        if (t.state().step == 3) t.request_stop();
      }
    };
    trainer.add_hook(std::make_shared<StopAt>());
    auto fit = trainer.fit();
    ASSERT_TRUE(fit.interrupted);
    ASSERT_EQ(fit.steps, 3);
  }
  EXPECT_FALSE(fs::exists(dir.path() / "resumed" / "model.safetensors"));
  TrainRequest res;
  res.config_text = text;
  res.resume = dir.str("resumed");
  res.quiet = true;
  auto r = v2::train(cfg, res);
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(fs::path(r.run_dir), dir.path() / "resumed");
  auto a = safetensors::load_file(dir.str("full/model.safetensors"));
  auto b = safetensors::load_file(dir.str("resumed/model.safetensors"));
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, b.tensors.at(name))) << name;
  }
  EXPECT_EQ(read_json(dir.path() / "full" / "eval_val.json")["confusion"],
            read_json(dir.path() / "resumed" / "eval_val.json")["confusion"]);
}

TEST(Vision2dTask, StepsWithMixupRoutingStatsAndEvaluate) {
  TempDir dir;
  write_stripes_folder(dir.path() / "data", 8, 2);
  auto root = config::parse_yaml_string(stripes_config(dir.path() / "data", dir.path() / "runs"), "s.yaml");
  config::apply_overrides(root, {"data.augment.mixup_alpha=0.8", "data.augment.cutmix_alpha=1.0",
                                 "model.moe.every=1", "train.batch_size=4"});
  auto cfg = v2::decode_config(root, "s.yaml");
  v2::ImageClassificationTask task(cfg);
  task.set_shard(0, 1);
  EXPECT_EQ(task.batches_per_epoch(), 4);
  task.begin_epoch(0, 0);
  auto b = task.next_batch();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->at("image").sizes(), (std::vector<int64_t>{4, 3, 16, 16}));
  ASSERT_TRUE(b->tensors.count("soft_target"));
  EXPECT_TRUE(torch::allclose(b->at("soft_target").sum(1), torch::ones({4})));
  task.model().train();
  auto out = task.training_step(*b);
  EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
  out.loss.backward();
  auto stats = task.routing_stats();
  ASSERT_EQ(stats.size(), 2u);  // both blocks are MoE
  for (const auto& [layer, load] : stats) {
    ASSERT_EQ(load.size(), 2u) << layer;
    EXPECT_NEAR(load[0] + load[1], 1.0, 1e-6) << layer;
  }
  // Resume position: starting epoch 0 at batch 1 yields what the second next() gave.
  auto second = task.next_batch();
  task.begin_epoch(0, 1);
  auto again = task.next_batch();
  EXPECT_TRUE(torch::equal(second->at("image"), again->at("image")));
  torch::NoGradGuard ng;
  task.model().eval();
  auto m = task.evaluate();
  for (const char* k : {"val.top1", "val.top5", "val.loss"}) EXPECT_TRUE(m.count(k)) << k;
  EXPECT_DOUBLE_EQ(m.at("val.top5"), 1.0);  // 2 classes: top-5 covers all
}

TEST(Vision2dErrors, BadInputsGiveClearErrors) {
  TempDir dir;
  write_stripes_folder(dir.path() / "data", 4, 2);
  write_file(dir.path() / "cfg.yaml", stripes_config(dir.path() / "data", dir.path() / "runs", 1));
  const std::string cfg = dir.str("cfg.yaml");
  // Missing dataset root.
  auto r = run_ewa("train " + cfg + " --set data.root=" + dir.str("nowhere") + " --run-dir " + dir.str("r1") + " -q");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(dir.str("nowhere")), std::string::npos) << r.err;
  // Class count that does not match the data.
  r = run_ewa("train " + cfg + " --set model.vit.num_classes=5 --run-dir " + dir.str("r2") + " -q");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("model.vit.num_classes: 2"), std::string::npos) << r.err;
  // Unknown preset: config error (exit 2).
  r = run_ewa("train " + cfg + " --set model.preset=vit_huge -q");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("model.preset"), std::string::npos) << r.err;
  // Resume from a directory that is not a run.
  r = run_ewa("train " + cfg + " --resume " + dir.str("data") + " -q");
  EXPECT_NE(r.status, 0);
  // A corrupt image with on_bad_image: fail names the file.
  const fs::path bad = dir.path() / "data" / "train" / "vertical" / "zz_corrupt.png";
  write_file(bad, "\x89PNG\r\n\x1a\nthis is not a png");
  r = run_ewa("train " + cfg + " --run-dir " + dir.str("r3") + " -q");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("zz_corrupt.png"), std::string::npos) << r.err;
  // ... and with skip it trains.
  r = run_ewa("train " + cfg + " --set data.on_bad_image=skip --run-dir " + dir.str("r4") + " -q");
  EXPECT_EQ(r.status, 0) << r.err;
  // classify: a corrupt image and a missing model are named.
  auto c = run_ewa("classify " + dir.str("r4") + " " + bad.string());
  EXPECT_EQ(c.status, 1);
  EXPECT_NE(c.err.find("zz_corrupt.png"), std::string::npos) << c.err;
  c = run_ewa("classify " + dir.str("no_model.safetensors") + " " + bad.string());
  EXPECT_EQ(c.status, 1);
  EXPECT_NE(c.err.find("no_model.safetensors"), std::string::npos) << c.err;
  // eval of a directory that is not a run.
  EXPECT_EQ(run_ewa("eval " + dir.str("data")).status, 2);
}

// The tiny smoke config trains in seconds on real Fashion-MNIST (Debian dataset-fashion-mnist).
TEST(Vision2dPipeline, TinyFashionMnistSmoke) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }
  TempDir dir;
  auto r = run_ewa("train " + std::string(EWA_SOURCE_DIR) + "/configs/test/cls-vit-tiny.yaml --run-dir " +
                   dir.str("run") + " -q");
  ASSERT_EQ(r.status, 0) << r.err;
  auto ev = read_json(dir.path() / "run" / "eval_test.json");
  EXPECT_EQ(ev["images"], 256);
  EXPECT_EQ(ev["per_class"].size(), 10u);
  EXPECT_GT(ev["top1"].get<double>(), 0.2);  // well above chance (0.1) after 8 steps
}

// The shipped Fashion-MNIST configs (README recipe and quickstart) train through the
// library entry point for a few steps: a dense, collapsed model and the eval files come out.
TEST(Vision2dPipeline, ShippedFashionMnistConfigsTrain) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }
  for (const char* name : {"cls-vit-ewa.yaml", "quickstart-ewa.yaml"}) {
    TempDir dir;
    const std::string file = std::string(EWA_SOURCE_DIR) + "/configs/fashion_mnist/" + name;
    auto root = config::parse_yaml_file(file);
    config::apply_overrides(root, {"train.max_steps=4", "train.log_every=1", "train.progress=false",
                                   "data.eval_limit=256", "data.train_limit=1024"});
    auto cfg = v2::decode_config(root, file);
    TrainRequest req;
    req.config_file = file;
    req.run_dir = dir.str("run");
    req.quiet = true;
    ASSERT_EQ(v2::train(cfg, req).exit_code, 0) << name;
    auto summary = read_json(dir.path() / "run" / "summary.json");
    EXPECT_EQ(summary["steps"], 4) << name;
    EXPECT_LT(summary["params"].get<int64_t>(), summary["params_training"].get<int64_t>()) << name;
    EXPECT_LT(summary["collapse_max_abs_diff"].get<double>(), 1e-4) << name;
    EXPECT_TRUE(fs::exists(dir.path() / "run" / "eval_test.json")) << name;
    // Step times of the real model sizes (the quickstart/README budgets are sized from them).
    double t = 0;
    int n = 0;
    for (const auto& r : read_metrics((dir.path() / "run" / "metrics.jsonl").string())) {
      if (r.value("kind", "") == "step" && r.value("step", 0) > 1) {
        t += r["step_time_s"].get<double>();
        ++n;
      }
    }
    ASSERT_GT(n, 0);
    std::printf("[ %s ] %.3f s/step (batch %lld) = %.0f images/s\n", name, t / n,
                static_cast<long long>(cfg.train().batch_size()),
                static_cast<double>(cfg.train().batch_size()) * n / t);
  }
}

}  // namespace
}  // namespace ewa::test
