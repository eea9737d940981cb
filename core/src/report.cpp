// HTML/SVG run report.
#include "ewa/core/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>

#include "ewa/core/checkpoint.h"
#include "ewa/core/metrics_log.h"

namespace ewa {

namespace fs = std::filesystem;

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v) {
  std::ostringstream s;
  if (v != 0 && (std::fabs(v) < 1e-3 || std::fabs(v) >= 1e5)) {
    s << std::setprecision(3) << std::scientific << v;
  } else {
    s << std::setprecision(4) << v;
  }
  return s.str();
}

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;
};

// Line chart with axes, 4 ticks per axis and a legend.
std::string line_chart(const std::string& title, const std::string& xlabel, const std::vector<Series>& series) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
      y0 = std::min(y0, y);
      y1 = std::max(y1, y);
    }
  }
  if (!std::isfinite(x0)) return "";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) {
    y1 += std::max(1e-12, std::fabs(y1) * 0.05);
    y0 -= std::max(1e-12, std::fabs(y0) * 0.05);
  }
  const double W = 460, H = 260, L = 60, R = 10, T = 28, B = 40;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream o;
  o << std::fixed << std::setprecision(1);
  o << "<svg class=\"chart\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H
    << "\" xmlns=\"http://www.w3.org/2000/svg\">";
  o << "<text x=\"" << W / 2 << "\" y=\"16\" text-anchor=\"middle\" class=\"title\">" << esc(title) << "</text>";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"none\" stroke=\"#999\"/>";
  for (int i = 0; i <= 4; ++i) {
    const double xv = x0 + (x1 - x0) * i / 4.0, yv = y0 + (y1 - y0) * i / 4.0;
    o << "<text x=\"" << px(xv) << "\" y=\"" << H - B + 14 << "\" text-anchor=\"middle\" class=\"tick\">" << num(xv)
      << "</text>";
    o << "<text x=\"" << L - 4 << "\" y=\"" << py(yv) + 3 << "\" text-anchor=\"end\" class=\"tick\">" << num(yv)
      << "</text>";
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << py(yv) << "\" y2=\"" << py(yv)
      << "\" stroke=\"#eee\"/>";
  }
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 6 << "\" text-anchor=\"middle\" class=\"tick\">"
    << esc(xlabel) << "</text>";
  size_t ci = 0;
  for (const auto& s : series) {
    const char* color = kColors[ci % 10];
    std::ostringstream pts;
    pts << std::fixed << std::setprecision(1);
    size_t n = 0;
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      pts << px(x) << "," << py(y) << " ";
      ++n;
    }
    if (n == 1) {
      o << "<circle cx=\"" << px(s.points[0].first) << "\" cy=\"" << py(s.points[0].second) << "\" r=\"3\" fill=\""
        << color << "\"/>";
    } else if (n > 1) {
      o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"" << pts.str() << "\"/>";
    }
    o << "<text x=\"" << L + 6 << "\" y=\"" << T + 14 + 13 * ci << "\" fill=\"" << color << "\" class=\"tick\">"
      << esc(s.name) << "</text>";
    ++ci;
  }
  o << "</svg>";
  return o.str();
}

// Heatmap: rows x cols of values in [0, vmax]; row/col labels optional.
std::string heatmap(const std::string& title, const std::vector<std::vector<double>>& v,
                    const std::vector<std::string>& row_names, const std::vector<std::string>& col_names,
                    const std::string& xlabel, const std::string& ylabel, bool annotate) {
  if (v.empty() || v[0].empty()) return "";
  const size_t rows = v.size(), cols = v[0].size();
  double vmax = 0;
  for (const auto& r : v)
    for (double x : r)
      if (std::isfinite(x)) vmax = std::max(vmax, x);
  if (vmax <= 0) vmax = 1;
  const double L = 70, T = 28, B = 36, R = 10;
  const double cw = std::max(2.0, std::min(36.0, 380.0 / static_cast<double>(cols)));
  const double ch = std::max(8.0, std::min(28.0, 240.0 / static_cast<double>(rows)));
  const double W = L + cw * static_cast<double>(cols) + R, H = T + ch * static_cast<double>(rows) + B;
  std::ostringstream o;
  o << std::fixed << std::setprecision(1);
  o << "<svg class=\"chart\" width=\"" << W << "\" height=\"" << H << "\" xmlns=\"http://www.w3.org/2000/svg\">";
  o << "<text x=\"" << W / 2 << "\" y=\"16\" text-anchor=\"middle\" class=\"title\">" << esc(title) << "</text>";
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols && c < v[r].size(); ++c) {
      const double t = std::clamp(v[r][c] / vmax, 0.0, 1.0);
      const int g = static_cast<int>(255 - 200 * t), b = static_cast<int>(255 - 90 * t);
      o << "<rect x=\"" << L + cw * static_cast<double>(c) << "\" y=\"" << T + ch * static_cast<double>(r)
        << "\" width=\"" << cw << "\" height=\"" << ch << "\" fill=\"rgb(" << g << "," << g << "," << b
        << ")\"><title>" << num(v[r][c]) << "</title></rect>";
      if (annotate && cw >= 18 && ch >= 12) {
        o << "<text x=\"" << L + cw * (static_cast<double>(c) + 0.5) << "\" y=\""
          << T + ch * (static_cast<double>(r) + 0.5) + 3 << "\" text-anchor=\"middle\" class=\"cell\" fill=\""
          << (t > 0.6 ? "#fff" : "#000") << "\">" << num(v[r][c]) << "</text>";
      }
    }
    const std::string name = r < row_names.size() ? row_names[r] : std::to_string(r);
    o << "<text x=\"" << L - 4 << "\" y=\"" << T + ch * (static_cast<double>(r) + 0.5) + 3
      << "\" text-anchor=\"end\" class=\"tick\">" << esc(name) << "</text>";
  }
  if (!col_names.empty()) {
    const size_t stride = std::max<size_t>(1, cols / 8);
    for (size_t c = 0; c < cols; c += stride) {
      o << "<text x=\"" << L + cw * (static_cast<double>(c) + 0.5) << "\" y=\"" << T + ch * static_cast<double>(rows) + 12
        << "\" text-anchor=\"middle\" class=\"tick\">" << esc(c < col_names.size() ? col_names[c] : "") << "</text>";
    }
  }
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 4 << "\" text-anchor=\"middle\" class=\"tick\">"
    << esc(xlabel) << "</text>";
  o << "<text x=\"12\" y=\"" << T + ch * static_cast<double>(rows) / 2 << "\" class=\"tick\" transform=\"rotate(-90 12 "
    << T + ch * static_cast<double>(rows) / 2 << ")\" text-anchor=\"middle\">" << esc(ylabel) << "</text>";
  o << "</svg>";
  return o.str();
}

double as_double(const nlohmann::json& j) { return j.is_number() ? j.get<double>() : std::nan(""); }

}  // namespace

ConfusionMatrix read_confusion_csv(const std::string& path) {
  ConfusionMatrix m;
  std::ifstream in(path, std::ios::binary);
  if (!in) return m;
  auto fail = [&](int line_no, const std::string& why) {
    throw std::runtime_error("confusion matrix '" + path + "'" +
                             (line_no > 0 ? ", line " + std::to_string(line_no) : std::string()) + ": " + why);
  };
  std::string line;
  int line_no = 0;
  bool header_seen = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    // Cells: split on ',' (what `ewa eval` writes), else on ';' or tabs, else on blanks.
    const char* seps = line.find(',') != std::string::npos   ? ","
                       : line.find(';') != std::string::npos ? ";"
                       : line.find('\t') != std::string::npos ? "\t"
                                                              : " ";
    std::vector<std::string> cells;
    size_t start = 0;
    while (start <= line.size()) {
      const size_t end = line.find_first_of(seps, start);
      std::string cell = line.substr(start, end == std::string::npos ? std::string::npos : end - start);
      const size_t b0 = cell.find_first_not_of(" \t\r");
      cell = b0 == std::string::npos ? std::string() : cell.substr(b0, cell.find_last_not_of(" \t\r") - b0 + 1);
      if (!(seps[0] == ' ' && cell.empty())) cells.push_back(std::move(cell));
      if (end == std::string::npos) break;
      start = end + 1;
    }
    if (cells.empty() || (cells.size() == 1 && cells[0].empty())) continue;  // blank line
    std::vector<double> row;
    row.reserve(cells.size());
    bool numeric = true;
    for (const auto& c : cells) {
      char* end = nullptr;
      const double v = std::strtod(c.c_str(), &end);
      if (c.empty() || end != c.c_str() + c.size()) {
        numeric = false;
        break;
      }
      if (!std::isfinite(v) || v < 0) fail(line_no, "expected counts (finite numbers >= 0), found '" + c + "'");
      row.push_back(v);
    }
    if (!numeric) {
      if (m.counts.empty() && !header_seen) {  // the first row may name the classes
        header_seen = true;
        m.names = std::move(cells);
        continue;
      }
      fail(line_no, "expected numbers only");
    }
    if (!m.counts.empty() && row.size() != m.counts[0].size()) {
      fail(line_no, std::to_string(row.size()) + " columns, expected " + std::to_string(m.counts[0].size()));
    }
    if (m.counts.size() >= row.size()) {  // more rows than columns: cannot be square
      fail(line_no, "more rows than the " + std::to_string(row.size()) + " columns (must be square)");
    }
    m.counts.push_back(std::move(row));
  }
  if (!m.counts.empty() && m.counts.size() != m.counts[0].size()) {
    fail(0, std::to_string(m.counts.size()) + " rows but " + std::to_string(m.counts[0].size()) +
                " columns (must be square)");
  }
  return m;
}

std::string render_report_html(const std::string& title, const std::vector<nlohmann::json>& records,
                               const ConfusionMatrix& confusion_in, const std::string& config_yaml) {
  std::map<std::string, Series> step_series, epoch_series, lr_series, tput_series;
  // routing statistic (router_entropy, dropped_fraction, ...) -> layer -> series over steps
  std::map<std::string, std::map<std::string, Series>> routing_series;
  // layer -> (steps, loads[step][expert])
  std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::vector<double>>>> loads;
  nlohmann::json final_record;
  for (const auto& r : records) {
    const std::string kind = r.value("kind", "");
    const double step = r.contains("step") ? as_double(r["step"]) : std::nan("");
    if (kind == "step") {
      for (const auto& [k, v] : r.items()) {
        if (!v.is_number()) continue;
        if (k == "loss" || k.rfind("aux.", 0) == 0 || k.rfind("train.", 0) == 0) {
          step_series[k].name = k;
          step_series[k].points.emplace_back(step, v.get<double>());
        } else if (k == "lr" || k == "share_rate") {
          lr_series[k].name = k;
          lr_series[k].points.emplace_back(step, v.get<double>());
        } else if (k == "samples_per_sec") {
          tput_series[k].name = "samples/s";
          tput_series[k].points.emplace_back(step, v.get<double>());
        }
      }
      if (r.contains("routing") && r["routing"].is_object()) {
        for (const auto& [layer, values] : r["routing"].items()) {
          if (!values.is_object()) continue;
          for (const auto& [k, v] : values.items()) {
            if (!v.is_number()) continue;
            auto& series = routing_series[k][layer];
            series.name = layer;
            series.points.emplace_back(step, v.get<double>());
          }
        }
      }
      if (r.contains("expert_load") && r["expert_load"].is_object()) {
        for (const auto& [layer, arr] : r["expert_load"].items()) {
          if (!arr.is_array()) continue;
          std::vector<double> row;
          for (const auto& x : arr) row.push_back(as_double(x));
          auto& L = loads[layer];
          L.first.push_back(num(step));
          L.second.push_back(std::move(row));
        }
      }
    } else if (kind == "epoch") {
      const double epoch = r.contains("epoch") ? as_double(r["epoch"]) : std::nan("");
      for (const auto& [k, v] : r.items()) {
        if (!v.is_number() || k == "epoch" || k == "step" || k == "epoch_time_s") continue;
        epoch_series[k].name = k;
        epoch_series[k].points.emplace_back(epoch, v.get<double>());
      }
    } else if (kind == "final") {
      final_record = r;
    }
  }
  auto values = [](const std::map<std::string, Series>& m, auto pred) {
    std::vector<Series> out;
    for (const auto& [k, s] : m)
      if (pred(k)) out.push_back(s);
    return out;
  };
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" << esc(title) << "</title><style>"
    << "body{font-family:sans-serif;margin:20px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:24px}"
    << ".chart{margin:6px;border:1px solid #ddd;background:#fff}.title{font-size:13px;font-weight:bold}"
    << ".tick{font-size:10px}.cell{font-size:9px}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
    << "padding:3px 8px;font-size:13px}pre{background:#f6f6f6;padding:8px;font-size:12px}</style></head><body>";
  h << "<h1>" << esc(title) << "</h1>";
  if (!final_record.is_null()) {
    h << "<h2>Final</h2><table>";
    for (const auto& [k, v] : final_record.items()) {
      if (k == "kind" || k == "confusion") continue;
      h << "<tr><th>" << esc(k) << "</th><td>" << esc(v.is_number() ? num(v.get<double>()) : v.dump()) << "</td></tr>";
    }
    h << "</table>";
  }
  h << "<h2>Loss and accuracy</h2>";
  h << line_chart("training loss (per logged step)", "step",
                  values(step_series, [](const std::string& k) { return k == "loss" || k.rfind("aux.", 0) == 0; }));
  h << line_chart("train metrics", "step", values(step_series, [](const std::string& k) {
                    return k.rfind("train.", 0) == 0;
                  }));
  h << line_chart("epoch loss", "epoch", values(epoch_series, [](const std::string& k) {
                    return k.find("loss") != std::string::npos;
                  }));
  h << line_chart("evaluation", "epoch", values(epoch_series, [](const std::string& k) {
                    return k.find("loss") == std::string::npos;
                  }));
  h << "<h2>Learning rate and share rate</h2>";
  for (const auto& [k, s] : lr_series) h << line_chart(k, "step", {s});
  h << "<h2>Throughput</h2>";
  for (const auto& [k, s] : tput_series) h << line_chart("throughput (samples/s, all ranks)", "step", {s});
  if (!loads.empty()) {
    h << "<h2>Expert load over training</h2>";
    {
      // One map of all MoE layers: rows = (layer, expert), columns = the logged steps of the
      // first layer (every layer is logged on the same steps).
      std::vector<std::vector<double>> m;
      std::vector<std::string> rows;
      const auto& steps = loads.begin()->second.first;
      for (const auto& [layer, L] : loads) {
        size_t experts = 0;
        for (const auto& row : L.second) experts = std::max(experts, row.size());
        for (size_t e = 0; e < experts; ++e) {
          std::vector<double> r(steps.size(), 0.0);
          for (size_t c = 0; c < L.second.size() && c < steps.size(); ++c) {
            if (e < L.second[c].size()) r[c] = L.second[c][e];
          }
          m.push_back(std::move(r));
          rows.push_back(layer + " e" + std::to_string(e));
        }
      }
      h << heatmap("all MoE layers x experts (token fraction per expert)", m, rows, steps, "step", "layer, expert",
                   false);
    }
    h << "<h2>Expert load per layer</h2>";
    for (const auto& [layer, L] : loads) {
      // transpose: rows = experts, cols = logged steps
      size_t experts = 0;
      for (const auto& row : L.second) experts = std::max(experts, row.size());
      std::vector<std::vector<double>> m(experts, std::vector<double>(L.second.size(), 0.0));
      std::vector<std::string> names;
      for (size_t e = 0; e < experts; ++e) names.push_back("expert " + std::to_string(e));
      for (size_t c = 0; c < L.second.size(); ++c)
        for (size_t e = 0; e < L.second[c].size(); ++e) m[e][c] = L.second[c][e];
      h << heatmap(layer + " (token fraction per expert)", m, names, L.first, "step", "expert", false);
    }
  }
  if (!routing_series.empty()) {
    h << "<h2>Routing per MoE layer</h2>";
    for (const auto& [k, layers] : routing_series) {
      std::vector<Series> series;
      for (const auto& [layer, sr] : layers) series.push_back(sr);
      h << line_chart(k, "step", series);
    }
  }
  ConfusionMatrix confusion = confusion_in;
  if (confusion.counts.empty() && final_record.is_object() && final_record.contains("confusion") &&
      final_record["confusion"].is_array()) {
    for (const auto& row : final_record["confusion"]) {
      std::vector<double> r;
      for (const auto& x : row) r.push_back(as_double(x));
      confusion.counts.push_back(std::move(r));
    }
  }
  if (!confusion.counts.empty()) {
    h << "<h2>Confusion matrix</h2>";
    h << heatmap("rows: true class, columns: predicted", confusion.counts, confusion.names, confusion.names,
                 "predicted", "true", true);
  }
  if (!config_yaml.empty()) h << "<h2>Config</h2><pre>" << esc(config_yaml) << "</pre>";
  h << "</body></html>\n";
  return h.str();
}

std::string write_report(const std::string& run_dir, const std::string& out_path) {
  const fs::path dir(run_dir);
  const fs::path metrics = dir / "metrics.jsonl";
  if (!fs::exists(metrics)) {
    throw std::runtime_error("'" + metrics.string() + "' not found (is '" + run_dir + "' a run directory?)");
  }
  auto records = read_metrics(metrics.string());
  auto confusion = read_confusion_csv((dir / "confusion.csv").string());
  std::string config;
  if (std::ifstream in(dir / "config.yaml"); in) {
    std::stringstream ss;
    ss << in.rdbuf();
    config = ss.str();
  }
  const std::string out = out_path.empty() ? (dir / "report.html").string() : out_path;
  const std::string title = "ewa run report: " + fs::absolute(dir).lexically_normal().filename().string();
  atomic_write_file(out, render_report_html(title, records, confusion, config));
  return out;
}

}  // namespace ewa
