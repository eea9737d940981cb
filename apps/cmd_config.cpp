// `ewa config check FILE [--set k=v ...]`: validates a config and prints its resolved form.
#include <iostream>

#include "commands.h"
#include "config_schema.h"
#include "ewa/core/config.h"

namespace ewa::app {

void add_config_command(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("config", "Validate and print configurations");
  cmd->require_subcommand(1);
  auto* check = cmd->add_subcommand("check", "Validate FILE (with --set overrides), print the resolved YAML");
  struct Args {
    std::string file;
    std::vector<std::string> set;
  };
  auto args = std::make_shared<Args>();
  check->add_option("file", args->file, "YAML config")->required()->check(CLI::ExistingFile);
  check->add_option("--set", args->set, "Override a key before validation: a.b.c=value")
      ->take_all();
  check->callback([&global, args] {
    apply_global_options(global);
    config::Node root = config::parse_yaml_file(args->file);
    config::apply_overrides(root, args->set);
    const std::string task = task_of(root, args->file);
    const std::string resolved = config::to_yaml(resolve_config(root, args->file));
    std::cout << "# resolved config of " << args->file << " (task: " << task << ")\n" << resolved;
  });
}

}  // namespace ewa::app
