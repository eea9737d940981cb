// `ewa version`: versions of ewa and LibTorch, CUDA availability, thread count.
#include <iostream>

#include "commands.h"
#include "ewa/core/runtime.h"

namespace ewa::app {

void add_version_command(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("version", "Print versions (ewa, LibTorch), CUDA and threads");
  cmd->callback([&global] {
    apply_global_options(global);
    std::cout << ewa::version_string() << "\n";
  });
}

}  // namespace ewa::app
