# Every find_package of ewa-vision, in one place. Required: LibTorch, yaml-cpp, CLI11,
# nlohmann_json, spdlog, zlib. Optional parts resolve AUTO/ON/OFF through ewa_resolve().
include_guard(GLOBAL)

# ---- LibTorch (Debian libtorch-dev 1.13 CPU, or PyTorch's own LibTorch 2.x with CUDA) ----
find_package(Torch REQUIRED)
get_filename_component(EWA_TORCH_DIR "${Torch_DIR}" ABSOLUTE)
if(NOT Torch_VERSION AND DEFINED TORCH_VERSION)
  set(Torch_VERSION "${TORCH_VERSION}")
endif()
# TORCH_CXX_FLAGS carries -D_GLIBCXX_USE_CXX11_ABI=...; keep it on every target.
string(REGEX MATCHALL "-D[^ ]+" EWA_TORCH_DEFS "${TORCH_CXX_FLAGS}")
add_library(ewa_torch INTERFACE)
target_link_libraries(ewa_torch INTERFACE ${TORCH_LIBRARIES})
foreach(def ${EWA_TORCH_DEFS})
  string(REGEX REPLACE "^-D" "" def "${def}")
  target_compile_definitions(ewa_torch INTERFACE ${def})
endforeach()
if(TORCH_INCLUDE_DIRS)
  target_include_directories(ewa_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
endif()

find_package(OpenMP COMPONENTS CXX)
if(OpenMP_CXX_FOUND)
  target_link_libraries(ewa_torch INTERFACE OpenMP::OpenMP_CXX)
endif()

# ---- required small libraries ----
find_package(yaml-cpp REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
if(TARGET yaml-cpp::yaml-cpp)
  set(EWA_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(EWA_YAML_TARGET yaml-cpp)
endif()

# ---- CUDA: on when LibTorch was built with CUDA and nvcc is usable ----
set(EWA_CUDA_FOUND OFF)
if(NOT EWA_WITH_CUDA STREQUAL "OFF" AND TORCH_CUDA_LIBRARIES)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(EWA_CUDA_FOUND ON)
  endif()
endif()
ewa_resolve(EWA_WITH_CUDA EWA_CUDA_FOUND "a CUDA-enabled LibTorch + nvcc (see README, GPU build)"
            "CUDA kernels" EWA_CUDA_ENABLED)
if(EWA_CUDA_ENABLED)
  enable_language(CUDA)
  if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90)
  endif()
endif()

# ---- OpenCV (image decoding) ----
if(NOT EWA_WITH_OPENCV STREQUAL "OFF")
  find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
endif()
ewa_resolve(EWA_WITH_OPENCV OpenCV_FOUND libopencv-dev "OpenCV image decoding" EWA_OPENCV_ENABLED)

# ---- HDF5 (prepared caches, PointNet/ModelNet HDF5) ----
if(NOT EWA_WITH_HDF5 STREQUAL "OFF")
  find_package(HDF5 QUIET COMPONENTS C)
endif()
ewa_resolve(EWA_WITH_HDF5 HDF5_FOUND libhdf5-dev "HDF5 readers/writers" EWA_HDF5_ENABLED)

# ---- oneDNN (fp32 CPU GEMMs of the models: AVX-512/AMX kernels where OpenBLAS has AVX2 ones) ----
# Debian's LibTorch links the same libdnnl.so.2; libdnnl-dev adds its headers.
set(EWA_ONEDNN_FOUND OFF)
if(NOT EWA_WITH_ONEDNN STREQUAL "OFF")
  find_path(EWA_DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
  find_library(EWA_DNNL_LIBRARY NAMES dnnl)
  if(EWA_DNNL_INCLUDE_DIR AND EWA_DNNL_LIBRARY)
    set(EWA_ONEDNN_FOUND ON)
  endif()
endif()
ewa_resolve(EWA_WITH_ONEDNN EWA_ONEDNN_FOUND libdnnl-dev "oneDNN fp32 GEMMs (ewa::gemm)" EWA_ONEDNN_ENABLED)

# ---- PCL (PCD reading; baseline in the kNN benchmark). VTK targets need MPI::MPI_C. ----
if(NOT EWA_WITH_PCL STREQUAL "OFF")
  find_package(MPI QUIET COMPONENTS C)
  find_package(PCL QUIET COMPONENTS common io kdtree)
endif()
ewa_resolve(EWA_WITH_PCL PCL_FOUND libpcl-dev "PCL (PCD I/O, kNN baseline)" EWA_PCL_ENABLED)

# ---- Open3D (viewer window; baseline in the kNN benchmark) ----
if(NOT EWA_BUILD_VIEWER STREQUAL "OFF" OR NOT EWA_BUILD_BENCH STREQUAL "OFF")
  find_package(Open3D QUIET)
endif()
set(EWA_OPEN3D_GUI_FOUND OFF)
if(Open3D_FOUND AND EXISTS "/usr/share/open3d-gui/resources")
  set(EWA_OPEN3D_GUI_FOUND ON)
endif()
ewa_resolve(EWA_BUILD_VIEWER EWA_OPEN3D_GUI_FOUND "libopen3d-dev open3d-gui-data"
            "Viewer window (Open3D GUI)" EWA_VIEWER_ENABLED)

# ---- tests and benchmarks ----
if(NOT EWA_BUILD_TESTS STREQUAL "OFF")
  find_package(GTest QUIET)
endif()
ewa_resolve(EWA_BUILD_TESTS GTest_FOUND libgtest-dev "Tests (GoogleTest)" EWA_TESTS_ENABLED)
if(NOT EWA_BUILD_BENCH STREQUAL "OFF")
  find_package(benchmark QUIET)
endif()
ewa_resolve(EWA_BUILD_BENCH benchmark_FOUND libbenchmark-dev "Benchmarks (Google Benchmark)"
            EWA_BENCH_ENABLED)
