// Point Transformer <-> safetensors: parameters and buffers by module path, the options as
// YAML in the metadata ("ewa.pt"), strict loading with a clear error naming the file.
#include <torch/torch.h>

#include <stdexcept>

#include "ewa/core/config.h"
#include "ewa/core/safetensors.h"
#include "ewa/pointcloud/point_transformer.h"

namespace ewa::pointcloud {
namespace {

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

std::map<std::string, torch::Tensor> point_model_tensors(const PointTransformer& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) out[item.key()] = item.value().detach();
  for (const auto& item : model->named_buffers(/*recurse=*/true)) out[item.key()] = item.value().detach();
  return out;
}

void load_point_weights(PointTransformer& model, const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& source) {
  auto expected = point_model_tensors(model);
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, t] : expected) {
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
    if (!expected.count(name)) unexpected.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = "cannot load weights from '" + source + "' into the Point Transformer:";
    if (!missing.empty()) msg += " missing " + join_limited(missing) + ";";
    if (!unexpected.empty()) msg += " unexpected " + join_limited(unexpected) + ";";
    if (!mismatched.empty()) msg += " mis-shaped " + join_limited(mismatched) + ";";
    throw std::runtime_error(msg);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : expected) t.copy_(tensors.at(name));  // shares storage with the model
}

void save_point_model(PointTransformer& model, const std::string& path,
                      const std::map<std::string, std::string>& extra_metadata) {
  safetensors::Metadata meta = extra_metadata;
  meta["format"] = "pt";
  meta["ewa.version"] = EWA_VERSION;
  auto options = model->options();
  options.moe().enabled(model->num_moe_layers() > 0);  // a collapsed model is saved as dense
  meta[kMetaPointTransformer] = config::dump(options);
  safetensors::save_file(path, point_model_tensors(model), meta);
}

PointTransformer load_point_model(const std::string& path, std::map<std::string, std::string>* metadata) {
  auto contents = safetensors::load_file(path);
  auto it = contents.metadata.find(kMetaPointTransformer);
  if (it == contents.metadata.end()) {
    throw std::runtime_error("model file '" + path + "' has no '" + std::string(kMetaPointTransformer) +
                             "' metadata: not a Point Transformer written by ewa (save_point_model)");
  }
  const std::string src = path + ":__metadata__." + kMetaPointTransformer;
  auto options = config::decode<PointTransformerOptions>(config::parse_yaml_string(it->second, src), src);
  PointTransformer model(options);
  // Match the stored floating dtype so that a float64 model round-trips bit-exactly.
  for (const auto& [name, t] : contents.tensors) {
    if (t.is_floating_point()) {
      if (t.scalar_type() != torch::kFloat) model->to(t.scalar_type());
      break;
    }
  }
  load_point_weights(model, contents.tensors, path);
  if (metadata) *metadata = contents.metadata;
  return model;
}

}  // namespace ewa::pointcloud
