// Whole-scene inference with fragment voting and test-time augmentation (see inference.h).
#include "ewa/pointcloud/inference.h"

#include <algorithm>
#include <tuple>

#include "ewa/pointcloud/ops.h"
#include "ewa/pointcloud/scene_data.h"

namespace ewa::pointcloud {

using datasets::PointCloudData;

namespace {

/// Splits the index set `frag` [V] into sphere crops of at most max_points until every
/// index is covered (each crop is centred on the first still uncovered point). Each crop
/// costs O(V), so the crop size is raised to at least kMinChunkPoints and V /
/// kMaxChunksPerFragment, and after kMaxChunksPerFragment crops the uncovered rest is cut
/// into slabs along x: a model whose metadata says "1 point" cannot make this quadratic.
void add_chunks(const torch::Tensor& coord, const torch::Tensor& frag, int64_t max_points,
                std::vector<torch::Tensor>& out) {
  if (max_points > 0) {
    const int64_t v = frag.size(0);
    max_points = std::max({max_points, kMinChunkPoints, (v + kMaxChunksPerFragment - 1) / kMaxChunksPerFragment});
  }
  if (max_points <= 0 || frag.size(0) <= max_points) {
    out.push_back(frag);
    return;
  }
  auto fc = coord.index_select(0, frag).contiguous();  // [V,3]
  auto covered = torch::zeros({frag.size(0)}, torch::kBool);
  for (int64_t crops = 0;; ++crops) {
    auto open = covered.logical_not().nonzero();  // [U,1]
    if (open.size(0) == 0) break;
    if (crops == kMaxChunksPerFragment) {
      // Crops overlap, so covering can take many more than V / max_points of them: the points
      // still uncovered go into slabs of max_points along x (bounded work, every point covered).
      auto rest = open.view({-1});                                                  // [U] local
      auto order = std::get<1>(fc.index_select(0, rest).select(1, 0).sort());     // [U] by x
      rest = rest.index_select(0, order);
      for (int64_t a = 0; a < rest.size(0); a += max_points) {
        out.push_back(frag.index_select(0, rest.narrow(0, a, std::min(max_points, rest.size(0) - a))));
      }
      break;
    }
    const int64_t j = open[0][0].item<int64_t>();
    auto idx = ops::sphere_crop(fc, fc[j].clone(), max_points);  // [max_points] local
    covered.index_fill_(0, idx, true);
    out.push_back(frag.index_select(0, idx));
  }
}

}  // namespace

std::vector<torch::Tensor> scene_chunks(const torch::Tensor& coord, const SceneInferenceOptions& o,
                                        torch::Tensor* inverse, torch::Tensor* voxel_points) {
  const int64_t n = coord.size(0);
  std::vector<torch::Tensor> chunks;
  if (o.grid_size <= 0) {
    if (inverse) *inverse = torch::arange(n, torch::kLong);
    if (voxel_points) *voxel_points = torch::arange(n, torch::kLong);
    add_chunks(coord, torch::arange(n, torch::kLong), o.max_points, chunks);
    return chunks;
  }
  auto offset = torch::full({1}, n, torch::kLong);
  auto g = ops::grid_sample(coord, offset, o.grid_size, ops::GridSampleMode::kTest, std::nullopt,
                            /*return_inverse=*/o.mode == "voxel");
  if (o.mode == "voxel") {
    if (inverse) *inverse = g.inverse;
    if (voxel_points) *voxel_points = g.fragments.at(0);
    add_chunks(coord, g.fragments.at(0), o.max_points, chunks);
  } else {
    // F = the largest voxel population: 20,000 identical points are one voxel and would give
    // 20,000 one-point fragments. Fold fragment f into slot f % kMaxFragments (duplicates
    // removed), so every point stays in at least one fragment and there are at most
    // kMaxFragments of them.
    const int64_t nf = static_cast<int64_t>(g.fragments.size());
    if (nf <= kMaxFragments) {
      for (const auto& f : g.fragments) add_chunks(coord, f, o.max_points, chunks);
    } else {
      for (int64_t slot = 0; slot < kMaxFragments; ++slot) {
        std::vector<torch::Tensor> parts;
        for (int64_t f = slot; f < nf; f += kMaxFragments) parts.push_back(g.fragments[static_cast<size_t>(f)]);
        auto merged = std::get<0>(torch::_unique(torch::cat(parts, 0), /*sorted=*/true));  // [<= V * nf / slots]
        add_chunks(coord, merged, o.max_points, chunks);
      }
    }
  }
  return chunks;
}

torch::Tensor infer_scene_logits(const PointCloudData& cloud, const SegLogitsFn& fn, const SceneInferenceOptions& o,
                                 SceneInferenceStats* stats) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(o.mode == "fragments" || o.mode == "voxel", "infer_scene_logits: mode must be fragments or voxel, got '",
              o.mode, "'");
  const int64_t n = cloud.size();
  TORCH_CHECK(n > 0, cloud.source, ": no points to segment");
  // Augmentations: (scale, flip x, flip y).
  std::vector<std::tuple<double, bool, bool>> augs;
  if (o.tta) {
    for (double s : o.tta_scales) {
      augs.emplace_back(s, false, false);
      if (o.tta_flip) {
        augs.emplace_back(s, true, false);
        augs.emplace_back(s, false, true);
        augs.emplace_back(s, true, true);
      }
    }
  } else {
    augs.emplace_back(1.0, false, false);
  }
  auto base = cloud.coord.to(torch::kFloat);
  auto centre = (std::get<0>(base.min(0)) + std::get<0>(base.max(0))) * 0.5;  // [3]
  torch::Tensor total;  // [N,K]
  SceneInferenceStats st;
  for (const auto& [scale, fx, fy] : augs) {
    PointCloudData c = cloud;
    auto mult = torch::tensor({fx ? -scale : scale, fy ? -scale : scale, scale}, torch::kFloat);  // [3]
    c.coord = ((base - centre) * mult + centre).contiguous();                                   // [N,3]
    if (c.has_normal()) {
      auto nf = torch::tensor({fx ? -1.f : 1.f, fy ? -1.f : 1.f, 1.f}, torch::kFloat);
      c.normal = (c.normal * nf).contiguous();
    }
    torch::Tensor inverse, reps;
    auto chunks = scene_chunks(c.coord, o, &inverse, &reps);
    torch::Tensor acc;  // [N,K] this augmentation (voxel mode: only representatives filled)
    // Pack chunks into forwards of at most batch_points points (always at least one chunk).
    size_t i = 0;
    while (i < chunks.size()) {
      std::vector<torch::Tensor> idxs, coords, feats;
      std::vector<int64_t> ends;
      int64_t count = 0;
      while (i < chunks.size() && (idxs.empty() || count + chunks[i].size(0) <= o.batch_points)) {
        PointCloudData part = datasets::select_points(c, chunks[i]);
        part.coord = shift_to_origin(part.coord);
        feats.push_back(make_features(part, o.features));
        coords.push_back(part.coord);
        idxs.push_back(chunks[i]);
        count += chunks[i].size(0);
        ends.push_back(count);
        ++i;
      }
      auto offset = torch::tensor(ends, torch::kLong);
      auto logits = fn(torch::cat(coords, 0), torch::cat(feats, 0), offset).to(torch::kCPU, torch::kFloat);  // [M,K]
      TORCH_CHECK(logits.dim() == 2 && logits.size(0) == count, "infer_scene_logits: the network returned ",
                  logits.sizes(), " for ", count, " points");
      if (!acc.defined()) acc = torch::zeros({n, logits.size(1)}, torch::kFloat);
      acc.index_add_(0, torch::cat(idxs, 0), logits);
      ++st.forwards;
      st.chunks += static_cast<int64_t>(idxs.size());
      st.points_in += count;
    }
    if (o.mode == "voxel") {
      // every point takes the summed logits of its voxel's evaluated point
      acc = acc.index_select(0, reps.index_select(0, inverse));  // [N,K]
    }
    total = total.defined() ? total + acc : acc;
  }
  if (stats) *stats = st;
  return total;
}

}  // namespace ewa::pointcloud
