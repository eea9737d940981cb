// ImageClassifier: decode -> resize -> normalise -> dense ViT -> softmax top-k.
#include "ewa/vision2d/classifier.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <stdexcept>

#include "ewa/core/model_io.h"
#include "ewa/core/safetensors.h"
#include "ewa/datasets/image/augment.h"
#include "ewa/datasets/image/image_io.h"
#include "ewa/vision2d/pipeline.h"

namespace fs = std::filesystem;
namespace img = ewa::datasets::image;

namespace ewa::vision2d {

namespace {

template <class T>
T meta_json(const safetensors::Metadata& meta, const char* key, const std::string& file) {
  auto it = meta.find(key);
  try {
    return nlohmann::json::parse(it->second).get<T>();
  } catch (const std::exception&) {
    throw std::runtime_error("model file '" + file + "': metadata '" + key + "' is malformed ('" +
                             it->second.substr(0, 60) + "')");
  }
}

}  // namespace

ImageClassifier::ImageClassifier(const std::string& model) {
  path_ = model;
  if (fs::is_directory(model)) path_ = (fs::path(model) / "model.safetensors").string();
  if (!fs::exists(path_)) {
    throw std::runtime_error(fs::is_directory(model)
                                 ? "no model.safetensors in " + model + " (training not finished? `ewa train` writes it at the end)"
                                 : "model file not found: " + model);
  }
  const auto header = safetensors::read_header(path_);
  const auto& meta = header.metadata;
  model_ = load_model(path_);
  model_->eval();
  const auto& o = model_->options();
  channels_ = o.in_chans();
  image_size_ = o.img_size();
  if (meta.count(kMetaImageSize)) image_size_ = meta_json<int64_t>(meta, kMetaImageSize, path_);
  TORCH_CHECK(image_size_ == o.img_size(), path_, ": metadata image size ", image_size_, " differs from the ViT's ",
              o.img_size());
  if (meta.count(kMetaClassNames)) {
    names_ = meta_json<std::vector<std::string>>(meta, kMetaClassNames, path_);
  }
  if (static_cast<int64_t>(names_.size()) != o.num_classes()) {
    if (!names_.empty()) spdlog::warn("{}: {} class names for {} classes; using indices", path_, names_.size(), o.num_classes());
    names_.clear();
    for (int64_t i = 0; i < o.num_classes(); ++i) names_.push_back(std::to_string(i));
  }
  if (meta.count(kMetaMean) && meta.count(kMetaStd)) {
    mean_ = meta_json<std::vector<double>>(meta, kMetaMean, path_);
    std_ = meta_json<std::vector<double>>(meta, kMetaStd, path_);
  } else {
    auto s = img::default_norm_stats("imagenet");
    spdlog::warn("{}: no normalisation metadata (not written by ewa train); using ImageNet mean/std", path_);
    mean_ = s.mean;
    std_ = s.std;
  }
  if (channels_ == 1 && mean_.size() == 3) {
    mean_ = {(mean_[0] + mean_[1] + mean_[2]) / 3};
    std_ = {(std_[0] + std_[1] + std_[2]) / 3};
  }
  if (mean_.size() != std_.size() || (mean_.size() != 1 && static_cast<int64_t>(mean_.size()) != channels_)) {
    throw std::runtime_error("model file '" + path_ + "': mean/std metadata do not fit " + std::to_string(channels_) +
                             " channels");
  }
}

torch::Tensor ImageClassifier::predict_proba(const std::vector<torch::Tensor>& images) {
  std::vector<torch::Tensor> xs;
  for (const auto& im : images) {
    TORCH_CHECK(im.dim() == 3 && im.size(2) == channels_ && im.scalar_type() == torch::kUInt8,
                "predict_proba: images must be uint8 [H, W, ", channels_, "], got ", im.sizes(), " ", im.scalar_type());
    xs.push_back(img::normalize_image(img::resize(im, image_size_, image_size_), mean_, std_));  // [C, S, S]
  }
  torch::NoGradGuard no_grad;
  auto x = torch::stack(xs);                             // [N, C, S, S]
  return torch::softmax(model_->forward(x).to(torch::kFloat), 1);  // [N, K]
}

Prediction ImageClassifier::classify(const std::string& path, int64_t k) {
  auto image = img::decode_image(path, channels_);  // uint8 [H, W, C]; throws naming the file
  auto p = predict_proba({image})[0];               // [K]
  k = std::max<int64_t>(1, std::min<int64_t>(k, p.size(0)));
  auto [vals, idx] = p.topk(k);
  Prediction out;
  out.path = path;
  for (int64_t i = 0; i < k; ++i) {
    const int64_t c = idx[i].item<int64_t>();
    out.indices.push_back(c);
    out.top.emplace_back(names_[static_cast<size_t>(c)], vals[i].item<double>());
  }
  return out;
}

}  // namespace ewa::vision2d
