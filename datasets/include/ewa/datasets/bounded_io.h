// Overflow-checked sizes for every reader of untrusted files: checked integer arithmetic,
// "count x stride must fit in the bytes that remain" checks done BEFORE allocating, a
// bounded byte cursor, and a "first few + count" collector for repeated warnings.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ewa::datasets {

/// A malformed or hostile input file. `what()` is one line that names the file and what is
/// wrong (never a backtrace, never library text such as "stoi" or allocator messages).
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace bounded {

/// "1.2 GB", "512.0 MB", "120 bytes" (decimal units, for error messages).
inline std::string human_bytes(int64_t bytes) {
  if (bytes < 0) return std::to_string(bytes) + " bytes";
  if (bytes < 10000) return std::to_string(bytes) + " bytes";
  const char* unit[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
  double v = static_cast<double>(bytes) / 1000.0;
  int u = 0;
  while (v >= 1000.0 && u < 5) {
    v /= 1000.0;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, unit[u]);
  return buf;
}

/// Throws DataError("<file>: <message>"); control bytes (file text quoted in the message)
/// become '?', so the error stays one line.
[[noreturn]] inline void fail(std::string_view file, std::string_view message) {
  std::string m(file);
  m += ": ";
  m += message;
  for (char& c : m) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  throw DataError(m);
}

/// a*b / a+b without wrapping; false when the exact result does not fit in int64.
inline bool mul_ok(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
inline bool add_ok(int64_t a, int64_t b, int64_t& out) { return !__builtin_add_overflow(a, b, &out); }

/// a*b, or DataError "<file>: <what> <a> x <b> overflows".
inline int64_t checked_mul(int64_t a, int64_t b, std::string_view file, std::string_view what) {
  int64_t r = 0;
  if (!mul_ok(a, b, r)) {
    fail(file, std::string(what) + " " + std::to_string(a) + " x " + std::to_string(b) + " overflows");
  }
  return r;
}

/// a+b, or DataError "<file>: <what> <a> + <b> overflows".
inline int64_t checked_add(int64_t a, int64_t b, std::string_view file, std::string_view what) {
  int64_t r = 0;
  if (!add_ok(a, b, r)) {
    fail(file, std::string(what) + " " + std::to_string(a) + " + " + std::to_string(b) + " overflows");
  }
  return r;
}

/// Product of all `dims` (e.g. an array shape); DataError when one is negative or the
/// product overflows.
inline int64_t checked_product(const std::vector<int64_t>& dims, std::string_view file, std::string_view what) {
  int64_t r = 1;
  for (int64_t d : dims) {
    if (d < 0) fail(file, std::string(what) + " has a negative dimension " + std::to_string(d));
    if (!mul_ok(r, d, r)) fail(file, std::string(what) + " overflows (product of dimensions too large)");
  }
  return r;
}

/// `count` itself must be >= 0 (and <= max when given): "<file>: negative <what> -5".
inline int64_t require_count(std::string_view file, std::string_view what, int64_t count,
                             int64_t max = std::numeric_limits<int64_t>::max()) {
  if (count < 0) fail(file, "negative " + std::string(what) + " " + std::to_string(count));
  if (count > max) {
    fail(file, std::string(what) + " " + std::to_string(count) + " exceeds the limit of " + std::to_string(max));
  }
  return count;
}

/// Checks, before anything is allocated, that `count` items of `stride` bytes each fit in
/// the `bytes_left` bytes that remain in the file; returns count*stride. Failure:
/// "room.ply: vertex count 100000000 needs 1.2 GB but the file holds 120 bytes".
/// For text formats pass the minimum bytes one item can take (e.g. 2 per number "0 ").
inline int64_t require_bytes(std::string_view file, std::string_view what, int64_t count, int64_t stride,
                             int64_t bytes_left) {
  require_count(file, what, count);
  if (stride < 0) fail(file, std::string(what) + ": negative record size " + std::to_string(stride));
  int64_t need = 0;
  if (!mul_ok(count, stride, need)) {
    fail(file, std::string(what) + " " + std::to_string(count) + " x " + std::to_string(stride) +
                   " bytes overflows (the file holds " + human_bytes(bytes_left < 0 ? 0 : bytes_left) + ")");
  }
  if (need > bytes_left) {
    fail(file, std::string(what) + " " + std::to_string(count) + " needs " + human_bytes(need) +
                   " but the file holds " + human_bytes(bytes_left < 0 ? 0 : bytes_left));
  }
  return need;
}

/// A declared decompressed size must be plausible for `compressed` input bytes:
/// declared <= compressed * max_ratio (+ 64 bytes of slack) and declared <= hard_limit.
inline void require_inflation(std::string_view file, std::string_view what, int64_t declared, int64_t compressed,
                              int64_t max_ratio, int64_t hard_limit = std::numeric_limits<int64_t>::max()) {
  require_count(file, what, declared);
  int64_t cap = 0;
  if (!mul_ok(compressed < 0 ? 0 : compressed, max_ratio, cap) || !add_ok(cap, 64, cap)) cap = hard_limit;
  if (cap > hard_limit) cap = hard_limit;
  if (declared > cap) {
    fail(file, std::string(what) + " " + human_bytes(declared) + " is implausible for " +
                   human_bytes(compressed) + " of compressed data (limit " + human_bytes(cap) + ")");
  }
}

/// A read cursor over [data, data+size) that never reads past the end: every access is
/// checked and a short read throws "<file>: <what> truncated at byte <offset>".
class ByteCursor {
 public:
  ByteCursor(const void* data, int64_t size, std::string file)
      : p_(static_cast<const uint8_t*>(data)), size_(size < 0 ? 0 : size), file_(std::move(file)) {}

  int64_t offset() const { return at_; }
  int64_t left() const { return size_ - at_; }
  const uint8_t* here() const { return p_ + at_; }
  const std::string& file() const { return file_; }

  /// Throws unless `n` more bytes are available (n < 0 is refused too).
  void need(int64_t n, std::string_view what) const {
    if (n < 0) fail(file_, "negative " + std::string(what) + " " + std::to_string(n));
    if (n > left()) {
      fail(file_, std::string(what) + " truncated at byte " + std::to_string(at_) + " (needs " + std::to_string(n) +
                      " bytes, " + std::to_string(left()) + " left)");
    }
  }
  /// Advances by `n` checked bytes; returns the start of the skipped range.
  const uint8_t* skip(int64_t n, std::string_view what) {
    need(n, what);
    const uint8_t* r = p_ + at_;
    at_ += n;
    return r;
  }
  /// Skips `count` items of `stride` bytes (checked multiply).
  const uint8_t* skip_items(int64_t count, int64_t stride, std::string_view what) {
    int64_t n = require_bytes(file_, what, count, stride, left());
    return skip(n, what);
  }
  /// Reads a trivially copyable value in host byte order.
  template <class T>
  T take(std::string_view what) {
    T v;
    std::memcpy(&v, skip(static_cast<int64_t>(sizeof(T)), what), sizeof(T));
    return v;
  }

 private:
  const uint8_t* p_;
  int64_t size_;
  int64_t at_ = 0;
  std::string file_;
};

/// Keeps the first `cap` items and counts every one, so a file with a million damaged lines
/// costs O(cap) memory and prints "the first few, then a count".
template <class T>
class FirstFew {
 public:
  explicit FirstFew(size_t cap = 10) : cap_(cap) {}
  void add(T item) {
    ++total_;
    if (items_.size() < cap_) items_.push_back(std::move(item));
  }
  /// Merges another collector (keeps at most `cap` items, sums the counts).
  void merge(const FirstFew& other) {
    for (const auto& it : other.items_) {
      if (items_.size() < cap_) items_.push_back(it);
    }
    total_ += other.total_;
  }
  const std::vector<T>& items() const { return items_; }
  int64_t total() const { return total_; }
  int64_t omitted() const { return total_ - static_cast<int64_t>(items_.size()); }
  size_t cap() const { return cap_; }

 private:
  size_t cap_;
  std::vector<T> items_;
  int64_t total_ = 0;
};

}  // namespace bounded
}  // namespace ewa::datasets
