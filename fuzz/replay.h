// The harness table of ewa_fuzz_replay (generated into the build directory from the
// fuzz_*.cpp files, each compiled with its entry point renamed to ewa_fuzz_entry_<name>).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ewa_fuzz {

struct Harness {
  const char* name;                           ///< <name> of fuzz/fuzz_<name>.cpp
  int (*entry)(const uint8_t* data, size_t size);  ///< its LLVMFuzzerTestOneInput
};

/// Every harness linked into this executable, sorted by name.
const std::vector<Harness>& harnesses();

}  // namespace ewa_fuzz
