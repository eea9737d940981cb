// Internal helpers of the points readers: whole-file I/O, atomic writes, a fast number
// parser, a small task pool, and string helpers. Not installed.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ewa::datasets::detail {

namespace fs = std::filesystem;

/// Reads a whole file; throws naming the path.
std::string read_whole_file(const fs::path& path);
/// Writes `bytes` to `path` via `path.tmp.<pid>` + rename (never leaves a half file).
void write_file_atomic(const fs::path& path, const std::string& bytes);
/// A unique temporary sibling name for `path` (same directory, so rename is atomic).
fs::path temp_sibling(const fs::path& path);

/// Runs fn(i) for i in [0,n) on `threads` workers (0 = hardware). Rethrows the first error.
void parallel_tasks(int64_t n, int threads, const std::function<void(int64_t)>& fn);

/// Lines of a small text file, trimmed, empty lines and '#' comments dropped.
std::vector<std::string> read_lines(const fs::path& path);
std::string trim(std::string_view s);
std::vector<std::string> split_ws(std::string_view s);
bool starts_with(std::string_view s, std::string_view p);
bool ends_with(std::string_view s, std::string_view p);
std::string to_lower(std::string s);
/// Natural order: "wall_2" < "wall_10".
bool natural_less(const std::string& a, const std::string& b);

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/// Parses a decimal number [+-]digits[.digits][(e|E)[+-]digits] starting at p (< end).
/// Returns the pointer past it, or nullptr if no valid number starts at p. Accuracy:
/// correctly rounded for up to 19 significant digits and |exp10| <= 22, otherwise ~1 ulp.
const char* parse_number(const char* p, const char* end, double& out);

/// Parses a whole token as a number (nullptr/false when anything is left over).
bool parse_number_token(std::string_view tok, double& out);
bool parse_int_token(std::string_view tok, int64_t& out);

/// Byte-swaps `count` elements of `size` bytes in place.
void byteswap_inplace(void* data, int64_t count, int size);

}  // namespace ewa::datasets::detail
