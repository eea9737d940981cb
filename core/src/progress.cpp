// Progress bar drawing: TTY redraw with \r, or a plain line every 10% / 30 s.
#include "ewa/core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <sstream>

namespace ewa {

std::string format_duration(double s) {
  char buf[32];
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%.1fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%dh%02dm", static_cast<int>(s) / 3600,
                  (static_cast<int>(s) % 3600) / 60);
  }
  return buf;
}

ProgressBar::ProgressBar(int64_t total, std::string label, std::string unit)
    : total_(total),
      label_(std::move(label)),
      unit_(std::move(unit)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)),
      plain_(!isatty(STDERR_FILENO)) {}

ProgressBar::~ProgressBar() {
  if (!finished_ && count_ > 0) finish();
}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double ProgressBar::rate() const {
  double e = elapsed_seconds();
  return e > 0 ? static_cast<double>(count_) / e : 0.0;
}

void ProgressBar::update(int64_t n, const std::vector<std::pair<std::string, double>>& metrics) {
  count_ += n;
  if (!metrics.empty()) metrics_ = metrics;
  draw(false);
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

std::string ProgressBar::line(bool final) const {
  std::ostringstream os;
  os << label_ << " ";
  double r = rate();
  if (total_ > 0) {
    double frac = std::min(1.0, static_cast<double>(count_) / static_cast<double>(total_));
    const int width = 24;
    int filled = static_cast<int>(frac * width);
    os << "[";
    for (int i = 0; i < width; ++i) os << (i < filled ? '#' : (i == filled ? '>' : '.'));
    char pct[16];
    std::snprintf(pct, sizeof(pct), "] %3d%% ", static_cast<int>(frac * 100));
    os << pct << count_ << "/" << total_;
  } else {
    os << count_;
  }
  char rate_buf[48];
  std::snprintf(rate_buf, sizeof(rate_buf), " %.1f %s/s", r, unit_.c_str());
  os << rate_buf;
  if (final) {
    os << " in " << format_duration(elapsed_seconds());
  } else if (total_ > 0 && r > 0) {
    os << " eta " << format_duration(static_cast<double>(total_ - count_) / r);
  }
  for (const auto& [k, v] : metrics_) {
    char mb[64];
    std::snprintf(mb, sizeof(mb), " %s=%.4g", k.c_str(), v);
    os << mb;
  }
  return os.str();
}

void ProgressBar::draw(bool final) {
  auto now = std::chrono::steady_clock::now();
  if (plain_) {
    int pct = total_ > 0 ? static_cast<int>(100.0 * static_cast<double>(count_) / static_cast<double>(total_)) : -1;
    bool due = final || (total_ > 0 && pct / 10 > last_plain_percent_ / 10) ||
               now - last_draw_ > std::chrono::seconds(30);
    if (!due) return;
    last_plain_percent_ = pct;
    last_draw_ = now;
    std::fprintf(stderr, "%s\n", line(final).c_str());
    std::fflush(stderr);
    return;
  }
  if (!final && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  std::fprintf(stderr, "\r\033[2K%s%s", line(final).c_str(), final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace ewa
