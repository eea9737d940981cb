// `ewa data export-images DATASET ROOT OUT [--split test] [--count N] [--seed S]`: writes a
// seeded sample of a dataset's images as PNG files named <index>_<class>.png, e.g. to try
// `ewa classify` on real test images (the quickstart does).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <random>

#include "commands.h"
#include "ewa/datasets/image/image_io.h"
#include "ewa/datasets/image/readers.h"

namespace fs = std::filesystem;

namespace ewa::app {

void add_data_export_images_command(CLI::App& data, GlobalOptions& global) {
  auto* cmd = data.add_subcommand("export-images", "Write a seeded sample of a dataset's images as PNG files");
  struct Args {
    std::string dataset, root, out, split = "test";
    int64_t count = 8;
    uint64_t seed = 0;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("dataset", args->dataset, "fashion_mnist | mnist | cifar10 | cifar100 | tiny_imagenet | image_folder")
      ->required()
      ->check(CLI::IsMember({"fashion_mnist", "mnist", "cifar10", "cifar100", "tiny_imagenet", "image_folder"}));
  cmd->add_option("root", args->root, "Dataset folder (e.g. /usr/share/datasets/fashion-mnist)")->required();
  cmd->add_option("out", args->out, "Output folder (created)")->required();
  cmd->add_option("--split", args->split, "train | test | val")->capture_default_str()->check(CLI::IsMember({"train", "test", "val"}));
  cmd->add_option("-n,--count", args->count, "Number of images")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seed", args->seed, "Which images (same seed, same images)")->capture_default_str();
  cmd->callback([&global, args] {
    apply_global_options(global);
    datasets::image::ImageDataSpec spec;
    spec.dataset = args->dataset;
    spec.root = args->root;
    spec.cache = false;
    auto ds = datasets::image::open_image_dataset(spec, args->split);
    const int64_t n = std::min<int64_t>(args->count, ds->size());
    std::vector<int64_t> idx(static_cast<size_t>(ds->size()));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
    std::mt19937_64 rng(args->seed);
    std::shuffle(idx.begin(), idx.end(), rng);
    fs::create_directories(args->out);
    for (int64_t i = 0; i < n; ++i) {
      const auto sample = ds->get(idx[static_cast<size_t>(i)]);
      std::string name = ds->class_names().at(static_cast<size_t>(sample.label));
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
      }
      const auto path = fs::path(args->out) / (std::to_string(idx[static_cast<size_t>(i)]) + "_" + name + ".png");
      datasets::image::write_image(path.string(), sample.image);
    }
    spdlog::info("wrote {} {} images of {} to {}", n, args->split, args->dataset, args->out);
  });
}

}  // namespace ewa::app
