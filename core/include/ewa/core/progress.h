// Terminal progress bar: rate, ETA and running metrics on one redrawn line when stderr is a
// TTY; plain periodic lines otherwise (logs, CI).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ewa {

class ProgressBar {
 public:
  /// `total` units (0 = unknown), `label` shown before the bar, `unit` e.g. "it", "img".
  ProgressBar(int64_t total, std::string label, std::string unit = "it");
  ~ProgressBar();

  /// Advances by `n` units and replaces the running metrics shown after the bar.
  void update(int64_t n, const std::vector<std::pair<std::string, double>>& metrics = {});
  /// Draws the final state and ends the line.
  void finish();

  double elapsed_seconds() const;
  double rate() const;  ///< units per second so far
  int64_t count() const { return count_; }
  /// Forces plain (non-redrawing) output, e.g. in tests.
  void set_plain(bool plain) { plain_ = plain; }

 private:
  void draw(bool final);
  std::string line(bool final) const;

  int64_t total_;
  int64_t count_ = 0;
  std::string label_;
  std::string unit_;
  std::vector<std::pair<std::string, double>> metrics_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool plain_;
  bool finished_ = false;
  int last_plain_percent_ = -1;
};

/// Formats seconds as `1h02m`, `3m05s`, `12.3s`.
std::string format_duration(double seconds);

}  // namespace ewa
