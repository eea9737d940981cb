// Training engine, in process: parameter groups, LR schedules, label-smoothed CE, grad
// accumulation equivalence, checkpoint round trip and corruption, divergence guard,
// SIGTERM handling, EWA hook, bf16 autocast, metrics log and report.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>

#include "ewa/core/checkpoint.h"
#include "ewa/core/ema.h"
#include "ewa/core/hooks.h"
#include "ewa/core/lr_schedule.h"
#include "ewa/core/metrics_log.h"
#include "ewa/core/optim.h"
#include "ewa/core/report.h"
#include "ewa/core/trainer.h"
#include "test_util.h"
#include "trainer_child/synthetic_task.h"

namespace ewa {
namespace {

using test::SyntheticTask;
using test::SyntheticTaskOptions;
using test::TempDir;

struct GroupNet : torch::nn::Module {
  GroupNet() {
    pos_embed = register_parameter("pos_embed", torch::zeros({1, 4, 8}));
    cls_token = register_parameter("cls_token", torch::zeros({1, 1, 8}));
    fc = register_module("fc", torch::nn::Linear(8, 8));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({8})));
    head = register_module("head", torch::nn::Linear(8, 3));
  }
  torch::Tensor pos_embed, cls_token;
  torch::nn::Linear fc{nullptr}, head{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};

TEST(TrainerOptim, ParamGroupsSplitDecayAndLrMult) {
  GroupNet net;
  OptimizerOptions o;
  o.weight_decay(0.05).lr(0.1).lr_mult({{"head", 10.0}});
  auto groups = build_param_groups(net, o);
  std::map<std::string, const ParamGroupSpec*> by_param;
  for (const auto& g : groups)
    for (const auto& n : g.param_names) by_param[n] = &g;
  ASSERT_EQ(by_param.size(), 8u);
  EXPECT_DOUBLE_EQ(by_param.at("fc.weight")->weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(by_param.at("fc.weight")->lr_mult, 1.0);
  for (const char* n : {"fc.bias", "norm.weight", "norm.bias", "pos_embed", "cls_token"}) {
    EXPECT_DOUBLE_EQ(by_param.at(n)->weight_decay, 0.0) << n;
  }
  EXPECT_DOUBLE_EQ(by_param.at("head.weight")->weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(by_param.at("head.weight")->lr_mult, 10.0);
  EXPECT_DOUBLE_EQ(by_param.at("head.bias")->weight_decay, 0.0);
  EXPECT_DOUBLE_EQ(by_param.at("head.bias")->lr_mult, 10.0);

  for (const char* name : {"adamw", "sgd"}) {
    o.name(name).nesterov(true);
    auto opt = make_optimizer(net, o);
    ASSERT_EQ(opt.optim->param_groups().size(), groups.size());
    opt.set_lr(0.5);
    for (size_t g = 0; g < groups.size(); ++g) EXPECT_DOUBLE_EQ(opt.group_lr(g), 0.5 * groups[g].lr_mult);
  }
  o.no_decay_on_norm_bias(false).lr_mult({});
  auto all = build_param_groups(net, o);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_DOUBLE_EQ(all[0].weight_decay, 0.05);
}

TEST(TrainerLrSchedule, WarmupCosine) {
  LrScheduleOptions o;
  o.name("cosine").warmup_epochs(1).min_lr(0.01);
  LrSchedule s(o, 1.0, 100, 10);
  EXPECT_EQ(s.warmup_steps(), 10);
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(4), 0.5);
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(99), 0.01, 1e-12);
  EXPECT_NEAR(s.at(10 + 89 / 2.0), 0.505, 0.02);
  for (int64_t i = 11; i < 100; ++i) EXPECT_LE(s.at(i), s.at(i - 1)) << i;
}

TEST(TrainerLrSchedule, MultistepOnecycleConstant) {
  LrScheduleOptions m;
  m.name("multistep").milestones({2, 4}).gamma(0.1);
  LrSchedule ms(m, 1.0, 60, 10);
  EXPECT_DOUBLE_EQ(ms.at(19), 1.0);
  EXPECT_NEAR(ms.at(20), 0.1, 1e-15);
  EXPECT_NEAR(ms.at(39), 0.1, 1e-15);
  EXPECT_NEAR(ms.at(40), 0.01, 1e-15);

  LrScheduleOptions c;
  c.name("onecycle").pct_start(0.25);
  LrSchedule oc(c, 1.0, 100, 10);
  EXPECT_NEAR(oc.at(0), 1.0 / 25, 1e-12);
  const int64_t peak = 24;  // pct_start * total - 1
  EXPECT_NEAR(oc.at(peak), 1.0, 1e-12);
  EXPECT_NEAR(oc.at(99), 1.0 / 25 / 1e4, 1e-12);
  for (int64_t i = 1; i <= peak; ++i) EXPECT_GE(oc.at(i), oc.at(i - 1));
  for (int64_t i = peak + 1; i <= 99; ++i) EXPECT_LE(oc.at(i), oc.at(i - 1));

  LrScheduleOptions k;
  k.name("constant");
  LrSchedule cs(k, 0.3, 10, 5);
  EXPECT_DOUBLE_EQ(cs.at(0), 0.3);
  EXPECT_DOUBLE_EQ(cs.at(9), 0.3);
}

TEST(TrainerLoss, SmoothedCrossEntropy) {
  torch::manual_seed(1);
  auto logits = torch::randn({5, 4}, torch::kFloat64);
  auto y = torch::tensor(std::vector<int64_t>{0, 3, 1, 2, 3});
  EXPECT_NEAR(smoothed_cross_entropy(logits, y, 0.0).item<double>(),
              torch::cross_entropy_loss(logits, y).item<double>(), 1e-12);
  // smoothing eps: (1 - eps) * CE + eps * mean over classes of -log p
  const double eps = 0.2;
  auto logp = torch::log_softmax(logits, 1);
  const double expected =
      (1 - eps) * torch::cross_entropy_loss(logits, y).item<double>() + eps * (-logp.mean(1)).mean().item<double>();
  EXPECT_NEAR(smoothed_cross_entropy(logits, y, eps).item<double>(), expected, 1e-12);
  // soft targets (mixup of two label sets) = the same mix of the two losses
  auto y2 = torch::tensor(std::vector<int64_t>{1, 1, 2, 0, 0});
  auto soft = 0.7 * torch::one_hot(y, 4).to(torch::kFloat64) + 0.3 * torch::one_hot(y2, 4).to(torch::kFloat64);
  EXPECT_NEAR(smoothed_cross_entropy(logits, soft, 0.0).item<double>(),
              0.7 * torch::cross_entropy_loss(logits, y).item<double>() +
                  0.3 * torch::cross_entropy_loss(logits, y2).item<double>(),
              1e-12);
}

std::vector<torch::Tensor> weights(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

TEST(Trainer, GradAccumulationEqualsLargeBatch) {
  auto run = [](int64_t batch, int64_t accum) {
    TempDir dir;
    SyntheticTaskOptions o;
    o.batch = batch;
    o.dropout = 0.0;
    o.augment = false;
    SyntheticTask task(o);
    auto cfg = test::synthetic_config(dir.str());
    cfg.train.grad_accum(accum).grad_clip(0.0).epochs(2);
    cfg.train.optimizer().name("sgd").momentum(0.9).lr(0.1);
    cfg.train.checkpoint().every_epochs(0).metric("");
    Trainer t(cfg, task);
    auto r = t.fit();
    EXPECT_EQ(r.steps, 2 * 64 / (batch * accum));
    return weights(task.model());
  };
  auto a = run(8, 1), b = run(4, 2), c = run(2, 4);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-10, 1e-12)) << i;
    EXPECT_TRUE(torch::allclose(a[i], c[i], 1e-10, 1e-12)) << i;
  }
}

TEST(TrainerCheckpoint, RoundTripContinuesIdentically) {
  TempDir dir;
  SyntheticTaskOptions o;
  o.dropout = 0.0;
  SyntheticTask a(o), b(o);
  OptimizerOptions oo;
  auto opt_a = make_optimizer(a.model(), oo);
  auto opt_b = make_optimizer(b.model(), oo);
  auto step = [](SyntheticTask& t, Optimizer& opt) {
    t.begin_epoch(0, 1);
    auto batch = *t.next_batch();
    opt.optim->zero_grad();
    t.training_step(batch).loss.backward();
    opt.optim->step();
  };
  for (int i = 0; i < 3; ++i) step(a, opt_a);
  TrainingState s;
  s.step = 3;
  s.epoch = 1;
  s.batch_in_epoch = 5;
  s.best_metric = 0.75;
  s.has_best = true;
  s.best_metric_name = "val.top1";
  s.config_hash = hash_config("x: 1\n");
  s.data_state = std::string("bin\0ary", 7);
  s.rng_state = torch::randint(0, 255, {16}, torch::kUInt8);
  const std::string path = dir.str("ck/last.ckpt");
  save_checkpoint(path, a.model(), opt_a.optim.get(), s);
  auto r = load_checkpoint(path, b.model(), opt_b.optim.get());
  EXPECT_EQ(r.step, 3);
  EXPECT_EQ(r.epoch, 1);
  EXPECT_EQ(r.batch_in_epoch, 5);
  EXPECT_TRUE(r.has_best);
  EXPECT_DOUBLE_EQ(r.best_metric, 0.75);
  EXPECT_EQ(r.best_metric_name, "val.top1");
  EXPECT_EQ(r.config_hash, s.config_hash);
  EXPECT_EQ(r.data_state, s.data_state);
  EXPECT_TRUE(torch::equal(r.rng_state, s.rng_state));
  auto wa = weights(a.model()), wb = weights(b.model());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i]));
  // Optimizer moments restored: one more identical step keeps them bit-identical.
  step(a, opt_a);
  step(b, opt_b);
  wa = weights(a.model());
  wb = weights(b.model());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i])) << i;
  EXPECT_EQ(read_checkpoint_state(path).step, 3);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST(TrainerCheckpoint, CorruptedOrTruncatedFileNamesTheFileAndTouchesNothing) {
  TempDir dir;
  SyntheticTask a(SyntheticTaskOptions{}), b([] {
    SyntheticTaskOptions o;
    o.seed = 99;
    return o;
  }());
  const std::string path = dir.str("last.ckpt");
  save_checkpoint(path, a.model(), nullptr, TrainingState{});
  std::string bytes = test::read_file(path);
  auto before = weights(b.model());
  auto expect_error = [&](const std::string& content, const std::string& what) {
    test::write_file(path, content);
    try {
      load_checkpoint(path, b.model(), nullptr);
      ADD_FAILURE() << "no error for " << what;
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_EQ(e.path(), path);
    }
    EXPECT_EQ(test::read_file(path), content) << what;  // file left as it was
    auto after = weights(b.model());
    for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i])) << what;
  };
  std::string flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x5a);
  expect_error(flipped, "flipped byte");
  expect_error(bytes.substr(0, bytes.size() - 100), "truncated");
  expect_error("garbage", "not a checkpoint");
  EXPECT_THROW(load_checkpoint(dir.str("missing.ckpt"), b.model(), nullptr), CheckpointError);
  // another model: missing key, named
  GroupNet other;
  test::write_file(path, bytes);
  try {
    load_checkpoint(path, other, nullptr);
    ADD_FAILURE();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("pos_embed"), std::string::npos) << e.what();
  }
}

TEST(Trainer, NonFiniteLossStopsNamingTheStepAndKeepsLast) {
  TempDir dir;
  SyntheticTaskOptions o;
  o.nan_at_call = 5;
  SyntheticTask task(o);
  auto cfg = test::synthetic_config(dir.str());
  cfg.train.checkpoint().every_steps(2);
  Trainer t(cfg, task);
  try {
    t.fit();
    FAIL() << "no DivergenceError";
  } catch (const DivergenceError& e) {
    EXPECT_EQ(e.step(), 5);
    EXPECT_NE(std::string(e.what()).find("step 5"), std::string::npos) << e.what();
  }
  auto s = read_checkpoint_state(dir.str("checkpoints/last.ckpt"));
  EXPECT_EQ(s.step, 4);
}

TEST(Trainer, ResumeAfterFinishedRunExtendsItExactly) {
  TempDir full, part;
  auto make_cfg = [](const std::string& dir, int64_t epochs) {
    auto cfg = test::synthetic_config(dir);
    cfg.train.epochs(epochs);
    cfg.train.schedule().name("constant").warmup_epochs(0);  // same lr curve for both lengths
    return cfg;
  };
  SyntheticTask a(SyntheticTaskOptions{});
  Trainer(make_cfg(full.str(), 3), a).fit();
  {
    SyntheticTask b1(SyntheticTaskOptions{});
    Trainer(make_cfg(part.str(), 1), b1).fit();
  }
  SyntheticTask b2(SyntheticTaskOptions{});
  auto cfg = make_cfg(part.str(), 3);
  cfg.train.checkpoint().resume(part.str());
  auto r = Trainer(cfg, b2).fit();
  EXPECT_EQ(r.steps, 24);
  auto wa = weights(a.model()), wb = weights(b2.model());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i])) << i;
}

// train.ema: the shadow follows shadow = d * shadow + (1 - d) * w after every step; the final
// evaluation and the model left for export are the EMA; checkpoints keep training weights and
// EMA (weights-only loads get the EMA); a resumed run ends bit-identical to an uninterrupted one.
class ManualEma : public Hook {
 public:
  ManualEma(torch::nn::Module& m, double d) : d_(d) {
    for (auto& t : weights(m)) shadow.push_back(t.clone());
  }
  std::string name() const override { return "manual_ema"; }
  void after_step(Trainer& t) override {
    torch::NoGradGuard ng;
    auto w = weights(t.task().model());
    for (size_t i = 0; i < w.size(); ++i) shadow[i] = shadow[i] * d_ + w[i] * (1.0 - d_);
  }
  std::vector<torch::Tensor> shadow;

 private:
  double d_;
};

TEST(Trainer, EmaIsEvaluatedExportedAndResumedExactly) {
  TempDir full, plain, part;
  auto make_cfg = [](const std::string& dir, int64_t epochs, bool ema) {
    auto cfg = test::synthetic_config(dir);
    cfg.train.epochs(epochs);
    cfg.train.schedule().name("constant").warmup_epochs(0);
    cfg.train.ema().enabled(ema).decay(0.8);
    return cfg;
  };
  SyntheticTaskOptions o;
  o.dropout = 0.0;
  SyntheticTask a(o);
  auto ra = Trainer(make_cfg(full.str(), 3, true), a).fit();
  // The same run without EMA, averaging by hand: same raw weights, so the same average.
  SyntheticTask c(o);
  auto manual = std::make_shared<ManualEma>(c.model(), 0.8);
  Trainer tc(make_cfg(plain.str(), 3, false), c);
  tc.add_hook(manual);
  tc.fit();
  auto wa = weights(a.model()), wc = weights(c.model());
  bool raw_differs = false;
  for (size_t i = 0; i < wa.size(); ++i) {
    EXPECT_TRUE(torch::allclose(wa[i], manual->shadow[i], 1e-6, 1e-7)) << i;
    raw_differs = raw_differs || !torch::allclose(wa[i], wc[i], 1e-4, 1e-5);
  }
  EXPECT_TRUE(raw_differs) << "the exported model should be the EMA, not the last weights";
  // The final evaluation ran on the EMA (the model now holds it).
  a.model().eval();
  {
    torch::NoGradGuard ng;
    EXPECT_DOUBLE_EQ(a.evaluate().at("val.loss"), ra.final_metrics.at("val.loss"));
  }
  // last.ckpt: weights only -> EMA; with an optimizer -> the raw training weights + EMA state.
  const std::string last = full.str() + "/checkpoints/last.ckpt";
  SyntheticTask d(o), e(o);
  load_checkpoint(last, d.model(), nullptr);
  auto wd = weights(d.model());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wd[i])) << i;
  auto opt_e = make_optimizer(e.model(), OptimizerOptions{});
  auto st = load_checkpoint(last, e.model(), opt_e.optim.get());
  EXPECT_TRUE(st.has_ema);
  EXPECT_EQ(st.ema_updates, ra.steps);
  auto we = weights(e.model());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::allclose(we[i], wc[i], 1e-6, 1e-7)) << i;
  // Resume: 1 epoch, then on to 3 -> the same EMA, bit for bit.
  {
    SyntheticTask b1(o);
    Trainer(make_cfg(part.str(), 1, true), b1).fit();
  }
  SyntheticTask b2(o);
  auto cfg = make_cfg(part.str(), 3, true);
  cfg.train.checkpoint().resume(part.str());
  Trainer(cfg, b2).fit();
  auto wb = weights(b2.model());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i])) << i;
}

// train.ema.bn_batches: with BatchNorm the EMA's running statistics are recomputed under the
// EMA weights from the first bn_batches training batches of the epoch (plain mean of the
// batches' mean and unbiased variance), before every evaluation and export; the training run
// itself is unchanged; a resumed run ends bit-identical, statistics included.
TEST(TrainerEma, RecomputesBatchNormStatisticsOfTheAverage) {
  auto make_cfg = [](const std::string& dir, int64_t epochs, int64_t bn_batches) {
    auto cfg = test::synthetic_config(dir);
    cfg.train.epochs(epochs);
    cfg.train.schedule().name("constant").warmup_epochs(0);
    cfg.train.ema().enabled(true).decay(0.8).bn_batches(bn_batches);
    return cfg;
  };
  SyntheticTaskOptions o;
  o.dropout = 0.2;  // off while the statistics are recomputed (eval mode but for BatchNorm)
  o.batchnorm = true;
  TempDir d3, d0;
  SyntheticTask a(o);
  auto ra = Trainer(make_cfg(d3.str(), 3, 3), a).fit();
  auto& bn = *a.net()->bn;
  // Expected: the exported (EMA) weights on the first 3 batches of the last epoch (index 2).
  SyntheticTask ref(o);
  ref.begin_epoch(2, 0);
  torch::Tensor mean = torch::zeros_like(bn.running_mean), var = torch::zeros_like(bn.running_var);
  {
    torch::NoGradGuard ng;
    for (int k = 0; k < 3; ++k) {
      auto h = a.net()->fc1(ref.next_batch()->at("x"));  // [b, H]: the BatchNorm's input
      mean += h.mean(0) / 3.0;
      var += h.var(0, /*unbiased=*/true) / 3.0;
    }
  }
  EXPECT_TRUE(torch::allclose(bn.running_mean, mean, 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(bn.running_var, var, 1e-12, 1e-12));
  EXPECT_EQ(bn.options.momentum(), c10::optional<double>(0.1));  // momentum restored
  // The final evaluation used those statistics.
  a.model().eval();
  {
    torch::NoGradGuard ng;
    EXPECT_DOUBLE_EQ(a.evaluate().at("val.loss"), ra.final_metrics.at("val.loss"));
  }
  // bn_batches 0 keeps the averaged statistics: same weights, other statistics; the raw
  // training (last.ckpt with its optimizer) is identical with and without the recomputation.
  SyntheticTask b(o);
  Trainer(make_cfg(d0.str(), 3, 0), b).fit();
  auto wa = weights(a.model()), wb = weights(b.model());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i])) << i;
  EXPECT_FALSE(torch::allclose(b.net()->bn->running_mean, bn.running_mean, 1e-6, 1e-6));
  {
    SyntheticTask ea(o), eb(o);
    auto oa = make_optimizer(ea.model(), OptimizerOptions{}), ob = make_optimizer(eb.model(), OptimizerOptions{});
    load_checkpoint(d3.str() + "/checkpoints/last.ckpt", ea.model(), oa.optim.get());
    load_checkpoint(d0.str() + "/checkpoints/last.ckpt", eb.model(), ob.optim.get());
    auto ta = weights(ea.model()), tb = weights(eb.model());
    for (size_t i = 0; i < ta.size(); ++i) EXPECT_TRUE(torch::equal(ta[i], tb[i])) << i;
  }
  // Resumed runs end bit-identical to `a`, statistics included: after 1 epoch, and after
  // max_steps ended a run mid-epoch (the final evaluation's pass leaves the data source and its
  // augmentation RNG where training left it).
  auto resumed_matches = [&](int64_t first_epochs, int64_t max_steps) {
    TempDir dir;
    {
      SyntheticTask t1(o);
      auto c1 = make_cfg(dir.str(), first_epochs, 3);
      c1.train.max_steps(max_steps);
      Trainer(c1, t1).fit();
    }
    SyntheticTask t2(o);
    auto c2 = make_cfg(dir.str(), 3, 3);
    c2.train.checkpoint().resume(dir.str());
    Trainer(c2, t2).fit();
    auto w = weights(t2.model());
    for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], w[i])) << i;
    EXPECT_TRUE(torch::equal(t2.net()->bn->running_mean, bn.running_mean));
    EXPECT_TRUE(torch::equal(t2.net()->bn->running_var, bn.running_var));
  };
  resumed_matches(1, 0);
  resumed_matches(3, 20);  // 8 batches per epoch: stops at batch 4 of epoch 3
  // No batch at all: the statistics stay as they were.
  const auto m0 = bn.running_mean.clone();
  EXPECT_EQ(recompute_batchnorm(a.model(), [] { return false; }, 5), 0);
  EXPECT_TRUE(torch::equal(bn.running_mean, m0));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 3);
}

TEST(TrainerEma, WarmupDecayAndIntegerBuffers) {
  torch::nn::Sequential net(torch::nn::Linear(3, 2), torch::nn::BatchNorm1d(2));
  EmaOptions o;
  o.enabled(true).decay(0.99).warmup(true);
  ModelEma ema(*net, o);
  EXPECT_DOUBLE_EQ(ema.decay_at(0), 0.1);              // (1 + 0) / (10 + 0)
  EXPECT_DOUBLE_EQ(ema.decay_at(8), 0.5);              // 9 / 18
  EXPECT_DOUBLE_EQ(ema.decay_at(100000), 0.99);        // capped by decay
  net->train();
  net->forward(torch::randn({4, 3}));                  // num_batches_tracked = 1, stats move
  const auto w0 = net[0]->as<torch::nn::Linear>()->weight.detach().clone();
  {
    torch::NoGradGuard ng;
    net[0]->as<torch::nn::Linear>()->weight.add_(1.0);
  }
  EXPECT_DOUBLE_EQ(ema.update(*net), 0.1);
  ema.swap(*net);  // the model now holds the EMA
  auto* bn = net[1]->as<torch::nn::BatchNorm1d>();
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 1);  // integer buffers are copied
  EXPECT_TRUE(torch::allclose(net[0]->as<torch::nn::Linear>()->weight, w0 + 0.9));
  ema.swap(*net);  // back
  EXPECT_TRUE(torch::allclose(net[0]->as<torch::nn::Linear>()->weight, w0 + 1.0));
  // A shadow of another model is refused with the tensor's name.
  torch::nn::Sequential other(torch::nn::Linear(3, 5), torch::nn::BatchNorm1d(5));
  ModelEma wrong(*other, o);
  EXPECT_THROW(ema.load(wrong.state(), 1), std::invalid_argument);
}

TEST(TrainerEma, FindsTheBatchNormLayersItWarnsAbout) {
  // The EMA averages BatchNorm running statistics like any buffer; the trainer warns when the
  // model has BatchNorm layers (nested ones included) and stays quiet for LayerNorm models.
  torch::nn::ModuleList bn_net(torch::nn::Linear(3, 2), torch::nn::BatchNorm1d(2),
                               torch::nn::Sequential(torch::nn::Linear(2, 2), torch::nn::BatchNorm2d(2)));
  EXPECT_EQ(batchnorm_modules(*bn_net), (std::vector<std::string>{"1", "2.1"}));
  torch::nn::Sequential ln_net(torch::nn::Linear(3, 2), torch::nn::LayerNorm(torch::nn::LayerNormOptions({2})));
  EXPECT_TRUE(batchnorm_modules(*ln_net).empty());
}

class RaiseAt : public Hook {
 public:
  explicit RaiseAt(int64_t step) : step_(step) {}
  std::string name() const override { return "raise"; }
  void after_step(Trainer& t) override {
    if (t.state().step == step_) std::raise(SIGTERM);
  }

 private:
  int64_t step_;
};

TEST(Trainer, SigtermFinishesStepWritesLastAndReturns) {
  TempDir dir;
  SyntheticTask task(SyntheticTaskOptions{});
  auto cfg = test::synthetic_config(dir.str());
  Trainer t(cfg, task);
  t.add_hook(std::make_shared<RaiseAt>(3));
  auto r = t.fit();
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.steps, 3);
  auto s = read_checkpoint_state(dir.str("checkpoints/last.ckpt"));
  EXPECT_EQ(s.step, 3);
  EXPECT_EQ(s.batch_in_epoch, 3);
  // the handler was restored: SIGTERM is back to its previous disposition
  struct sigaction sa {};
  sigaction(SIGTERM, nullptr, &sa);
  EXPECT_EQ(sa.sa_handler, SIG_DFL);
}

TEST(Trainer, MetricsLogBestCheckpointAndReport) {
  TempDir dir;
  SyntheticTaskOptions o;
  o.moe = true;
  SyntheticTask task(o);
  auto cfg = test::synthetic_config(dir.str());
  cfg.train.log_every(2).epochs(3);
  cfg.ewa.enabled(true).share_rate(0.2).schedule("linear").warmup_steps(4);
  Trainer t(cfg, task);
  auto r = t.fit();
  EXPECT_FALSE(r.interrupted);
  EXPECT_EQ(r.steps, 24);
  EXPECT_TRUE(r.final_metrics.count("val.top1"));
  auto recs = read_metrics(dir.str("metrics.jsonl"));
  int steps = 0, epochs = 0, finals = 0;
  for (const auto& j : recs) {
    const std::string kind = j["kind"];
    if (kind == "step") {
      ++steps;
      EXPECT_EQ(j["step"].get<int64_t>() % 2, 0);
      for (const char* k : {"loss", "lr", "share_rate", "samples_per_sec", "aux.l2", "train.top1", "expert_load"}) {
        EXPECT_TRUE(j.contains(k)) << k;
      }
      const int64_t st = j["step"];
      EXPECT_NEAR(j["share_rate"].get<double>(), 0.2 * std::min<int64_t>(st, 4) / 4.0, 1e-12);
    } else if (kind == "epoch") {
      ++epochs;
      EXPECT_TRUE(j.contains("val.top1"));
      EXPECT_TRUE(j.contains("train_loss"));
    } else if (kind == "final") {
      ++finals;
    }
  }
  EXPECT_EQ(steps, 12);
  EXPECT_EQ(epochs, 3);
  EXPECT_EQ(finals, 1);
  EXPECT_TRUE(std::filesystem::exists(dir.str("checkpoints/best.ckpt")));
  EXPECT_TRUE(read_checkpoint_state(dir.str("checkpoints/last.ckpt")).has_best);
  EXPECT_EQ(test::read_file(dir.str("config.yaml")), "synthetic: true\n");

  test::write_file(dir.path() / "confusion.csv", "cat,dog\n5,1\n2,7\n");
  const std::string html_path = write_report(dir.str());
  const std::string html = test::read_file(html_path);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("Expert load"), std::string::npos);
  EXPECT_NE(html.find("Confusion matrix"), std::string::npos);
  EXPECT_NE(html.find("share_rate"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_THROW(write_report(dir.str("nope")), std::runtime_error);
}

TEST(Trainer, EwaHookShrinksExpertDistanceToMean) {
  TempDir dir;
  SyntheticTaskOptions o;
  o.moe = true;
  o.dropout = 0.0;
  SyntheticTask task(o);
  {
    torch::NoGradGuard ng;
    task.net()->experts->w1.normal_();  // experts different from each other
  }
  auto spread = [&] {
    auto w = task.net()->experts->w1.detach();
    return (w - w.mean(0, true)).norm().item<double>();
  };
  const double d0 = spread();
  auto cfg = test::synthetic_config(dir.str());
  cfg.train.max_steps(1).grad_clip(0.0);
  cfg.train.optimizer().name("sgd").lr(1e-12).momentum(0.0).weight_decay(0.0);
  cfg.train.schedule().name("constant").warmup_epochs(0);
  cfg.ewa.enabled(true).share_rate(0.25);
  Trainer t(cfg, task);
  t.fit();
  // N = 2 experts: distance to the mean shrinks by 1 - b N/(N-1) = 0.5
  EXPECT_NEAR(spread() / d0, 0.5, 1e-6);
}

TEST(Trainer, Bf16AutocastTrainsOnCpu) {
  TempDir dir;
  SyntheticTaskOptions o;
  o.dtype = torch::kFloat32;
  SyntheticTask task(o);
  auto cfg = test::synthetic_config(dir.str());
  cfg.train.precision("bf16").epochs(1);
  Trainer t(cfg, task);
  auto before = weights(task.model());
  auto r = t.fit();
  EXPECT_EQ(r.steps, 8);
  EXPECT_EQ(task.last_logits_dtype, torch::kBFloat16);  // autocast was on (LayerNorm included)
  auto after = weights(task.model());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::isfinite(after[i]).all().item<bool>());
  }
  EXPECT_FALSE(torch::equal(before[0], after[0]));
  for (const auto& j : read_metrics(dir.str("metrics.jsonl"))) {
    if (j["kind"] == "step") {
      EXPECT_TRUE(std::isfinite(j["loss"].get<double>()));
    }
  }
}

TEST(TrainerDistributed, EnvParsing) {
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "2", 1);
  ::setenv("MASTER_PORT", "12345", 1);
  auto e = DistEnv::from_env();
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.rank, 2);
  EXPECT_EQ(e.local_rank, 2);
  EXPECT_EQ(e.master_port, 12345);
  ::setenv("RANK", "4", 1);
  EXPECT_THROW(DistEnv::from_env(), std::invalid_argument);
  ::setenv("RANK", "x", 1);
  EXPECT_THROW(DistEnv::from_env(), std::invalid_argument);
  ::unsetenv("WORLD_SIZE");
  ::unsetenv("RANK");
  ::unsetenv("MASTER_PORT");
  EXPECT_FALSE(DistEnv::from_env().distributed());
}

}  // namespace
}  // namespace ewa
