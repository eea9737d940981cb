// Image loader throughput: decoded + augmented images/s of ImageLoader for Fashion-MNIST
// (IDX, in memory) and the CIFAR-10 JPEG folder of ../shared/data (extracted into /tmp).
// Usage: bench_image_loader [--batches N] [--shared DIR]   (prints one line per setting)
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "ewa/datasets/image/loader.h"
#include "ewa/datasets/image/readers.h"

namespace img = ewa::datasets::image;
namespace fs = std::filesystem;

namespace {

/// Runs `batches` batches (from the start of epoch 0, over epochs if needed) and returns images/s.
double throughput(const img::ImageDatasetPtr& ds, img::ImageLoaderOptions o, int64_t batches) {
  img::ImageLoader loader(ds, o);
  int64_t images = 0, done = 0, epoch = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (done < batches) {
    auto b = loader.next();
    if (!b) {
      loader.set_epoch(++epoch);
      continue;
    }
    images += b->images.size(0);
    ++done;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(images) / s;
}

void report(const std::string& name, const img::ImageDatasetPtr& ds, img::ImageLoaderOptions o, int64_t batches) {
  const int64_t default_workers = std::max<int64_t>(1, at::get_num_threads());
  for (int64_t w : {default_workers, int64_t{2}}) {
    o.workers(w);
    const double ips = throughput(ds, o, batches);
    std::printf("%-44s workers=%-2lld batch=%lld  %10.0f images/s\n", name.c_str(), static_cast<long long>(w),
                static_cast<long long>(o.batch_size()), ips);
    std::fflush(stdout);
    if (w == 2) break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  int64_t batches = 100;
  std::string shared = "../shared/data";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--batches") batches = std::atoll(argv[i + 1]);
    if (a == "--shared") shared = argv[i + 1];
  }
  std::printf("threads: at::get_num_threads() = %d; %lld batches per setting\n", at::get_num_threads(),
              static_cast<long long>(batches));
  try {
    if (fs::exists(std::string(img::kFashionMnistDefaultRoot) + "/train-images-idx3-ubyte.gz")) {
      img::ImageDatasetPtr fm = img::read_fashion_mnist("", true);
      auto base = img::ImageLoaderOptions().batch_size(128).seed(0).dataset("fashion_mnist");
      report("fashion_mnist eval (normalise only)", fm, base.train(false), batches);
      img::AugmentOptions aug;
      aug.crop_padding(2).hflip(true);
      report("fashion_mnist crop2+flip", fm, base.train(true).augment(aug), batches);
      aug.randaugment_n(2).randaugment_m(9).random_erasing(0.25);
      report("fashion_mnist crop2+flip+RA(2,9)+erase", fm, base.augment(aug), batches);
    } else {
      std::printf("fashion_mnist: not installed (dataset-fashion-mnist), skipped\n");
    }
    const std::string tar = shared + "/cifar10-train-jpeg.tar.gz";
    if (fs::exists(tar)) {
      const fs::path dir = fs::temp_directory_path() / "ewa_bench_cifar10_jpeg";
      if (!fs::exists(dir / "cifar10-jpeg" / "train" / "truck")) {
        fs::create_directories(dir);
        const std::string cmd = "tar xzf '" + tar + "' -C '" + dir.string() + "'";
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot extract " + tar);
      }
      img::FileDatasetOptions fo;
      fo.cache = false;
      img::ImageDatasetPtr jpeg = img::read_image_folder((dir / "cifar10-jpeg" / "train").string(), fo);
      img::AugmentOptions aug;
      aug.crop_padding(4).hflip(true).randaugment_n(2).randaugment_m(9);
      auto o = img::ImageLoaderOptions().batch_size(128).seed(0).dataset("cifar10").augment(aug);
      report("cifar10 jpeg decode+crop4+flip+RA(2,9)", jpeg, o, batches);
      fo.cache = true;
      fo.preload = true;
      const auto t0 = std::chrono::steady_clock::now();
      img::ImageDatasetPtr cached = img::read_image_folder((dir / "cifar10-jpeg" / "train").string(), fo);
      std::printf("cifar10 jpeg preload (decode all 50000 into the cache): %.1f s\n",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      report("cifar10 cached crop4+flip+RA(2,9)", cached, o, batches);
    } else {
      std::printf("cifar10 jpeg: %s not present, skipped\n", tar.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_image_loader: %s\n", e.what());
    return 1;
  }
  return 0;
}
