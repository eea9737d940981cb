// Checkpoint file format: "EWACKPT1" | u64 payload size | u32 CRC32 | payload, where the
// payload is a torch::serialize archive (model/, optimizer/, ema/ when train.ema, meta.*).
#include "ewa/core/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

namespace ewa {

namespace fs = std::filesystem;

namespace {
constexpr char kMagic[8] = {'E', 'W', 'A', 'C', 'K', 'P', 'T', '1'};
constexpr size_t kHeader = 8 + 8 + 4;

uint32_t crc32_of(const std::string& bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t off = 0;
  while (off < bytes.size()) {
    const uInt n = static_cast<uInt>(std::min<size_t>(bytes.size() - off, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + off), n);
    off += n;
  }
  return static_cast<uint32_t>(crc);
}

torch::Tensor string_to_tensor(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  if (!s.empty()) std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}
std::string tensor_to_string(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kUInt8);
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
}

void write_meta(torch::serialize::OutputArchive& a, const TrainingState& s) {
  auto i64 = [](int64_t v) { return torch::tensor(std::vector<int64_t>{v}, torch::kInt64); };
  a.write("meta.step", i64(s.step));
  a.write("meta.epoch", i64(s.epoch));
  a.write("meta.batch_in_epoch", i64(s.batch_in_epoch));
  a.write("meta.ewa_step", i64(s.ewa_step));
  a.write("meta.epoch_done", i64(s.epoch_done ? 1 : 0));
  a.write("meta.has_best", i64(s.has_best ? 1 : 0));
  a.write("meta.best_metric", torch::tensor(std::vector<double>{s.best_metric}, torch::kFloat64));
  a.write("meta.best_metric_name", string_to_tensor(s.best_metric_name));
  a.write("meta.config_hash", string_to_tensor(s.config_hash));
  a.write("meta.world_size", i64(s.world_size));
  a.write("meta.data_state", string_to_tensor(s.data_state));
  a.write("meta.has_rng", i64(s.rng_state.defined() ? 1 : 0));
  a.write("meta.rng_state", s.rng_state.defined() ? s.rng_state : torch::empty({0}, torch::kUInt8));
  a.write("meta.has_ema", i64(s.ema.empty() ? 0 : 1));
  a.write("meta.ema_updates", i64(s.ema_updates));
}

/// A tensor read from a (possibly hostile) archive must lie within its storage: the archive
/// stores sizes, strides and offset apart from the storage bytes, and LibTorch does not check
/// that they agree, so a damaged file would otherwise read past the storage.
void check_within_storage(const torch::Tensor& t, const std::string& key, const std::string& path) {
  if (!t.defined()) throw CheckpointError(path, "entry '" + key + "' holds no tensor");
  if (t.layout() != torch::kStrided || !t.has_storage() || !t.device().is_cpu()) {
    throw CheckpointError(path, "entry '" + key + "' is not a dense CPU tensor");
  }
  if (t.numel() == 0) return;
  int64_t last = t.storage_offset();
  bool ok = last >= 0;
  for (int64_t d = 0; ok && d < t.dim(); ++d) {
    int64_t step = 0;
    ok = t.stride(d) >= 0 && !__builtin_mul_overflow(t.size(d) - 1, t.stride(d), &step) &&
         !__builtin_add_overflow(last, step, &last);
  }
  int64_t need = 0;
  ok = ok && !__builtin_add_overflow(last, int64_t{1}, &need) &&
       !__builtin_mul_overflow(need, static_cast<int64_t>(t.element_size()), &need);
  if (!ok || need > static_cast<int64_t>(t.storage().nbytes())) {
    std::ostringstream m;
    m << "entry '" << key << "' of shape " << t.sizes() << " reaches past its " << t.storage().nbytes()
      << "-byte storage (damaged file)";
    throw CheckpointError(path, m.str());
  }
}

TrainingState read_meta(torch::serialize::InputArchive& a, const std::string& path) {
  auto rd = [&](const char* key) {
    torch::Tensor t;
    a.read(key, t);
    check_within_storage(t, key, path);
    return t;
  };
  auto one = [&](const char* key) {
    torch::Tensor t = rd(key);
    if (t.numel() != 1 || t.is_complex()) {
      throw CheckpointError(path, std::string("entry '") + key + "' must hold one number, holds " +
                                      std::to_string(t.numel()));
    }
    return t;
  };
  TrainingState s;
  auto i64 = [&](const char* key) {
    torch::Tensor t = one(key);
    if (t.is_floating_point()) {
      const double d = t.item<double>();
      if (!std::isfinite(d) || std::fabs(d) > 9.0e15) {
        throw CheckpointError(path, std::string("entry '") + key + "' is not an integer");
      }
    }
    return t.to(torch::kInt64).item<int64_t>();
  };
  s.step = i64("meta.step");
  s.epoch = i64("meta.epoch");
  s.batch_in_epoch = i64("meta.batch_in_epoch");
  s.ewa_step = i64("meta.ewa_step");
  s.epoch_done = i64("meta.epoch_done") != 0;
  s.has_best = i64("meta.has_best") != 0;
  s.best_metric = one("meta.best_metric").to(torch::kDouble).item<double>();
  s.best_metric_name = tensor_to_string(rd("meta.best_metric_name"));
  s.config_hash = tensor_to_string(rd("meta.config_hash"));
  s.world_size = i64("meta.world_size");
  s.data_state = tensor_to_string(rd("meta.data_state"));
  if (i64("meta.has_rng") != 0) s.rng_state = rd("meta.rng_state").clone();
  torch::Tensor probe;
  if (a.try_read("meta.has_ema", probe)) {  // absent in checkpoints written before train.ema
    s.has_ema = i64("meta.has_ema") != 0;
    s.ema_updates = s.has_ema ? i64("meta.ema_updates") : 0;
  }
  return s;
}

// Reads and verifies the file; returns the payload.
std::string read_payload(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw CheckpointError(path, "no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError(path, std::string("cannot open: ") + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < kHeader || std::memcmp(bytes.data(), kMagic, 8) != 0) {
    throw CheckpointError(path, "not an ewa checkpoint (bad header; file truncated or of another format)");
  }
  uint64_t size = 0;
  uint32_t crc = 0;
  std::memcpy(&size, bytes.data() + 8, 8);
  std::memcpy(&crc, bytes.data() + 16, 4);
  if (bytes.size() - kHeader != size) {
    throw CheckpointError(path, "truncated or damaged: header says " + std::to_string(size) +
                                    " payload bytes, file has " + std::to_string(bytes.size() - kHeader));
  }
  std::string payload = bytes.substr(kHeader);
  if (crc32_of(payload) != crc) throw CheckpointError(path, "corrupted: CRC32 mismatch");
  return payload;
}

/// The first line of a library message (TorchScript errors quote source over several lines).
std::string first_line(const std::string& text) {
  const auto nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl);
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

std::string hash_config(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void atomic_write_file(const std::string& path, const std::string& bytes) {
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write '" + tmp + "': " + std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error("cannot write '" + tmp + "': " + std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot flush '" + tmp + "': " + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(err));
  }
  fsync_dir(p.parent_path());
}

void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const TrainingState& state) {
  torch::serialize::OutputArchive archive;
  {
    torch::NoGradGuard ng;
    for (const auto& p : model.named_parameters(true)) archive.write("model/" + p.key(), p.value().detach().cpu());
    for (const auto& b : model.named_buffers(true)) {
      if (b.value().defined()) archive.write("model/" + b.key(), b.value().detach().cpu(), /*is_buffer=*/true);
    }
  }
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive opt_archive;
    optimizer->save(opt_archive);
    archive.write("optimizer", opt_archive);
  }
  for (const auto& [key, t] : state.ema) archive.write("ema/" + key, t.detach().cpu());
  write_meta(archive, state);
  std::ostringstream os;
  archive.save_to(os);
  const std::string payload = os.str();
  std::string bytes(kHeader, '\0');
  const uint64_t size = payload.size();
  const uint32_t crc = crc32_of(payload);
  std::memcpy(bytes.data(), kMagic, 8);
  std::memcpy(bytes.data() + 8, &size, 8);
  std::memcpy(bytes.data() + 16, &crc, 4);
  bytes += payload;
  atomic_write_file(path, bytes);
}

namespace {
TrainingState load_impl(const std::string& path, torch::nn::Module* model, torch::optim::Optimizer* optimizer) {
  const std::string payload = read_payload(path);
  torch::serialize::InputArchive archive;
  TrainingState state;
  std::map<std::string, torch::Tensor> tensors;
  try {
    archive.load_from(payload.data(), payload.size());
    state = read_meta(archive, path);
    const bool has_ema = state.has_ema;
    if (model != nullptr) {
      // Phase 1: read and check every tensor before anything is modified.
      auto read_checked = [&](const std::string& prefix, const std::string& key, const torch::Tensor& dst,
                              bool is_buffer) {
        torch::Tensor t;
        if (!archive.try_read(prefix + key, t, is_buffer)) {
          throw CheckpointError(path, "has no entry for " + std::string(prefix == "ema/" ? "EMA" : "model") + " " +
                                          std::string(is_buffer ? "buffer" : "parameter") + " '" + key +
                                          "' (checkpoint of another model?)");
        }
        check_within_storage(t, prefix + key, path);
        if (t.sizes() != dst.sizes()) {
          std::ostringstream m;
          m << "shape of '" << prefix << key << "' is " << t.sizes() << " in the file but " << dst.sizes()
            << " in the model";
          throw CheckpointError(path, m.str());
        }
        return t;
      };
      // Weights only (eval, export): the deployed weights, i.e. the EMA when the run kept one.
      const std::string weights = has_ema && optimizer == nullptr ? "ema/" : "model/";
      auto check = [&](const std::string& key, const torch::Tensor& dst, bool is_buffer) {
        tensors[key] = read_checked(weights, key, dst, is_buffer);
        if (has_ema && optimizer != nullptr) state.ema.emplace_back(key, read_checked("ema/", key, dst, is_buffer));
      };
      for (const auto& p : model->named_parameters(true)) check(p.key(), p.value(), false);
      for (const auto& b : model->named_buffers(true)) {
        if (b.value().defined()) check(b.key(), b.value(), true);
      }
    }
  } catch (const CheckpointError&) {
    throw;
  } catch (const c10::Error& e) {  // LibTorch's archive reader: its message, never its backtrace
    throw CheckpointError(path, std::string("unreadable: ") + first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw CheckpointError(path, std::string("unreadable: ") + first_line(e.what()));
  }
  if (model != nullptr) {
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters(true)) p.value().copy_(tensors.at(p.key()));
    for (auto& b : model->named_buffers(true)) {
      if (b.value().defined()) b.value().copy_(tensors.at(b.key()));
    }
  }
  if (optimizer != nullptr) {
    try {
      torch::serialize::InputArchive opt_archive;
      if (!archive.try_read("optimizer", opt_archive)) throw std::runtime_error("no optimizer state in the file");
      optimizer->load(opt_archive);
    } catch (const c10::Error& e) {
      throw CheckpointError(path, std::string("optimizer state does not match: ") +
                                      first_line(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      throw CheckpointError(path, std::string("optimizer state does not match: ") + first_line(e.what()));
    }
  }
  return state;
}
}  // namespace

TrainingState load_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer) {
  return load_impl(path, &model, optimizer);
}

TrainingState read_checkpoint_state(const std::string& path) { return load_impl(path, nullptr, nullptr); }

}  // namespace ewa
