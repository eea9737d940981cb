// `ewa sweep CONFIG --grid KEY=V1,V2 ... --seeds N`: runs `ewa train` over a grid of overrides
// and seeds (one child process per run, resumable), then writes one table: mean, std and n of a
// metric per cell and the paired difference to a baseline cell with its 95% t interval.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"

namespace ewa::app {

namespace fs = std::filesystem;

namespace {

std::atomic<int> g_sweep_signal{0};
extern "C" void ewa_sweep_on_signal(int sig) { g_sweep_signal.store(sig); }

/// One cell of the grid: a label and the overrides that make it.
struct Cell {
  std::string label;
  std::vector<std::string> sets;
};

/// Splits "a,b,[c,d]" at the commas outside brackets and braces.
std::vector<std::string> split_values(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : s) {
    if (c == '[' || c == '{') ++depth;
    if (c == ']' || c == '}') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

/// Variants ("NAME: K=V K=V") times the cartesian product of the --grid axes.
std::vector<Cell> make_cells(const std::vector<std::string>& variants, const std::vector<std::string>& grid) {
  std::vector<Cell> cells;
  if (variants.empty()) {
    cells.push_back({"", {}});
  } else {
    for (const auto& v : variants) {
      const auto colon = v.find(':');
      if (colon == std::string::npos || colon == 0) {
        throw UsageError("sweep: --variant '" + v + "': expected 'NAME: KEY=VALUE [KEY=VALUE ...]'");
      }
      Cell c{v.substr(0, colon), {}};
      std::istringstream rest(v.substr(colon + 1));
      for (std::string kv; rest >> kv;) {
        if (kv.find('=') == std::string::npos) throw UsageError("sweep: --variant '" + v + "': '" + kv + "' is not KEY=VALUE");
        c.sets.push_back(kv);
      }
      cells.push_back(c);
    }
  }
  for (const auto& axis : grid) {
    const auto eq = axis.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == axis.size()) {
      throw UsageError("sweep: --grid '" + axis + "': expected KEY=V1,V2,...");
    }
    const std::string key = axis.substr(0, eq);
    std::vector<Cell> next;
    for (const auto& c : cells) {
      for (const auto& v : split_values(axis.substr(eq + 1))) {
        Cell n = c;
        n.sets.push_back(key + "=" + v);
        n.label += (n.label.empty() ? "" : ", ") + key + "=" + v;
        next.push_back(n);
      }
    }
    cells = std::move(next);
  }
  if (cells.size() == 1 && cells[0].label.empty()) cells[0].label = "config";
  return cells;
}

/// A folder name for a cell label.
std::string slug(const std::string& label) {
  std::string s;
  for (char c : label) s += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
  return s.substr(0, 120);
}

/// Two-sided 95% Student t quantile for `df` degrees of freedom.
double t975(int64_t df) {
  static const double k[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                             2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                             2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (df < 1) return std::nan("");
  return df <= 30 ? k[df - 1] : 1.960 + 2.5 / static_cast<double>(df);
}

struct Stats {
  int64_t n = 0;
  double mean = std::nan(""), std = std::nan("");
};
Stats stats_of(const std::vector<double>& v) {
  Stats s;
  s.n = static_cast<int64_t>(v.size());
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return s;
}

std::string fmt(double v, int prec = 4) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream o;
  o << std::fixed << std::setprecision(prec) << v;
  return o.str();
}

/// The metric from RUN_DIR/metrics.jsonl's final record, or NaN when the run did not finish.
double final_metric(const fs::path& run_dir, const std::string& metric, bool* finished) {
  *finished = false;
  std::ifstream in(run_dir / "metrics.jsonl");
  double value = std::nan("");
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("kind", "") != "final") continue;
    *finished = !j.value("interrupted", false);
    value = j.contains(metric) && j[metric].is_number() ? j[metric].get<double>() : std::nan("");
  }
  return value;
}

/// Runs one child command and waits; SIGINT/SIGTERM to the sweep are passed on (the trainer
/// then writes its `last` checkpoint). Returns the exit status.
int run_child(const std::vector<std::string>& argv, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("sweep: fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    if (FILE* f = std::freopen(log.c_str(), "a", stderr)) (void)f;
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "ewa sweep: cannot run '%s': %s\n", args[0], std::strerror(errno));
    std::_Exit(127);
  }
  bool forwarded = false;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 1;
    if (!forwarded && g_sweep_signal.load() != 0) {
      ::kill(pid, SIGTERM);
      forwarded = true;
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

struct SweepArgs {
  std::string config;
  std::vector<std::string> grid, variants, set;
  std::string seeds = "3";
  std::string metric = "val.top1";
  std::string baseline;
  std::string out = "runs/sweep";
  std::string budget;
  bool dry_run = false;
};

double parse_duration(const std::string& s) {
  if (s.empty()) return 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  const std::string unit = end ? std::string(end) : "";
  const double f = unit == "h" ? 3600 : unit == "m" ? 60 : unit == "s" || unit.empty() ? 1 : -1;
  if (!(v > 0) || f < 0 || !std::isfinite(v)) throw UsageError("sweep: --budget '" + s + "': expected e.g. 90m, 3h, 5400s");
  return v * f;
}

int run_sweep(const SweepArgs& a) {
  if (!fs::exists(a.config)) throw UsageError("sweep: config '" + a.config + "' not found");
  const std::vector<Cell> cells = make_cells(a.variants, a.grid);
  std::vector<int64_t> seeds;
  const bool is_list = a.seeds.find(',') != std::string::npos;
  for (const auto& s : split_values(a.seeds)) {
    if (s.empty() && is_list) continue;  // "7," = the one seed 7
    try {
      size_t used = 0;
      seeds.push_back(std::stoll(s, &used));
      if (used != s.size() || seeds.back() < 0) throw std::invalid_argument(s);
    } catch (const std::exception&) {
      throw UsageError("sweep: --seeds '" + a.seeds + "': expected a count N (seeds 0..N-1) or a list like 3,4,5");
    }
  }
  if (!is_list) {  // --seeds 3 = seeds 0, 1, 2
    const int64_t n = seeds[0];
    if (n < 1 || n > 1000) throw UsageError("sweep: --seeds " + a.seeds + ": expected a count from 1 to 1000");
    seeds.clear();
    for (int64_t i = 0; i < n; ++i) seeds.push_back(i);
  }
  size_t base = 0;
  if (!a.baseline.empty()) {
    base = cells.size();
    for (size_t i = 0; i < cells.size(); ++i) {
      if (cells[i].label == a.baseline) base = i;
    }
    if (base == cells.size()) {
      std::string have;
      for (const auto& c : cells) have += "\n  " + c.label;
      throw UsageError("sweep: --baseline '" + a.baseline + "' is not a cell; cells:" + have);
    }
  }
  const double budget_s = parse_duration(a.budget);
  const fs::path out = a.out;
  fs::create_directories(out);
  const std::string exe = self_exe();

  struct Run {
    size_t cell;
    int64_t seed;
    fs::path dir;
    std::vector<std::string> argv;
    std::string command;
  };
  std::vector<Run> runs;  // seed-major: a sweep stopped early has complete paired seeds
  for (int64_t seed : seeds) {
    for (size_t c = 0; c < cells.size(); ++c) {
      Run r{c, seed, out / slug(cells[c].label) / ("seed" + std::to_string(seed)), {}, {}};
      r.argv = {exe, "train", a.config};
      std::vector<std::string> sets = a.set;
      sets.insert(sets.end(), cells[c].sets.begin(), cells[c].sets.end());
      sets.push_back("run.seed=" + std::to_string(seed));
      sets.push_back("train.progress=false");
      for (const auto& s : sets) r.argv.insert(r.argv.end(), {"--set", s});
      r.argv.insert(r.argv.end(), {"--run-dir", r.dir.string()});
      r.command = "ewa train " + shell_quote(a.config);
      for (const auto& s : sets) r.command += " --set " + shell_quote(s);
      r.command += " --run-dir " + shell_quote(r.dir.string());
      runs.push_back(r);
    }
  }
  std::cout << "sweep: " << cells.size() << " cells x " << seeds.size() << " seeds = " << runs.size() << " runs -> "
            << out.string() << "\n";
  if (a.dry_run) {
    for (const auto& r : runs) std::cout << r.command << "\n";
    return 0;
  }

  struct sigaction sa {}, old_int{}, old_term{};
  sa.sa_handler = ewa_sweep_on_signal;
  sigemptyset(&sa.sa_mask);
  g_sweep_signal.store(0);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  const auto t0 = std::chrono::steady_clock::now();
  double run_seconds = 0;
  int ran = 0, failed = 0;
  bool stopped = false;
  std::map<std::pair<size_t, int64_t>, double> value;
  std::map<std::pair<size_t, int64_t>, double> wall;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    bool finished = false;
    double v = final_metric(r.dir, a.metric, &finished);
    const fs::path done = r.dir / "sweep_run.json";
    if (!(finished && fs::exists(done))) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (budget_s > 0 && ran > 0 && elapsed + run_seconds / ran > budget_s) {
        std::cout << "sweep: --budget " << a.budget << " reached after " << ran << " runs this time; run the same "
                  << "command again to continue\n";
        stopped = true;
        break;
      }
      std::vector<std::string> argv = r.argv;
      if (fs::exists(r.dir / "checkpoints" / "last.ckpt")) argv.insert(argv.end(), {"--resume", r.dir.string()});
      fs::create_directories(r.dir);
      std::cout << "[" << i + 1 << "/" << runs.size() << "] " << cells[r.cell].label << ", seed " << r.seed << " ..."
                << std::flush;
      const auto s0 = std::chrono::steady_clock::now();
      const int status = run_child(argv, r.dir / "sweep_stderr.log");
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
      run_seconds += secs;
      ++ran;
      v = final_metric(r.dir, a.metric, &finished);
      std::cout << " " << (finished ? a.metric + " " + fmt(v) : "failed (status " + std::to_string(status) + ")")
                << " in " << fmt(secs, 0) << " s\n";
      if (g_sweep_signal.load() != 0) {
        std::cout << "sweep: interrupted; run the same command again to continue\n";
        stopped = true;
        break;
      }
      if (!finished) {
        ++failed;
        spdlog::error("sweep: run failed, see {}", (r.dir / "sweep_stderr.log").string());
        continue;
      }
      std::ofstream(done) << nlohmann::json{{"command", r.command}, {"seconds", secs}, {a.metric, v}}.dump(2) << "\n";
    }
    if (finished) {
      value[{r.cell, r.seed}] = v;
      std::ifstream in(done);
      const auto j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_object() && j.contains("seconds")) wall[{r.cell, r.seed}] = j["seconds"].get<double>();
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);

  // ---- the table
  std::ostringstream md;
  md << "| cell | n | " << a.metric << " mean | std | diff to baseline (paired) | 95% interval | pairs |"
     << " s/run |\n|---|---|---|---|---|---|---|---|\n";
  nlohmann::json rows = nlohmann::json::array();
  for (size_t c = 0; c < cells.size(); ++c) {
    std::vector<double> v, d, w;
    for (int64_t s : seeds) {
      auto it = value.find({c, s});
      if (it == value.end()) continue;
      v.push_back(it->second);
      if (auto wt = wall.find({c, s}); wt != wall.end()) w.push_back(wt->second);
      auto b = value.find({base, s});
      if (b != value.end()) d.push_back(it->second - b->second);
    }
    const Stats st = stats_of(v), sd = stats_of(d), sw = stats_of(w);
    const double half = sd.n > 1 ? t975(sd.n - 1) * sd.std / std::sqrt(static_cast<double>(sd.n)) : std::nan("");
    const bool is_base = c == base;
    md << "| " << cells[c].label << (is_base ? " (baseline)" : "") << " | " << st.n << " | " << fmt(st.mean) << " | "
       << fmt(st.std) << " | " << (is_base ? "-" : fmt(sd.mean)) << " | "
       << (is_base || !std::isfinite(half) ? "-" : "[" + fmt(sd.mean - half) + ", " + fmt(sd.mean + half) + "]")
       << " | " << (is_base ? 0 : sd.n) << " | " << fmt(sw.mean, 0) << " |\n";
    rows.push_back({{"cell", cells[c].label}, {"overrides", cells[c].sets}, {"n", st.n}, {"values", v},
                    {"mean", st.mean}, {"std", st.std}, {"baseline", is_base}, {"diff_mean", sd.mean},
                    {"diff_ci95", {sd.mean - half, sd.mean + half}}, {"pairs", sd.n}, {"seconds_per_run", sw.mean}});
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ostringstream doc;
  doc << "# ewa sweep: " << a.config << "\n\n" << md.str() << "\n"
      << "Metric `" << a.metric << "` from each run's final evaluation (metrics.jsonl); seeds " << a.seeds
      << "; the interval is mean +- t(0.975, pairs-1) * sd / sqrt(pairs) of the per-seed difference to the baseline.\n"
      << "Machine: " << cpu_model() << ", " << std::thread::hardware_concurrency() << " threads. This invocation: " << ran
      << " runs in " << fmt(total, 0) << " s.\n\nCommands:\n\n```\n";
  for (const auto& r : runs) doc << r.command << "\n";
  doc << "```\n";
  std::ofstream(out / "sweep.md") << doc.str();
  std::ofstream(out / "sweep.json") << nlohmann::json{{"config", a.config}, {"metric", a.metric}, {"seeds", seeds},
                                                      {"baseline", cells[base].label}, {"rows", rows}}
                                           .dump(2)
                                    << "\n";
  std::cout << "\n" << md.str() << "\nwrote " << (out / "sweep.md").string() << " and sweep.json\n";
  if (stopped) return 130;
  return failed > 0 ? 1 : 0;
}

}  // namespace

void add_sweep_command(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("sweep", "Train a grid of config overrides x seeds and tabulate a metric with paired differences");
  auto a = std::make_shared<SweepArgs>();
  cmd->add_option("config", a->config, "YAML config every run starts from")->required();
  cmd->add_option("--grid", a->grid, "An axis: KEY=V1,V2,... (repeatable; cells are the product)")->take_all();
  cmd->add_option("--variant", a->variants, "A named cell: 'NAME: KEY=V [KEY=V ...]' (repeatable; times the grid)")
      ->take_all();
  cmd->add_option("--set", a->set, "Override for every run: KEY=VALUE")->take_all();
  cmd->add_option("--seeds", a->seeds, "A count N (seeds 0..N-1, default 3) or a list like 3,4,5 (one seed: 7,)");
  cmd->add_option("--metric", a->metric, "Final metric to tabulate (default val.top1; point clouds: val.miou)");
  cmd->add_option("--baseline", a->baseline, "Cell the others are compared with (its label; default: the first)");
  cmd->add_option("--out", a->out, "Sweep folder: one run directory per cell and seed, sweep.md, sweep.json");
  cmd->add_option("--budget", a->budget, "Wall-time budget (90m, 3h): stops before a run that would exceed it");
  cmd->add_flag("--dry-run", a->dry_run, "Print the runs' commands and stop");
  cmd->footer(
      "Runs go seed by seed (every cell of seed 0, then seed 1, ...) as child `ewa train` processes; a finished\n"
      "run is kept and an interrupted one resumes from its last checkpoint, so the same command continues a\n"
      "sweep. Example:\n"
      "  ewa sweep configs/fashion_mnist/cls-vit-ewa.yaml --grid model.ewa.share_rate=0.1,0.3,0.5 \\\n"
      "      --grid model.ewa.schedule=constant,linear --seeds 3 --budget 3h --out runs/sweep-share\n"
      "  ewa sweep configs/fashion_mnist/cls-vit-ewa.yaml --variant 'vanilla: model.moe.enabled=false \\\n"
      "      model.ewa.enabled=false' --variant 'ewa: model.ewa.enabled=true' --variant 'ema: model.moe.enabled=false \\\n"
      "      model.ewa.enabled=false train.ema.enabled=true' --seeds 3 --out runs/sweep-methods");
  cmd->callback([a, &global] {
    apply_global_options(global);
    const int status = run_sweep(*a);
    if (status != 0) throw ExitCode(status);
  });
}

}  // namespace ewa::app
