// MetricsLog: JSON-lines writer/reader.
#include "ewa/core/metrics_log.h"

#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace ewa {

MetricsLog::MetricsLog(std::string path, int64_t keep_until_step) : path_(std::move(path)) {
  namespace fs = std::filesystem;
  if (keep_until_step >= 0 && fs::exists(path_)) {
    std::ostringstream kept;
    for (const auto& r : read_metrics(path_)) {
      if (r.contains("step") && r["step"].is_number() && r["step"].get<int64_t>() > keep_until_step) continue;
      kept << r.dump() << '\n';
    }
    std::ofstream rewrite(path_, std::ios::trunc);
    rewrite << kept.str();
  }
  out_.open(path_, std::ios::app);
  if (!out_) throw std::runtime_error("cannot open '" + path_ + "' for writing");
}

void MetricsLog::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open metrics file '" + path + "'");
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace ewa
