// oneDNN matmul for fp32 CPU tensors: strided memory descriptors over the tensors' own storage
// (transposed views cost nothing), bias as a broadcast operand, the library's primitive cache.
// Compiled to "not available" when the build has no oneDNN (EWA_WITH_ONEDNN).
#include "gemm_detail.h"

#include <cstring>
#include <unordered_map>

#ifdef EWA_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace ewa::detail {

#ifdef EWA_WITH_ONEDNN
namespace {

dnnl::engine& onednn_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Descriptor of a [.., R, C] tensor as it lies in memory (its strides, in elements).
dnnl::memory::desc onednn_desc(const torch::Tensor& t) {
  dnnl::memory::dims dims(t.sizes().begin(), t.sizes().end());
  dnnl::memory::dims strides(t.strides().begin(), t.strides().end());
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

}  // namespace

bool onednn_compiled() { return true; }

std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

bool onednn_matmul(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias, torch::Tensor& out) {
  auto& engine = onednn_engine();
  const auto a_md = onednn_desc(a), b_md = onednn_desc(b), c_md = onednn_desc(out);
  // A primitive with an optimised kernel, or none. oneDNN falls back to its reference kernel
  // ("ref:any", ~100x slower) for layouts its kernels lack: 2.6 has no fast kernel for a bias
  // that varies over the batch ([E, 1, N]); that bias is then added after the product.
  auto make = [&](const dnnl::memory::desc& bias_md, dnnl::matmul& prim) {
    try {
#if DNNL_VERSION_MAJOR >= 3
      dnnl::matmul::primitive_desc pd(engine, a_md, b_md, bias_md, c_md);
#else
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, bias_md, c_md), engine);
#endif
      if (std::strncmp(pd.impl_info_str(), "ref", 3) == 0) return false;
      prim = dnnl::matmul(pd);  // served from oneDNN's primitive cache after the first call per shape
      return true;
    } catch (const dnnl::error&) {
      return false;  // a layout this oneDNN does not take at all
    }
  };
  dnnl::matmul prim;
  bool fused_bias = bias.defined() && make(onednn_desc(bias), prim);
  if (!fused_bias && !make(dnnl::memory::desc(), prim)) return false;
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl::memory(a_md, engine, a.data_ptr())},
      {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, engine, b.data_ptr())},
      {DNNL_ARG_DST, dnnl::memory(c_md, engine, out.data_ptr())}};
  if (fused_bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(onednn_desc(bias), engine, bias.data_ptr()));
  dnnl::stream stream(engine);
  prim.execute(stream, args);
  stream.wait();
  if (bias.defined() && !fused_bias) out.add_(bias);
  return true;
}

#else

bool onednn_compiled() { return false; }
std::string onednn_version() { return ""; }
bool onednn_matmul(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, torch::Tensor&) { return false; }

#endif

}  // namespace ewa::detail
