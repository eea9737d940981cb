// `ewa train CONFIG [--set k=v ...] [--resume RUN_DIR|CKPT] [--run-dir DIR]` and
// `ewa eval RUN_DIR [--checkpoint best|last|PATH] [--split NAME] [--out FILE]`: both dispatch on
// the config's `task:` through the task table (config_schema.cpp) to the pipeline that owns it.
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "config_schema.h"
#include "ewa/core/config.h"

namespace fs = std::filesystem;

namespace ewa::app {
namespace {

[[noreturn]] void not_available(const std::string& task, const std::string& what) {
  throw std::runtime_error("task '" + task + "' has no " + what + " entry point in this build");
}

}  // namespace

void add_train_command(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("train", "Train a model from a YAML config (resumable)");
  struct Args {
    std::string file;
    std::vector<std::string> set;
    std::string resume;
    std::string run_dir;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("config", args->file,
                  "YAML config (optional with --resume RUN_DIR: the run's config.yaml is used)");
  cmd->add_option("--set", args->set, "Override a key before validation: a.b.c=value")->take_all();
  cmd->add_option("--resume", args->resume,
                  "Continue a run: its directory (uses checkpoints/last.ckpt) or a checkpoint file");
  cmd->add_option("--run-dir", args->run_dir, "Output directory (default: run.output_dir/run.name)");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress bar");
  cmd->callback([&global, args] {
    std::string file = args->file;
    if (file.empty()) {
      if (args->resume.empty() || !fs::is_directory(args->resume)) {
        throw UsageError("train: give a CONFIG file, or --resume RUN_DIR to continue a run");
      }
      file = (fs::path(args->resume) / "config.yaml").string();
      if (!fs::exists(file)) throw UsageError("train: " + file + " not found (is " + args->resume + " a run directory?)");
      if (args->run_dir.empty()) args->run_dir = args->resume;
    }
    if (!fs::exists(file)) throw UsageError("train: config file not found: " + file);
    config::Node root = config::parse_yaml_file(file);
    config::apply_overrides(root, args->set);
    const std::string task = task_of(root, file);
    const TaskEntry& entry = task_entry(task);
    const config::Node resolved = entry.resolve(root, file);
    int threads = -1;
    if (const config::Node* run = resolved.find("run")) {
      if (const config::Node* t = run->find("threads")) config::decode_value(*t, {file, "run.threads"}, threads);
    }
    apply_global_options(global, threads);
    if (!entry.train) not_available(task, "train");

    TrainRequest req;
    req.config_file = file;
    req.config_text = config::to_yaml(resolved);
    req.run_dir = args->run_dir;
    req.resume = args->resume;
    req.quiet = args->quiet;
    std::string resume_cmd = "ewa train " + shell_quote(file);
    for (const auto& s : args->set) resume_cmd += " --set " + shell_quote(s);
    req.resume_command = resume_cmd;  // the pipeline appends --resume RUN_DIR
    const PipelineResult r = entry.train(root, req);
    if (r.exit_code != 0) throw ExitCode(r.exit_code);
  });
}

void add_eval_command(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a trained run (metrics, per-class table, confusion matrix)");
  auto req = std::make_shared<EvalRequest>();
  auto set = std::make_shared<std::vector<std::string>>();
  cmd->add_option("run_dir", req->run_dir, "Run directory written by `ewa train`")->required();
  cmd->add_option("--checkpoint", req->checkpoint, "best | last | model (RUN/model.safetensors) | a checkpoint or model path")
      ->capture_default_str();
  cmd->add_option("--split", req->split, "Split to evaluate (default: the config's evaluation split)");
  cmd->add_option("-o,--out", req->out, "Metrics JSON (default RUN_DIR/eval_<split>.json)");
  cmd->add_option("--set", *set, "Override a key of the run's config: a.b.c=value")->take_all();
  cmd->add_flag("-q,--quiet", req->quiet, "No progress bar");
  cmd->callback([&global, req, set] {
    const std::string file = (fs::path(req->run_dir) / "config.yaml").string();
    if (!fs::is_directory(req->run_dir)) throw UsageError("eval: not a directory: " + req->run_dir);
    if (!fs::exists(file)) throw UsageError("eval: " + file + " not found (is " + req->run_dir + " a run directory?)");
    config::Node root = config::parse_yaml_file(file);
    config::apply_overrides(root, *set);
    const std::string task = task_of(root, file);
    const TaskEntry& entry = task_entry(task);
    entry.resolve(root, file);  // validates
    apply_global_options(global);
    if (!entry.eval) not_available(task, "eval");
    const PipelineResult r = entry.eval(root, *req);
    if (r.exit_code != 0) throw ExitCode(r.exit_code);
  });
}

}  // namespace ewa::app
