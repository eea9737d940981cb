// One clean line for the user from any exception: LibTorch messages without their C++
// backtrace, allocator failures as "out of memory", bare library text ("stoi",
// "basic_string::substr") never shown as if it explained anything.
#pragma once

#include <exception>
#include <string>

namespace ewa {

/// The user-facing line of `e` (no newline): c10::Error without backtrace (first line only),
/// std::bad_alloc and LibTorch's "not enough memory" as "out of memory ..." (with the size
/// when known), and messages that are only a library function name ("stoi") as a generic
/// "malformed input" line. Anything else: what(), cut at the first newline.
std::string error_line(const std::exception& e);

/// True for std::bad_alloc and LibTorch's allocator failure (c10::Error "not enough memory").
bool is_out_of_memory(const std::exception& e);

}  // namespace ewa
