// ewa::gemm / ewa::gemm_linear: which products take the oneDNN path, and its autograd (the backward
// products are gemm calls on transposed views, so the gradients keep the operands' layouts).
#include "ewa/core/gemm.h"

#include <ATen/record_function.h>

#include <cstdlib>
#include <cstring>

#include "ewa/core/compat.h"
#include "gemm_detail.h"

namespace ewa {
namespace {

// Products smaller than this many multiply-adds stay with at::mm (oneDNN's per-call setup,
// a few microseconds, would dominate).
constexpr int64_t kMinOnednnMacs = int64_t{1} << 16;

bool onednn_on() {
  static const bool on = detail::onednn_compiled() && [] {
    const char* e = std::getenv("EWA_ONEDNN");
    return !(e && std::strcmp(e, "0") == 0);
  }();
  return on;
}

// Whether oneDNN takes this bias: undefined, [N], or [E, 1, N] with a 3-D product (anything
// else needs a general broadcast: LibTorch's op).
bool onednn_bias_fits(const torch::Tensor& bias, int64_t rank, int64_t n) {
  if (!bias.defined()) return true;
  if (bias.scalar_type() != torch::kFloat32 || !bias.device().is_cpu()) return false;
  return (bias.dim() == 1 && bias.size(0) == n) ||
         (bias.dim() == 3 && rank == 3 && bias.size(1) == 1 && bias.size(2) == n);
}

// A fitting bias as oneDNN reads it: out's rank, size 1 where it broadcasts.
torch::Tensor onednn_bias_view(const torch::Tensor& bias, int64_t rank) {
  if (!bias.defined() || bias.dim() == rank) return bias.defined() ? bias.contiguous() : bias;
  std::vector<int64_t> shape(static_cast<size_t>(rank), 1);
  shape.back() = bias.size(0);
  return bias.contiguous().view(shape);
}

bool onednn_eligible(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias) {
  if (!onednn_on() || !a.defined() || !b.defined()) return false;
  if (!a.device().is_cpu() || !b.device().is_cpu() || a.scalar_type() != torch::kFloat32 ||
      b.scalar_type() != torch::kFloat32 || a.layout() != torch::kStrided || b.layout() != torch::kStrided)
    return false;
  if (compat::cpu_autocast_enabled()) return false;  // autocast decides the dtype: LibTorch's op
  const int64_t r = a.dim();
  if ((r != 2 && r != 3) || b.dim() != r || a.size(-1) != b.size(-2) || (r == 3 && a.size(0) != b.size(0)))
    return false;
  const int64_t macs = a.numel() * b.size(-1);
  if (macs < kMinOnednnMacs) return false;
  return onednn_bias_fits(bias, r, b.size(-1));
}

// An operand oneDNN reads in place: a unit stride in one of the last two dimensions.
torch::Tensor onednn_operand(const torch::Tensor& t) {
  const int64_t r = t.dim();
  return (t.stride(r - 1) == 1 || t.stride(r - 2) == 1) ? t : t.contiguous();
}

torch::Tensor torch_product(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias) {
  if (a.dim() == 3) return bias.defined() ? torch::baddbmm(bias, a, b) : torch::bmm(a, b);
  return bias.defined() ? torch::addmm(bias, a, b) : torch::mm(a, b);
}

torch::Tensor onednn_product(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias) {
  const auto A = onednn_operand(a), B = onednn_operand(b);
  RECORD_FUNCTION("ewa::gemm", std::vector<c10::IValue>({A, B}));  // for profilers and FLOP counts
  const auto bias_view = onednn_bias_view(bias, a.dim());
  std::vector<int64_t> shape = a.sizes().vec();
  shape.back() = b.size(-1);
  auto out = torch::empty(shape, a.options());
  if (!detail::onednn_matmul(A, B, bias_view, out)) return torch_product(a, b, bias);
  return out;
}

// out = a @ b + bias with the gradients as products of the same kind.
struct OnednnGemm : public torch::autograd::Function<OnednnGemm> {
  // bias as an optional: LibTorch 1.13's Function records every tensor argument's device, and an
  // undefined tensor has none.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b,
                               const c10::optional<torch::Tensor>& bias_opt) {
    const torch::Tensor bias = bias_opt.value_or(torch::Tensor());
    ctx->save_for_backward({a, b});
    ctx->saved_data["has_bias"] = bias.defined();
    if (bias.defined()) ctx->saved_data["bias_sizes"] = bias.sizes().vec();
    return onednn_product(a, b, bias);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& a = saved[0];
    const auto& b = saved[1];
    const auto g = grads[0];
    torch::Tensor ga, gb, gbias;
    if (ctx->needs_input_grad(0)) ga = gemm(g, b.transpose(-1, -2));  // [.., M, K]
    if (ctx->needs_input_grad(1)) {
      // b stored transposed (b = w.t()): compute w's gradient in w's layout, return its view.
      const bool b_transposed = b.stride(-2) == 1 && b.stride(-1) != 1;
      gb = b_transposed ? gemm(g.transpose(-1, -2), a).transpose(-1, -2) : gemm(a.transpose(-1, -2), g);
    }
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2))
      gbias = g.sum_to_size(ctx->saved_data["bias_sizes"].toIntVector());
    return {ga, gb, gbias};
  }
};

c10::optional<torch::Tensor> optional_bias(const torch::Tensor& bias) {
  return bias.defined() ? c10::optional<torch::Tensor>(bias) : c10::nullopt;
}

}  // namespace

torch::Tensor gemm(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias) {
  if (!onednn_eligible(a, b, bias)) return torch_product(a, b, bias);
  return OnednnGemm::apply(a, b, optional_bias(bias));
}

torch::Tensor gemm_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (x.dim() < 1 || weight.dim() != 2) return torch::linear(x, weight, bias);
  const auto x2 = x.dim() == 2 ? x : x.reshape({-1, x.size(-1)});
  const auto wt = weight.t();
  if (!onednn_eligible(x2, wt, bias)) return torch::linear(x, weight, bias);
  auto y = OnednnGemm::apply(x2, wt, optional_bias(bias));  // [M, out]
  if (x.dim() == 2) return y;
  auto shape = x.sizes().vec();
  shape.back() = weight.size(0);
  return y.view(shape);
}

std::string gemm_backend() {
  return onednn_on() ? "oneDNN " + detail::onednn_version() : "BLAS (at::mm)";
}

}  // namespace ewa
