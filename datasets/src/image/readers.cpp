// Readers of CIFAR-10/100 binary, IDX (plain/gz), image folders and Tiny-ImageNet, plus the
// dataset factory used by the image-classification pipeline.
#include "ewa/datasets/image/readers.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "ewa/datasets/image/image_io.h"

namespace ewa::datasets::image {

namespace fs = std::filesystem;

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> n = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return n;
}
const std::vector<std::string>& mnist_class_names() {
  static const std::vector<std::string> n = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  return n;
}
const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> n = {"airplane", "automobile", "bird",  "cat",  "deer",
                                             "dog",      "frog",       "horse", "ship", "truck"};
  return n;
}
const std::vector<std::string>& cifar100_fine_class_names() {
  static const std::vector<std::string> n = {
      "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
      "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
      "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
      "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
      "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
      "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
      "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
      "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
      "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
      "willow_tree", "wolf", "woman", "worm"};
  return n;
}
const std::vector<std::string>& cifar100_coarse_class_names() {
  static const std::vector<std::string> n = {"aquatic_mammals", "fish", "flowers", "food_containers",
                                             "fruit_and_vegetables", "household_electrical_devices",
                                             "household_furniture", "insects", "large_carnivores",
                                             "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
                                             "large_omnivores_and_herbivores", "medium_mammals",
                                             "non-insect_invertebrates", "people", "reptiles", "small_mammals",
                                             "trees", "vehicles_1", "vehicles_2"};
  return n;
}

namespace {

/// Whole file contents; gzip files (by magic 1f 8b) are inflated with zlib.
std::string read_maybe_gz(const std::string& path) {
  if (!fs::is_regular_file(path)) throw std::runtime_error("file not found: '" + path + "'");
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files transparently too
  if (!f) throw std::runtime_error("cannot open '" + path + "'");
  std::string out;
  std::vector<char> buf(1 << 20);
  while (true) {
    const int n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      throw std::runtime_error("cannot read '" + path + "': " + msg + " (corrupt or truncated gzip)");
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
  }
  gzclose(f);
  return out;
}

uint32_t be32(const std::string& s, size_t off) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + off);
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08X", v);
  return b;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

/// Non-empty lines of `path`, or `fallback` when the file is absent.
std::vector<std::string> names_file_or(const fs::path& path, const std::vector<std::string>& fallback) {
  if (!fs::is_regular_file(path)) return fallback;
  std::vector<std::string> names;
  for (auto& l : read_lines(path.string())) {
    if (!l.empty()) names.push_back(l);
  }
  if (names.empty()) throw std::runtime_error("class-name file '" + path.string() + "' is empty");
  return names;
}

std::string first_existing(const fs::path& root, const std::vector<std::string>& names) {
  for (const auto& n : names) {
    for (const char* suf : {"", ".gz"}) {
      fs::path p = root / (n + suf);
      if (fs::is_regular_file(p)) return p.string();
    }
  }
  std::string tried;
  for (const auto& n : names) tried += (tried.empty() ? "" : ", ") + n + "[.gz]";
  throw std::runtime_error("no file " + tried + " in '" + root.string() + "'");
}

/// Reads CIFAR records of `record` bytes (label bytes then 3072 pixel bytes) from `files`.
/// Returns images uint8 [N, 32, 32, 3] and the label-byte columns uint8 [N, label_bytes].
std::pair<torch::Tensor, torch::Tensor> read_cifar_records(const std::vector<std::string>& files,
                                                           int64_t label_bytes) {
  const int64_t record = label_bytes + 3072;
  std::vector<torch::Tensor> raws;
  for (const auto& f : files) {
    if (!fs::is_regular_file(f)) throw std::runtime_error("CIFAR file not found: '" + f + "'");
    const auto bytes = static_cast<int64_t>(fs::file_size(f));
    if (bytes == 0 || bytes % record != 0) {
      throw std::runtime_error("CIFAR file '" + f + "' has " + std::to_string(bytes) + " bytes, not a multiple of the " +
                               std::to_string(record) + "-byte record (truncated or wrong format" +
                               (label_bytes == 1 ? ": CIFAR-10 records are 3073 bytes)" : ": CIFAR-100 records are 3074 bytes)"));
    }
    auto t = torch::empty({bytes / record, record}, torch::kUInt8);
    std::ifstream in(f, std::ios::binary);
    in.read(reinterpret_cast<char*>(t.data_ptr<uint8_t>()), bytes);
    if (in.gcount() != bytes) throw std::runtime_error("cannot read CIFAR file '" + f + "' (short read)");
    raws.push_back(t);
  }
  auto raw = torch::cat(raws, 0);  // [N, record]
  auto labels = raw.slice(1, 0, label_bytes).contiguous();
  auto images = raw.slice(1, label_bytes).reshape({-1, 3, 32, 32}).permute({0, 2, 3, 1}).contiguous();
  // images: [N, 32, 32, 3]
  return {images, labels};
}

}  // namespace

torch::Tensor read_idx_images(const std::string& path) {
  const std::string data = read_maybe_gz(path);
  if (data.size() < 4) throw std::runtime_error("IDX file '" + path + "' is truncated (no header)");
  const uint32_t magic = be32(data, 0);
  if (magic != 0x00000803u) {
    throw std::runtime_error("IDX image file '" + path + "' has magic " + hex32(magic) +
                             ", expected 0x00000803 (uint8, 3 dims)" +
                             (magic == 0x00000801u ? " - this is a label file" : ""));
  }
  if (data.size() < 16) throw std::runtime_error("IDX file '" + path + "' is truncated (no header)");
  const int64_t n = be32(data, 4), h = be32(data, 8), w = be32(data, 12);
  if (h <= 0 || w <= 0 || h > 65536 || w > 65536) {
    throw std::runtime_error("IDX image file '" + path + "' has bad dims " + std::to_string(h) + "x" + std::to_string(w));
  }
  const size_t need = 16 + static_cast<size_t>(n * h * w);
  if (data.size() != need) {
    throw std::runtime_error("IDX image file '" + path + "' has " + std::to_string(data.size()) + " bytes, header (" +
                             std::to_string(n) + " x " + std::to_string(h) + " x " + std::to_string(w) + ") needs " +
                             std::to_string(need) + (data.size() < need ? " (truncated)" : " (trailing data)"));
  }
  auto t = torch::empty({n, h, w, 1}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), data.data() + 16, need - 16);
  return t;
}

torch::Tensor read_idx_labels(const std::string& path) {
  const std::string data = read_maybe_gz(path);
  if (data.size() < 4) throw std::runtime_error("IDX file '" + path + "' is truncated (no header)");
  const uint32_t magic = be32(data, 0);
  if (magic != 0x00000801u) {
    throw std::runtime_error("IDX label file '" + path + "' has magic " + hex32(magic) +
                             ", expected 0x00000801 (uint8, 1 dim)" +
                             (magic == 0x00000803u ? " - this is an image file" : ""));
  }
  if (data.size() < 8) throw std::runtime_error("IDX file '" + path + "' is truncated (no header)");
  const int64_t n = be32(data, 4);
  const size_t need = 8 + static_cast<size_t>(n);
  if (data.size() != need) {
    throw std::runtime_error("IDX label file '" + path + "' has " + std::to_string(data.size()) + " bytes, header (" +
                             std::to_string(n) + " labels) needs " + std::to_string(need) +
                             (data.size() < need ? " (truncated)" : " (trailing data)"));
  }
  auto t = torch::empty({n}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), data.data() + 8, static_cast<size_t>(n));
  return t.to(torch::kInt64);
}

std::shared_ptr<TensorImageDataset> read_mnist_folder(const std::string& root, bool train,
                                                      std::vector<std::string> class_names, const std::string& name) {
  if (!fs::is_directory(root)) throw std::runtime_error(name + ": folder not found: '" + root + "'");
  const std::string pre = train ? "train" : "t10k";
  const auto img_path = first_existing(root, {pre + "-images-idx3-ubyte", pre + "-images.idx3-ubyte"});
  const auto lab_path = first_existing(root, {pre + "-labels-idx1-ubyte", pre + "-labels.idx1-ubyte"});
  auto images = read_idx_images(img_path);
  auto labels = read_idx_labels(lab_path);
  if (images.size(0) != labels.size(0)) {
    throw std::runtime_error(name + ": '" + img_path + "' has " + std::to_string(images.size(0)) + " images but '" +
                             lab_path + "' has " + std::to_string(labels.size(0)) + " labels");
  }
  if (labels.numel() > 0 && labels.max().item<int64_t>() >= static_cast<int64_t>(class_names.size())) {
    throw std::runtime_error(name + ": '" + lab_path + "' has label " + std::to_string(labels.max().item<int64_t>()) +
                             " but only " + std::to_string(class_names.size()) + " classes");
  }
  return std::make_shared<TensorImageDataset>(images, labels, std::move(class_names),
                                              name + (train ? " train" : " test") + " (" +
                                                  std::to_string(images.size(0)) + " images) at " + root);
}

std::shared_ptr<TensorImageDataset> read_fashion_mnist(const std::string& root, bool train) {
  return read_mnist_folder(root.empty() ? std::string(kFashionMnistDefaultRoot) : root, train,
                           fashion_mnist_class_names(), "fashion_mnist");
}

std::shared_ptr<TensorImageDataset> read_cifar10(const std::string& root, bool train) {
  if (!fs::is_directory(root)) throw std::runtime_error("cifar10: folder not found: '" + root + "'");
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= 5; ++i) files.push_back((fs::path(root) / ("data_batch_" + std::to_string(i) + ".bin")).string());
  } else {
    files.push_back((fs::path(root) / "test_batch.bin").string());
  }
  auto [images, labels] = read_cifar_records(files, 1);
  auto names = names_file_or(fs::path(root) / "batches.meta.txt", cifar10_class_names());
  auto lab = labels.select(1, 0).to(torch::kInt64);
  const int64_t hi = lab.numel() ? lab.max().item<int64_t>() : 0;
  if (hi >= static_cast<int64_t>(names.size())) {
    throw std::runtime_error("cifar10: label " + std::to_string(hi) + " in '" + root + "' but only " +
                             std::to_string(names.size()) + " class names");
  }
  return std::make_shared<TensorImageDataset>(images, lab, names,
                                              std::string("cifar10 ") + (train ? "train" : "test") + " (" +
                                                  std::to_string(images.size(0)) + " images) at " + root);
}

std::shared_ptr<TensorImageDataset> read_cifar100(const std::string& root, bool train, const std::string& labels,
                                                  torch::Tensor* other_labels) {
  if (labels != "fine" && labels != "coarse") {
    throw std::invalid_argument("cifar100_labels: expected fine or coarse, got '" + labels + "'");
  }
  if (!fs::is_directory(root)) throw std::runtime_error("cifar100: folder not found: '" + root + "'");
  const auto file = (fs::path(root) / (train ? "train.bin" : "test.bin")).string();
  auto [images, lab] = read_cifar_records({file}, 2);
  const bool fine = labels == "fine";
  auto chosen = lab.select(1, fine ? 1 : 0).to(torch::kInt64);
  if (other_labels) *other_labels = lab.select(1, fine ? 0 : 1).to(torch::kInt64);
  auto names = fine ? names_file_or(fs::path(root) / "fine_label_names.txt", cifar100_fine_class_names())
                    : names_file_or(fs::path(root) / "coarse_label_names.txt", cifar100_coarse_class_names());
  const int64_t hi = chosen.numel() ? chosen.max().item<int64_t>() : 0;
  if (hi >= static_cast<int64_t>(names.size())) {
    throw std::runtime_error("cifar100: " + labels + " label " + std::to_string(hi) + " in '" + file + "' but only " +
                             std::to_string(names.size()) + " class names");
  }
  return std::make_shared<TensorImageDataset>(images, chosen, names,
                                              "cifar100 (" + labels + ") " + (train ? "train" : "test") + " (" +
                                                  std::to_string(images.size(0)) + " images) at " + root);
}

namespace {
/// Sorted image files directly in `dir`.
std::vector<std::string> list_images(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && has_image_extension(e.path().string())) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::shared_ptr<FileImageDataset> read_image_folder(const std::string& root, const FileDatasetOptions& options,
                                                    const std::vector<std::string>& class_names) {
  if (!fs::is_directory(root)) throw std::runtime_error("image folder not found: '" + root + "'");
  std::vector<std::string> names = class_names;
  if (names.empty()) {
    for (const auto& e : fs::directory_iterator(root)) {
      if (e.is_directory()) names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
  }
  if (names.empty()) {
    throw std::runtime_error("image folder '" + root + "' has no class sub-folder (expected root/<class>/*.png|jpg|jpeg|bmp)");
  }
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  for (size_t c = 0; c < names.size(); ++c) {
    const fs::path dir = fs::path(root) / names[c];
    if (!fs::is_directory(dir)) {
      throw std::runtime_error("image folder '" + root + "' has no folder for class '" + names[c] + "'");
    }
    auto files = list_images(dir);
    if (files.empty()) {
      throw std::runtime_error("class folder '" + dir.string() + "' has no image (*.png, *.jpg, *.jpeg, *.bmp)");
    }
    for (auto& f : files) {
      paths.push_back(std::move(f));
      labels.push_back(static_cast<int64_t>(c));
    }
  }
  const auto n = paths.size();
  return std::make_shared<FileImageDataset>(std::move(paths), std::move(labels), std::move(names), options,
                                            "image folder (" + std::to_string(n) + " images) at " + root);
}

std::shared_ptr<FileImageDataset> read_tiny_imagenet(const std::string& root, const std::string& split,
                                                     const FileDatasetOptions& options) {
  const fs::path r(root);
  const auto wnids_path = r / "wnids.txt";
  if (!fs::is_regular_file(wnids_path)) {
    throw std::runtime_error("tiny_imagenet: '" + wnids_path.string() + "' not found (expected the Tiny-ImageNet layout)");
  }
  std::vector<std::string> wnids;
  for (auto& l : read_lines(wnids_path.string())) {
    if (!l.empty()) wnids.push_back(l);
  }
  if (wnids.empty()) throw std::runtime_error("tiny_imagenet: '" + wnids_path.string() + "' is empty");
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < wnids.size(); ++i) index[wnids[i]] = static_cast<int64_t>(i);
  // Readable names: words.txt "wnid<TAB>name, synonym, ..." -> first synonym.
  std::vector<std::string> names = wnids;
  if (fs::is_regular_file(r / "words.txt")) {
    for (auto& l : read_lines((r / "words.txt").string())) {
      const auto tab = l.find('\t');
      if (tab == std::string::npos) continue;
      auto it = index.find(l.substr(0, tab));
      if (it == index.end()) continue;
      std::string w = l.substr(tab + 1);
      w = w.substr(0, w.find(','));
      if (!w.empty()) names[it->second] = w;
    }
  }
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  if (split == "train") {
    for (size_t c = 0; c < wnids.size(); ++c) {
      const fs::path dir = r / "train" / wnids[c] / "images";
      if (!fs::is_directory(dir)) throw std::runtime_error("tiny_imagenet: class folder '" + dir.string() + "' not found");
      auto files = list_images(dir);
      if (files.empty()) throw std::runtime_error("tiny_imagenet: class folder '" + dir.string() + "' has no image");
      for (auto& f : files) {
        paths.push_back(std::move(f));
        labels.push_back(static_cast<int64_t>(c));
      }
    }
  } else if (split == "val") {
    const auto ann = r / "val" / "val_annotations.txt";
    if (!fs::is_regular_file(ann)) throw std::runtime_error("tiny_imagenet: '" + ann.string() + "' not found");
    int64_t line_no = 0;
    for (auto& l : read_lines(ann.string())) {
      ++line_no;
      if (l.empty()) continue;
      std::istringstream ss(l);
      std::string file, wnid;
      if (!(ss >> file >> wnid)) {
        throw std::runtime_error("tiny_imagenet: '" + ann.string() + "' line " + std::to_string(line_no) +
                                 ": expected 'file<TAB>wnid ...'");
      }
      auto it = index.find(wnid);
      if (it == index.end()) {
        throw std::runtime_error("tiny_imagenet: '" + ann.string() + "' line " + std::to_string(line_no) + ": wnid '" +
                                 wnid + "' not in wnids.txt");
      }
      paths.push_back((r / "val" / "images" / file).string());
      labels.push_back(it->second);
    }
    if (paths.empty()) throw std::runtime_error("tiny_imagenet: '" + ann.string() + "' lists no image");
  } else {
    throw std::invalid_argument("tiny_imagenet: split must be train or val (the test split has no labels), got '" +
                                split + "'");
  }
  const auto n = paths.size();
  return std::make_shared<FileImageDataset>(std::move(paths), std::move(labels), std::move(names), options,
                                            "tiny_imagenet " + split + " (" + std::to_string(n) + " images) at " + root);
}

ImageDatasetPtr open_image_dataset(const ImageDataSpec& spec, const std::string& split) {
  const bool train = split == "train";
  if (!train && split != "test" && split != "val") {
    throw std::invalid_argument("split must be train, test or val, got '" + split + "'");
  }
  FileDatasetOptions fo;
  fo.cache = spec.cache;
  fo.on_bad_image = parse_bad_image_policy(spec.on_bad_image);
  const auto& d = spec.dataset;
  auto need_root = [&]() {
    if (spec.root.empty()) throw std::runtime_error(d + ": data.root is required (no default location)");
    return spec.root;
  };
  if (d == "fashion_mnist") return read_fashion_mnist(spec.root, train);
  if (d == "mnist") return read_mnist_folder(need_root(), train, mnist_class_names(), "mnist");
  if (d == "cifar10") return read_cifar10(need_root(), train);
  if (d == "cifar100") return read_cifar100(need_root(), train, spec.cifar100_labels);
  if (d == "tiny_imagenet") return read_tiny_imagenet(need_root(), train ? "train" : "val", fo);
  if (d == "image_folder") {
    if (train) return read_image_folder(need_root(), fo);
    if (spec.val_root.empty()) throw std::runtime_error("image_folder: no eval set (set data.val_root or data.val_fraction)");
    auto tr_names = read_image_folder(need_root(), fo)->class_names();
    return read_image_folder(spec.val_root, fo, tr_names);
  }
  throw std::invalid_argument("unknown image dataset '" + d +
                              "' (known: fashion_mnist, mnist, cifar10, cifar100, tiny_imagenet, image_folder)");
}

ImageSplits load_image_splits(const ImageDataSpec& spec) {
  ImageSplits s;
  auto train = open_image_dataset(spec, "train");
  if (spec.val_fraction > 0) {
    auto [tr, va] = split_train_val(train, spec.val_fraction, spec.seed);
    train = tr;
    s.eval = va;
    s.eval_name = "val_fraction";
  } else {
    const bool has_val = spec.dataset == "tiny_imagenet" || spec.dataset == "image_folder";
    s.eval = open_image_dataset(spec, has_val ? "val" : "test");
    s.eval_name = has_val ? "val" : "test";
  }
  s.train = random_subset(train, spec.train_limit, spec.seed);
  s.eval = random_subset(s.eval, spec.eval_limit, spec.seed + 1);
  return s;
}

}  // namespace ewa::datasets::image
