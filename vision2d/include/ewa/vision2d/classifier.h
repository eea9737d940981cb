// Inference with an exported image classifier (`ewa classify`): a dense ViT read from
// model.safetensors whose metadata carries class names, normalisation and image size.
#pragma once

#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "ewa/core/vit.h"

namespace ewa::vision2d {

/// One image's top-k classes, best first.
struct Prediction {
  std::string path;
  std::vector<std::pair<std::string, double>> top;  ///< (class name, probability)
  std::vector<int64_t> indices;                      ///< class indices of `top`
};

class ImageClassifier {
 public:
  /// `model`: a model.safetensors written by `ewa train`, or a run directory holding one.
  /// Throws std::runtime_error naming the file when it is missing or lacks the metadata.
  explicit ImageClassifier(const std::string& model);

  /// Decodes `path` (any format OpenCV reads; gray/colour converted to the model's
  /// channels), resizes to the training size, normalises, and returns the top `k` classes.
  /// Throws std::runtime_error naming the file when it cannot be read.
  Prediction classify(const std::string& path, int64_t k = 5);
  /// Probabilities float [N, K] of `images` (uint8 [H, W, C] each, C = model channels).
  torch::Tensor predict_proba(const std::vector<torch::Tensor>& images);

  const std::vector<std::string>& class_names() const { return names_; }
  int64_t image_size() const { return image_size_; }
  int64_t channels() const { return channels_; }
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& std() const { return std_; }
  const std::string& path() const { return path_; }
  VisionTransformer& model() { return model_; }

 private:
  std::string path_;
  VisionTransformer model_{nullptr};
  std::vector<std::string> names_;
  std::vector<double> mean_, std_;
  int64_t image_size_ = 0, channels_ = 0;
};

}  // namespace ewa::vision2d
