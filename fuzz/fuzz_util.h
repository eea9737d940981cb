// Helpers shared by the harnesses in fuzz/: the input as a file (for path-based readers) and
// run(), which accepts a reader's clean error and turns every breach of the error contract
// (escaped std::bad_alloc / length_error, allocator text, multi-line or library messages,
// messages that do not name the file) into a crash that libFuzzer and the replay test report.
#pragma once

#include <c10/util/Exception.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <stdexcept>
#include <string>

namespace ewa_fuzz {

/// A private folder for this process (/dev/shm when writable, else $TMPDIR or /tmp), removed
/// at exit. Harnesses write their input there under a fixed name per call.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string base = "/dev/shm";
    if (access(base.c_str(), W_OK) != 0) base = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
    std::string tmpl = base + "/ewa-fuzz-XXXXXX";
    if (!mkdtemp(tmpl.data())) {
      std::perror("ewa_fuzz: mkdtemp");
      std::abort();
    }
    static std::string keep = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(keep, ec);
    });
    return tmpl;
  }();
  return dir;
}

/// Writes `data` to scratch_dir()/`file_name` (overwriting) and returns the path.
inline std::string write_file(const std::string& file_name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + file_name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) {
    std::fprintf(stderr, "ewa_fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

[[noreturn]] inline void contract_broken(const char* what, const std::string& message) {
  std::fprintf(stderr, "ewa_fuzz: error contract broken: %s\n  message: %s\n", what, message.c_str());
  std::abort();
}

/// Checks a reader's error message: one line, not library text (stoi, basic_string::substr,
/// allocator and JSON/OpenCV messages), names `must_name` (when not empty; a file name or a
/// config source name).
inline void check_message(const std::string& msg, const std::string& must_name) {
  if (msg.empty()) contract_broken("empty error message", msg);
  if (msg.find('\n') != std::string::npos) contract_broken("multi-line error message", msg);
  static const char* kLibraryText[] = {"stoi", "stol", "stoll", "stoul", "stod", "stof", "basic_string",
                                       "vector::", "map::at", "std::bad_alloc", "bad_array_new_length",
                                       "DefaultCPUAllocator", "not enough memory", "[enforce fail", "[json.exception",
                                       "OpenCV(", "Exception raised from", "terminate called"};
  // Prefixes only: a library that throws writes the start of the message, while our readers
  // start with the file name; a substring test would flag input echoed in a message (and
  // libFuzzer learns the compared strings, so it finds such inputs quickly).
  for (const char* t : kLibraryText) {
    if (msg.rfind(t, 0) == 0) contract_broken("library text in the error message", msg);
  }
  if (!must_name.empty() && msg.find(must_name) == std::string::npos) {
    contract_broken(("error message does not name '" + must_name + "'").c_str(), msg);
  }
}

/// Runs `f` (a reader call on the input). Clean errors (std::exception with a good message)
/// are the expected outcome of bad input; anything that shows an allocation sized by the
/// input (std::bad_alloc, std::length_error, allocator errors) aborts.
template <class F>
int run(const std::string& must_name, F&& f) {
  try {
    f();
  } catch (const std::bad_alloc& e) {
    contract_broken("std::bad_alloc escaped (an allocation sized by the input?)", e.what());
  } catch (const std::length_error& e) {
    contract_broken("std::length_error escaped (a size taken from the input?)", e.what());
  } catch (const c10::Error& e) {
    check_message(e.what_without_backtrace(), must_name);
  } catch (const std::exception& e) {
    check_message(e.what(), must_name);
  }
  return 0;
}

}  // namespace ewa_fuzz
