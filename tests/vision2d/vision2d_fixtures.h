// Fixtures of the vision2d tests: a two-class image folder (horizontal vs vertical stripes,
// random brightness, contrast and noise) and the YAML of a tiny MoE/EWA ViT that learns it in
// seconds.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <string>

#include "ewa/datasets/image/image_io.h"
#include "test_util.h"

namespace ewa::test::vision2d_fixtures {

/// A 16x16 RGB stripe image: period-4 stripes along rows ("horizontal") or columns
/// ("vertical") with seeded brightness, contrast and noise. uint8 [16, 16, 3].
inline torch::Tensor stripes(bool horizontal, int64_t seed, int64_t size = 16) {
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  auto coord = torch::arange(size, torch::kLong);                                // [S]
  auto on = (coord.div(2, "floor").remainder(2)).to(torch::kFloat);   // [S] 0/1 pattern of period 4
  auto pattern = horizontal ? on.view({size, 1}).expand({size, size}) : on.view({1, size}).expand({size, size});
  const double lo = 30 + 40 * torch::rand({1}, gen).item<double>();
  const double hi = 170 + 60 * torch::rand({1}, gen).item<double>();
  auto img = pattern.unsqueeze(2).expand({size, size, 3}) * (hi - lo) + lo;     // [S, S, 3]
  img = img + torch::randn({size, size, 3}, gen) * 12.0;
  return img.round().clamp(0, 255).to(torch::kUInt8).contiguous();
}

/// root/{train,val}/{horizontal,vertical}/NNN.png with `n_train` / `n_val` images per class.
inline void write_stripes_folder(const fs::path& root, int n_train, int n_val) {
  for (int split = 0; split < 2; ++split) {
    const int n = split == 0 ? n_train : n_val;
    for (int cls = 0; cls < 2; ++cls) {
      const fs::path dir = root / (split == 0 ? "train" : "val") / (cls == 0 ? "horizontal" : "vertical");
      fs::create_directories(dir);
      for (int i = 0; i < n; ++i) {
        const int64_t seed = 1000 * split + 100 * cls + i;
        ewa::datasets::image::write_image((dir / (std::to_string(i) + ".png")).string(), stripes(cls == 0, seed));
      }
    }
  }
}

/// Config of a tiny MoE/EWA ViT on the stripes folder at `root` (output under `out`).
inline std::string stripes_config(const fs::path& root, const fs::path& out, int epochs = 10) {
  return "task: image_classification\n"
         "run: {name: stripes, output_dir: '" + out.string() + "', seed: 3, device: cpu}\n"
         "data:\n"
         "  dataset: image_folder\n"
         "  root: '" + (root / "train").string() + "'\n"
         "  val_root: '" + (root / "val").string() + "'\n"
         "  workers: 1\n"
         "  augment: {crop_padding: 0}\n"
         "model:\n"
         "  vit: {img_size: 16, patch_size: 4, in_chans: 3, num_classes: 2, embed_dim: 32, depth: 2,\n"
         "        num_heads: 2, mlp_ratio: 2.0}\n"
         "  moe: {enabled: true, num_experts: 2, every: 2}\n"
         "  ewa: {enabled: true, share_rate: 0.3}\n"
         "train:\n"
         "  epochs: " + std::to_string(epochs) + "\n"
         "  batch_size: 16\n"
         "  log_every: 1\n"
         "  eval_every: 0\n"
         "  progress: false\n"
         "  optimizer: {lr: 0.005, weight_decay: 0.01}\n"
         "  schedule: {name: cosine, warmup_epochs: 1}\n"
         "  checkpoint: {metric: val.top1}\n";
}

}  // namespace ewa::test::vision2d_fixtures
