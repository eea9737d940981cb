// error_line(): exceptions -> one user-facing line (see error_text.h).
#include "ewa/core/error_text.h"

#include <c10/util/Exception.h>

#include <cctype>
#include <cstdio>
#include <new>
#include <string>

namespace ewa {
namespace {

std::string first_line_of(const std::string& s) {
  const auto nl = s.find('\n');
  std::string out = nl == std::string::npos ? s : s.substr(0, nl);
  while (!out.empty() && (out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return out;
}

/// "DefaultCPUAllocator: not enough memory: you tried to allocate 1234 bytes." -> "1.2 GB".
std::string requested_size(const std::string& msg) {
  const std::string key = "tried to allocate ";
  const auto at = msg.find(key);
  if (at == std::string::npos) return "";
  size_t i = at + key.size();
  unsigned long long bytes = 0;
  bool digits = false;
  while (i < msg.size() && std::isdigit(static_cast<unsigned char>(msg[i]))) {
    bytes = bytes * 10 + static_cast<unsigned>(msg[i++] - '0');
    digits = true;
  }
  if (!digits) return "";
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.1f GB", b / 1e9);
  } else if (b >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%llu bytes", bytes);
  }
  return buf;
}

/// A message that is only a C++ library identifier ("stoi", "basic_string::substr",
/// "vector::_M_range_check: __n ...", "map::at").
bool is_library_text(const std::string& msg) {
  static const char* kNames[] = {"stoi", "stol", "stoll", "stoul", "stoull", "stof", "stod", "stold",
                                 "basic_string", "vector::", "map::at", "unordered_map::at",
                                 "std::bad_alloc", "std::bad_array_new_length", "bad_optional_access",
                                 "std::future_error", "bitset::"};
  for (const char* n : kNames) {
    if (msg.rfind(n, 0) == 0) return true;
  }
  return false;
}

}  // namespace

bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return true;
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) {
    const std::string m = c->what_without_backtrace();
    // LibTorch 1.13 says "can't allocate memory" (posix_memalign), 2.x "not enough memory".
    return m.find("not enough memory") != std::string::npos || m.find("can't allocate memory") != std::string::npos;
  }
  return false;
}

std::string error_line(const std::exception& e) {
  std::string msg;
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) {
    msg = first_line_of(c->what_without_backtrace());
  } else {
    msg = first_line_of(e.what());
  }
  if (is_out_of_memory(e)) {
    const std::string size = requested_size(msg);
    return size.empty() ? "out of memory" : "out of memory (an allocation of " + size + " failed)";
  }
  if (is_library_text(msg)) {
    return "malformed input: a value could not be read (a parser failed without naming the file; please report "
           "this with the input)";
  }
  return msg;
}

}  // namespace ewa
