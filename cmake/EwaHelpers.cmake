# Helpers shared by every module: tri-state options, library/test target creation with
# warnings, include roots, LibTorch precompiled header, and the configure summary.
include_guard(GLOBAL)

set_property(GLOBAL PROPERTY EWA_SUMMARY_LINES "")
function(ewa_summary_line text)
  set_property(GLOBAL APPEND PROPERTY EWA_SUMMARY_LINES "${text}")
endfunction()

# ewa_resolve(<OPTION> <FOUND> <debian-package> <what> <out-var>)
# AUTO -> enabled when found; ON + not found -> configure error naming the package; OFF -> off.
function(ewa_resolve opt found pkg what out)
  set(value "${${opt}}")
  string(TOUPPER "${value}" value)
  if(value STREQUAL "OFF" OR value STREQUAL "FALSE" OR value STREQUAL "0" OR value STREQUAL "NO")
    set(${out} OFF PARENT_SCOPE)
    ewa_summary_line("  ${what}: OFF (${opt}=OFF)")
  elseif(${found})
    set(${out} ON PARENT_SCOPE)
    ewa_summary_line("  ${what}: ON")
  elseif(value STREQUAL "ON" OR value STREQUAL "TRUE" OR value STREQUAL "1" OR value STREQUAL "YES")
    message(FATAL_ERROR "${opt}=ON but ${what} needs a dependency that was not found: "
                        "install the Debian package '${pkg}' (or configure with -D${opt}=OFF).")
  else()
    set(${out} OFF PARENT_SCOPE)
    ewa_summary_line("  ${what}: OFF (not found: install '${pkg}')")
  endif()
endfunction()

function(ewa_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
  if(EWA_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
  endif()
endfunction()

# LibTorch precompiled header: built once in ewa_pch and reused by every target that
# includes torch (same flags everywhere, so gcc accepts the shared .gch).
function(ewa_use_torch_pch target)
  if(EWA_USE_PCH AND TARGET ewa_pch)
    target_precompile_headers(${target} REUSE_FROM ewa_pch)
  endif()
endfunction()

# ewa_add_module(<name> [SOURCES ...]) creates library ewa_<name> with alias ewa::<name>,
# public include root <module>/include, sources from <module>/src (*.cpp).
function(ewa_add_module name)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cpp)
  list(APPEND srcs ${ARGN})
  add_library(ewa_${name} STATIC ${srcs} ${CMAKE_CURRENT_SOURCE_DIR}/../cmake/module_anchor.cpp)
  add_library(ewa::${name} ALIAS ewa_${name})
  target_include_directories(ewa_${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
  target_compile_features(ewa_${name} PUBLIC cxx_std_17)
  ewa_warnings(ewa_${name})
endfunction()

function(ewa_print_summary)
  get_property(lines GLOBAL PROPERTY EWA_SUMMARY_LINES)
  message(STATUS "")
  message(STATUS "ewa-vision ${PROJECT_VERSION} configuration summary")
  message(STATUS "  build type: ${CMAKE_BUILD_TYPE}; compiler: ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}")
  message(STATUS "  unity build: ${EWA_UNITY_BUILD} (batch ${EWA_UNITY_BATCH}); PCH: ${EWA_USE_PCH}")
  message(STATUS "  LibTorch: ${Torch_VERSION} (${EWA_TORCH_DIR})")
  if(CCACHE_PROGRAM)
    message(STATUS "  ccache: ${CCACHE_PROGRAM}")
  else()
    message(STATUS "  ccache: not found (install 'ccache' for faster rebuilds)")
  endif()
  foreach(l IN LISTS lines)
    message(STATUS "${l}")
  endforeach()
  message(STATUS "")
endfunction()
