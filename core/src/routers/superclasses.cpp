// Super-class derivation for per-image routing: average-linkage agglomerative clustering of
// the symmetrised confusion matrix of a dense model, and the class -> super-class file.
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "ewa/core/routers.h"

namespace ewa {

torch::Tensor cluster_superclasses(const torch::Tensor& confusion, int64_t groups, bool balanced) {
  if (confusion.dim() != 2 || confusion.size(0) != confusion.size(1) || confusion.size(0) < 1) {
    std::ostringstream got;
    got << confusion.sizes();
    throw std::invalid_argument("superclasses: confusion matrix must be square [K, K] with K >= 1, got " + got.str());
  }
  const int64_t k = confusion.size(0);
  if (groups < 1 || groups > k) {
    throw std::invalid_argument("superclasses: groups must lie in [1, K=" + std::to_string(k) + "], got " +
                                std::to_string(groups));
  }
  auto c = confusion.detach().to(torch::kCPU, torch::kDouble).contiguous();
  if (!c.isfinite().all().item<bool>() || (c < 0).any().item<bool>()) {
    throw std::invalid_argument("superclasses: confusion matrix entries must be finite and >= 0");
  }
  auto r = c / c.sum(1, true).clamp_min(1e-300);        // [K, K] row-normalised
  auto s = (r + r.t()) / 2;                              // [K, K] symmetric similarity
  s.fill_diagonal_(0.0);
  // Cluster-level linkage sums: link[a][b] = sum of similarities between members.
  std::vector<double> link(s.data_ptr<double>(), s.data_ptr<double>() + k * k);
  std::vector<int64_t> size(static_cast<size_t>(k), 1), owner(static_cast<size_t>(k));
  std::vector<bool> alive(static_cast<size_t>(k), true);
  for (int64_t i = 0; i < k; ++i) owner[static_cast<size_t>(i)] = i;
  const int64_t cap = (k + groups - 1) / groups;
  auto at = [&](int64_t a, int64_t b) -> double& { return link[static_cast<size_t>(a * k + b)]; };
  for (int64_t clusters = k; clusters > groups; --clusters) {
    int64_t best_a = -1, best_b = -1;
    double best = -std::numeric_limits<double>::infinity();
    int64_t small_a = -1, small_b = -1, small_size = std::numeric_limits<int64_t>::max();
    double small_best = -std::numeric_limits<double>::infinity();
    for (int64_t a = 0; a < k; ++a) {
      if (!alive[static_cast<size_t>(a)]) continue;
      for (int64_t b = a + 1; b < k; ++b) {
        if (!alive[static_cast<size_t>(b)]) continue;
        const int64_t merged = size[static_cast<size_t>(a)] + size[static_cast<size_t>(b)];
        const double avg = at(a, b) / static_cast<double>(size[static_cast<size_t>(a)] * size[static_cast<size_t>(b)]);
        if ((!balanced || merged <= cap) && avg > best) {
          best = avg;
          best_a = a;
          best_b = b;
        }
        if (merged < small_size || (merged == small_size && avg > small_best)) {
          small_size = merged;
          small_best = avg;
          small_a = a;
          small_b = b;
        }
      }
    }
    if (best_a < 0) {  // no merge within the cap is left: take the smallest one
      best_a = small_a;
      best_b = small_b;
    }
    for (int64_t j = 0; j < k; ++j) {  // b joins a
      at(best_a, j) += at(best_b, j);
      at(j, best_a) = at(best_a, j);
    }
    size[static_cast<size_t>(best_a)] += size[static_cast<size_t>(best_b)];
    alive[static_cast<size_t>(best_b)] = false;
    for (auto& o : owner) {
      if (o == best_b) o = best_a;
    }
  }
  // Number the clusters by their smallest class.
  std::vector<int64_t> id(static_cast<size_t>(k), -1);
  auto out = torch::empty({k}, torch::kLong);
  int64_t next = 0;
  for (int64_t i = 0; i < k; ++i) {
    auto& g = id[static_cast<size_t>(owner[static_cast<size_t>(i)])];
    if (g < 0) g = next++;
    out[i] = g;
  }
  return out;
}

void save_superclasses(const std::string& path, const torch::Tensor& map) {
  TORCH_CHECK(map.dim() == 1 && map.scalar_type() == torch::kLong, "save_superclasses: map must be [K] int64");
  std::ofstream f(path);
  if (!f) throw std::runtime_error("superclass file '" + path + "': cannot write");
  f << "class,superclass\n";
  auto m = map.to(torch::kCPU).contiguous();
  for (int64_t i = 0; i < m.numel(); ++i) f << i << "," << m.data_ptr<int64_t>()[i] << "\n";
  if (!f) throw std::runtime_error("superclass file '" + path + "': write failed");
}

}  // namespace ewa
