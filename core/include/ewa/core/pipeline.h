// What the `ewa train` / `ewa eval` commands hand to a pipeline (vision2d, pointcloud): the
// resolved config plus the command-line choices that are not part of the config.
#pragma once

#include <string>
#include <vector>

namespace ewa {

/// `ewa train CONFIG [--set k=v] [--resume PATH] [--run-dir DIR]`.
struct TrainRequest {
  std::string config_file;     ///< path as given (for messages)
  std::string config_text;     ///< resolved YAML (every default filled in), written to RUN_DIR
  std::string run_dir;         ///< "" = run.output_dir/run.name
  std::string resume;          ///< "" = fresh; a checkpoint file or a run directory (uses its last.ckpt)
  std::string resume_command;  ///< shown on SIGINT/SIGTERM, e.g. "ewa train cfg.yaml --resume runs/x"
  bool quiet = false;          ///< no progress bar
};

/// `ewa eval RUN_DIR|MODEL [--checkpoint best|last|PATH] [--split NAME] [--out FILE]`.
struct EvalRequest {
  std::string run_dir;           ///< run directory (holds config.yaml) ; "" when `model` is given
  std::string model;             ///< a model file (safetensors/checkpoint) instead of a run dir
  std::string checkpoint = "best";  ///< best | last | a path
  std::string split;             ///< "" = the config's evaluation split
  std::string out;               ///< "" = RUN_DIR/eval_<split>.json
  bool quiet = false;
};

/// What every pipeline's train entry point returns to the app.
struct PipelineResult {
  int exit_code = 0;       ///< 0 ok, 1 runtime failure (message already logged)
  std::string run_dir;     ///< where outputs went
};

}  // namespace ewa
