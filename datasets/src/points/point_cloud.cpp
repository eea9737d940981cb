// PointCloudData validation, point selection / concatenation and ParseIssue formatting.
#include "ewa/datasets/points/point_cloud.h"

#include "ewa/datasets/bounded_io.h"

namespace ewa::datasets {

namespace {
void check_field(const torch::Tensor& t, const char* name, torch::ScalarType dtype, int64_t n, int64_t cols,
                 const std::string& source) {
  if (!t.defined() || t.numel() == 0) return;
  TORCH_CHECK(t.scalar_type() == dtype, source, ": field '", name, "' has dtype ", t.scalar_type(), ", expected ",
              dtype);
  if (cols > 0) {
    TORCH_CHECK(t.dim() == 2 && t.size(0) == n && t.size(1) == cols, source, ": field '", name, "' has shape ",
                t.sizes(), ", expected [", n, ",", cols, "]");
  } else {
    TORCH_CHECK(t.dim() == 1 && t.size(0) == n, source, ": field '", name, "' has shape ", t.sizes(),
                ", expected [", n, "]");
  }
}

torch::Tensor take_rows(const torch::Tensor& t, const torch::Tensor& idx) {
  if (!t.defined() || t.numel() == 0) return t;
  return t.index_select(0, idx);
}

torch::Tensor cat_field(const std::vector<PointCloudData>& clouds, torch::Tensor PointCloudData::*field) {
  std::vector<torch::Tensor> parts;
  bool any = false, all = true;
  for (const auto& c : clouds) {
    const torch::Tensor& t = c.*field;
    bool has = t.defined() && t.numel() > 0;
    any = any || has;
    all = all && (has || c.size() == 0);
    if (has) parts.push_back(t);
  }
  if (!any) return {};
  TORCH_CHECK(all, "concat_clouds: an optional field is present in some clouds but not in others");
  return torch::cat(parts, 0);
}
}  // namespace

void PointCloudData::validate() const {
  const std::string& src = source.empty() ? name : source;
  TORCH_CHECK(coord.defined(), src, ": point cloud has no coordinates");
  TORCH_CHECK(coord.dim() == 2 && coord.size(1) == 3, src, ": coord has shape ", coord.sizes(),
              ", expected [N,3]");
  int64_t n = coord.size(0);
  check_field(coord, "coord", torch::kFloat32, n, 3, src);
  check_field(color, "color", torch::kUInt8, n, 3, src);
  check_field(normal, "normal", torch::kFloat32, n, 3, src);
  check_field(segment, "segment", torch::kInt64, n, 0, src);
  check_field(instance, "instance", torch::kInt64, n, 0, src);
  check_field(index, "index", torch::kInt64, n, 0, src);
}

PointCloudData select_points(const PointCloudData& cloud, const torch::Tensor& idx_in) {
  torch::Tensor idx = idx_in.scalar_type() == torch::kBool ? idx_in.nonzero().view({-1}) : idx_in.to(torch::kLong);
  PointCloudData out;
  out.coord = take_rows(cloud.coord, idx);
  out.color = take_rows(cloud.color, idx);
  out.normal = take_rows(cloud.normal, idx);
  out.segment = take_rows(cloud.segment, idx);
  out.instance = take_rows(cloud.instance, idx);
  out.index = cloud.index.defined() && cloud.index.numel() > 0 ? take_rows(cloud.index, idx) : idx.clone();
  for (const auto& [k, t] : cloud.extra) out.extra[k] = take_rows(t, idx);
  out.name = cloud.name;
  out.source = cloud.source;
  return out;
}

PointCloudData concat_clouds(const std::vector<PointCloudData>& clouds) {
  PointCloudData out;
  TORCH_CHECK(!clouds.empty(), "concat_clouds: no clouds");
  out.coord = cat_field(clouds, &PointCloudData::coord);
  out.color = cat_field(clouds, &PointCloudData::color);
  out.normal = cat_field(clouds, &PointCloudData::normal);
  out.segment = cat_field(clouds, &PointCloudData::segment);
  out.instance = cat_field(clouds, &PointCloudData::instance);
  for (const auto& [k, t] : clouds[0].extra) {  // extra fields present in every cloud
    std::vector<torch::Tensor> parts;
    for (const auto& c : clouds) {
      auto it = c.extra.find(k);
      if (it == c.extra.end()) break;
      parts.push_back(it->second);
    }
    if (parts.size() == clouds.size()) out.extra[k] = torch::cat(parts, 0);
  }
  out.name = clouds[0].name;
  out.source = clouds[0].source;
  return out;
}

int64_t drop_non_finite_points(PointCloudData& cloud, bool refuse) {
  if (cloud.size() == 0) return 0;
  auto ok = torch::isfinite(cloud.coord).all(1);  // [N] bool
  const int64_t kept = ok.sum().item<int64_t>();
  const int64_t dropped = cloud.size() - kept;
  if (dropped == 0) return 0;
  if (refuse) {
    const int64_t first = ok.logical_not().nonzero().view({-1})[0].item<int64_t>();
    bounded::fail(cloud.source.empty() ? cloud.name : cloud.source,
                  std::to_string(dropped) + " point(s) with non-finite coordinates (first: point " +
                      std::to_string(first) + ")");
  }
  cloud = select_points(cloud, ok);
  return dropped;
}

std::string one_line_error(const std::exception& e) {
  std::string msg;
  if (const auto* c10e = dynamic_cast<const c10::Error*>(&e)) msg = c10e->what_without_backtrace();
  else msg = e.what();
  auto nl = msg.find("\nException raised from");
  if (nl != std::string::npos) msg = msg.substr(0, nl);
  for (char& c : msg) if (c == '\n') c = ' ';
  return msg;
}

std::string ParseIssue::to_string() const {
  return file + ":" + std::to_string(line) + ": " + what + (repaired ? " (repaired)" : " (skipped)");
}

}  // namespace ewa::datasets
