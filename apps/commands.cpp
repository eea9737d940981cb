// The one place where subcommands are registered (order = order in `ewa --help`).
#include "commands.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <climits>

#include "ewa/core/runtime.h"
#include "ewa/datasets/points/cloud_formats.h"

namespace ewa::app {

std::string point_formats_footer() {
  std::string out = "INPUT formats (the same for train / segment / view; `ewa data info --formats`):\n";
  for (const auto* f : datasets::cloud_formats()) out += std::string("  ") + f->name + ": " + f->description + "\n";
  return out;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_of(" \t\n'\"$`\\[]{}*?;&|<>()!#,~") == std::string::npos) return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string self_exe() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "ewa";
  buf[n] = '\0';
  return buf;
}

void register_commands(CLI::App& app, GlobalOptions& global) {
  add_train_command(app, global);
  add_eval_command(app, global);
  add_classify_command(app, global);
  add_data_command(app, global);
  add_segment_command(app, global);
  add_config_command(app, global);
  add_version_command(app, global);
  add_launch_command(app, global);
  add_report_command(app, global);
  add_view_command(app, global);
  add_convert_command(app, global);
  add_inspect_command(app, global);
  add_superclasses_command(app, global);
  add_sweep_command(app, global);
}

void apply_global_options(const GlobalOptions& global, int config_threads) {
  ewa::init_logging(global.log_level);
  int threads = global.threads > 0 ? global.threads : (config_threads > 0 ? config_threads : 0);
  int used = ewa::set_num_threads(threads);
  spdlog::debug("using {} threads", used);
}

}  // namespace ewa::app
