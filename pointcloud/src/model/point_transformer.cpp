// Point Transformer v1 (Zhao et al., ICCV 2021) as in the reference implementation
// (POSTECH-CVLab/point-transformer, model/pointtransformer/pointtransformer_seg.py): layer,
// bottleneck block, transition down/up, seg/cls heads; MoE linears in the bottlenecks.
#include <torch/torch.h>

#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include "ewa/core/gemm.h"
#include "ewa/pointcloud/ops.h"
#include "ewa/pointcloud/point_transformer.h"
#include "rng_guard.h"

namespace ewa::pointcloud {

namespace nn = torch::nn;
using torch::Tensor;

namespace {

ewa::Linear make_linear(int64_t in, int64_t out, bool bias = true) {
  return ewa::Linear(nn::LinearOptions(in, out).bias(bias));
}
nn::ReLU make_relu() { return nn::ReLU(nn::ReLUOptions(/*inplace=*/true)); }

/// [N] int64 cloud index of every point for offset [B] (cumulative counts, CPU or not).
Tensor cloud_index(const Tensor& offset, int64_t n, const torch::Device& device) {
  auto o = offset.to(torch::kCPU, torch::kLong);
  auto counts = torch::diff(o, 1, 0, torch::zeros({1}, o.options()));  // [B]
  auto idx = torch::repeat_interleave(torch::arange(o.size(0), o.options()), counts);  // [N]
  TORCH_CHECK(idx.size(0) == n, "PointTransformer: offset ends at ", idx.size(0), " but there are ", n, " points");
  return idx.to(device);
}

/// Per-cloud mean of x [N, C] -> [B, C] (PTv1: x_b.sum(0) / cnt).
Tensor cloud_mean(const Tensor& x, const Tensor& offset) {
  auto o = offset.to(torch::kCPU, torch::kLong);
  const int64_t b = o.size(0);
  auto counts = torch::diff(o, 1, 0, torch::zeros({1}, o.options())).to(x.device(), x.scalar_type());  // [B]
  auto idx = cloud_index(offset, x.size(0), x.device());                                                // [N]
  return torch::zeros({b, x.size(1)}, x.options()).index_add(0, idx, x) / counts.unsqueeze(1);         // [B, C]
}

/// Host copy of an offset as a vector.
std::vector<int64_t> offsets_of(const Tensor& offset) {
  auto o = offset.to(torch::kCPU, torch::kLong).contiguous();
  return {o.data_ptr<int64_t>(), o.data_ptr<int64_t>() + o.numel()};
}

std::string join(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

void check(bool ok, const std::string& key, const std::string& message) {
  if (!ok) throw std::invalid_argument("pt." + key + ": " + message);
}

/// seq->forward(x) with its BatchNorm1d layers run by batch_norm_rows.
Tensor forward_rows(nn::Sequential& seq, Tensor x) {
  for (auto& m : *seq) {
    if (auto* bn = dynamic_cast<nn::BatchNorm1dImpl*>(m.ptr().get())) {
      x = batch_norm_rows(*bn, x);
    } else {
      x = m.forward(x);
    }
  }
  return x;
}

}  // namespace

// --------------------------------------------------------------------------------------
namespace detail {

/// PointTransformerLayer: vector self-attention over the k neighbours (idx), position
/// encoding MLP linear_p on relative coordinates, attention MLP linear_w with shared planes.
class PointTransformerLayerImpl : public nn::Module {
 public:
  PointTransformerLayerImpl(int64_t in_planes, int64_t out_planes, int64_t share_planes)
      : mid_(out_planes), out_(out_planes), share_(share_planes) {
    linear_q = register_module("linear_q", make_linear(in_planes, mid_));
    linear_k = register_module("linear_k", make_linear(in_planes, mid_));
    linear_v = register_module("linear_v", make_linear(in_planes, out_));
    linear_p = register_module("linear_p", nn::Sequential(make_linear(3, 3), nn::BatchNorm1d(3), make_relu(),
                                                          make_linear(3, out_)));
    linear_w = register_module(
        "linear_w", nn::Sequential(nn::BatchNorm1d(mid_), make_relu(), make_linear(mid_, mid_ / share_),
                                   nn::BatchNorm1d(mid_ / share_), make_relu(),
                                   make_linear(out_ / share_, out_ / share_)));
  }

  /// p [N,3], x [N,in], idx [N,k] neighbours of every point -> [N,out].
  Tensor forward(const Tensor& p, const Tensor& x, const Tensor& idx) {
    const int64_t n = x.size(0), k = idx.size(1), c = out_, s = share_;
    auto x_q = linear_q(x);                                           // [N, C]
    auto x_k = ops::group(linear_k(x), idx);                          // [N, k, C]
    auto v = linear_v(x);                                             // [N, C], grouped by aggregate
    auto p_r = ops::group_relative(p, p, Tensor(), idx, true);        // [N, k, 3] neighbour - centre
    // BatchNorm1d over (N, C, k) in the reference == BatchNorm1d over the N*k rows here.
    p_r = forward_rows(linear_p, p_r.reshape({n * k, 3})).view({n, k, c});  // [N, k, C]
    // x_k + (-x_q) equals x_k - x_q bit for bit, and its backward sums the [N, k, C] gradient
    // over k before negating [N, C] instead of negating all of it (a sub's backward does).
    auto w = x_k + x_q.neg().unsqueeze(1) + p_r;  // [N, k, C] (mid == out)
    w = forward_rows(linear_w, w.reshape({n * k, c})).view({n, k, c / s});  // [N, k, C/s]
    w = torch::softmax(w, 1);                                         // over the neighbours
    // sum_j (v[idx] + p_r).view(n, k, s, C/s) * w.unsqueeze(2) in one pass: [N, C]
    return ops::aggregate(v, p_r, w, idx);
  }

  ewa::Linear linear_q{nullptr}, linear_k{nullptr}, linear_v{nullptr};
  nn::Sequential linear_p{nullptr}, linear_w{nullptr};

 private:
  int64_t mid_, out_, share_;
};
TORCH_MODULE(PointTransformerLayer);

/// Bottleneck block: linear1+bn1+relu, transformer2+bn2+relu, linear3+bn3, + identity, relu.
/// linear1 / linear3 are bias-free ewa::Linear or PointMoELinear (same registered name).
class PointTransformerBlockImpl : public nn::Module {
 public:
  PointTransformerBlockImpl(int64_t planes, int64_t share_planes, const PointMoEOptions* moe) {
    const bool moe1 = moe && moe->layers() != "linear3";
    const bool moe3 = moe && moe->layers() != "linear1";
    linear1_ = make_pointwise("linear1", planes, moe1 ? moe : nullptr, moe1_);
    bn1 = register_module("bn1", nn::BatchNorm1d(planes));
    transformer2 = register_module("transformer2", PointTransformerLayer(planes, planes, share_planes));
    bn2 = register_module("bn2", nn::BatchNorm1d(planes));
    linear3_ = make_pointwise("linear3", planes, moe3 ? moe : nullptr, moe3_);
    bn3 = register_module("bn3", nn::BatchNorm1d(planes));
  }

  /// p [N,3], x [N,C], idx [N,k] -> [N,C].
  Tensor forward(const Tensor& p, const Tensor& x, const Tensor& idx) {
    auto y = torch::relu(bn1(pointwise(linear1_, moe1_, x)));       // [N, C]
    y = torch::relu(bn2(transformer2(p, y, idx)));                   // [N, C]
    y = bn3(pointwise(linear3_, moe3_, y));                          // [N, C]
    return torch::relu(y + x);
  }

  /// MoE linears of this block with their names ("linear1", "linear3").
  std::vector<std::pair<std::string, PointMoELinear>> moe_layers() const {
    std::vector<std::pair<std::string, PointMoELinear>> out;
    if (moe1_) out.emplace_back("linear1", moe1_);
    if (moe3_) out.emplace_back("linear3", moe3_);
    return out;
  }

  /// Replaces the MoE linears by ewa::Linear holding the mean expert. Returns how many.
  int64_t collapse() { return collapse_one("linear1", linear1_, moe1_) + collapse_one("linear3", linear3_, moe3_); }

  nn::BatchNorm1d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  PointTransformerLayer transformer2{nullptr};

 private:
  ewa::Linear make_pointwise(const std::string& name, int64_t planes, const PointMoEOptions* moe, PointMoELinear& m) {
    // Draws exactly what the dense model draws, so with RUP and init "copy" every weight of
    // the MoE model equals the dense model's built from the same seed.
    auto dense = make_linear(planes, planes, /*bias=*/false);
    if (!moe) return register_module(name, dense);
    m = register_module(name, PointMoELinear(planes, planes, moe->num_experts(), moe->router(),
                                             moe->init() == "copy" ? dense->weight : Tensor()));
    return nullptr;
  }

  static Tensor pointwise(ewa::Linear lin, PointMoELinear moe, const Tensor& x) {  // holders: shared_ptr copies
    return moe ? moe->forward(x) : lin->forward(x);
  }

  int64_t collapse_one(const std::string& name, ewa::Linear& lin, PointMoELinear& moe) {
    if (!moe) return 0;
    auto mean = std::dynamic_pointer_cast<ewa::LinearImpl>(moe->experts->mean_module());  // expert mean
    TORCH_CHECK(mean, "PointTransformer: ", name, " has experts that are not linear experts");
    lin = ewa::Linear(mean);
    replace_module(name, lin);
    moe = nullptr;
    return 1;
  }

  ewa::Linear linear1_{nullptr}, linear3_{nullptr};
  PointMoELinear moe1_{nullptr}, moe3_{nullptr};
};

/// TransitionDown: stride 1 -> relu(bn(linear(x))); else FPS to n/stride points per cloud,
/// kNN grouping with relative xyz, linear + bn + relu, max-pool over the neighbours.
class TransitionDownImpl : public nn::Module {
 public:
  TransitionDownImpl(int64_t in_planes, int64_t out_planes, int64_t stride, int64_t nsample)
      : stride_(stride), nsample_(nsample) {
    linear = register_module("linear", make_linear(stride == 1 ? in_planes : 3 + in_planes, out_planes, false));
    bn = register_module("bn", nn::BatchNorm1d(out_planes));
  }

  /// (p [N,3], x [N,in], o [B]) -> (p' [M,3], x' [M,out], o' [B]).
  std::tuple<Tensor, Tensor, Tensor> forward(const Tensor& p, const Tensor& x, const Tensor& o) {
    if (stride_ == 1) return {p, torch::relu(bn(linear(x))), o};
    std::vector<int64_t> new_o;
    int64_t prev = 0, count = 0;
    for (int64_t end : offsets_of(o)) {
      const int64_t size = end - prev;
      // Reference: size / stride per cloud; at least one point for a non-empty cloud.
      count += size > 0 ? std::max<int64_t>(1, size / stride_) : 0;
      new_o.push_back(count);
      prev = end;
    }
    auto n_o = torch::tensor(new_o, torch::kLong);                        // [B]
    auto idx = ops::farthest_point_sampling(p, o, n_o);                     // [M]
    auto n_p = p.index_select(0, idx);                                      // [M, 3]
    auto g = ops::query_and_group(p, o, n_p, n_o, x, nsample_, true);      // [M, k, 3+C]
    const int64_t m = g.size(0), k = g.size(1);
    auto y = linear(g);                                                     // [M, k, out]
    const int64_t c = y.size(2);
    y = torch::relu(bn(y.view({m * k, c}))).view({m, k, c});                // BN over M*k rows
    return {n_p, std::get<0>(y.max(1)), n_o};                               // max-pool: [M, out]
  }

  ewa::Linear linear{nullptr};
  nn::BatchNorm1d bn{nullptr};

 private:
  int64_t stride_, nsample_;
};

/// TransitionUp. Head variant (out_planes == 0): x <- linear1(cat(x, linear2(mean of x per
/// cloud))); otherwise x1 <- linear1(x1) + interpolate_3nn(linear2(x2)).
class TransitionUpImpl : public nn::Module {
 public:
  TransitionUpImpl(int64_t in_planes, int64_t out_planes) : head_(out_planes == 0) {
    if (head_) {
      linear1 = register_module(
          "linear1", nn::Sequential(make_linear(2 * in_planes, in_planes), nn::BatchNorm1d(in_planes), make_relu()));
      linear2 = register_module("linear2", nn::Sequential(make_linear(in_planes, in_planes), make_relu()));
    } else {
      linear1 = register_module(
          "linear1", nn::Sequential(make_linear(out_planes, out_planes), nn::BatchNorm1d(out_planes), make_relu()));
      linear2 = register_module(
          "linear2", nn::Sequential(make_linear(in_planes, out_planes), nn::BatchNorm1d(out_planes), make_relu()));
    }
  }

  /// Head: x [N,C], o [B] -> [N,C].
  Tensor forward_head(const Tensor& x, const Tensor& o) {
    auto g = linear2->forward(cloud_mean(x, o));                       // [B, C]
    auto per_point = g.index_select(0, cloud_index(o, x.size(0), x.device()));  // [N, C]
    return linear1->forward(torch::cat({x, per_point}, 1));            // [N, C]
  }

  /// Fine level (p1 [N,3], x1 [N,out], o1) and coarse level (p2 [M,3], x2 [M,in], o2) -> [N,out].
  Tensor forward(const Tensor& p1, const Tensor& x1, const Tensor& o1, const Tensor& p2, const Tensor& x2,
                 const Tensor& o2) {
    return linear1->forward(x1) + ops::interpolate(p2, o2, linear2->forward(x2), p1, o1, 3);
  }

  nn::Sequential linear1{nullptr}, linear2{nullptr};

 private:
  bool head_;
};

}  // namespace detail

// --------------------------------------------------------------------------------------
std::vector<int64_t> PointTransformerOptions::resolved_blocks() const {
  if (variant() == "seg50") return {1, 2, 3, 5, 2};
  if (variant() == "seg38") return {1, 2, 2, 2, 2};
  if (variant() == "seg26") return {1, 1, 1, 1, 1};
  if (variant() == "custom") return blocks();
  throw std::invalid_argument("pt.variant: unknown variant '" + variant() + "' (known: seg50, seg38, seg26, custom)");
}

namespace {

/// Validates the options (throws std::invalid_argument naming the key). Returns the blocks.
std::vector<int64_t> validated_blocks(const PointTransformerOptions& o) {
  const auto blocks = o.resolved_blocks();
  const size_t s = o.channels().size();
  check(s >= 1, "channels", "at least one stage");
  check(blocks.size() == s, o.variant() == "custom" ? "blocks" : "channels",
        "variant " + o.variant() + " has " + std::to_string(blocks.size()) + " stages " + join(blocks) +
            ", channels has " + std::to_string(s) + " " + join(o.channels()));
  check(o.nsample().size() == s, "nsample", "one value per stage (" + std::to_string(s) + "), found " + join(o.nsample()));
  check(o.stride().size() == s, "stride", "one value per stage (" + std::to_string(s) + "), found " + join(o.stride()));
  check(o.share_planes() >= 1, "share_planes", "an integer >= 1");
  for (size_t i = 0; i < s; ++i) {
    check(blocks[i] >= 0, "blocks", "block counts >= 0, found " + join(blocks));
    check(o.channels()[i] >= 1 && o.channels()[i] % o.share_planes() == 0, "channels",
          "positive multiples of share_planes (" + std::to_string(o.share_planes()) + "), found " + join(o.channels()));
    check(o.nsample()[i] >= 1 && o.nsample()[i] <= 64, "nsample", "integers in [1, 64], found " + join(o.nsample()));
    check(o.stride()[i] >= 1, "stride", "integers >= 1, found " + join(o.stride()));
  }
  check(o.in_channels() >= 1, "in_channels", "an integer >= 1, found " + std::to_string(o.in_channels()));
  check(o.num_classes() >= 1, "num_classes", "an integer >= 1, found " + std::to_string(o.num_classes()));
  check(o.head() == "seg" || o.head() == "cls", "head", "seg or cls, found '" + o.head() + "'");
  check(o.dropout() >= 0 && o.dropout() < 1, "dropout", "a probability in [0, 1)");
  if (o.moe().enabled()) {
    check(o.moe().num_experts() >= 1, "moe.num_experts", "an integer >= 1");
    for (int64_t st : o.moe().stages()) {
      check(st >= 0 && st < static_cast<int64_t>(s), "moe.stages",
            "stage indices in [0, " + std::to_string(s) + "), found " + join(o.moe().stages()));
    }
    const auto& l = o.moe().layers();
    check(l == "both" || l == "linear1" || l == "linear3", "moe.layers", "both, linear1 or linear3, found '" + l + "'");
    check(o.moe().init() == "copy" || o.moe().init() == "independent", "moe.init",
          "copy or independent, found '" + o.moe().init() + "'");
  }
  return blocks;
}

}  // namespace

PointTransformerImpl::PointTransformerImpl(PointTransformerOptions options) : options_(std::move(options)) {
  const auto blocks = validated_blocks(options_);
  const auto& ch = options_.channels();
  const int64_t stages = static_cast<int64_t>(ch.size());
  const auto& moe = options_.moe();
  std::set<int64_t> moe_stages(moe.stages().begin(), moe.stages().end());
  if (moe.enabled() && moe_stages.empty()) {
    for (int64_t i = 0; i < stages; ++i) moe_stages.insert(i);
  }
  int64_t in = options_.in_channels();
  for (int64_t i = 0; i < stages; ++i) {
    nn::ModuleList enc;
    down_.push_back(std::make_shared<detail::TransitionDownImpl>(in, ch[i], options_.stride()[i], options_.nsample()[i]));
    enc->push_back(down_.back());
    in = ch[i];
    const PointMoEOptions* block_moe = moe.enabled() && moe_stages.count(i) ? &moe : nullptr;
    enc_blocks_.emplace_back();
    for (int64_t b = 0; b < blocks[i]; ++b) {
      enc_blocks_.back().push_back(
          std::make_shared<detail::PointTransformerBlockImpl>(in, options_.share_planes(), block_moe));
      enc->push_back(enc_blocks_.back().back());
    }
    register_module("enc" + std::to_string(i + 1), enc);
  }
  const int64_t k = options_.num_classes();
  if (options_.head() == "seg") {
    up_.resize(stages);
    dec_blocks_.resize(stages);
    for (int64_t i = stages - 1; i >= 0; --i) {
      nn::ModuleList dec;
      up_[i] = std::make_shared<detail::TransitionUpImpl>(in, i == stages - 1 ? 0 : ch[i]);
      dec->push_back(up_[i]);
      in = ch[i];
      dec_blocks_[i].push_back(std::make_shared<detail::PointTransformerBlockImpl>(in, options_.share_planes(), nullptr));
      dec->push_back(dec_blocks_[i].back());
      register_module("dec" + std::to_string(i + 1), dec);
    }
    head_ = register_module("cls", nn::Sequential(make_linear(ch[0], ch[0]), nn::BatchNorm1d(ch[0]), make_relu(),
                                                  make_linear(ch[0], k)));
  } else {
    const double p = options_.dropout();
    head_ = register_module(
        "cls", nn::Sequential(make_linear(in, 256), nn::BatchNorm1d(256), make_relu(), nn::Dropout(p),
                              make_linear(256, 128), nn::BatchNorm1d(128), make_relu(), nn::Dropout(p),
                              make_linear(128, k)));
  }
}

Tensor PointTransformerImpl::forward(const Tensor& coord, const Tensor& feat, const Tensor& offset) {
  TORCH_CHECK(coord.dim() == 2 && coord.size(1) == 3 && coord.is_floating_point(),
              "PointTransformer: coord must be [N, 3] floating, got ", coord.sizes(), " ", coord.scalar_type());
  TORCH_CHECK(feat.dim() == 2 && feat.size(0) == coord.size(0) && feat.size(1) == options_.in_channels(),
              "PointTransformer: feat must be [N=", coord.size(0), ", in_channels=", options_.in_channels(), "], got ",
              feat.sizes());
  TORCH_CHECK(feat.scalar_type() == coord.scalar_type(), "PointTransformer: coord (", coord.scalar_type(),
              ") and feat (", feat.scalar_type(), ") must have the same dtype");
  TORCH_CHECK(offset.dim() == 1 && offset.numel() >= 1 && offset.scalar_type() == torch::kLong,
              "PointTransformer: offset must be a non-empty [B] int64 tensor, got ", offset.sizes(), " ",
              offset.scalar_type());
  const int64_t stages = static_cast<int64_t>(down_.size());
  std::vector<Tensor> ps(stages), xs(stages), os(stages), idxs(stages);
  Tensor p = coord, x = feat, o = offset.to(torch::kCPU);
  TORCH_CHECK(o[-1].item<int64_t>() == coord.size(0), "PointTransformer: offset ends at ", o[-1].item<int64_t>(),
              " but there are ", coord.size(0), " points");
  const bool seg = options_.head() == "seg";
  for (int64_t i = 0; i < stages; ++i) {
    std::tie(p, x, o) = down_[i]->forward(p, x, o);
    // One kNN per level, shared by every block of the level (encoder and decoder): the
    // reference recomputes the same neighbours in each layer.
    if (!enc_blocks_[i].empty() || seg) {
      idxs[i] = std::get<0>(ops::knn(p, o, p, o, options_.nsample()[i]));  // [N_i, k]
    }
    for (auto& block : enc_blocks_[i]) x = block->forward(p, x, idxs[i]);
    ps[i] = p, xs[i] = x, os[i] = o;
  }
  if (!seg) return head_->forward(cloud_mean(x, o));  // [B, num_classes]
  x = up_[stages - 1]->forward_head(xs[stages - 1], os[stages - 1]);
  for (auto& block : dec_blocks_[stages - 1]) x = block->forward(ps[stages - 1], x, idxs[stages - 1]);
  for (int64_t i = stages - 2; i >= 0; --i) {
    x = up_[i]->forward(ps[i], xs[i], os[i], ps[i + 1], x, os[i + 1]);
    for (auto& block : dec_blocks_[i]) x = block->forward(ps[i], x, idxs[i]);
  }
  return head_->forward(x);  // [N, num_classes]
}

namespace {

/// (module path, layer) of every MoE linear, in registration order.
std::vector<std::pair<std::string, PointMoELinear>> find_moe(const nn::Module& root) {
  std::vector<std::pair<std::string, PointMoELinear>> out;
  for (const auto& item : root.named_modules("", /*include_self=*/false)) {
    if (auto m = std::dynamic_pointer_cast<MoELayerImpl>(item.value())) out.emplace_back(item.key(), PointMoELinear(m));
  }
  return out;
}

}  // namespace

Tensor PointTransformerImpl::aux_loss() const {
  Tensor total;
  for (const auto& [name, layer] : find_moe(*this)) {
    const auto& l = layer->last_aux_loss();
    if (l.defined()) total = total.defined() ? total + l : l;
  }
  if (total.defined()) return total;
  const auto params = parameters();
  return params.empty() ? torch::zeros({}) : torch::zeros({}, params.front().options().requires_grad(false));
}

std::map<std::string, std::vector<double>> PointTransformerImpl::routing_stats() const {
  std::map<std::string, std::vector<double>> out;
  for (const auto& [name, layer] : find_moe(*this)) {
    auto it = layer->last_stats().find("expert_load");
    if (it == layer->last_stats().end() || !it->second.defined()) continue;
    auto load = it->second.detach().to(torch::kCPU, torch::kDouble).contiguous();
    out[name] = std::vector<double>(load.data_ptr<double>(), load.data_ptr<double>() + load.numel());
  }
  return out;
}

int64_t PointTransformerImpl::collapse_to_dense() {
  int64_t n = 0;
  for (auto& stage : enc_blocks_) {
    for (auto& block : stage) n += block->collapse();
  }
  if (n > 0) options_.moe().enabled(false);
  return n;
}

void PointTransformerImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  for (auto& p : parameters()) p.set_data(torch::autograd::Variable(p).to(device, dtype, non_blocking));
  for (auto& b : buffers()) {
    b.set_data(torch::autograd::Variable(b).to(device, b.is_floating_point() ? dtype : b.scalar_type(), non_blocking));
  }
}

void PointTransformerImpl::to(torch::Dtype dtype, bool non_blocking) {
  const auto params = parameters();
  to(params.empty() ? torch::Device(torch::kCPU) : params.front().device(), dtype, non_blocking);
}

int64_t PointTransformerImpl::num_moe_layers() const { return static_cast<int64_t>(find_moe(*this).size()); }

// --------------------------------------------------------------------------------------
int64_t dense_parameter_count(const PointTransformerOptions& options) {
  const auto blocks = validated_blocks(options);
  const auto& ch = options.channels();
  const int64_t s = options.share_planes(), k = options.num_classes();
  const int64_t stages = static_cast<int64_t>(ch.size());
  auto bn = [](int64_t c) { return 2 * c; };
  auto lin = [](int64_t in, int64_t out, bool bias) { return in * out + (bias ? out : 0); };
  auto layer = [&](int64_t c) {  // PointTransformerLayer(c, c, s)
    return 3 * lin(c, c, true) + lin(3, 3, true) + bn(3) + lin(3, c, true) + bn(c) + lin(c, c / s, true) +
           bn(c / s) + lin(c / s, c / s, true);
  };
  auto block = [&](int64_t c) { return lin(c, c, false) + bn(c) + layer(c) + bn(c) + lin(c, c, false) + bn(c); };
  int64_t n = 0, in = options.in_channels();
  for (int64_t i = 0; i < stages; ++i) {
    n += lin(options.stride()[i] == 1 ? in : in + 3, ch[i], false) + bn(ch[i]) + blocks[i] * block(ch[i]);
    in = ch[i];
  }
  if (options.head() == "seg") {
    n += lin(2 * in, in, true) + bn(in) + lin(in, in, true) + block(in);  // dec<last>: head TransitionUp
    for (int64_t i = stages - 2; i >= 0; --i) {
      n += lin(ch[i], ch[i], true) + bn(ch[i]) + lin(ch[i + 1], ch[i], true) + bn(ch[i]) + block(ch[i]);
    }
    n += lin(ch[0], ch[0], true) + bn(ch[0]) + lin(ch[0], k, true);
  } else {
    n += lin(in, 256, true) + bn(256) + lin(256, 128, true) + bn(128) + lin(128, k, true);
  }
  return n;
}

// LibTorch's CPU kernel walks each channel through the whole [R, C] matrix: for the few
// channels of the attention MLPs (C = 3, 4) on the N*k rows of a 40k-point level that is
// ~50 ms per layer (fwd+bwd); on the transposed copy every channel is one contiguous run.
Tensor batch_norm_rows(nn::BatchNorm1dImpl& bn, const Tensor& x) {
  constexpr int64_t kFewChannels = 8;  // measured: equal at C = 8, 8-10x faster at C = 3, 4
  if (x.dim() != 2 || x.size(1) >= kFewChannels || !x.device().is_cpu()) return bn.forward(x);
  // Reduced precision (bf16 autocast) is normalised in float: the [1, C, R] kernel would sum
  // the statistics of a whole channel in bf16 (the [R, C] kernel accumulates in float).
  const auto t = x.is_floating_point() && c10::elementSize(x.scalar_type()) < 4 ? x.t().to(torch::kFloat) : x.t();
  return bn.forward(t.contiguous().unsqueeze(0)).squeeze(0).t();  // [R, C] view
}

}  // namespace ewa::pointcloud
