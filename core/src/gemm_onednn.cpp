// oneDNN matmul for fp32 CPU tensors: strided memory descriptors over the tensors' own storage
// (transposed views cost nothing), bias as a broadcast operand, the library's primitive cache.
// Compiled to "not available" when the build has no oneDNN (EWA_WITH_ONEDNN).
#include "gemm_detail.h"

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
  const auto bias_md = bias.defined() ? onednn_desc(bias) : dnnl::memory::desc();
  dnnl::matmul prim;
  try {
#if DNNL_VERSION_MAJOR >= 3
    dnnl::matmul::primitive_desc pd(engine, a_md, b_md, bias_md, c_md);
#else
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, bias_md, c_md), engine);
#endif
    prim = dnnl::matmul(pd);  // served from oneDNN's primitive cache after the first call per shape
  } catch (const dnnl::error&) {
    return false;  // a layout this oneDNN has no kernel for
  }
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl::memory(a_md, engine, a.data_ptr())},
      {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, engine, b.data_ptr())},
      {DNNL_ARG_DST, dnnl::memory(c_md, engine, out.data_ptr())}};
  if (bias.defined()) args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_md, engine, bias.data_ptr()));
  dnnl::stream stream(engine);
  prim.execute(stream, args);
  stream.wait();
  return true;
}

#else

bool onednn_compiled() { return false; }
std::string onednn_version() { return ""; }
bool onednn_matmul(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, torch::Tensor&) { return false; }

#endif

}  // namespace ewa::detail
