# EWA_BUILD_FUZZ: instrument every library with ASan + UBSan + libFuzzer coverage so the
# harnesses in fuzz/ see bugs in the readers they call. Clang only (gcc has no libFuzzer).
include_guard(GLOBAL)

if(NOT EWA_BUILD_FUZZ)
  ewa_summary_line("  libFuzzer harnesses: OFF (EWA_BUILD_FUZZ=OFF, scripts/fuzz.sh builds them)")
  return()
endif()

if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "EWA_BUILD_FUZZ=ON needs clang (libFuzzer), found ${CMAKE_CXX_COMPILER_ID}: "
                      "configure a separate build directory with CC=clang-14 CXX=clang++-14 "
                      "(Debian packages 'clang-14 libclang-rt-14-dev'), or run scripts/fuzz.sh")
endif()
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer,address,undefined")
check_cxx_source_compiles(
  "#include <cstdint>\n#include <cstddef>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }"
  EWA_HAVE_LIBFUZZER)
unset(CMAKE_REQUIRED_FLAGS)
if(NOT EWA_HAVE_LIBFUZZER)
  message(FATAL_ERROR "EWA_BUILD_FUZZ=ON but ${CMAKE_CXX_COMPILER} cannot link -fsanitize=fuzzer: "
                      "install the Debian package 'libclang-rt-14-dev'")
endif()

# Every target (libraries included) gets coverage + sanitizers; only the harnesses link the
# libFuzzer main (-fsanitize=fuzzer, see fuzz/CMakeLists.txt). vptr is left out: LibTorch's
# hidden-visibility type_info makes it report false downcasts.
set(EWA_SANITIZE_FLAGS -fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer -gline-tables-only)
add_compile_options("$<$<COMPILE_LANGUAGE:CXX,C>:${EWA_SANITIZE_FLAGS};-fsanitize=fuzzer-no-link>")
add_link_options(-fsanitize=address,undefined -fno-sanitize=vptr)
ewa_summary_line("  libFuzzer harnesses: ON (ASan + UBSan, run by scripts/fuzz.sh)")
