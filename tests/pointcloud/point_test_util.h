// Helpers shared by the point-cloud tests.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace ewa::test {

/// Batch offsets (cumulative point counts) of clouds with the given sizes, int64 [B].
inline torch::Tensor offsets(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> o;
  int64_t run = 0;
  for (auto s : sizes) o.push_back(run += s);
  return torch::tensor(o, torch::kLong);
}

}  // namespace ewa::test
