// Trainer: the one training loop of the project (steps, accumulation, autocast, clipping,
// data-parallel gradient averaging, divergence guard, signals, resume).
#include "ewa/core/trainer.h"

#include <spdlog/spdlog.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/library.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <sstream>

#include "ewa/core/compat.h"
#include "ewa/core/cpu.h"
#include "ewa/core/ema.h"
#include "ewa/core/hooks.h"
#include "ewa/core/moe.h"
#include "ewa/core/runtime.h"

#if !EWA_TORCH_AT_LEAST(2, 0)
// LibTorch 1.13's CPU autocast has no rule for layer_norm, and its CPU kernel rejects a bf16
// input with fp32 weights, so any transformer failed under train.precision=bf16. This adds
// the rule LibTorch 2.x has in effect: layer_norm runs in fp32. It lives here (not in a
// separate file) so that the registration is linked whenever the trainer is.
namespace {
at::Tensor layer_norm_autocast_cpu(const at::Tensor& input, at::IntArrayRef normalized_shape,
                                   const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias,
                                   double eps, bool cudnn_enable) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  auto up = [](const at::Tensor& t) { return t.scalar_type() == at::kBFloat16 ? t.to(at::kFloat) : t; };
  c10::optional<at::Tensor> w = weight && weight->defined() ? c10::optional<at::Tensor>(up(*weight)) : weight;
  c10::optional<at::Tensor> b = bias && bias->defined() ? c10::optional<at::Tensor>(up(*bias)) : bias;
  return at::layer_norm(up(input), normalized_shape, w, b, eps, cudnn_enable);
}
}  // namespace
TORCH_LIBRARY_IMPL(aten, AutocastCPU, m) { m.impl("layer_norm", TORCH_FN(layer_norm_autocast_cpu)); }
#endif

namespace ewa {

namespace fs = std::filesystem;

std::map<std::string, std::map<std::string, double>> TrainTask::routing_scalars() {
  return moe_routing_scalars(model());
}

namespace {
std::atomic<int> g_stop_signal{0};
extern "C" void ewa_trainer_on_signal(int sig) { g_stop_signal.store(sig); }

// Installs SIGINT/SIGTERM handlers for the lifetime of fit(), restoring the previous ones.
class SignalScope {
 public:
  SignalScope() {
    g_stop_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = ewa_trainer_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

torch::Tensor get_cpu_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}
void set_cpu_rng_state(const torch::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

std::string keys_of(const std::map<std::string, torch::Tensor>& m) {
  std::string s;
  for (const auto& kv : m) s += (s.empty() ? "" : ", ") + kv.first;
  return s.empty() ? "none" : s;
}
}  // namespace

const torch::Tensor& Batch::at(const std::string& key) const {
  auto it = tensors.find(key);
  if (it == tensors.end()) {
    throw std::out_of_range("batch has no tensor '" + key + "' (present: " + keys_of(tensors) + ")");
  }
  return it->second;
}

torch::Device resolve_device(const std::string& device) {
  if (device == "auto") return compat::cuda_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  torch::Device d(device);
  if (d.is_cuda() && !compat::cuda_available()) {
    throw std::invalid_argument("run.device: '" + device +
                                "' requested but this build/machine has no CUDA (build with EWA_WITH_CUDA=ON)");
  }
  return d;
}

torch::Tensor smoothed_cross_entropy(const torch::Tensor& logits, const torch::Tensor& target,
                                     double label_smoothing) {
  TORCH_CHECK(logits.dim() == 2, "smoothed_cross_entropy: logits must be [B, C], got ", logits.sizes());
  TORCH_CHECK(label_smoothing >= 0 && label_smoothing < 1, "smoothed_cross_entropy: label_smoothing must be in [0, 1)");
  const int64_t c = logits.size(1);
  auto logp = torch::log_softmax(logits.to(torch::promote_types(logits.scalar_type(), torch::kFloat)), 1);  // [B, C]
  torch::Tensor soft;
  if (target.dim() == 1) {
    TORCH_CHECK(target.size(0) == logits.size(0), "smoothed_cross_entropy: target [B] must match logits batch");
    soft = torch::one_hot(target.to(torch::kLong), c).to(logp.scalar_type());  // [B, C]
  } else {
    TORCH_CHECK(target.sizes() == logits.sizes(), "smoothed_cross_entropy: soft target must be [B, C] like logits, got ",
                target.sizes());
    soft = target.to(logp.scalar_type());
  }
  if (label_smoothing > 0) soft = soft * (1.0 - label_smoothing) + label_smoothing / static_cast<double>(c);
  return -(soft * logp).sum(1).mean();
}

Trainer::Trainer(TrainerConfig config, TrainTask& task)
    : config_(std::move(config)), task_(task), device_(resolve_device(config_.run.device())) {
  const auto& t = config_.train;
  bf16_ = resolve_bf16_autocast(t.precision(), device_.is_cpu());
  if (t.precision() == "auto") {
    spdlog::info("train.precision auto: {}", bf16_ ? "bf16 autocast (the CPU has native bf16 matmuls)" : "fp32");
  }
  task_.model().to(device_);

  DistEnv env = DistEnv::from_env();
  if (env.distributed()) {
    dist_ = DistContext::create(env, t.dist_backend());
    spdlog::info("data parallel: rank {}/{} ({})", dist_->rank(), dist_->world_size(), dist_->backend());
    // Identical start on every rank.
    std::vector<torch::Tensor> tensors;
    for (auto& p : task_.model().parameters()) tensors.push_back(p);
    for (auto& b : task_.model().buffers()) tensors.push_back(b);
    dist_->broadcast_(tensors, 0);
  }
  task_.set_shard(dist_ ? dist_->rank() : 0, dist_ ? dist_->world_size() : 1);
  const int64_t batches = task_.batches_per_epoch();
  if (batches < 1) throw std::invalid_argument("the training data of this rank is empty (0 batches per epoch)");
  steps_per_epoch_ = (batches + t.grad_accum() - 1) / t.grad_accum();
  total_steps_ = t.max_steps() > 0 ? t.max_steps() : steps_per_epoch_ * t.epochs();

  optimizer_ = make_optimizer(task_.model(), t.optimizer());
  schedule_ = std::make_unique<LrSchedule>(t.schedule(), t.optimizer().lr(), total_steps_, steps_per_epoch_);

  run_dir_ = config_.run_dir;
  const std::string& resume = t.checkpoint().resume();
  if (run_dir_.empty() && !resume.empty() && fs::is_directory(resume)) run_dir_ = resume;
  if (run_dir_.empty()) run_dir_ = (fs::path(config_.run.output_dir()) / config_.run.name()).string();

  state_.config_hash = hash_config(config_.config_text);
  state_.world_size = dist_ ? dist_->world_size() : 1;
  state_.best_metric_name = t.checkpoint().metric();

  if (config_.ewa.enabled()) hooks_.push_back(make_ewa_hook(config_.ewa));
  if (t.ema().enabled()) {  // after EWA: the average follows the weights as EWA leaves them
    ema_ = std::make_shared<ModelEma>(task_.model(), t.ema());
    const auto bn = batchnorm_modules(task_.model());
    ema_has_batchnorm_ = !bn.empty();
    if (!bn.empty() && t.ema().bn_batches() > 0) {
      spdlog::info("train.ema: the model has {} BatchNorm layers; their statistics under the EMA weights are recomputed "
                   "from {} training batches before every evaluation and before export",
                   bn.size(), t.ema().bn_batches());
    } else if (!bn.empty()) {
      spdlog::warn("train.ema: the model has {} BatchNorm layers ({}, ...) and train.ema.bn_batches is 0: the EMA "
                   "averages their running statistics, which need not match the averaged weights (the mOSD Point "
                   "Transformer's EMA predicted a single class, README \"Evidence\")",
                   bn.size(), bn.front());
    }
    hooks_.push_back(make_ema_hook(ema_));
  }
  user_hook_pos_ = hooks_.size();
  hooks_.push_back(make_routing_stats_hook(t.log_every()));
  hooks_.push_back(make_eval_hook(t.eval_every()));
  hooks_.push_back(make_metrics_log_hook(t.log_every()));
  hooks_.push_back(make_checkpoint_hook(t.checkpoint()));
  if (t.progress()) hooks_.push_back(make_progress_hook());
}

Trainer::~Trainer() = default;

void Trainer::add_hook(std::shared_ptr<Hook> hook) {
  hooks_.insert(hooks_.begin() + static_cast<std::ptrdiff_t>(user_hook_pos_), std::move(hook));
  ++user_hook_pos_;
}

template <class F>
void Trainer::each_hook(F&& f) {
  for (auto& h : hooks_) f(*h);
}

std::string Trainer::checkpoint_path(const std::string& name) const {
  return (fs::path(run_dir_) / "checkpoints" / (name + ".ckpt")).string();
}

void Trainer::save_checkpoint(const std::string& name) {
  if (!is_main()) return;
  TrainingState s = state_;
  s.rng_state = get_cpu_rng_state();
  s.data_state = task_.data_state();
  if (ema_) {
    s.ema = ema_->state();
    s.ema_updates = ema_->updates();
  }
  ewa::save_checkpoint(checkpoint_path(name), task_.model(), optimizer_.optim.get(), s);
  spdlog::debug("wrote {} (step {})", checkpoint_path(name), s.step);
}

void Trainer::resume_from(const std::string& spec) {
  std::string path = spec;
  if (fs::is_directory(spec)) path = (fs::path(spec) / "checkpoints" / "last.ckpt").string();
  TrainingState s = load_checkpoint(path, task_.model(), optimizer_.optim.get());
  if (s.config_hash != state_.config_hash) {
    spdlog::warn("resuming {} with a config that differs from the one it was written with", path);
  }
  if (s.world_size != state_.world_size) {
    spdlog::warn("resuming {} written by {} processes with {}", path, s.world_size, state_.world_size);
  }
  const std::string hash = state_.config_hash;
  const int64_t world = state_.world_size;
  state_ = s;
  state_.config_hash = hash;
  state_.world_size = world;
  if (state_.best_metric_name != config_.train.checkpoint().metric()) {
    state_.has_best = false;
    state_.best_metric_name = config_.train.checkpoint().metric();
  }
  if (state_.epoch_done) {
    state_.epoch += 1;
    state_.batch_in_epoch = 0;
    state_.epoch_done = false;
  }
  // Resuming at the start of an epoch, begin_epoch resets the data source: the saved state
  // (of the finished epoch) is only restored when resuming mid-epoch.
  pending_data_restore_ = state_.batch_in_epoch > 0;
  pending_data_state_ = s.data_state;
  if (s.rng_state.defined()) set_cpu_rng_state(s.rng_state);
  if (ema_ && s.has_ema) {
    try {
      ema_->load(s.ema, s.ema_updates);
    } catch (const std::invalid_argument& e) {
      throw CheckpointError(path, e.what());
    }
  } else if (ema_) {
    spdlog::warn("{} holds no EMA weights: train.ema starts from the resumed weights", path);
  }
  state_.ema.clear();
  resumed_ = true;
  spdlog::info("resumed from {} at step {} (epoch {}, batch {})", path, state_.step, state_.epoch + 1,
               state_.batch_in_epoch);
}

void Trainer::setup() {
  if (is_main()) {
    fs::create_directories(fs::path(run_dir_) / "checkpoints");
    if (config_.log_file) add_log_file((fs::path(run_dir_) / "train.log").string());
    if (!config_.config_text.empty()) {
      atomic_write_file((fs::path(run_dir_) / "config.yaml").string(), config_.config_text);
    }
  }
  const std::string& resume = config_.train.checkpoint().resume();
  if (!resume.empty()) resume_from(resume);
}

std::map<std::string, double> Trainer::run_evaluation() {
  auto& model = task_.model();
  model.eval();
  std::map<std::string, double> metrics;
  {
    EmaSwapGuard on_ema(ema_.get(), model);
    recompute_ema_batchnorm();  // into the shadow: export copies these statistics
    torch::NoGradGuard ng;
    compat::AutocastGuard ac(device_.type(), at::kBFloat16, bf16_);
    metrics = task_.evaluate();
  }
  model.train();
  if (dist_ && !metrics.empty()) {
    std::vector<double> vals;
    for (const auto& kv : metrics) vals.push_back(kv.second);
    std::vector<torch::Tensor> t{torch::tensor(vals, torch::kFloat64)};
    dist_->allreduce_sum_(t);
    size_t i = 0;
    for (auto& kv : metrics) kv.second = t[0][static_cast<int64_t>(i++)].item<double>() / dist_->world_size();
  }
  return metrics;
}

void Trainer::recompute_ema_batchnorm() {
  const int64_t max_batches = config_.train.ema().bn_batches();
  if (!ema_ || !ema_has_batchnorm_ || max_batches <= 0) return;
  auto& model = task_.model();
  // Training batches from the start of the current epoch (data order is a pure function of
  // seed and epoch); afterwards the data source is put back where it was (position and its own
  // RNG state, as a resume does) and the global RNG restored, so training, checkpoints and
  // resumes are the same as without the pass (also when max_steps ends the run mid-epoch).
  const torch::Tensor rng = get_cpu_rng_state();
  const std::string data_state = task_.data_state();
  task_.begin_epoch(state_.epoch, 0);
  const int64_t used = recompute_batchnorm(
      model,
      [&] {
        auto b = task_.next_batch();
        if (!b) return false;
        for (auto& kv : b->tensors) kv.second = kv.second.to(device_, /*non_blocking=*/true);
        torch::NoGradGuard ng;
        compat::AutocastGuard ac(device_.type(), at::kBFloat16, bf16_);
        task_.training_step(*b);
        return true;
      },
      max_batches);
  task_.begin_epoch(state_.epoch, state_.batch_in_epoch);
  task_.load_data_state(data_state);
  set_cpu_rng_state(rng);
  if (dist_) {  // every rank saw its own shard: average the statistics (every rank calls this)
    std::vector<torch::Tensor> stats = batchnorm_statistics(model);
    torch::NoGradGuard ng;
    dist_->allreduce_sum_(stats);
    for (auto& s : stats) s.div_(static_cast<double>(dist_->world_size()));
  }
  bn_step_ = state_.step;
  spdlog::debug("train.ema: BatchNorm statistics recomputed from {} batches at step {}", used, state_.step);
}

bool Trainer::train_one_step() {
  const auto& t = config_.train;
  std::vector<Batch> micro;
  for (int64_t k = 0; k < t.grad_accum(); ++k) {
    auto b = task_.next_batch();
    if (!b) break;
    micro.push_back(std::move(*b));
  }
  bool exhausted = micro.empty();
  if (dist_) exhausted = dist_->any(exhausted);
  if (exhausted) return false;

  const auto t0 = std::chrono::steady_clock::now();
  if (dist_) {
    // Same random stream on every rank for this step (RUP permutations, dropout): EWA/RUP
    // stay consistent and the run does not depend on per-rank RNG history.
    torch::manual_seed(static_cast<uint64_t>(config_.run.seed()) * 1000003ull + static_cast<uint64_t>(state_.step));
  }
  each_hook([&](Hook& h) { h.before_step(*this); });
  const double lr = schedule_->at(state_.step);
  optimizer_.set_lr(lr);
  optimizer_.optim->zero_grad();
  auto& model = task_.model();
  model.train();

  const bool bf16 = bf16_;
  const double n = static_cast<double>(micro.size());
  double loss_sum = 0.0;
  std::map<std::string, double> aux_sum, metric_sum;
  int64_t samples = 0;
  bool finite = true;
  for (auto& b : micro) {
    for (auto& kv : b.tensors) kv.second = kv.second.to(device_, /*non_blocking=*/true);
    StepOutput out;
    {
      compat::AutocastGuard ac(device_.type(), at::kBFloat16, bf16);
      out = task_.training_step(b);
    }
    TORCH_CHECK(out.loss.defined() && out.loss.numel() == 1, "training_step must return a scalar loss");
    torch::Tensor total = out.loss.reshape({});
    if (total.scalar_type() == torch::kBFloat16 || total.scalar_type() == torch::kHalf) total = total.to(torch::kFloat);
    for (const auto& [k, a] : out.aux_losses) {
      TORCH_CHECK(a.defined() && a.numel() == 1, "aux loss '", k, "' must be a scalar");
      total = total + a.reshape({}).to(total.scalar_type());
      aux_sum[k] += a.item<double>();
    }
    const double value = total.item<double>();
    if (!std::isfinite(value)) {
      finite = false;
      loss_sum = value;
      break;
    }
    (total / n).backward();
    loss_sum += value;
    for (const auto& [k, v] : out.metrics) metric_sum[k] += v;
    samples += b.num_samples;
  }
  if (dist_) {
    std::vector<torch::Tensor> v{torch::tensor(std::vector<double>{finite ? loss_sum : 0.0, finite ? 0.0 : 1.0,
                                                                   static_cast<double>(samples)},
                                               torch::kFloat64)};
    dist_->allreduce_sum_(v);
    if (v[0][1].item<double>() > 0) finite = false;
    if (finite) {
      loss_sum = v[0][0].item<double>() / dist_->world_size();
      samples = static_cast<int64_t>(v[0][2].item<double>());
    }
  }
  const int64_t failing = state_.step + 1;
  if (!finite) {
    std::ostringstream m;
    m << "loss is not finite (" << loss_sum << ") at step " << failing << " (epoch " << state_.epoch + 1
      << "); training stopped, weights of step " << failing << " not applied";
    if (fs::exists(checkpoint_path("last"))) m << "; last good checkpoint kept: " << checkpoint_path("last");
    m << ". Lower the learning rate, enable train.grad_clip or check the data";
    spdlog::error("{}", m.str());
    throw DivergenceError(failing, m.str());
  }
  std::vector<torch::Tensor> params = model.parameters();
  if (dist_) dist_->average_gradients(params, t.bucket_mb());
  double grad_norm = -1.0;
  if (t.grad_clip() > 0) grad_norm = torch::nn::utils::clip_grad_norm_(params, t.grad_clip());
  optimizer_.optim->step();
  state_.step += 1;
  state_.batch_in_epoch += static_cast<int64_t>(micro.size());
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const double loss = loss_sum / n;
  epoch_loss_sum_ += loss;
  epoch_loss_count_ += 1;
  step_record_ = nlohmann::json::object();
  step_record_["kind"] = "step";
  step_record_["step"] = state_.step;
  step_record_["epoch"] = state_.epoch + 1;
  step_record_["loss"] = loss;
  step_record_["lr"] = lr;
  for (const auto& [k, v] : aux_sum) step_record_["aux." + k] = v / n;
  for (const auto& [k, v] : metric_sum) step_record_["train." + k] = v / n;
  if (grad_norm >= 0) step_record_["grad_norm"] = grad_norm;
  step_record_["step_time_s"] = dt;
  if (samples > 0 && dt > 0) {
    // samples already summed over ranks in data-parallel mode
    step_record_["samples_per_sec"] = static_cast<double>(samples) / dt;
  }
  each_hook([&](Hook& h) { h.after_step(*this); });

  bool stop = stop_requested_ || g_stop_signal.load() != 0;
  if (dist_) stop = dist_->any(stop);
  if (stop) interrupted_ = true;
  return true;
}

FitResult Trainer::fit() {
  SignalScope signals;
  setup();
  const auto& t = config_.train;
  const int64_t max_epochs = t.max_steps() > 0 ? std::numeric_limits<int64_t>::max() : t.epochs();
  each_hook([&](Hook& h) { h.before_train(*this); });
  int64_t epochs_done = 0;
  bool done = state_.step >= total_steps_;
  while (!done && !interrupted_ && state_.epoch < max_epochs) {
    task_.begin_epoch(state_.epoch, state_.batch_in_epoch);
    if (pending_data_restore_) {
      task_.load_data_state(pending_data_state_);
      pending_data_restore_ = false;
    }
    epoch_record_ = nlohmann::json::object();
    epoch_loss_sum_ = 0.0;
    epoch_loss_count_ = 0;
    const auto e0 = std::chrono::steady_clock::now();
    each_hook([&](Hook& h) { h.before_epoch(*this); });
    bool exhausted = false;
    while (!interrupted_) {
      // With max_steps the run may end mid-epoch; otherwise the data ends the last epoch.
      if (t.max_steps() > 0 && state_.step >= total_steps_) {
        done = true;
        break;
      }
      if (!train_one_step()) {
        exhausted = true;
        break;
      }
    }
    if (!exhausted) break;  // interrupted or max_steps reached mid-epoch
    state_.epoch_done = true;
    epoch_record_["kind"] = "epoch";
    epoch_record_["epoch"] = state_.epoch + 1;
    epoch_record_["step"] = state_.step;
    if (epoch_loss_count_ > 0) epoch_record_["train_loss"] = epoch_loss_sum_ / static_cast<double>(epoch_loss_count_);
    epoch_record_["epoch_time_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
    each_hook([&](Hook& h) { h.after_epoch(*this); });
    ++epochs_done;
    state_.epoch += 1;
    state_.batch_in_epoch = 0;
    state_.epoch_done = false;
    if (state_.step >= total_steps_) done = true;
  }
  each_hook([&](Hook& h) { h.after_train(*this); });
  if (ema_ && !interrupted_) {
    // What the pipeline exports and evaluates next is the EMA (checkpoints keep both), with the
    // BatchNorm statistics of the final evaluation (recomputed here if none ran at this step).
    ema_->copy_to(task_.model());
    if (bn_step_ != state_.step) recompute_ema_batchnorm();
    spdlog::info("train.ema: the model now holds the EMA of its weights ({} updates)", ema_->updates());
  }
  FitResult r;
  r.steps = state_.step;
  r.epochs = epochs_done;
  r.interrupted = interrupted_;
  r.final_metrics = eval_metrics_;
  r.run_dir = run_dir_;
  if (interrupted_ && is_main()) {
    spdlog::warn("interrupted at step {}: wrote {}; resume with: {} --resume {}", state_.step,
                 checkpoint_path("last"), config_.resume_command, run_dir_);
  }
  return r;
}

}  // namespace ewa
