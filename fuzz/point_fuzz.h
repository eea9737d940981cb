// Error contract of the point-format harnesses: ewa_fuzz::run's checks, except that text the
// reader quotes from the input ('...': a header key, a token, a format name) may hold anything,
// so the library-text check looks only at the message outside quotes.
#pragma once

#include <string>

#include "ewa/datasets/points/cloud_formats.h"
#include "fuzz_util.h"

namespace ewa_fuzz_points {

/// `msg` with every '...' span replaced by '' (an unterminated quote runs to the end).
inline std::string outside_quotes(const std::string& msg) {
  std::string out;
  bool in = false;
  for (char c : msg) {
    if (c == '\'') {
      in = !in;
      out += c;
    } else if (!in) {
      out += c;
    }
  }
  return out;
}

/// As ewa_fuzz::run: clean one-line errors naming `must_name` pass, everything else aborts.
template <class F>
int run(const std::string& must_name, F&& f) {
  try {
    f();
  } catch (const std::bad_alloc& e) {
    ewa_fuzz::contract_broken("std::bad_alloc escaped (an allocation sized by the input?)", e.what());
  } catch (const std::length_error& e) {
    ewa_fuzz::contract_broken("std::length_error escaped (a size taken from the input?)", e.what());
  } catch (const c10::Error& e) {
    const std::string m = e.what_without_backtrace();
    if (m.find('\n') != std::string::npos) ewa_fuzz::contract_broken("multi-line error message", m);
    ewa_fuzz::check_message(outside_quotes(m), must_name);
  } catch (const std::exception& e) {
    const std::string m = e.what();
    if (m.find('\n') != std::string::npos) ewa_fuzz::contract_broken("multi-line error message", m);
    ewa_fuzz::check_message(outside_quotes(m), must_name);
  }
  return 0;
}

/// The whole harness of a point format read through open_cloud: the input is written to
/// `file_name` (its extension selects the format) and opened with `options`; an accepted cloud
/// must meet open_cloud's contract: float32 [N,3] finite coordinates, N > 0.
inline int fuzz_cloud_file(const char* file_name, const uint8_t* data, size_t size,
                           const ewa::datasets::CloudReadOptions& options = {}) {
  const std::string path = ewa_fuzz::write_file(file_name, data, size);
  return run(file_name, [&] {
    const auto s = ewa::datasets::open_cloud(path, options);
    const auto& c = s.cloud;
    if (c.coord.dim() != 2 || c.coord.size(1) != 3 || c.size() == 0) std::abort();
    if (!torch::isfinite(c.coord).all().item<bool>()) std::abort();
  });
}

}  // namespace ewa_fuzz_points
