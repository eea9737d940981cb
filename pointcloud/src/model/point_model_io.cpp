// Point Transformer <-> safetensors: parameters and buffers by module path, the options as
// YAML in the metadata ("ewa.pt"), strict loading with a clear error naming the file.
#include <torch/torch.h>

#include <stdexcept>

#include <spdlog/spdlog.h>

#include "ewa/core/config.h"
#include "ewa/core/model_io.h"
#include "ewa/core/safetensors.h"
#include "ewa/pointcloud/point_transformer.h"

namespace ewa::pointcloud {

namespace {

std::string shape_of(const torch::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

// Validates the options of a model file against its tensors BEFORE the network is built, so a
// file whose metadata declares huge channels / block counts fails with one line naming the
// file, the key and the tensor instead of allocating.
void check_point_metadata(const PointTransformerOptions& o, const std::map<std::string, torch::Tensor>& t,
                          const std::string& path) {
  const std::string k = std::string(kMetaPointTransformer) + ".";
  auto fail = [&](const std::string& key, const std::string& what) {
    throw std::runtime_error("model file '" + path + "': metadata " + k + key + " " + what +
                             "; the file is damaged or its metadata edited");
  };
  auto expect = [&](const std::string& key, const std::string& name, std::vector<int64_t> shape) {
    auto it = t.find(name);
    if (it == t.end()) fail(key, "needs tensor '" + name + "', which the file does not hold");
    bool ok = it->second.dim() == static_cast<int64_t>(shape.size());
    for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || it->second.size(static_cast<int64_t>(i)) == shape[i];
    if (!ok) fail(key, "does not match tensor '" + name + "' " + shape_of(it->second));
  };
  const auto& ch = o.channels();
  if (ch.empty() || ch.size() > 16 || o.stride().size() != ch.size()) fail("channels", "must list 1 to 16 stages");
  const auto blocks = o.resolved_blocks();
  if (blocks.size() != ch.size()) fail("blocks", "must give one block count per stage");
  int64_t in = o.in_channels();
  for (size_t i = 0; i < ch.size(); ++i) {
    const std::string enc = "enc" + std::to_string(i + 1) + ".";
    expect("channels/in_channels", enc + "0.linear.weight", {ch[i], o.stride()[i] == 1 ? in : in + 3});
    in = ch[i];
    if (t.count(enc + std::to_string(blocks[i] + 1) + ".bn1.weight")) {
      fail("blocks", "gives stage " + std::to_string(i) + " " + std::to_string(blocks[i]) +
                         " blocks, the file holds more (" + enc + std::to_string(blocks[i] + 1) + ")");
    }
    for (int64_t b = 1; b <= blocks[i]; ++b) {
      const std::string blk = enc + std::to_string(b) + ".";
      expect("blocks/channels", blk + "bn1.weight", {ch[i]});
      for (const char* lin : {"linear1", "linear3"}) {
        if (t.count(blk + lin + ".experts.weight")) {
          expect("moe.num_experts", blk + lin + ".experts.weight",
                 {o.moe().enabled() ? o.moe().num_experts() : 0, ch[i], ch[i]});
        }
      }
    }
  }
  expect("num_classes", o.head() == "seg" ? "cls.3.weight" : "cls.8.weight", {o.num_classes(), -1});
}

}  // namespace

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
  check_point_metadata(options, contents.tensors, path);
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

void load_dense_point_weights(PointTransformer& model, const std::string& path) {
  auto tensors = safetensors::load_file(path).tensors;
  std::vector<std::string> moe_prefixes;
  std::vector<std::pair<MoELayerImpl*, torch::Tensor>> copies;
  std::string mismatched;
  for (const auto& item : model->named_modules("", /*include_self=*/false)) {
    auto* layer = dynamic_cast<MoELayerImpl*>(item.value().get());
    if (!layer) continue;
    const std::string dense = item.key() + ".weight";
    moe_prefixes.push_back(item.key() + ".");
    auto it = tensors.find(dense);
    if (it == tensors.end()) {
      throw std::runtime_error("cannot load weights from '" + path + "' into the Point Transformer: missing " + dense +
                               " (the dense linear its MoE layer " + item.key() + " is upcycled from)");
    }
    const auto& bank = layer->bank<PointExpertsImpl>();
    if (it->second.sizes() != torch::IntArrayRef({bank.out_features(), bank.in_features()})) {
      throw std::runtime_error("cannot load weights from '" + path + "' into the Point Transformer: mis-shaped " +
                               dense + " (file " + shape_of(it->second) + ", model [" +
                               std::to_string(bank.out_features()) + ", " + std::to_string(bank.in_features()) + "])");
    }
    copies.emplace_back(layer, it->second);
    tensors.erase(it);
  }
  load_module_tensors(*model, tensors, path, "Point Transformer", moe_prefixes);  // strict for the rest
  for (auto& [layer, w] : copies) {
    auto& bank = layer->bank<PointExpertsImpl>();
    bank.copy_from_dense(w.to(bank.weight.scalar_type()));
  }
  spdlog::info("model.init_from: {} loaded, {} pointwise linears upcycled into experts", path, copies.size());
}

PointTransformer build_point_model(const PointTransformerOptions& options, const std::string& init_from) {
  PointTransformer model(options);
  if (!init_from.empty()) load_dense_point_weights(model, init_from);
  return model;
}

}  // namespace ewa::pointcloud
