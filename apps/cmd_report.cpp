// `ewa report RUN_DIR`: writes RUN_DIR/report.html (self-contained, inline SVG).
#include <iostream>

#include "commands.h"
#include "ewa/core/report.h"

namespace ewa::app {

void add_report_command(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("report", "Write RUN_DIR/report.html: curves, lr/share rate, throughput, "
                                           "expert load, confusion matrix");
  auto run_dir = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("run_dir", *run_dir, "run directory (with metrics.jsonl)")->required();
  cmd->add_option("-o,--output", *out, "output file (default RUN_DIR/report.html)");
  cmd->callback([run_dir, out, &global] {
    apply_global_options(global);
    std::cout << ewa::write_report(*run_dir, *out) << "\n";
  });
}

}  // namespace ewa::app
