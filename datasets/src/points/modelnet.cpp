// ModelNet readers: HDF5 2048-point split, normal_resampled text shapes, OFF meshes and
// area-weighted surface sampling.
#include "ewa/datasets/points/modelnet.h"

#include "h5_util.h"
#include <ATen/CPUGeneratorImpl.h>
#include "ewa/datasets/bounded_io.h"
#include "util.h"

#include <cmath>
#include <cstring>

namespace ewa::datasets {

using namespace detail;

namespace detail {
fs::path resolve_listed(const fs::path& dir, const std::string& listed, const fs::path& index_file);
}

ModelNetH5 read_modelnet_h5(const std::string& dir_s, const std::string& split) {
#ifndef EWA_HAVE_HDF5
  TORCH_CHECK(false, "cannot read ", dir_s, ": this build has no HDF5 (install libhdf5-dev, -DEWA_WITH_HDF5=ON)");
  (void)split;
  return {};
#else
  fs::path dir(dir_s);
  fs::path names = dir / "shape_names.txt";
  fs::path index = dir / (split + "_files.txt");
  TORCH_CHECK(fs::is_regular_file(names), dir_s, ": no shape_names.txt");
  TORCH_CHECK(fs::is_regular_file(index), dir_s, ": no ", split, "_files.txt (split must be train or test)");
  ModelNetH5 out;
  out.class_names = read_lines(names);
  std::vector<torch::Tensor> pts, nrm, lab;
  bool all_normals = true;
  for (const auto& listed : read_lines(index)) {
    fs::path f = resolve_listed(dir, listed, index);
    const H5Contents h = h5_read(f.string(), {"data", "label", "normal"});
    auto d = h.at("data");
    auto l = h.at("label");
    TORCH_CHECK(d.dim() == 3 && d.size(2) == 3, f.string(), ": 'data' has shape ", d.sizes(), ", expected [n,P,3]");
    l = l.reshape({-1});  // [n,1] -> [n]
    TORCH_CHECK(l.size(0) == d.size(0) && !l.is_floating_point(), f.string(), ": 'label' must be integer [n,1], found ",
                l.scalar_type(), " with ", l.size(0), " entries for ", d.size(0), " shapes");
    pts.push_back(d.to(torch::kFloat32));
    lab.push_back(l.to(torch::kInt64));
    if (h.has("normal")) {
      auto n = h.at("normal");
      TORCH_CHECK(n.sizes() == d.sizes(), f.string(), ": 'normal' shape ", n.sizes(), " differs from 'data' ", d.sizes());
      nrm.push_back(n.to(torch::kFloat32));
    } else {
      all_normals = false;
    }
  }
  TORCH_CHECK(!pts.empty(), index.string(), ": lists no files");
  out.points = torch::cat(pts, 0);
  out.label = torch::cat(lab, 0);
  if (all_normals) out.normal = torch::cat(nrm, 0);
  int64_t nc = static_cast<int64_t>(out.class_names.size());
  TORCH_CHECK(out.label.min().item<int64_t>() >= 0 && out.label.max().item<int64_t>() < nc, dir_s,
              ": labels outside [0,", nc, ") of shape_names.txt");
  return out;
#endif
}

std::vector<std::string> read_modelnet_class_names(const std::string& root) {
  fs::path r(root);
  for (const char* n : {"modelnet40_shape_names.txt", "modelnet10_shape_names.txt", "shape_names.txt"}) {
    if (fs::is_regular_file(r / n)) return read_lines(r / n);
  }
  TORCH_CHECK(false, root, ": no modelnet40_shape_names.txt / modelnet10_shape_names.txt");
  return {};
}

std::vector<ModelNetShapeEntry> list_modelnet_resampled(const std::string& root, const std::string& split) {
  fs::path r(root);
  auto classes = read_modelnet_class_names(root);
  fs::path index;
  for (const char* pre : {"modelnet40_", "modelnet10_"}) {
    if (fs::is_regular_file(r / (pre + split + ".txt"))) {
      index = r / (pre + split + ".txt");
      break;
    }
  }
  TORCH_CHECK(!index.empty(), root, ": no modelnet40_", split, ".txt");
  std::vector<ModelNetShapeEntry> out;
  for (const auto& id : read_lines(index)) {
    size_t us = id.rfind('_');
    TORCH_CHECK(us != std::string::npos && us > 0, index.string(), ": bad shape id '", id, "'");
    std::string cls = id.substr(0, us);
    auto it = std::find(classes.begin(), classes.end(), cls);
    TORCH_CHECK(it != classes.end(), index.string(), ": shape '", id, "' has unknown class '", cls, "'");
    ModelNetShapeEntry e;
    e.id = id;
    e.label = it - classes.begin();
    e.path = (r / cls / (id + ".txt")).string();
    out.push_back(e);
  }
  return out;
}

PointCloudData read_modelnet_txt(const std::string& path, int64_t max_points) {
  std::string text = read_whole_file(path);
  std::vector<float> v;
  v.reserve(text.size() / 8);
  int cols = -1;
  int64_t line_no = 0;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end && (max_points <= 0 || static_cast<int64_t>(v.size()) < max_points * std::max(cols, 1))) {
    ++line_no;
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (eol == nullptr) eol = end;
    int k = 0;
    double x[6];
    const char* q = p;
    bool ok = true;
    while (true) {
      while (q < eol && (is_space(*q) || *q == ',')) ++q;
      if (q >= eol) break;
      const char* r = k < 6 ? parse_number(q, eol, x[k]) : nullptr;
      if (k < 6 && (r == nullptr || (r < eol && !is_space(*r) && *r != ','))) {  // nan / inf spellings
        const char* t = q;
        while (t < eol && !is_space(*t) && *t != ',') ++t;
        r = t - q <= 10 && parse_number_token(std::string_view(q, static_cast<size_t>(t - q)), x[k]) ? t : nullptr;
      }
      if (r == nullptr || (r < eol && !is_space(*r) && *r != ',')) {
        ok = false;
        break;
      }
      ++k;
      q = r;
    }
    if (ok && k == 0) {
      p = eol + 1;
      continue;
    }
    TORCH_CHECK(ok && (k == 3 || k == 6), path, ":", line_no, ": expected 3 or 6 numbers (x,y,z[,nx,ny,nz])");
    if (cols < 0) cols = k;
    TORCH_CHECK(k == cols, path, ":", line_no, ": ", k, " columns, the file started with ", cols);
    for (int i = 0; i < k; ++i) v.push_back(static_cast<float>(x[i]));  // NaN/Inf kept: open_cloud drops them
    p = eol + 1;
  }
  TORCH_CHECK(cols > 0, path, ": no points");
  int64_t n = static_cast<int64_t>(v.size()) / cols;
  auto all = torch::from_blob(v.data(), {n, cols}, torch::kFloat32).clone();  // [N,cols]
  PointCloudData c;
  c.coord = all.narrow(1, 0, 3).contiguous();
  if (cols == 6) c.normal = all.narrow(1, 3, 3).contiguous();
  c.name = fs::path(path).stem().string();
  c.source = path;
  return c;
}

TriMesh read_off(const std::string& path) {
  std::string text = read_whole_file(path);
  // Tokenise while tracking line numbers; drop comments.
  std::vector<std::pair<std::string, int64_t>> toks;
  {
    int64_t line = 1;
    size_t i = 0;
    while (i < text.size()) {
      char c = text[i];
      if (c == '\n') {
        ++line;
        ++i;
      } else if (c == '#') {
        while (i < text.size() && text[i] != '\n') ++i;
      } else if (is_space(c)) {
        ++i;
      } else {
        size_t j = i;
        while (j < text.size() && !is_space(text[j]) && text[j] != '\n' && text[j] != '#') ++j;
        toks.emplace_back(text.substr(i, j - i), line);
        i = j;
      }
    }
  }
  size_t t = 0;
  TORCH_CHECK(!toks.empty() && starts_with(toks[0].first, "OFF"), path, ": not an OFF file (no OFF header)");
  std::string glued = toks[0].first.substr(3);
  std::vector<std::pair<std::string, int64_t>> head;
  if (!glued.empty()) head.emplace_back(glued, toks[0].second);  // "OFF6586 5534 0"
  t = 1;
  while (head.size() < 3 && t < toks.size()) head.push_back(toks[t++]);
  int64_t nv = 0, nf = 0, ne = 0;
  TORCH_CHECK(head.size() == 3 && parse_int_token(head[0].first, nv) && parse_int_token(head[1].first, nf) &&
                  parse_int_token(head[2].first, ne) && nv > 0 && nf >= 0,
              path, ": bad OFF counts line (expected 'V F E')");
  // Every vertex needs 3 tokens and every face at least 4: bound the counts by the tokens
  // present before allocating (a 1 KB file cannot announce 1e8 vertices).
  const int64_t toks_left = static_cast<int64_t>(toks.size() - t);
  bounded::require_count(path, "OFF vertex count", nv);
  bounded::require_count(path, "OFF face count", nf);
  if (nv > toks_left / 3 || nf > (toks_left - 3 * nv) / 4) {
    bounded::fail(path, "OFF counts " + std::to_string(nv) + " vertices / " + std::to_string(nf) +
                            " faces need more numbers than the " + std::to_string(toks_left) + " the file holds");
  }
  auto next_num = [&](double& out) -> int64_t {
    TORCH_CHECK(t < toks.size(), path, ": unexpected end of file");
    TORCH_CHECK(parse_number_token(toks[t].first, out), path, ":", toks[t].second, ": bad number '", toks[t].first, "'");
    return toks[t++].second;
  };
  auto verts = torch::empty({nv, 3}, torch::kFloat32);
  float* vp = verts.data_ptr<float>();
  for (int64_t i = 0; i < nv * 3; ++i) {
    double x;
    int64_t ln = next_num(x);
    TORCH_CHECK(std::isfinite(static_cast<float>(x)), path, ":", ln, ": non-finite vertex coordinate");
    vp[i] = static_cast<float>(x);
  }
  std::vector<int64_t> faces;
  faces.reserve(static_cast<size_t>(nf) * 3);
  for (int64_t f = 0; f < nf; ++f) {
    double k;
    int64_t ln = next_num(k);
    // Arity bounded by the numbers left in the file (an arity of 3e8 allocates nothing).
    TORCH_CHECK(k >= 3 && k == std::floor(k) && k <= static_cast<double>(toks.size() - t), path, ":", ln,
                ": bad face vertex count ", k, " (", toks.size() - t, " numbers left)");
    std::vector<int64_t> idx(static_cast<size_t>(k));
    for (auto& id : idx) {
      double x;
      ln = next_num(x);
      TORCH_CHECK(x >= 0 && x < nv && x == std::floor(x), path, ":", ln, ": vertex index ", x, " out of range [0,", nv, ")");
      id = static_cast<int64_t>(x);
    }
    // Skip optional per-face colour values up to the end of the line.
    while (t < toks.size() && toks[t].second == ln) ++t;
    for (size_t j = 1; j + 1 < idx.size(); ++j) {
      faces.push_back(idx[0]);
      faces.push_back(idx[j]);
      faces.push_back(idx[j + 1]);
    }
  }
  TriMesh m;
  m.vertices = verts;
  int64_t ntri = static_cast<int64_t>(faces.size() / 3);
  m.faces = torch::from_blob(faces.data(), {ntri, 3}, torch::kInt64).clone();
  return m;
}

PointCloudData sample_mesh_surface(const TriMesh& mesh, int64_t n, uint64_t seed) {
  TORCH_CHECK(n > 0, "sample_mesh_surface: n must be positive");
  TORCH_CHECK(mesh.faces.defined() && mesh.faces.size(0) > 0, "sample_mesh_surface: mesh has no faces");
  auto v = mesh.vertices.to(torch::kFloat64);
  auto f = mesh.faces.to(torch::kInt64);
  auto a = v.index_select(0, f.select(1, 0));  // [F,3]
  auto b = v.index_select(0, f.select(1, 1));
  auto c = v.index_select(0, f.select(1, 2));
  auto cr = torch::cross(b - a, c - a, 1);  // [F,3]
  auto area = cr.norm(2, 1) / 2;            // [F]
  TORCH_CHECK(area.sum().item<double>() > 0, "sample_mesh_surface: mesh has zero surface area");
  auto gen = at::detail::createCPUGenerator(seed);
  auto tri = torch::multinomial(area, n, /*replacement=*/true, gen);  // [n]
  auto r = torch::rand({n, 2}, gen, torch::kFloat64);
  auto s = r.select(1, 0).sqrt().unsqueeze(1);  // [n,1]
  auto u = r.select(1, 1).unsqueeze(1);
  auto pa = a.index_select(0, tri), pb = b.index_select(0, tri), pc = c.index_select(0, tri);
  auto pts = (1 - s) * pa + s * (1 - u) * pb + s * u * pc;  // [n,3]
  auto nrm = cr.index_select(0, tri);
  nrm = nrm / nrm.norm(2, 1, true).clamp_min(1e-12);
  PointCloudData out;
  out.coord = pts.to(torch::kFloat32);
  out.normal = nrm.to(torch::kFloat32);
  return out;
}

}  // namespace ewa::datasets
