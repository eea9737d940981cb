// Whole-scene inference with bounded fragment voting, block chunks with halos and streaming
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

/// One forward unit: `idx` [M] int64 point indices, the first `core` of them the block's own
/// points (their logits are kept), the rest its halo (context only).
struct SceneChunk {
  torch::Tensor idx;
  int64_t core = 0;
};

/// Covers the index set `frag` [V] with overlapping spatial blocks of at most max_points points:
/// splits along the longest axis (by position, so duplicates split too) into ceil(V / core_max)
/// blocks of about equal size, core_max = 3/4 max_points (the cores), then each block gets the nearest other points of
/// the fragment (distance to the block's box) as halo, up to max_points and at most a third of
/// its core. Every point
/// is in exactly one core. max_points is raised to kMinChunkPoints and to V / 96, so there are
/// at most kMaxChunksPerFragment / 2 blocks and the halo search costs at most that many O(V) passes.
void add_fragment_chunks(const torch::Tensor& coord, const torch::Tensor& frag, int64_t max_points,
                         std::vector<SceneChunk>& out) {
  const int64_t v = frag.size(0);
  max_points = std::max({max_points, kMinChunkPoints, (v * 8 + 3 * kMaxChunksPerFragment - 1) / (3 * kMaxChunksPerFragment)});
  if (v <= max_points) {
    out.push_back({frag, v});
    return;
  }
  const int64_t core_max = (3 * max_points + 3) / 4;
  auto fc = coord.index_select(0, frag).contiguous();  // [V,3]
  std::vector<torch::Tensor> todo = {torch::arange(v, torch::kLong)}, leaves;  // local indices
  while (!todo.empty()) {
    auto node = std::move(todo.back());
    todo.pop_back();
    if (node.size(0) <= core_max) {
      leaves.push_back(std::move(node));
      continue;
    }
    auto pts = fc.index_select(0, node);                                             // [M,3]
    auto extent = std::get<0>(pts.max(0)) - std::get<0>(pts.min(0));                 // [3]
    const int64_t axis = extent.argmax().item<int64_t>();
    auto order = std::get<1>(pts.select(1, axis).sort(/*stable=*/true, 0, false));  // [M]
    // k = ceil(M / core_max) blocks: the split point leaves floor(k/2) of them on the left,
    // so every block ends near V / ceil(V / core_max) points (halves would give blocks of
    // down to core_max / 2 points and twice the halo)
    const int64_t m = node.size(0), k = (m + core_max - 1) / core_max;
    const int64_t left = m * (k / 2) / k;
    todo.push_back(node.index_select(0, order.narrow(0, 0, left)));
    todo.push_back(node.index_select(0, order.narrow(0, left, m - left)));
  }
  for (const auto& leaf : leaves) {
    // halo: up to the chunk size, and at most a third of the core (overlap <= 4/3 whatever V)
    const int64_t halo = std::min({max_points - leaf.size(0), v - leaf.size(0), (leaf.size(0) + 2) / 3});
    torch::Tensor local = leaf;
    if (halo > 0) {
      auto pts = fc.index_select(0, leaf);
      auto lo = std::get<0>(pts.min(0)), hi = std::get<0>(pts.max(0));       // [3]
      auto gap = torch::clamp_min(torch::maximum(lo - fc, fc - hi), 0.0);     // [V,3] distance to the box per axis
      auto d2 = gap.mul_(gap).sum(1);                                         // [V]
      d2.index_fill_(0, leaf, std::numeric_limits<float>::infinity());        // the core is not halo
      auto near = std::get<1>(d2.topk(halo, 0, /*largest=*/false, /*sorted=*/false));  // [halo]
      local = torch::cat({leaf, near});
    }
    out.push_back({frag.index_select(0, local), leaf.size(0)});
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
                              /*return_inverse=*/true);
    counts_ = g.counts;                                                // [V]
    inverse_ = g.inverse;                                              // [N] voxel of each point
    auto starts = counts_.cumsum(0) - counts_;                         // [V] first row of each voxel
    if (o.mode == "voxel") {
      reps_ = g.order.index_select(0, starts);                         // [V] first point of each voxel
      all_ = reps_;
      return;
    }
    order_ = g.order;                                                  // [N] points voxel by voxel
    const int64_t fullest = counts_.max().item<int64_t>();
    nf_ = std::min(cap, fullest);
    // Fragment f takes row f mod c of every voxel (c its points): one point per voxel, as in
    // training. Rows >= F of voxels fuller than F are in no fragment (`inherit_`).
    auto vox = torch::repeat_interleave(counts_);                                // [N] voxel of each row
    slot_ = torch::arange(n_, torch::kLong) - starts.index_select(0, vox);       // [N] rank in the voxel
    count_ = counts_.index_select(0, vox);                                       // [N]
    if (nf_ < fullest) inherit_ = order_.masked_select(slot_.ge(nf_));          // [U]
    if (n_ < std::numeric_limits<int32_t>::max()) {
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

  /// Points of fragment f (without building it): one per voxel.
  int64_t fragment_points(int64_t) const { return all_.defined() ? all_.size(0) : counts_.size(0); }

  /// Points in no fragment ([U] int64; undefined when every point is in one): they take the
  /// mean logits of their voxel's evaluated points.
  const torch::Tensor& inherit() const { return inherit_; }
  int64_t voxels() const { return counts_.defined() ? counts_.size(0) : n_; }
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
  torch::Tensor inherit_;  // [U]
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
  std::vector<SceneChunk> chunks;
  for (int64_t f = 0; f < plan.size(); ++f) add_fragment_chunks(coord, plan.fragment(f), inference_chunk_size(o), chunks);
  std::vector<torch::Tensor> out;
  out.reserve(chunks.size());
  for (auto& ch : chunks) out.push_back(std::move(ch.idx));
  return out;
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
    // voxel mode, or fragments that leave points out: this augmentation's logits per voxel
    const bool per_voxel = o.mode == "voxel" || plan.inherit().defined();
    torch::Tensor voxel_sum, voxel_votes;  // [V,K], [V]

    // Chunks wait in `pending` until the next one would overflow a forward.
    std::vector<SceneChunk> pending;
    int64_t pending_points = 0;
    auto flush = [&] {
      if (pending.empty()) return;
      std::vector<torch::Tensor> coords, feats, keep_rows, keep_idx;
      std::vector<int64_t> ends;
      int64_t count = 0, cores = 0;
      for (const auto& ch : pending) {
        PointCloudData part = datasets::select_points(c, ch.idx);
        part.coord = shift_to_origin(part.coord);
        feats.push_back(make_features(part, o.features));
        coords.push_back(part.coord);
        keep_rows.push_back(torch::arange(count, count + ch.core, torch::kLong));  // the core's rows
        keep_idx.push_back(ch.idx.narrow(0, 0, ch.core));
        count += ch.idx.size(0);
        cores += ch.core;
        ends.push_back(count);
      }
      auto offset = torch::tensor(ends, torch::kLong);
      auto logits = fn(torch::cat(coords, 0), torch::cat(feats, 0), offset).to(torch::kCPU, torch::kFloat);  // [M,K]
      TORCH_CHECK(logits.dim() == 2 && logits.size(0) == count, "infer_scene_logits: the network returned ",
                  logits.sizes(), " for ", count, " points");
      auto idx = torch::cat(keep_idx, 0);                                  // [C] core point indices
      logits = logits.index_select(0, torch::cat(keep_rows, 0));           // [C,K] (halo rows dropped)
      if (!total.defined()) total = torch::zeros({n, logits.size(1)}, torch::kFloat);
      if (per_voxel) {
        if (!voxel_sum.defined()) {
          voxel_sum = torch::zeros({plan.voxels(), logits.size(1)}, torch::kFloat);
          voxel_votes = torch::zeros({plan.voxels()}, torch::kFloat);
        }
        auto vox = plan.inverse().index_select(0, idx);  // [C]
        voxel_sum.index_add_(0, vox, logits);
        voxel_votes.index_add_(0, vox, torch::ones({cores}, torch::kFloat));
      }
      if (o.mode != "voxel") {
        total.index_add_(0, idx, logits);
        votes.index_add_(0, idx, torch::ones({cores}, torch::kFloat));
      }
      ++st.forwards;
      st.chunks += static_cast<int64_t>(pending.size());
      st.points_in += count;
      progress.done += cores;
      progress.forwards = st.forwards;
      progress.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (o.progress) o.progress(progress);
      pending.clear();
      pending_points = 0;
    };
    for (int64_t f = 0; f < plan.size(); ++f) {
      std::vector<SceneChunk> chunks;
      add_fragment_chunks(c.coord, plan.fragment(f), inference_chunk_size(o), chunks);
      for (auto& ch : chunks) {
        if (!pending.empty() && pending_points + ch.idx.size(0) > per_forward) flush();
        pending_points += ch.idx.size(0);
        pending.push_back(std::move(ch));
      }
    }
    flush();
    if (o.mode == "voxel") {
      total.add_(voxel_sum.index_select(0, plan.inverse()));  // every point: its voxel's logits
      votes.add_(1.0f);
    } else if (plan.inherit().defined()) {
      // points of voxels fuller than F: the mean logits of their voxel's evaluated points
      const auto& u = plan.inherit();
      auto vox = plan.inverse().index_select(0, u);                                             // [U]
      total.index_add_(0, u, voxel_sum.index_select(0, vox) / voxel_votes.index_select(0, vox).unsqueeze(1));
      votes.index_add_(0, u, torch::ones({u.size(0)}, torch::kFloat));
      st.inherited += u.size(0);
    }
  }
  progress.done = progress.total;
  if (stats) *stats = st;
  if (votes_out) *votes_out = votes;
  return total.div_(votes.unsqueeze(1));  // [N,K] mean logits; every point has >= 1 vote
}

}  // namespace ewa::pointcloud
