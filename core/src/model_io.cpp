// ViT <-> safetensors with timm names; options travel as YAML in the file's metadata.
#include "ewa/core/model_io.h"

#include <torch/torch.h>

#include <regex>
#include <set>
#include <stdexcept>

#include "ewa/core/config.h"

namespace ewa {
namespace {

bool skipped(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes) {
    if (name.rfind(p, 0) == 0) return true;
  }
  return false;
}

std::string join_limited(const std::vector<std::string>& items, size_t limit = 8) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < limit; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > limit) s += ", ... (" + std::to_string(items.size()) + " in all)";
  return s;
}

std::string shape_str(torch::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

safetensors::TensorMap module_tensors(const torch::nn::Module& module) {
  safetensors::TensorMap out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) out[item.key()] = item.value().detach();
  for (const auto& item : module.named_buffers(/*recurse=*/true)) out[item.key()] = item.value().detach();
  return out;
}

void load_module_tensors(torch::nn::Module& module, const safetensors::TensorMap& tensors, const std::string& source,
                         const std::string& what, const std::vector<std::string>& skip_prefixes,
                         const LoadHint& hint) {
  auto expected = module_tensors(module);
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, t] : expected) {
    if (skipped(name, skip_prefixes)) continue;
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      missing.push_back(name);
    } else if (it->second.sizes() != t.sizes()) {
      mismatched.push_back(name + " (file " + shape_str(it->second.sizes()) + ", model " + shape_str(t.sizes()) + ")");
    } else if (it->second.is_floating_point() != t.is_floating_point()) {
      mismatched.push_back(name + " (file dtype " + std::string(c10::toString(it->second.scalar_type())) +
                           ", model " + std::string(c10::toString(t.scalar_type())) + ")");
    }
  }
  for (const auto& [name, t] : tensors) {
    if (!expected.count(name) && !skipped(name, skip_prefixes)) unexpected.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = "cannot load weights from '" + source + "' into the " + what + ":";
    if (!missing.empty()) msg += " missing " + join_limited(missing) + ";";
    if (!unexpected.empty()) msg += " unexpected " + join_limited(unexpected) + ";";
    if (!mismatched.empty()) msg += " mis-shaped " + join_limited(mismatched) + ";";
    if (hint) msg += hint(missing, unexpected);
    throw std::runtime_error(msg);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : expected) {
    if (skipped(name, skip_prefixes)) continue;
    t.copy_(tensors.at(name));  // shares storage with the module's parameter/buffer
  }
}

safetensors::TensorMap model_tensors(const VisionTransformer& model) { return module_tensors(*model); }

safetensors::Metadata model_metadata(const VisionTransformer& model) {
  safetensors::Metadata meta;
  meta["format"] = "pt";
  meta["ewa.version"] = EWA_VERSION;
  meta[kMetaVit] = config::dump(model->options());
  if (model->moe_options() && !model->moe_blocks().empty()) meta[kMetaMoe] = config::dump(*model->moe_options());
  return meta;
}

void save_model(const VisionTransformer& model, const std::string& path, const safetensors::Metadata& extra) {
  auto meta = model_metadata(model);
  for (const auto& [k, v] : extra) meta[k] = v;
  safetensors::save_file(path, model_tensors(model), meta);
}

VisionTransformer load_model(const std::string& path) {
  auto contents = safetensors::load_file(path);
  auto it = contents.metadata.find(kMetaVit);
  if (it == contents.metadata.end()) {
    throw std::runtime_error("model file '" + path + "' has no '" + kMetaVit +
                             "' metadata (not written by ewa): build the ViT from a config and load the weights "
                             "with load_weights");
  }
  const std::string vit_src = path + ":__metadata__." + kMetaVit;
  auto vit = config::decode<VisionTransformerOptions>(config::parse_yaml_string(it->second, vit_src), vit_src);
  MoEOptions moe;
  if (auto m = contents.metadata.find(kMetaMoe); m != contents.metadata.end()) {
    const std::string moe_src = path + ":__metadata__." + kMetaMoe;
    moe = config::decode<MoEOptions>(config::parse_yaml_string(m->second, moe_src), moe_src);
    moe.enabled(true);
  }
  VisionTransformer model(vit, moe);
  load_weights(model, contents.tensors, path);
  return model;
}

void load_weights(VisionTransformer& model, const safetensors::TensorMap& tensors, const std::string& source,
                  const std::vector<std::string>& skip_prefixes) {
  load_module_tensors(*model, tensors, source, "ViT", skip_prefixes,
                      [](const std::vector<std::string>& missing, const std::vector<std::string>& unexpected) {
                        static const std::regex experts(R"(^blocks\.(\d+)\.mlp\.experts\.)");
                        bool file_moe = false, model_moe = false;
                        for (const auto& n : unexpected) file_moe |= std::regex_search(n, experts);
                        for (const auto& n : missing) model_moe |= std::regex_search(n, experts);
                        std::string h;
                        if (file_moe) h += " (the file holds MoE layers the model does not have: collapse it with `ewa convert`)";
                        if (model_moe) h += " (the model has MoE layers the file does not: load the dense model, then upcycle)";
                        return h;
                      });
}

void load_weights_file(VisionTransformer& model, const std::string& path,
                       const std::vector<std::string>& skip_prefixes) {
  load_weights(model, safetensors::load_file(path).tensors, path, skip_prefixes);
}

}  // namespace ewa
