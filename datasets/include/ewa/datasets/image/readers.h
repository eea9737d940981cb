// Readers of the image-classification formats: CIFAR-10/100 binary, IDX (MNIST,
// Fashion-MNIST; plain or .gz), image folders, Tiny-ImageNet; and the dataset factory the
// pipeline calls with the fields of its `data:` config section.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "ewa/datasets/image/image_dataset.h"

namespace ewa::datasets::image {

/// Default Fashion-MNIST folder (Debian package dataset-fashion-mnist).
inline constexpr const char* kFashionMnistDefaultRoot = "/usr/share/datasets/fashion-mnist";

/// Class names of Fashion-MNIST, MNIST ("0".."9"), CIFAR-10, CIFAR-100 fine and coarse.
const std::vector<std::string>& fashion_mnist_class_names();
const std::vector<std::string>& mnist_class_names();
const std::vector<std::string>& cifar10_class_names();
const std::vector<std::string>& cifar100_fine_class_names();
const std::vector<std::string>& cifar100_coarse_class_names();

/// Reads an IDX image file (magic 0x00000803, dims N x H x W, uint8; plain or gzip) into
/// uint8 [N, H, W, 1]. Throws naming `path` on a wrong magic, bad dims or a truncated file.
torch::Tensor read_idx_images(const std::string& path);
/// Reads an IDX label file (magic 0x00000801, N uint8) into int64 [N]. Throws like above.
torch::Tensor read_idx_labels(const std::string& path);

/// MNIST-format folder: {train,t10k}-images-idx3-ubyte[.gz] + {train,t10k}-labels-idx1-ubyte[.gz]
/// (also the `train-images.idx3-ubyte` spelling). Checks that counts match and labels < names.
std::shared_ptr<TensorImageDataset> read_mnist_folder(const std::string& root, bool train,
                                                      std::vector<std::string> class_names,
                                                      const std::string& name = "mnist");

/// Fashion-MNIST; `root` "" = kFashionMnistDefaultRoot.
std::shared_ptr<TensorImageDataset> read_fashion_mnist(const std::string& root, bool train);

/// CIFAR-10 binary: data_batch_{1..5}.bin (train) or test_batch.bin, 3073-byte records
/// (label, 1024 R, 1024 G, 1024 B); names from batches.meta.txt when present. Images
/// uint8 [N, 32, 32, 3].
std::shared_ptr<TensorImageDataset> read_cifar10(const std::string& root, bool train);

/// CIFAR-100 binary: train.bin / test.bin, 3074-byte records (coarse, fine, pixels);
/// `labels` "fine" or "coarse"; names from fine_label_names.txt / coarse_label_names.txt
/// when present. `other_labels` (optional out) receives the unselected labels, int64 [N].
std::shared_ptr<TensorImageDataset> read_cifar100(const std::string& root, bool train,
                                                  const std::string& labels = "fine",
                                                  torch::Tensor* other_labels = nullptr);

/// Image folder root/<class>/*.{png,jpg,jpeg,bmp}: classes are the sub-folders in sorted
/// order (or `class_names` when given, e.g. a val folder that must use the train classes).
/// Throws naming the folder when it has no class folder or a class folder has no image.
std::shared_ptr<FileImageDataset> read_image_folder(const std::string& root, const FileDatasetOptions& options,
                                                    const std::vector<std::string>& class_names = {});

/// Tiny-ImageNet layout: wnids.txt (class order), words.txt (readable names, first synonym),
/// train/<wnid>/images/*.JPEG; split "val" reads val/images + val/val_annotations.txt.
std::shared_ptr<FileImageDataset> read_tiny_imagenet(const std::string& root, const std::string& split,
                                                     const FileDatasetOptions& options);

/// Fields of the pipeline's `data:` section that choose and split the data (same names as
/// ewa::vision2d::ImageDataOptions) plus the run seed.
struct ImageDataSpec {
  /// fashion_mnist | mnist | cifar10 | cifar100 | tiny_imagenet | image_folder
  std::string dataset = "fashion_mnist";
  std::string root;             ///< "" = default location (fashion_mnist only)
  std::string val_root;         ///< image_folder: separate eval folder
  double val_fraction = 0.0;    ///< > 0: carve a seeded val split from train (instead of test set)
  int64_t train_limit = 0;      ///< seeded subset of the train images (0 = all)
  int64_t eval_limit = 0;       ///< seeded subset of the eval images (0 = all)
  std::string cifar100_labels = "fine";
  bool cache = true;
  std::string on_bad_image = "fail";  ///< fail | skip
  uint64_t seed = 0;
};

/// The train set and the evaluation set (test set, Tiny-ImageNet val, val_root, or the
/// carved val split) of a spec.
struct ImageSplits {
  ImageDatasetPtr train;
  ImageDatasetPtr eval;
  std::string eval_name;  ///< "test", "val" or "val_fraction"
};

/// Opens the datasets of `spec`. With val_fraction > 0 the val split is carved from the full
/// train set first, then train_limit subsamples the rest (so eval never overlaps train).
/// Throws naming the dataset/path on any problem.
ImageSplits load_image_splits(const ImageDataSpec& spec);

/// The standard split of a named dataset: split "train" or "test" ("val" for
/// tiny_imagenet and image folders = val_root, passed as `root`).
ImageDatasetPtr open_image_dataset(const ImageDataSpec& spec, const std::string& split);

}  // namespace ewa::datasets::image
