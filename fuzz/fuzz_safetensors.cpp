// libFuzzer harness: safetensors files (u64 header length, JSON header, raw data), through
// the in-memory reader and the header-only file reader.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ewa/core/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  ewa_fuzz::run("input.safetensors", [&] {
    auto contents = ewa::safetensors::deserialize(bytes, "input.safetensors");
    // Whatever was accepted must serialise and read back identically.
    const std::string again = ewa::safetensors::serialize(contents.tensors, contents.metadata);
    auto back = ewa::safetensors::deserialize(again, "round-trip.safetensors");
    if (ewa::safetensors::serialize(back.tensors, back.metadata) != again) {
      ewa_fuzz::contract_broken("safetensors round trip changed the data", "");
    }
  });
  const std::string path = ewa_fuzz::write_file("input.safetensors", data, size);
  ewa_fuzz::run("input.safetensors", [&] { ewa::safetensors::read_header(path); });
  return 0;
}
