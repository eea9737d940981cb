// Readers of CIFAR-10/100 binary, IDX (plain/gz), image folders and Tiny-ImageNet, plus the
// dataset factory used by the image-classification pipeline.
#include "ewa/datasets/image/readers.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "ewa/datasets/bounded_io.h"
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

/// An IDX file opened through zlib (plain files are read transparently): the header is read
/// first and the payload only up to the size the header declares, so a gzip bomb is never
/// inflated beyond what a well-formed file of that header would hold.
class IdxStream {
 public:
  explicit IdxStream(const std::string& path) : path_(path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw std::runtime_error("file not found: '" + path + "'");
    file_bytes_ = static_cast<int64_t>(fs::file_size(path, ec));
    if (ec) bounded::fail(path, "cannot read the file size: " + ec.message());
    f_ = gzopen(path.c_str(), "rb");
    if (!f_) bounded::fail(path, "cannot open");
  }
  ~IdxStream() { gzclose(f_); }
  IdxStream(const IdxStream&) = delete;
  IdxStream& operator=(const IdxStream&) = delete;

  /// Reads up to `n` bytes (fewer only at the end of the data); throws on a gzip error.
  int64_t read(char* dst, int64_t n) {
    int64_t got = 0;
    while (got < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n - got, 1 << 24));
      const int r = gzread(f_, dst + got, chunk);
      if (r < 0) {
        int err = 0;
        const std::string msg = gzerror(f_, &err);
        bounded::fail(path_, "cannot read: " + msg + " (corrupt or truncated gzip)");
      }
      if (r == 0) break;
      got += r;
    }
    return got;
  }
  /// gzip-compressed (false for a plain file; valid after the first read).
  bool compressed() const { return gzdirect(f_) == 0; }
  int64_t file_bytes() const { return file_bytes_; }

  /// Reads a payload of exactly `need` bytes after a `header`-byte header and checks that
  /// nothing follows. The size is checked against the file before anything is allocated:
  /// exactly for plain files, by the largest deflate ratio for gzip.
  torch::Tensor read_payload(int64_t header, int64_t need, const std::string& what) {
    if (compressed()) {
      bounded::require_inflation(path_, what, need, file_bytes_, kMaxDeflateRatio);
    } else if (need > file_bytes_ - header) {
      bounded::fail(path_, what + " needs " + bounded::human_bytes(need) + " after the header but the file holds " +
                               bounded::human_bytes(file_bytes_ - header) + " (truncated)");
    }
    // Grown while inflating (not allocated at the declared size up front).
    auto* buf = new std::string();
    std::unique_ptr<std::string> own(buf);
    buf->reserve(static_cast<size_t>(std::min<int64_t>(need, 64 << 20)));
    std::vector<char> chunk(1 << 20);
    while (static_cast<int64_t>(buf->size()) < need) {
      const int64_t want = std::min<int64_t>(need - static_cast<int64_t>(buf->size()), static_cast<int64_t>(chunk.size()));
      const int64_t got = read(chunk.data(), want);
      if (got == 0) {
        bounded::fail(path_, what + " needs " + std::to_string(need) + " bytes after the header but the file holds " +
                                 std::to_string(buf->size()) + " (truncated)");
      }
      buf->append(chunk.data(), static_cast<size_t>(got));
    }
    char extra = 0;
    if (read(&extra, 1) != 0) {
      bounded::fail(path_, "trailing data after the " + std::to_string(need) + " bytes that the header declares");
    }
    own.release();
    return torch::from_blob(buf->data(), {need}, [buf](void*) { delete buf; }, torch::kUInt8);
  }

 private:
  static constexpr int64_t kMaxDeflateRatio = 1032;  // deflate's largest compression ratio
  std::string path_;
  int64_t file_bytes_ = 0;
  gzFile f_ = nullptr;
};

uint32_t be32(const char* s, size_t off) {
  const auto* p = reinterpret_cast<const unsigned char*>(s + off);
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
/// `counts` (optional out) receives the number of records of each file.
std::pair<torch::Tensor, torch::Tensor> read_cifar_records(const std::vector<std::string>& files,
                                                           int64_t label_bytes, std::vector<int64_t>* counts) {
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
    if (counts) counts->push_back(bytes / record);
  }
  auto raw = torch::cat(raws, 0);  // [N, record]
  auto labels = raw.slice(1, 0, label_bytes).contiguous();
  auto images = raw.slice(1, label_bytes).reshape({-1, 3, 32, 32}).permute({0, 2, 3, 1}).contiguous();
  // images: [N, 32, 32, 3]
  return {images, labels};
}

/// Throws naming the file and the record of the first label >= `classes` (labels int64 [N]
/// over `files` holding `counts` records each).
void check_cifar_labels(const torch::Tensor& labels, int64_t classes, const std::vector<std::string>& files,
                        const std::vector<int64_t>& counts, const std::string& what) {
  auto bad = (labels >= classes).nonzero();  // [B, 1]
  if (bad.size(0) == 0) return;
  int64_t i = bad[0][0].item<int64_t>();
  const int64_t value = labels[i].item<int64_t>();
  size_t f = 0;
  while (f + 1 < files.size() && i >= counts[f]) i -= counts[f++];
  throw std::runtime_error(what + " label " + std::to_string(value) + " in '" + files[f] + "' (record " +
                           std::to_string(i) + ") but only " + std::to_string(classes) + " class names");
}

}  // namespace

torch::Tensor read_idx_images(const std::string& path) {
  IdxStream in(path);
  char head[16];
  const int64_t got = in.read(head, 16);
  if (got < 4) bounded::fail(path, "IDX file is truncated (no header)");
  const uint32_t magic = be32(head, 0);
  if (magic != 0x00000803u) {
    bounded::fail(path, "IDX image file has magic " + hex32(magic) + ", expected 0x00000803 (uint8, 3 dims)" +
                            (magic == 0x00000801u ? " - this is a label file" : ""));
  }
  if (got < 16) bounded::fail(path, "IDX file is truncated (no header)");
  const int64_t n = be32(head, 4), h = be32(head, 8), w = be32(head, 12);
  if (h <= 0 || w <= 0 || h > 65536 || w > 65536) {
    bounded::fail(path, "IDX image file has bad dims " + std::to_string(h) + "x" + std::to_string(w));
  }
  const int64_t need = bounded::checked_mul(n, h * w, path, "IDX image count");  // < 2^64: h, w <= 2^16
  auto flat = in.read_payload(16, need, "IDX image payload (" + std::to_string(n) + " x " + std::to_string(h) + " x " +
                                            std::to_string(w) + ")");
  return flat.view({n, h, w, 1});
}

torch::Tensor read_idx_labels(const std::string& path) {
  IdxStream in(path);
  char head[8];
  const int64_t got = in.read(head, 8);
  if (got < 4) bounded::fail(path, "IDX file is truncated (no header)");
  const uint32_t magic = be32(head, 0);
  if (magic != 0x00000801u) {
    bounded::fail(path, "IDX label file has magic " + hex32(magic) + ", expected 0x00000801 (uint8, 1 dim)" +
                            (magic == 0x00000803u ? " - this is an image file" : ""));
  }
  if (got < 8) bounded::fail(path, "IDX file is truncated (no header)");
  const int64_t n = be32(head, 4);
  return in.read_payload(8, n, "IDX label count").to(torch::kInt64);
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
  std::vector<int64_t> counts;
  auto [images, labels] = read_cifar_records(files, 1, &counts);
  auto names = names_file_or(fs::path(root) / "batches.meta.txt", cifar10_class_names());
  auto lab = labels.select(1, 0).to(torch::kInt64);
  check_cifar_labels(lab, static_cast<int64_t>(names.size()), files, counts, "cifar10:");
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
  std::vector<int64_t> counts;
  auto [images, lab] = read_cifar_records({file}, 2, &counts);
  const bool fine = labels == "fine";
  auto chosen = lab.select(1, fine ? 1 : 0).to(torch::kInt64);
  auto other = lab.select(1, fine ? 0 : 1).to(torch::kInt64);
  auto fine_names = names_file_or(fs::path(root) / "fine_label_names.txt", cifar100_fine_class_names());
  auto coarse_names = names_file_or(fs::path(root) / "coarse_label_names.txt", cifar100_coarse_class_names());
  const auto& names = fine ? fine_names : coarse_names;
  check_cifar_labels(chosen, static_cast<int64_t>(names.size()), {file}, counts, "cifar100: " + labels);
  check_cifar_labels(other, static_cast<int64_t>((fine ? coarse_names : fine_names).size()), {file}, counts,
                     std::string("cifar100: ") + (fine ? "coarse" : "fine"));
  if (other_labels) *other_labels = other;
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

namespace {
ImageDatasetPtr open_image_dataset_impl(const ImageDataSpec& spec, const std::string& split);
}  // namespace

ImageDatasetPtr open_image_dataset(const ImageDataSpec& spec, const std::string& split) {
  const std::string where = spec.dataset + " " + split + " set" + (spec.root.empty() ? "" : " at '" + spec.root + "'");
  try {
    return open_image_dataset_impl(spec, split);
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("out of memory while reading the " + where);
  } catch (const c10::Error& e) {
    const std::string m = e.what_without_backtrace();
    if (m.find("not enough memory") == std::string::npos && m.find("can't allocate memory") == std::string::npos) throw;
    throw std::runtime_error("out of memory while reading the " + where);
  }
}

namespace {
ImageDatasetPtr open_image_dataset_impl(const ImageDataSpec& spec, const std::string& split) {
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
}  // namespace

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
