// ViT size presets of the image-classification task (timm's ViT-Tiny/Small/Base and small
// presets for 28/32/64 px inputs) and the config decoding that expands them.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ewa/core/config.h"
#include "ewa/core/options.h"
#include "ewa/vision2d/config.h"

namespace ewa::vision2d {

/// Names accepted by `model.preset` (besides ""): vit_tiny, vit_small, vit_base, vit_28px,
/// vit_32px, vit_64px.
const std::vector<std::string>& vit_preset_names();

/// The `model.vit` keys a preset sets, as (key, YAML scalar) pairs in a fixed order:
/// img_size, patch_size, embed_dim, depth, num_heads, mlp_ratio. in_chans and num_classes
/// are never set by a preset (they follow the data). Throws std::invalid_argument listing the
/// known names for an unknown preset.
const std::vector<std::pair<std::string, std::string>>& vit_preset_values(const std::string& preset);

/// `base` with every key of `preset` replaced ("" returns `base` unchanged).
VisionTransformerOptions apply_vit_preset(VisionTransformerOptions base, const std::string& preset);

/// Expands `model.preset` in a parsed (not yet decoded) config: each preset key absent from
/// `model.vit` is inserted, so explicit keys (and --set overrides) win. A missing/unknown
/// preset is left for the decoder to report.
void expand_model_preset(config::Node& root);

/// Decodes an image-classification config: expand_model_preset() then the typed decode with
/// every check. Throws config::ConfigError naming `file`, the key path, expected and found.
ImageClassificationConfig decode_config(const config::Node& root, const std::string& file);

}  // namespace ewa::vision2d
