// Shared test helpers: temporary directories, the optional ../shared/data folder, running
// the `ewa` CLI and capturing its output.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace ewa::test {

namespace fs = std::filesystem;

/// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("ewa_test_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string str(const std::string& rel = "") const { return (rel.empty() ? path_ : path_ / rel).string(); }

 private:
  fs::path path_;
};

inline void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << text;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The real-data folder (../shared/data) or "" when it is absent.
inline std::string shared_data_dir() {
  const char* env = std::getenv("EWA_SHARED_DATA");
  fs::path p = env ? fs::path(env) : fs::path(EWA_SHARED_DATA_DIR);
  return fs::exists(p / "README.md") ? p.string() : std::string();
}

#define EWA_REQUIRE_SHARED_DATA(var)                                                  \
  std::string var = ::ewa::test::shared_data_dir();                                   \
  if (var.empty()) GTEST_SKIP() << "../shared/data not present (real-data test skipped)"

struct CommandResult {
  int status = -1;
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};

/// Runs a shell command, capturing stdout and stderr separately.
inline CommandResult run_command(const std::string& cmd) {
  TempDir tmp;
  std::string o = tmp.str("out.txt"), e = tmp.str("err.txt");
  int rc = std::system((cmd + " >" + o + " 2>" + e + " </dev/null").c_str());
  CommandResult r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  r.out = read_file(o);
  r.err = read_file(e);
  return r;
}

#ifdef EWA_CLI_PATH
/// Runs `ewa ARGS` (the binary built with the tests).
inline CommandResult run_ewa(const std::string& args) {
  return run_command(std::string("'") + EWA_CLI_PATH + "' " + args);
}
#endif

}  // namespace ewa::test
