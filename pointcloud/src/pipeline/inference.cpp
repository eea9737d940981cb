// Whole-scene inference with bounded fragment voting, sphere-crop chunks and streaming
// test-time augmentation (see inference.h for the bounds).
#include "ewa/pointcloud/inference.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <tuple>

#include "ewa/pointcloud/ops.h"
#include "ewa/pointcloud/scene_data.h"

namespace ewa::pointcloud {

using datasets::PointCloudData;

namespace {

/// Splits the index set `frag` [V] into sphere crops of at most max_points until every
/// index is covered (each crop is centred on the first still uncovered point). Each crop
/// costs O(V), so the crop size is raised to at least kMinChunkPoints and V /
/// kMaxChunksPerFragment, and after kMaxChunksPerFragment crops, or a crop that covers no new
/// point (duplicates: every distance ties), the uncovered rest is cut into slabs along x: a
/// model whose metadata says "1 point" cannot make this quadratic.
void add_fragment_chunks(const torch::Tensor& coord, const torch::Tensor& frag, int64_t max_points,
                         std::vector<torch::Tensor>& out) {
  const int64_t v = frag.size(0);
  max_points = std::max({max_points, kMinChunkPoints, (v + kMaxChunksPerFragment - 1) / kMaxChunksPerFragment});
  if (v <= max_points) {
    out.push_back(frag);
    return;
  }
  auto fc = coord.index_select(0, frag).contiguous();  // [V,3]
  auto covered = torch::zeros({v}, torch::kBool);
  int64_t covered_count = 0;
  for (int64_t crops = 0; crops < kMaxChunksPerFragment; ++crops) {
    auto open = covered.logical_not().nonzero();  // [U,1]
    const int64_t j = open[0][0].item<int64_t>();
    auto idx = ops::sphere_crop(fc, fc[j].clone(), max_points);  // [max_points] local
    covered.index_fill_(0, idx, true);
    out.push_back(frag.index_select(0, idx));
    const int64_t now = covered.sum().item<int64_t>();
    if (now == v) return;
    if (now == covered_count) break;  // no progress: distance ties everywhere (duplicates)
    covered_count = now;
  }
  // Crops overlap, so covering can take many more than V / max_points of them: the points
  // still uncovered go into slabs of max_points along x (bounded work, every point covered).
  auto rest = covered.logical_not().nonzero().view({-1});                     // [U] local
  auto order = std::get<1>(fc.index_select(0, rest).select(1, 0).sort());    // [U] by x
  rest = rest.index_select(0, order);
  for (int64_t a = 0; a < rest.size(0); a += max_points) {
    out.push_back(frag.index_select(0, rest.narrow(0, a, std::min(max_points, rest.size(0) - a))));
  }
}

/// The fragments of one augmentation, generated one at a time from the voxel structure
/// (O(N) index memory whatever the largest voxel).
class SceneFragmentPlan {
 public:
  SceneFragmentPlan(const torch::Tensor& coord, const SceneInferenceOptions& o) {
    n_ = coord.size(0);
    const int64_t cap = std::clamp<int64_t>(o.fragments, 1, kMaxFragments);
    if (o.grid_size <= 0) {
      all_ = torch::arange(n_, torch::kLong);
      if (o.mode == "voxel") inverse_ = reps_ = all_;
      return;
    }
    auto offset = torch::full({1}, n_, torch::kLong);
    auto g = ops::grid_sample(coord, offset, o.grid_size, ops::GridSampleMode::kVoxels, std::nullopt,
                              /*return_inverse=*/o.mode == "voxel");
    counts_ = g.counts;                                                // [V]
    auto starts = counts_.cumsum(0) - counts_;                         // [V] first row of each voxel
    if (o.mode == "voxel") {
      inverse_ = g.inverse;                                            // [N]
      reps_ = g.order.index_select(0, starts);                         // [V] first point of each voxel
      all_ = reps_;
      return;
    }
    order_ = g.order;                                                  // [N] points voxel by voxel
    nf_ = std::min(cap, counts_.max().item<int64_t>());
    // Row r of voxel v (count c) goes to fragment r when c <= F (and, repeated, to every
    // fragment f with f mod c == r), to fragment r mod F when c > F: fragment f keeps the rows
    // whose slot equals f mod c (for c > F, f mod c = f).
    const bool narrow = n_ < std::numeric_limits<int32_t>::max();
    auto vox = torch::repeat_interleave(counts_);                      // [N] voxel of each row
    auto rank = torch::arange(n_, torch::kLong) - starts.index_select(0, vox);  // [N]
    count_ = counts_.index_select(0, vox);                                       // [N]
    slot_ = torch::where(count_.gt(nf_), rank.remainder(nf_), rank);             // [N]
    if (narrow) {
      count_ = count_.to(torch::kInt);
      slot_ = slot_.to(torch::kInt);
    }
  }

  int64_t size() const { return all_.defined() ? 1 : nf_; }

  /// Fragment f: [M_f] int64 point indices, voxel by voxel.
  torch::Tensor fragment(int64_t f) const {
    if (all_.defined()) return all_;
    auto target = torch::full_like(count_, f).remainder_(count_);  // [N] f mod c
    return order_.masked_select(slot_.eq(target));
  }

  /// Points of fragment f (without building it).
  int64_t fragment_points(int64_t f) const {
    if (all_.defined()) return all_.size(0);
    auto per_voxel = torch::where(counts_.gt(nf_), (counts_ - f + nf_ - 1).div(nf_, "floor"), torch::ones_like(counts_));
    return per_voxel.sum().item<int64_t>();
  }

  const torch::Tensor& inverse() const { return inverse_; }
  const torch::Tensor& reps() const { return reps_; }

 private:
  int64_t n_ = 0;
  int64_t nf_ = 1;
  torch::Tensor all_;     // the one fragment (no grid, or voxel mode)
  torch::Tensor counts_;  // [V]
  torch::Tensor order_;   // [N]
  torch::Tensor slot_;    // [N] int32/int64
  torch::Tensor count_;   // [N] int32/int64
  torch::Tensor inverse_, reps_;
};

/// Augmentations: (scale, flip x, flip y).
std::vector<std::tuple<double, bool, bool>> tta_augmentations(const SceneInferenceOptions& o) {
  std::vector<std::tuple<double, bool, bool>> augs;
  if (!o.tta) return {{1.0, false, false}};
  for (double s : o.tta_scales) {
    augs.emplace_back(s, false, false);
    if (o.tta_flip) {
      augs.emplace_back(s, true, false);
      augs.emplace_back(s, false, true);
      augs.emplace_back(s, true, true);
    }
  }
  return augs;
}

int64_t inference_chunk_size(const SceneInferenceOptions& o) { return o.max_points > 0 ? o.max_points : kDefaultChunkPoints; }

}  // namespace

std::vector<torch::Tensor> scene_chunks(const torch::Tensor& coord, const SceneInferenceOptions& o,
                                        torch::Tensor* inverse, torch::Tensor* voxel_points) {
  SceneFragmentPlan plan(coord, o);
  if (inverse) *inverse = plan.inverse();
  if (voxel_points) *voxel_points = plan.reps();
  std::vector<torch::Tensor> chunks;
  for (int64_t f = 0; f < plan.size(); ++f) add_fragment_chunks(coord, plan.fragment(f), inference_chunk_size(o), chunks);
  return chunks;
}

torch::Tensor infer_scene_logits(const PointCloudData& cloud, const SegLogitsFn& fn, const SceneInferenceOptions& o,
                                 SceneInferenceStats* stats, torch::Tensor* votes_out) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(o.mode == "fragments" || o.mode == "voxel", "infer_scene_logits: mode must be fragments or voxel, got '",
              o.mode, "'");
  const int64_t n = cloud.size();
  TORCH_CHECK(n > 0, cloud.source, ": no points to segment");
  const auto t0 = std::chrono::steady_clock::now();
  const auto augs = tta_augmentations(o);
  const int64_t per_forward = o.batch_points > 0 ? o.batch_points : inference_chunk_size(o);
  auto base = cloud.coord.to(torch::kFloat);
  auto centre = (std::get<0>(base.min(0)) + std::get<0>(base.max(0))) * 0.5;  // [3]
  torch::Tensor total;  // [N,K] running sum over fragments, chunks and augmentations
  auto votes = torch::zeros({n}, torch::kFloat);  // [N] evaluations summed into each row
  SceneInferenceStats st;
  st.augmentations = static_cast<int64_t>(augs.size());
  SceneProgress progress;
  for (size_t a = 0; a < augs.size(); ++a) {
    const auto& [scale, fx, fy] = augs[a];
    PointCloudData c = cloud;
    auto mult = torch::tensor({fx ? -scale : scale, fy ? -scale : scale, scale}, torch::kFloat);  // [3]
    c.coord = ((base - centre) * mult + centre).contiguous();                                   // [N,3]
    if (c.has_normal()) {
      auto nf = torch::tensor({fx ? -1.f : 1.f, fy ? -1.f : 1.f, 1.f}, torch::kFloat);
      c.normal = (c.normal * nf).contiguous();
    }
    SceneFragmentPlan plan(c.coord, o);
    st.fragments = plan.size();
    int64_t aug_points = 0;
    for (int64_t f = 0; f < plan.size(); ++f) aug_points += plan.fragment_points(f);
    progress.total = progress.done + aug_points * static_cast<int64_t>(augs.size() - a);
    torch::Tensor voxel_sum;  // voxel mode: [V,K] this augmentation's logits per voxel

    // Chunks wait in `pending` until the next one would overflow a forward.
    std::vector<torch::Tensor> pending;
    std::vector<double> credit;  // progress credit of each pending chunk (fragment points)
    int64_t pending_points = 0;
    auto flush = [&] {
      if (pending.empty()) return;
      std::vector<torch::Tensor> coords, feats;
      std::vector<int64_t> ends;
      int64_t count = 0;
      for (const auto& idx : pending) {
        PointCloudData part = datasets::select_points(c, idx);
        part.coord = shift_to_origin(part.coord);
        feats.push_back(make_features(part, o.features));
        coords.push_back(part.coord);
        count += idx.size(0);
        ends.push_back(count);
      }
      auto offset = torch::tensor(ends, torch::kLong);
      auto logits = fn(torch::cat(coords, 0), torch::cat(feats, 0), offset).to(torch::kCPU, torch::kFloat);  // [M,K]
      TORCH_CHECK(logits.dim() == 2 && logits.size(0) == count, "infer_scene_logits: the network returned ",
                  logits.sizes(), " for ", count, " points");
      auto idx = torch::cat(pending, 0);  // [M] point indices
      if (!total.defined()) total = torch::zeros({n, logits.size(1)}, torch::kFloat);
      if (o.mode == "voxel") {
        if (!voxel_sum.defined()) voxel_sum = torch::zeros({plan.reps().size(0), logits.size(1)}, torch::kFloat);
        voxel_sum.index_add_(0, plan.inverse().index_select(0, idx), logits);
      } else {
        total.index_add_(0, idx, logits);
        votes.index_add_(0, idx, torch::ones({count}, torch::kFloat));
      }
      ++st.forwards;
      st.chunks += static_cast<int64_t>(pending.size());
      st.points_in += count;
      double done = 0;
      for (double x : credit) done += x;
      progress.done += static_cast<int64_t>(done + 0.5);
      progress.forwards = st.forwards;
      progress.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (o.progress) o.progress(progress);
      pending.clear();
      credit.clear();
      pending_points = 0;
    };
    for (int64_t f = 0; f < plan.size(); ++f) {
      auto frag = plan.fragment(f);
      std::vector<torch::Tensor> chunks;
      add_fragment_chunks(c.coord, frag, inference_chunk_size(o), chunks);
      const double share = static_cast<double>(frag.size(0)) / static_cast<double>(chunks.size());
      for (auto& ch : chunks) {
        if (!pending.empty() && pending_points + ch.size(0) > per_forward) flush();
        pending_points += ch.size(0);
        pending.push_back(std::move(ch));
        credit.push_back(share);
      }
    }
    flush();
    if (o.mode == "voxel") {
      total.add_(voxel_sum.index_select(0, plan.inverse()));  // every point: its voxel's logits
      votes.add_(1.0f);
    }
  }
  progress.done = progress.total;
  if (stats) *stats = st;
  if (votes_out) *votes_out = votes;
  return total.div_(votes.unsqueeze(1));  // [N,K] mean logits; every point has >= 1 vote
}

}  // namespace ewa::pointcloud
