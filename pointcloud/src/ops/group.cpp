// Gather-based ops built on kNN with tensor ops (device-agnostic, autograd through index_select):
// neighbour grouping, grouping with relative coordinates, inverse-distance interpolation.
#include "common.h"
#include "ewa/pointcloud/ops.h"

namespace ewa::pointcloud::ops {

namespace {
void check_idx(const torch::Tensor& idx, const torch::Tensor& ref, const char* op) {
  TORCH_CHECK(idx.defined() && idx.dim() == 2, op, ": idx must be [M,k], got ",
              idx.defined() ? idx.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(idx.scalar_type() == torch::kLong, op, ": idx must be int64, got ",
              idx.scalar_type());
  detail::check_device(idx, ref, op, "idx");
}

/// Row gather with its own backward: the gradient is summed per target row by
/// detail::gather_backward_cpu on the CPU (parallel, index_add_'s order) and by index_add_
/// elsewhere (atomics on CUDA).
struct GatherRows : public torch::autograd::Function<GatherRows> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& feat,
                               const torch::Tensor& idx) {
    const int64_t M = idx.size(0), k = idx.size(1), C = feat.size(1);
    auto flat = idx.reshape({-1});
    ctx->saved_data["n"] = feat.size(0);
    ctx->saved_data["c"] = C;
    ctx->save_for_backward({flat});
    return feat.index_select(0, flat).view({M, k, C});
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto flat = ctx->get_saved_variables()[0];
    const int64_t n = ctx->saved_data["n"].toInt(), c = ctx->saved_data["c"].toInt();
    auto g = grads[0].reshape({flat.size(0), c});  // [M*k, C]
    torch::Tensor out;
    if (g.device().is_cpu()) {
      out = detail::gather_backward_cpu(g.contiguous(), flat.contiguous(), n);
    } else {
      out = torch::zeros({n, g.size(1)}, g.options()).index_add_(0, flat, g);
    }
    return {out, torch::Tensor()};
  }
};

/// ops::aggregate on the CPU: the kernels of group_cpu.cpp, inputs in one dtype.
struct AggregateRows : public torch::autograd::Function<AggregateRows> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& v,
                               const torch::Tensor& pe, const torch::Tensor& w, const torch::Tensor& idx) {
    ctx->save_for_backward({v, pe, w, idx});
    return detail::aggregate_cpu(v, pe, w, idx);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto s = ctx->get_saved_variables();
    auto g = detail::aggregate_backward_cpu(grads[0].contiguous(), s[0], s[1], s[2], s[3]);
    return {g[0], g[1], g[2], torch::Tensor()};
  }
};

}  // namespace

torch::Tensor aggregate(const torch::Tensor& v, const torch::Tensor& pe, const torch::Tensor& w,
                        const torch::Tensor& idx) {
  constexpr const char* op = "aggregate";
  TORCH_CHECK(v.defined() && v.dim() == 2, op, ": v must be [N,C], got ", v.defined() ? v.sizes() : torch::IntArrayRef{});
  detail::check_backend(v, op);
  check_idx(idx, v, op);
  const int64_t m = idx.size(0), k = idx.size(1), c = v.size(1);
  TORCH_CHECK(pe.defined() && pe.dim() == 3 && pe.size(0) == m && pe.size(1) == k && pe.size(2) == c, op,
              ": pe must be [", m, ",", k, ",", c, "], got ", pe.defined() ? pe.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(w.defined() && w.dim() == 3 && w.size(0) == m && w.size(1) == k && w.size(2) >= 1 &&
                  c % w.size(2) == 0,
              op, ": w must be [", m, ",", k, ",C/s] with C/s dividing ", c, ", got ",
              w.defined() ? w.sizes() : torch::IntArrayRef{});
  detail::check_device(pe, v, op, "pe");
  detail::check_device(w, v, op, "w");
  const auto dtype = at::promote_types(at::promote_types(v.scalar_type(), pe.scalar_type()), w.scalar_type());
  TORCH_CHECK(at::isFloatingType(dtype), op, ": v, pe and w must be floating point, got ", dtype);
  if (!v.device().is_cpu()) {  // tensor ops: the same arithmetic through autograd
    const int64_t cw = w.size(2);
    auto t = (group(v.to(dtype), idx) + pe.to(dtype)).view({m, k, c / cw, cw}) * w.to(dtype).unsqueeze(2);
    return t.sum(1).view({m, c});
  }
  return AggregateRows::apply(v.to(dtype).contiguous(), pe.to(dtype).contiguous(), w.to(dtype).contiguous(),
                              idx.contiguous());
}

torch::Tensor group(const torch::Tensor& feat, const torch::Tensor& idx) {
  constexpr const char* op = "group";
  TORCH_CHECK(feat.defined() && feat.dim() == 2, op, ": feat must be [N,C], got ",
              feat.defined() ? feat.sizes() : torch::IntArrayRef{});
  detail::check_backend(feat, op);
  check_idx(idx, feat, op);
  return GatherRows::apply(feat, idx);  // [M,k,C]
}

torch::Tensor group_relative(const torch::Tensor& xyz, const torch::Tensor& new_xyz,
                             const torch::Tensor& feat, const torch::Tensor& idx, bool with_xyz) {
  constexpr const char* op = "group_relative";
  detail::check_xyz(xyz, op, "xyz");
  detail::check_xyz(new_xyz, op, "new_xyz");
  detail::check_backend(xyz, op);
  detail::check_device(new_xyz, xyz, op, "new_xyz");
  check_idx(idx, xyz, op);
  TORCH_CHECK(idx.size(0) == new_xyz.size(0), op, ": idx has ", idx.size(0),
              " rows but new_xyz has ", new_xyz.size(0), " points");
  TORCH_CHECK(with_xyz || feat.defined(), op, ": with_xyz=false needs features");
  std::vector<torch::Tensor> parts;
  if (with_xyz) parts.push_back(group(xyz, idx) - new_xyz.unsqueeze(1));  // [M,k,3]
  if (feat.defined()) {
    TORCH_CHECK(feat.dim() == 2 && feat.size(0) == xyz.size(0), op, ": feat must be [",
                xyz.size(0), ",C], got ", feat.sizes());
    detail::check_device(feat, xyz, op, "feat");
    auto g = group(feat, idx);  // [M,k,C]
    if (with_xyz && g.scalar_type() != parts[0].scalar_type())
      parts[0] = parts[0].to(g.scalar_type());
    parts.push_back(g);
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts, -1);  // [M,k,3+C]
}

torch::Tensor query_and_group(const torch::Tensor& xyz, const torch::Tensor& offset,
                              const torch::Tensor& new_xyz, const torch::Tensor& new_offset,
                              const torch::Tensor& feat, int64_t k, bool with_xyz,
                              torch::Tensor* idx_out) {
  auto idx = std::get<0>(knn(xyz, offset, new_xyz, new_offset, k));  // [M,k]
  if (idx_out) *idx_out = idx;
  return group_relative(xyz, new_xyz, feat, idx, with_xyz);
}

torch::Tensor interpolate(const torch::Tensor& src_xyz, const torch::Tensor& src_offset,
                          const torch::Tensor& src_feat, const torch::Tensor& dst_xyz,
                          const torch::Tensor& dst_offset, int64_t k) {
  constexpr const char* op = "interpolate";
  TORCH_CHECK(src_feat.defined() && src_feat.dim() == 2, op, ": src_feat must be [N,C], got ",
              src_feat.defined() ? src_feat.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(src_feat.size(0) == src_xyz.size(0), op, ": src_feat has ", src_feat.size(0),
              " rows but src_xyz has ", src_xyz.size(0), " points");
  TORCH_CHECK(torch::isFloatingType(src_feat.scalar_type()), op,
              ": src_feat must be floating point, got ", src_feat.scalar_type());
  detail::check_device(src_feat, src_xyz, op, "src_feat");
  auto [idx, dist2] = knn(src_xyz, src_offset, dst_xyz, dst_offset, k);  // [M,k] each
  auto recip = 1.0 / (dist2.sqrt() + 1e-8);                               // [M,k]
  auto weight = (recip / recip.sum(1, true)).to(src_feat.scalar_type());  // [M,k]
  return (group(src_feat, idx) * weight.unsqueeze(-1)).sum(1);            // [M,C]
}

}  // namespace ewa::pointcloud::ops
