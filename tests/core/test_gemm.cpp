// ewa::gemm / ewa::gemm_linear against LibTorch's addmm / baddbmm / linear: values and gradients
// (2-D, 3-D inputs, batched experts, transposed and strided operands, with and without bias),
// gradient layouts, double backward, and which products take the oneDNN path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "ewa/core/compat.h"
#include "ewa/core/gemm.h"

namespace ewa {
namespace {

bool onednn_backend() { return gemm_backend().rfind("oneDNN", 0) == 0; }

// The product's autograd node is oneDNN's (looking through the view that restores a 3-D shape).
bool took_onednn(const torch::Tensor& y) {
  auto fn = y.grad_fn();
  if (fn && fn->name().find("View") != std::string::npos && fn->num_outputs() > 0) fn = fn->next_edge(0).function;
  return fn && fn->name().find("OnednnGemm") != std::string::npos;
}

// Relative closeness for fp32 products with K-term sums.
void expect_close(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double scale = want.abs().max().item<double>() + 1e-12;
  EXPECT_LT((got - want).abs().max().item<double>() / scale, 1e-5) << what;
}

struct Leaves {
  torch::Tensor a, b, bias;
};

Leaves leaves(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias) {
  return {a.detach().clone().requires_grad_(true), b.detach().clone().requires_grad_(true),
          bias.defined() ? bias.detach().clone().requires_grad_(true) : torch::Tensor()};
}

TEST(Gemm, LinearMatchesTorchLinearWithGradients) {
  torch::manual_seed(0);
  for (bool with_bias : {true, false}) {
    for (auto shape : {std::vector<int64_t>{300, 96}, std::vector<int64_t>{4, 75, 96}}) {
      auto x = torch::randn(shape), w = torch::randn({160, 96}) * 0.1;
      auto b = with_bias ? torch::randn({160}) : torch::Tensor();
      auto ours = leaves(x, w, b), ref = leaves(x, w, b);
      auto y = gemm_linear(ours.a, ours.b, ours.bias);
      auto y_ref = torch::linear(ref.a, ref.b, ref.bias);
      EXPECT_EQ(took_onednn(y), onednn_backend());
      expect_close(y, y_ref, "forward");
      auto g = torch::randn(y.sizes());
      (y * g).sum().backward();
      (y_ref * g).sum().backward();
      expect_close(ours.a.grad(), ref.a.grad(), "dx");
      expect_close(ours.b.grad(), ref.b.grad(), "dw");
      EXPECT_TRUE(ours.b.grad().is_contiguous());  // in the weight's own layout
      if (with_bias) expect_close(ours.bias.grad(), ref.bias.grad(), "db");
    }
  }
}

TEST(Gemm, BatchedExpertsMatchBaddbmm) {
  torch::manual_seed(1);
  auto a = torch::randn({4, 50, 64}), b = torch::randn({4, 64, 80}) * 0.1, bias = torch::randn({4, 1, 80});
  for (bool with_bias : {true, false}) {
    auto ours = leaves(a, b, with_bias ? bias : torch::Tensor()), ref = leaves(a, b, with_bias ? bias : torch::Tensor());
    auto y = gemm(ours.a, ours.b, ours.bias);
    auto y_ref = with_bias ? torch::baddbmm(ref.bias, ref.a, ref.b) : torch::bmm(ref.a, ref.b);
    EXPECT_EQ(took_onednn(y), onednn_backend());
    expect_close(y, y_ref, "forward");
    y.pow(2).sum().backward();
    y_ref.pow(2).sum().backward();
    expect_close(ours.a.grad(), ref.a.grad(), "da");
    expect_close(ours.b.grad(), ref.b.grad(), "db");
    if (with_bias) expect_close(ours.bias.grad(), ref.bias.grad(), "dbias");
  }
  // One expert of the stack with a 1-D bias (StackedExperts::forward_expert).
  auto y = gemm(a[1], b[1], bias[1][0]);
  expect_close(y, torch::addmm(bias[1][0], a[1], b[1]), "one expert");
}

TEST(Gemm, TransposedAndStridedOperands) {
  torch::manual_seed(2);
  auto base_a = torch::randn({96, 200}), base_b = torch::randn({120, 96});
  // a = base_a.t() (unit stride in dim 0), b = base_b.t(); and operands without any unit stride.
  auto a_t = base_a.t(), b_t = base_b.t();
  expect_close(gemm(a_t, b_t), torch::mm(a_t, b_t), "transposed views");
  auto a_s = torch::randn({200, 192}).slice(1, 0, 192, 2), b_s = torch::randn({192, 240}).slice(0, 0, 192, 2).slice(1, 0, 240, 2);
  ASSERT_NE(a_s.stride(1), 1);
  ASSERT_FALSE(b_s.stride(0) == 1 || b_s.stride(1) == 1);
  expect_close(gemm(a_s, b_s), torch::mm(a_s, b_s), "strided operands");
  auto x3 = torch::randn({3, 96, 70}).transpose(1, 2);  // non-contiguous 3-D input of a linear
  auto w = torch::randn({50, 96});
  expect_close(gemm_linear(x3, w, torch::randn({50}) * 0), torch::linear(x3, w), "3-D transposed input");
}

TEST(Gemm, DoubleBackwardMatchesTorch) {
  torch::manual_seed(3);
  auto x = torch::randn({128, 64}), w = torch::randn({96, 64}) * 0.1, b = torch::randn({96});
  auto ours = leaves(x, w, b), ref = leaves(x, w, b);
  auto gx = torch::autograd::grad({gemm_linear(ours.a, ours.b, ours.bias).pow(2).sum()}, {ours.a}, {}, true, true)[0];
  auto gx_ref = torch::autograd::grad({torch::linear(ref.a, ref.b, ref.bias).pow(2).sum()}, {ref.a}, {}, true, true)[0];
  expect_close(gx, gx_ref, "first gradient");
  gx.pow(2).sum().backward();
  gx_ref.pow(2).sum().backward();
  expect_close(ours.b.grad(), ref.b.grad(), "second-order dw");
}

TEST(Gemm, OtherCasesGoToLibTorchUnchanged) {
  torch::manual_seed(4);
  // Doubles, tiny products and autocast regions are LibTorch's own ops, bit for bit.
  auto xd = torch::randn({200, 64}, torch::kFloat64).requires_grad_(true), wd = torch::randn({80, 64}, torch::kFloat64);
  auto yd = gemm_linear(xd, wd);
  EXPECT_FALSE(took_onednn(yd));
  EXPECT_TRUE(torch::equal(yd, torch::linear(xd, wd)));
  auto xs = torch::randn({4, 8}).requires_grad_(true), ws = torch::randn({5, 8});
  EXPECT_FALSE(took_onednn(gemm_linear(xs, ws)));
  auto x = torch::randn({256, 64}).requires_grad_(true), w = torch::randn({96, 64});
  {
    compat::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16, true);
    auto y = gemm_linear(x, w);
    EXPECT_EQ(y.scalar_type(), at::kBFloat16);
    EXPECT_FALSE(took_onednn(y));
  }
  // A bias that is not [N] / [E, 1, N] (a full [M, N] addend) is LibTorch's addmm too.
  auto a = torch::randn({100, 64}), bm = torch::randn({64, 90}), full = torch::randn({100, 90});
  EXPECT_TRUE(torch::equal(gemm(a, bm, full), torch::addmm(full, a, bm)));
  EXPECT_FALSE(gemm_backend().empty());
}

}  // namespace
}  // namespace ewa
