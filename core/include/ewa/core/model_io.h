// Save/load a ViT (dense or MoE) as safetensors with timm parameter names and the model's
// options as metadata; load timm-named dense weights (e.g. pretrained) into our ViT.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ewa/core/safetensors.h"
#include "ewa/core/vit.h"

namespace ewa {

/// Metadata keys written by save_model().
constexpr const char* kMetaVit = "ewa.vit";  ///< YAML of VisionTransformerOptions
constexpr const char* kMetaMoe = "ewa.moe";  ///< YAML of MoEOptions; absent for a dense model

/// Parameters and buffers of any module by their module path (detached, same device).
safetensors::TensorMap module_tensors(const torch::nn::Module& module);

/// Number of parameters (elements) of a module.
int64_t count_parameters(const torch::nn::Module& module);

/// Explains a failed strict load: gets the missing and the unexpected names, returns text
/// appended to the error (e.g. a hint to collapse an MoE file first), or "".
using LoadHint = std::function<std::string(const std::vector<std::string>& missing,
                                           const std::vector<std::string>& unexpected)>;

/// Strict copy of `tensors` into the parameters and buffers of `module` (dtype converted):
/// every one must be present with the same shape and floating-point-ness and no tensor may be
/// left over, except names starting with one of `skip_prefixes`. Nothing is copied unless all
/// match; otherwise throws std::runtime_error "cannot load weights from 'SOURCE' into the
/// WHAT: missing ...; unexpected ...; mis-shaped ...;" (+ `hint`).
void load_module_tensors(torch::nn::Module& module, const safetensors::TensorMap& tensors, const std::string& source,
                         const std::string& what, const std::vector<std::string>& skip_prefixes = {},
                         const LoadHint& hint = {});

/// Parameters and buffers by timm name (patch_embed.proj.weight, cls_token, pos_embed,
/// blocks.N.attn.qkv.weight, blocks.N.mlp.fc1.weight, ... ; MoE layers as
/// blocks.N.mlp.experts.{w1,b1,w2,b2} and blocks.N.mlp.router.*). Detached, same device.
safetensors::TensorMap model_tensors(const VisionTransformer& model);

/// Metadata of a model: format=pt, ewa.version, ewa.vit, ewa.moe (MoE models only).
safetensors::Metadata model_metadata(const VisionTransformer& model);

/// Writes `model` to `path` (tensors on CPU in their dtype) with model_metadata() + `extra`.
void save_model(const VisionTransformer& model, const std::string& path, const safetensors::Metadata& extra = {});

/// Builds the model described by the file's ewa.vit / ewa.moe metadata and loads its
/// weights. Throws std::runtime_error naming the file when the metadata is missing or
/// invalid (a plain timm file: build the ViT from a config and call load_weights()).
VisionTransformer load_model(const std::string& path);

/// Copies `tensors` (timm names) into `model`, converting dtype. Strict: every parameter
/// must be present with the same shape and no tensor may be left over, except names that
/// start with one of `skip_prefixes` (e.g. "head." to fine-tune with another class count).
/// Throws std::runtime_error naming `source` and listing missing / unexpected / mis-shaped.
void load_weights(VisionTransformer& model, const safetensors::TensorMap& tensors, const std::string& source,
                  const std::vector<std::string>& skip_prefixes = {});

/// load_weights() from a safetensors file.
void load_weights_file(VisionTransformer& model, const std::string& path,
                       const std::vector<std::string>& skip_prefixes = {});

}  // namespace ewa
