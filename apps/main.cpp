// `ewa` entry point: parses the command line, runs one subcommand, maps errors to exit
// codes (0 ok, 1 runtime failure, 2 usage or config error) with one clean line on stderr.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

#include "commands.h"
#include "ewa/core/config.h"
#include "ewa/core/error_text.h"
#include "ewa/core/runtime.h"

int main(int argc, char** argv) {
  CLI::App app{"ewa: train and deploy vision transformers with Experts Weights Averaging (EWA)\n"
               "for image classification and point-cloud segmentation/classification.",
               "ewa"};
  app.set_version_flag("--version", [] {
    ewa::set_num_threads(0);  // report the default the commands use (all cores)
    return ewa::version_string();
  });
  app.require_subcommand(1);
  app.fallthrough();
  ewa::app::GlobalOptions global;
  app.add_option("--log-level", global.log_level, "trace|debug|info|warn|error|critical|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--threads", global.threads, "CPU threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  ewa::app::register_commands(app, global);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);  // help on stdout, exit 0
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Name an unknown subcommand explicitly (CLI11 only says one is required).
    std::string unknown;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--log-level" || a == "--threads") {
        ++i;
        continue;
      }
      if (!a.empty() && a[0] != '-') {
        bool known = false;
        for (const CLI::App* sub : app.get_subcommands({})) known = known || sub->check_name(a);
        if (!known) unknown = a;
        break;
      }
    }
    if (!unknown.empty()) {
      std::cerr << "ewa: unknown subcommand '" << unknown << "'\n\n" << app.help();
      return 2;
    }
    std::cerr << "ewa: " << e.what() << "\n\n";
    // usage of the subcommand that failed, or of ewa itself
    const CLI::App* failed = &app;
    for (const CLI::App* sub : app.get_subcommands()) failed = sub;
    std::cerr << failed->help();
    return 2;
  } catch (const ewa::app::ExitCode& e) {
    return e.code;
  } catch (const ewa::config::ConfigError& e) {
    std::cerr << "ewa: config error: " << e.what() << "\n";
    return 2;
  } catch (const ewa::app::UsageError& e) {
    std::cerr << "ewa: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    // One line: LibTorch errors without their backtrace, allocator failures as "out of
    // memory", no bare library text (error_text.h).
    std::cerr << "ewa: error: " << ewa::error_line(e) << "\n";
    return 1;
  }
  return 0;
}
