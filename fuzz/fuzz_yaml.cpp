// libFuzzer harness: YAML configs. Parses the text (aliases, duplicate keys, nesting), writes
// it back and re-parses it, and decodes the sections that core's option structs describe
// (run, model.vit, model.moe, model.ewa, train) through the same visit() machinery as
// `ewa config check`, so every scalar conversion and range check runs on fuzzed values.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ewa/core/config.h"
#include "ewa/core/options.h"
#include "ewa/core/train_options.h"
#include "fuzz_util.h"

namespace {

template <class T>
void decode_section(const ewa::config::Node& root, const char* a, const char* b = nullptr) {
  const ewa::config::Node* n = root.find(a);
  if (n && b) n = n->is_map() ? n->find(b) : nullptr;
  if (!n) return;
  ewa_fuzz::run("input.yaml", [&] {
    T value{};
    ewa::config::decode_value(*n, ewa::config::Context{"input.yaml", b ? std::string(a) + "." + b : a}, value);
    (void)ewa::config::encode_value(value);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace cfg = ewa::config;
  const std::string text(reinterpret_cast<const char*>(data), size);
  cfg::Node root;
  bool parsed = false;
  ewa_fuzz::run("input.yaml", [&] {
    root = cfg::parse_yaml_string(text, "input.yaml");
    parsed = true;
  });
  if (!parsed) return 0;
  // What we write must read back (the resolved config is saved into every run directory).
  ewa_fuzz::run("", [&] {
    const std::string again = cfg::to_yaml(root);
    try {
      (void)cfg::parse_yaml_string(again, "round-trip.yaml");
    } catch (const cfg::ConfigError& e) {
      ewa_fuzz::contract_broken("to_yaml wrote YAML that does not parse back", e.what());
    }
  });
  decode_section<ewa::RunOptions>(root, "run");
  decode_section<ewa::TrainOptions>(root, "train");
  decode_section<ewa::VisionTransformerOptions>(root, "model", "vit");
  decode_section<ewa::MoEOptions>(root, "model", "moe");
  decode_section<ewa::EwaOptions>(root, "model", "ewa");
  ewa_fuzz::run("--set", [&] { cfg::apply_override(root, "train.optimizer.lr=" + text.substr(0, 64)); });
  return 0;
}
