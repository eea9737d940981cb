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

// One dimension of the metadata checked against a stored tensor: `tensor` must exist with
// `shape` (-1 = any size on that axis), else one line naming the file, the key and the tensor.
void expect_shape(const safetensors::TensorMap& tensors, const std::string& path, const std::string& key,
                  const std::string& tensor, const std::vector<int64_t>& shape) {
  auto it = tensors.find(tensor);
  if (it == tensors.end()) {
    throw std::runtime_error("model file '" + path + "': metadata " + key + " needs tensor '" + tensor +
                             "', which the file does not hold");
  }
  bool ok = it->second.dim() == static_cast<int64_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || it->second.size(static_cast<int64_t>(i)) == shape[i];
  if (!ok) {
    std::string want = "[";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + (shape[i] < 0 ? std::string("*") : std::to_string(shape[i]));
    throw std::runtime_error("model file '" + path + "': metadata " + key + " does not match tensor '" + tensor +
                             "' " + shape_str(it->second.sizes()) + " (metadata implies " + want + "]); the file is "
                             "damaged or its metadata edited");
  }
}

// Validates the ViT options of a model file against its tensors BEFORE anything is built, so a
// file whose metadata declares huge dimensions fails with one line instead of allocating.
void check_vit_metadata(const VisionTransformerOptions& v, const MoEOptions* moe, const safetensors::TensorMap& t,
                        const std::string& path) {
  const std::string k = std::string(kMetaVit) + ".";
  const int64_t d = v.embed_dim(), p = v.patch_size(), grid = v.img_size() / std::max<int64_t>(p, 1);
  expect_shape(t, path, k + "embed_dim/in_chans/patch_size", "patch_embed.proj.weight", {d, v.in_chans(), p, p});
  const int64_t prefix = v.class_token() ? 1 : 0;
  expect_shape(t, path, k + "img_size", "pos_embed", {1, prefix + grid * grid, d});
  const auto hidden = static_cast<int64_t>(static_cast<double>(d) * v.mlp_ratio());
  if (t.count("blocks." + std::to_string(v.depth()) + ".norm1.weight")) {
    throw std::runtime_error("model file '" + path + "': metadata " + k + "depth " + std::to_string(v.depth()) +
                             " does not match the tensors (the file holds block " + std::to_string(v.depth()) + ")");
  }
  for (int64_t i = 0; i < v.depth(); ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    expect_shape(t, path, k + "depth/embed_dim", b + "norm1.weight", {d});
    if (t.count(b + "mlp.experts.w1")) {
      expect_shape(t, path, std::string(kMetaMoe) + ".num_experts/" + k + "mlp_ratio", b + "mlp.experts.w1",
                   {moe ? moe->num_experts() : -1, d, hidden});
    } else {
      expect_shape(t, path, k + "mlp_ratio", b + "mlp.fc1.weight", {hidden, d});
    }
  }
  if (v.num_classes() > 0) expect_shape(t, path, k + "num_classes", "head.weight", {v.num_classes(), d});
}

}  // namespace

safetensors::TensorMap module_tensors(const torch::nn::Module& module) {
  safetensors::TensorMap out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) out[item.key()] = item.value().detach();
  for (const auto& item : module.named_buffers(/*recurse=*/true)) out[item.key()] = item.value().detach();
  return out;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
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
  check_vit_metadata(vit, moe.enabled() ? &moe : nullptr, contents.tensors, path);
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
