// `ewa inspect FILE`: a safetensors file's tensors (name, dtype, shape), parameter count,
// MoE layers and metadata, read from the header only.
#include <iomanip>
#include <iostream>
#include <regex>
#include <sstream>

#include "commands.h"
#include "ewa/core/safetensors.h"

namespace ewa::app {

void add_inspect_command(CLI::App& app, GlobalOptions& global) {
  auto file = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("inspect", "List a .safetensors file's tensors, parameters, MoE layers, metadata");
  cmd->add_option("file", *file, "A .safetensors file")->required()->check(CLI::ExistingFile);
  cmd->callback([&global, file] {
    apply_global_options(global);
    const auto header = safetensors::read_header(*file);
    std::cout << "file: " << *file << " (" << 8 + header.header_bytes + header.data_bytes << " bytes, "
              << header.tensors.size() << " tensors)\n";
    size_t width = 4;
    for (const auto& t : header.tensors) width = std::max(width, t.name.size());
    int64_t params = 0;
    for (const auto& t : header.tensors) {
      std::ostringstream shape;
      shape << "[";
      for (size_t i = 0; i < t.shape.size(); ++i) shape << (i ? ", " : "") << t.shape[i];
      shape << "]";
      std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << t.name << "  " << std::setw(5)
                << t.dtype << " " << shape.str() << "\n";
      params += t.numel();
    }
    std::cout << "parameters: " << params << "\n";
    static const std::regex experts(R"(^blocks\.(\d+)\.mlp\.experts\.w1$)");
    std::vector<std::string> moe;
    for (const auto& t : header.tensors) {
      std::smatch m;
      if (std::regex_match(t.name, m, experts) && t.shape.size() == 3) {
        moe.push_back("  block " + m[1].str() + ": " + std::to_string(t.shape[0]) + " experts, in " +
                      std::to_string(t.shape[1]) + ", hidden " + std::to_string(t.shape[2]));
      }
    }
    if (moe.empty()) {
      std::cout << "MoE layers: none (dense)\n";
    } else {
      std::cout << "MoE layers: " << moe.size() << "\n";
      for (const auto& l : moe) std::cout << l << "\n";
    }
    std::cout << "metadata:" << (header.metadata.empty() ? " none" : "") << "\n";
    for (const auto& [k, v] : header.metadata) {
      if (v.find('\n') == std::string::npos) {
        std::cout << "  " << k << ": " << v << "\n";
      } else {
        std::cout << "  " << k << ":\n";
        std::istringstream lines(v);
        for (std::string line; std::getline(lines, line);) std::cout << "    " << line << "\n";
      }
    }
  });
}

}  // namespace ewa::app
