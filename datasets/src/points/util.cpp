// Internal helpers of the points readers: file I/O, atomic writes, number parsing, task pool.
#include "util.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "ewa/datasets/natural_sort.h"

namespace ewa::datasets::detail {

std::string read_whole_file(const fs::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  TORCH_CHECK(f != nullptr, "cannot open ", path.string(), ": ", std::strerror(errno));
  std::string out;
  if (std::fseek(f, 0, SEEK_END) == 0) {
    long size = std::ftell(f);
    if (size > 0) {
      out.resize(static_cast<size_t>(size));
      std::fseek(f, 0, SEEK_SET);
      size_t got = std::fread(out.data(), 1, out.size(), f);
      out.resize(got);
    }
  }
  std::fclose(f);
  return out;
}

fs::path temp_sibling(const fs::path& path) {
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  return path.parent_path() / (path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                               std::to_string(counter++) + "." + std::to_string(rd() % 100000));
}

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  fs::path tmp = temp_sibling(path);
  {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    TORCH_CHECK(f != nullptr, "cannot write ", tmp.string(), ": ", std::strerror(errno));
    size_t put = std::fwrite(bytes.data(), 1, bytes.size(), f);
    int rc = std::fclose(f);
    if (put != bytes.size() || rc != 0) {
      std::error_code ec;
      fs::remove(tmp, ec);
      TORCH_CHECK(false, "short write to ", tmp.string());
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    TORCH_CHECK(false, "cannot rename into ", path.string());
  }
}

void parallel_tasks(int64_t n, int threads, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int t = threads <= 0 ? hw : threads;
  t = static_cast<int>(std::min<int64_t>(t, n));
  if (t <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mu;
  auto worker = [&] {
    while (!failed.load()) {
      int64_t i = next++;
      if (i >= n) break;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int k = 0; k < t; ++k) pool.emplace_back(worker);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && (is_space(s[a]) || s[a] == '\n')) ++a;
  while (b > a && (is_space(s[b - 1]) || s[b - 1] == '\n')) --b;
  return std::string(s.substr(a, b - a));
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::string text = read_whole_file(path);
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::string t = trim(line);
    if (t.size() >= 3 && static_cast<unsigned char>(t[0]) == 0xEF) t = t.substr(3);  // BOM
    if (t.empty() || t[0] == '#') continue;
    out.push_back(t);
  }
  return out;
}

std::vector<std::string> split_ws(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (is_space(s[i]) || s[i] == '\n')) ++i;
    size_t j = i;
    while (j < s.size() && !(is_space(s[j]) || s[j] == '\n')) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}
std::string to_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool natural_less(const std::string& a, const std::string& b) { return ewa::datasets::natural_less(a, b); }

}  // namespace ewa::datasets::detail

namespace ewa::datasets {

bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      std::string_view na(a.data() + i, i2 - i), nb(b.data() + j, j2 - j);
      while (na.size() > 1 && na[0] == '0') na.remove_prefix(1);
      while (nb.size() > 1 && nb[0] == '0') nb.remove_prefix(1);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

}  // namespace ewa::datasets

namespace ewa::datasets::detail {

namespace {
constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
}

const char* parse_number(const char* p, const char* end, double& out) {
  bool neg = false;
  if (p < end && (*p == '-' || *p == '+')) {
    neg = *p == '-';
    ++p;
  }
  uint64_t mant = 0;
  int digits = 0, dropped = 0, frac = 0;
  bool any = false;
  while (p < end && static_cast<unsigned>(*p - '0') < 10u) {
    if (digits < 19) {
      mant = mant * 10 + static_cast<unsigned>(*p - '0');
      if (mant) ++digits;
    } else {
      ++dropped;
    }
    any = true;
    ++p;
  }
  if (p < end && *p == '.') {
    ++p;
    while (p < end && static_cast<unsigned>(*p - '0') < 10u) {
      if (digits < 19) {
        mant = mant * 10 + static_cast<unsigned>(*p - '0');
        if (mant) ++digits;
        ++frac;
      }
      any = true;
      ++p;
    }
  }
  if (!any) return nullptr;
  int exp10 = dropped - frac;
  if (p < end && (*p == 'e' || *p == 'E')) {
    const char* q = p + 1;
    bool eneg = false;
    if (q < end && (*q == '-' || *q == '+')) {
      eneg = *q == '-';
      ++q;
    }
    if (q >= end || static_cast<unsigned>(*q - '0') >= 10u) return nullptr;
    int e = 0;
    while (q < end && static_cast<unsigned>(*q - '0') < 10u) {
      if (e < 100000) e = e * 10 + (*q - '0');
      ++q;
    }
    exp10 += eneg ? -e : e;
    p = q;
  }
  double v = static_cast<double>(mant);
  if (mant == 0) {
    v = 0.0;
  } else if (exp10 >= 0 && exp10 <= 22) {
    v *= kPow10[exp10];
  } else if (exp10 < 0 && exp10 >= -22) {
    v /= kPow10[-exp10];
  } else {
    v *= std::pow(10.0, exp10);
  }
  out = neg ? -v : v;
  return p;
}

bool parse_number_token(std::string_view tok, double& out) {
  if (tok.empty()) return false;
  std::string low = to_lower(std::string(tok));
  if (low == "nan" || low == "-nan" || low == "+nan") {
    out = std::nan("");
    return true;
  }
  if (low == "inf" || low == "+inf" || low == "infinity") {
    out = INFINITY;
    return true;
  }
  if (low == "-inf" || low == "-infinity") {
    out = -INFINITY;
    return true;
  }
  const char* e = parse_number(tok.data(), tok.data() + tok.size(), out);
  return e == tok.data() + tok.size();
}

bool parse_int_token(std::string_view tok, int64_t& out) {
  if (tok.empty()) return false;
  size_t i = 0;
  bool neg = false;
  if (tok[0] == '-' || tok[0] == '+') {
    neg = tok[0] == '-';
    i = 1;
  }
  if (i >= tok.size()) return false;
  int64_t v = 0;
  for (; i < tok.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(tok[i]))) return false;
    // a number beyond int64 is not an integer token (never a wrapped count)
    if (__builtin_mul_overflow(v, int64_t{10}, &v) || __builtin_add_overflow(v, int64_t{tok[i] - '0'}, &v)) return false;
  }
  out = neg ? -v : v;
  return true;
}

void byteswap_inplace(void* data, int64_t count, int size) {
  auto* b = static_cast<uint8_t*>(data);
  if (size <= 1) return;
  for (int64_t i = 0; i < count; ++i) std::reverse(b + i * size, b + (i + 1) * size);
}

}  // namespace ewa::datasets::detail
