// ClsTask: the TrainTask of `task: point_classification` (ModelNet40 HDF5 / normal_resampled
// / OFF meshes; Point Transformer with the classification head; OA and mAcc with voting).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ewa/core/trainer.h"
#include "ewa/pointcloud/config.h"
#include "ewa/pointcloud/metrics.h"
#include "ewa/pointcloud/point_transformer.h"

namespace ewa::pointcloud {

/// Shapes of one split, normalised into the unit sphere (centroid at 0).
struct ShapeSet {
  torch::Tensor points;  ///< float32 [n,P,3]
  torch::Tensor normal;  ///< float32 [n,P,3] or undefined
  torch::Tensor label;   ///< int64 [n]
  std::vector<std::string> names;        ///< n shape ids (may be empty for HDF5)
  std::vector<std::string> class_names;  ///< the dataset's classes
  int64_t size() const { return label.defined() ? label.size(0) : 0; }
};

/// Reads `split` of data.format with data.num_points points per shape (OFF meshes are
/// surface-sampled with a seed derived from the file name). Throws naming root.
ShapeSet load_shapes(const ClsDataOptions& options, const std::string& split);

/// Classification evaluation.
struct ClsEvaluation {
  SegMetrics metrics;  ///< confusion-derived: oa, macc (miou unused)
  double seconds = 0;
};

class ClsTask : public TrainTask {
 public:
  /// Builds the model from config.model.pt. model.pt.num_classes must equal the classes.
  ClsTask(PointClsConfig config, ShapeSet train, ShapeSet val);
  ClsTask(PointClsConfig config, ShapeSet train, ShapeSet val, PointTransformer model);

  torch::nn::Module& model() override { return *net_; }
  PointTransformer& net() { return net_; }
  int64_t batches_per_epoch() const override;
  void set_shard(int rank, int world_size) override;
  void begin_epoch(int64_t epoch, int64_t start_batch) override;
  /// Batch tensors: coord [B*P,3], feat [B*P,C], offset [B] int64, label [B] int64.
  std::optional<Batch> next_batch() override;
  StepOutput training_step(const Batch& batch) override;
  /// val.oa / val.macc with eval.voting votes.
  std::map<std::string, double> evaluate() override;
  std::map<std::string, std::vector<double>> routing_stats() override;
  /// Evaluation of `shapes` with `votes` augmented copies (1 = the shapes as they are).
  ClsEvaluation evaluate_shapes(const ShapeSet& shapes, int64_t votes);

  const std::vector<std::string>& class_names() const { return class_names_; }
  const PointClsConfig& config() const { return config_; }
  const ShapeSet& val() const { return val_; }

 private:
  PointClsConfig config_;
  ShapeSet train_, val_;
  std::vector<std::string> class_names_;
  PointTransformer net_{nullptr};
  int rank_ = 0, world_ = 1;
  int64_t epoch_ = 0, pos_ = 0;
  torch::Tensor order_;
};

}  // namespace ewa::pointcloud
