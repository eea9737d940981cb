// The `ewa` subcommand registry: each subcommand file provides one add_*_command function;
// commands.cpp lists them all in one place.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace ewa::app {

/// Options shared by every subcommand (set on the top-level app).
struct GlobalOptions {
  std::string log_level = "info";
  int threads = 0;  ///< 0 = all cores
};

/// A usage error found after parsing (bad combination of options): exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Ends a subcommand with this exit status; the message was already printed/logged.
struct ExitCode {
  int code;
  explicit ExitCode(int c) : code(c) {}
};

/// Registers every subcommand on `app`. Subcommand callbacks throw on failure; main() maps
/// exceptions to exit codes (2 usage/config, 1 runtime).
void register_commands(CLI::App& app, GlobalOptions& global);

/// Help footer of the commands that read point clouds: the format table of datasets (one list
/// for train / segment / view), one format per line.
std::string point_formats_footer();

/// `s` as one shell word (single-quoted when it holds anything a shell would interpret), for
/// the commands ewa prints for a user to run.
std::string shell_quote(const std::string& s);

/// Path of the running `ewa` binary (/proc/self/exe; "ewa" when unreadable), for child commands.
std::string self_exe();

/// Applies the global options (logging, threads); called at the start of each subcommand.
void apply_global_options(const GlobalOptions& global, int config_threads = -1);

// One function per subcommand file.
void add_config_command(CLI::App& app, GlobalOptions& global);
void add_version_command(CLI::App& app, GlobalOptions& global);
void add_launch_command(CLI::App& app, GlobalOptions& global);
void add_report_command(CLI::App& app, GlobalOptions& global);
void add_view_command(CLI::App& app, GlobalOptions& global);
void add_convert_command(CLI::App& app, GlobalOptions& global);
void add_inspect_command(CLI::App& app, GlobalOptions& global);
void add_superclasses_command(CLI::App& app, GlobalOptions& global);
void add_train_command(CLI::App& app, GlobalOptions& global);
/// `ewa data export-images` (registered on the `data` subcommand by add_data_command).
void add_data_export_images_command(CLI::App& data, GlobalOptions& global);
void add_eval_command(CLI::App& app, GlobalOptions& global);
void add_classify_command(CLI::App& app, GlobalOptions& global);
void add_data_command(CLI::App& app, GlobalOptions& global);
void add_segment_command(CLI::App& app, GlobalOptions& global);
void add_sweep_command(CLI::App& app, GlobalOptions& global);

}  // namespace ewa::app
