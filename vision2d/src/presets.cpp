// ViT presets and config decoding of the image-classification task.
#include "ewa/vision2d/presets.h"

#include <map>
#include <stdexcept>

namespace ewa::vision2d {

namespace {

using Values = std::vector<std::pair<std::string, std::string>>;

Values make(int img, int patch, int dim, int depth, int heads, const char* mlp) {
  return {{"img_size", std::to_string(img)},  {"patch_size", std::to_string(patch)},
          {"embed_dim", std::to_string(dim)}, {"depth", std::to_string(depth)},
          {"num_heads", std::to_string(heads)}, {"mlp_ratio", mlp}};
}

const std::map<std::string, Values>& presets() {
  static const std::map<std::string, Values> p = {
      // timm vit_{tiny,small,base}_patch16_224
      {"vit_tiny", make(224, 16, 192, 12, 3, "4.0")},
      {"vit_small", make(224, 16, 384, 12, 6, "4.0")},
      {"vit_base", make(224, 16, 768, 12, 12, "4.0")},
      // small-image ViTs (7x7 / 8x8 patch grids, narrow FFN) that train on 2 CPU cores
      {"vit_28px", make(28, 4, 128, 6, 4, "2.0")},
      {"vit_32px", make(32, 4, 192, 6, 3, "2.0")},
      {"vit_64px", make(64, 8, 192, 6, 3, "2.0")},
  };
  return p;
}

}  // namespace

const std::vector<std::string>& vit_preset_names() {
  static const std::vector<std::string> names = {"vit_tiny", "vit_small", "vit_base",
                                                 "vit_28px", "vit_32px", "vit_64px"};
  return names;
}

const std::vector<std::pair<std::string, std::string>>& vit_preset_values(const std::string& preset) {
  auto it = presets().find(preset);
  if (it == presets().end()) {
    std::string known;
    for (const auto& n : vit_preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown ViT preset '" + preset + "' (known: " + known + ")");
  }
  return it->second;
}

VisionTransformerOptions apply_vit_preset(VisionTransformerOptions base, const std::string& preset) {
  if (preset.empty()) return base;
  config::Node vit = config::encode_value(base);
  for (const auto& [k, v] : vit_preset_values(preset)) vit.at_or_insert(k) = config::Node::make_scalar(v);
  VisionTransformerOptions out{};
  config::decode_value(vit, config::Context{"<preset " + preset + ">", "model.vit"}, out);
  return out;
}

void expand_model_preset(config::Node& root) {
  if (!root.is_map()) return;
  config::Node* model = root.find("model");
  if (!model || !model->is_map()) return;
  const config::Node* preset = model->find("preset");
  if (!preset || !preset->is_scalar() || preset->scalar.empty() || !presets().count(preset->scalar)) return;
  const std::string name = preset->scalar;
  config::Node& vit = model->at_or_insert("vit");
  if (!vit.is_map() && !vit.is_null()) return;  // the decoder reports it
  for (const auto& [k, v] : vit_preset_values(name)) {
    if (!vit.find(k)) vit.at_or_insert(k) = config::Node::make_scalar(v);
  }
}

ImageClassificationConfig decode_config(const config::Node& root, const std::string& file) {
  config::Node expanded = root;
  expand_model_preset(expanded);
  return config::decode<ImageClassificationConfig>(expanded, file);
}

}  // namespace ewa::vision2d
