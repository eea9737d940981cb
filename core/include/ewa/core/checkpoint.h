// Crash-safe training checkpoints: model, optimizer state, schedule/EWA step, RNG states,
// data-order position, best metric and config hash in one file, written to a temporary file,
// fsynced and renamed (then the directory fsynced) so a kill leaves the previous one intact.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ewa {

/// A checkpoint that cannot be read: missing, truncated, corrupted, or not matching the
/// model/optimizer. `what()` names the file. Apps map it to exit status 1.
class CheckpointError : public std::runtime_error {
 public:
  CheckpointError(const std::string& path, const std::string& message)
      : std::runtime_error("checkpoint '" + path + "': " + message), path_(path) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Everything besides model and optimizer tensors that a resumed run needs.
struct TrainingState {
  int64_t step = 0;            ///< optimizer steps done
  int64_t epoch = 0;           ///< epoch in progress (0-based)
  int64_t batch_in_epoch = 0;  ///< micro-batches of `epoch` already consumed (data position)
  int64_t ewa_step = 0;        ///< steps seen by the EWA share-rate schedule
  bool epoch_done = false;     ///< `epoch` finished (evaluated, hooks run): resume at epoch + 1
  bool has_best = false;
  double best_metric = std::numeric_limits<double>::quiet_NaN();
  std::string best_metric_name;
  std::string config_hash;     ///< hash_config() of the resolved config text
  int64_t world_size = 1;
  torch::Tensor rng_state;     ///< CPU generator state (uint8 [N]); undefined = not saved
  std::string data_state;      ///< opaque state of the data source (its own RNGs)
  /// Model EMA (train.ema): the shadow tensors by name (parameters, then buffers) and the
  /// number of updates; empty when the run keeps no EMA. Filled by load_checkpoint only when
  /// it restores training state (an optimizer is given).
  std::vector<std::pair<std::string, torch::Tensor>> ema;
  bool has_ema = false;        ///< the file holds EMA weights (set when read)
  int64_t ema_updates = 0;
};

/// Stable 64-bit FNV-1a hash of `text`, as 16 hex digits.
std::string hash_config(const std::string& text);

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename,
/// fsync of the directory. Throws std::runtime_error naming the path on failure.
void atomic_write_file(const std::string& path, const std::string& bytes);

/// Saves model parameters + buffers, the optimizer state (may be null) and `state` to `path`
/// atomically, with a header (magic, payload size, CRC32) that detects truncation/damage.
void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const TrainingState& state);

/// Loads a checkpoint written by save_checkpoint. The file is fully verified (size, CRC,
/// every model key present with the right shape) before the model or optimizer is touched;
/// any problem throws CheckpointError naming the file. With an optimizer (resume) the model
/// gets the training weights and state.ema the EMA; with `optimizer` null (weights only:
/// eval, export) the model gets the deployed weights: the EMA when the run kept one.
TrainingState load_checkpoint(const std::string& path, torch::nn::Module& model,
                              torch::optim::Optimizer* optimizer);

/// Reads only the TrainingState of a checkpoint (verified like load_checkpoint).
TrainingState read_checkpoint_state(const std::string& path);

}  // namespace ewa
