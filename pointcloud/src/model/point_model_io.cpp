// Point Transformer <-> safetensors: parameters and buffers by module path, the options as
// YAML in the metadata ("ewa.pt"), strict loading with a clear error naming the file.
#include <torch/torch.h>

#include <stdexcept>

#include "ewa/core/config.h"
#include "ewa/core/model_io.h"
#include "ewa/core/safetensors.h"
#include "ewa/pointcloud/point_transformer.h"

namespace ewa::pointcloud {

std::map<std::string, torch::Tensor> point_model_tensors(const PointTransformer& model) {
  return module_tensors(*model);
}

void load_point_weights(PointTransformer& model, const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& source) {
  load_module_tensors(*model, tensors, source, "Point Transformer");
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
