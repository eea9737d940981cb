// libFuzzer harness: the CSV files of the suite: confusion matrices (`ewa report`,
// `ewa superclasses`) and class -> super-class maps (model.moe.router.superclass_file),
// with the clustering that consumes a parsed confusion matrix.
#include <torch/torch.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "ewa/core/report.h"
#include "ewa/core/routers.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ewa_fuzz::write_file("input.csv", data, size);
  ewa::ConfusionMatrix m;
  ewa_fuzz::run("input.csv", [&] { m = ewa::read_confusion_csv(path); });
  const auto k = static_cast<int64_t>(m.counts.size());
  if (k > 0 && k <= 64) {
    // Values accepted by the reader must be accepted by the clustering: any error is a bug.
    auto c = torch::empty({k, k}, torch::kDouble);
    auto acc = c.accessor<double, 2>();
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < k; ++j) acc[i][j] = m.counts[static_cast<size_t>(i)][static_cast<size_t>(j)];
    }
    auto map = ewa::cluster_superclasses(c, std::min<int64_t>(k, 3));  // int64 [K]
    if (map.size(0) != k) std::abort();
  }
  ewa_fuzz::run("input.csv", [&] { ewa::load_superclasses(path, 4); });
  return 0;
}
