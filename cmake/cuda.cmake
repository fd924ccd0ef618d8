# The cuda addon: every csrc/cuda/*.cu compiled by nvcc for sm_75, sm_80, sm_86, sm_89, sm_90,
# sm_100 and sm_120 (Turing to Blackwell; a newer minor of a major runs its SASS), plus
# compute_120 PTX for newer GPUs: what the npm prebuild ships (-DCMAKE_CUDA_ARCHITECTURES=90, or
# build.js's FF_CUDA_ARCHS=90, builds for one GPU, faster); the binding by g++. The CUDA runtime
# is linked statically, so the addon loads on a machine without a GPU or driver
# (ensureAvailable() then says why it cannot be used). cuBLAS is linked from the CUDA toolkit or,
# where the toolkit has none, from the Python wheel nvidia-cublas (site-packages/nvidia/cu13);
# its directory is the built addon's RUNPATH.
if(NOT CMAKE_CUDA_COMPILER)
  set(CMAKE_CUDA_COMPILER ${FF_NVCC})
endif()
if(NOT CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 75-real 80-real 86-real 89-real 90-real 100-real 120)
endif()
enable_language(CUDA)
# C++20 for .cu too: nvcc 13 supports it; CMake 3.25 does not know its flag yet.
if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_FLAGS_RELEASE "-O3 -DNDEBUG")
find_package(CUDAToolkit REQUIRED)

# cuBLAS: the toolkit first, then the pip wheels' directories (CUDA 13 layout, then CUDA 12's).
execute_process(
  COMMAND python3 -c "import nvidia, os; base = list(nvidia.__path__)[0]; print(';'.join(os.path.join(base, d) for d in ('cu13', 'cublas')))"
  OUTPUT_VARIABLE FF_PIP_CUDA_DIRS OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
set(FF_CUBLAS_HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_TARGET_DIR}/lib64)
set(FF_CUBLAS_INCLUDE_HINTS ${CUDAToolkit_INCLUDE_DIRS})
foreach(dir ${FF_PIP_CUDA_DIRS})
  list(APPEND FF_CUBLAS_HINTS ${dir}/lib)
  list(APPEND FF_CUBLAS_INCLUDE_HINTS ${dir}/include)
endforeach()
find_file(FF_CUBLAS NAMES libcublas.so libcublas.so.13 libcublas.so.12 HINTS ${FF_CUBLAS_HINTS} NO_DEFAULT_PATH)
find_path(FF_CUBLAS_INCLUDE cublas_v2.h HINTS ${FF_CUBLAS_INCLUDE_HINTS} NO_DEFAULT_PATH)
if(NOT FF_CUBLAS OR NOT FF_CUBLAS_INCLUDE)
  message(FATAL_ERROR "cuBLAS not found in the CUDA toolkit (${CUDAToolkit_LIBRARY_DIR}) nor in "
                      "python3's nvidia-cublas wheel: `pip install nvidia-cublas`, or configure "
                      "with -DFF_BUILD_CUDA=OFF")
endif()
get_filename_component(FF_CUBLAS_DIR ${FF_CUBLAS} DIRECTORY)
message(STATUS "cuBLAS: ${FF_CUBLAS}")

# The build's RUNPATH is this machine's cuBLAS folder; the installed copy (the npm prebuild:
# `cmake --install build-native/cmake --component prebuild`, run by scripts/prebuild.js) has
# none, and lib/cublas.ts finds cuBLAS on the user's machine.
add_library(fourierformer_cuda MODULE ${FF_CUDA_SOURCES})
set_target_properties(fourierformer_cuda PROPERTIES
  CUDA_RUNTIME_LIBRARY Static
  BUILD_RPATH "${FF_CUBLAS_DIR}")
target_include_directories(fourierformer_cuda PRIVATE ${FF_CUBLAS_INCLUDE})
target_compile_options(fourierformer_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
# --no-as-needed: keep the DT_NEEDED entry even before any op calls cuBLAS.
target_link_libraries(fourierformer_cuda PRIVATE -Wl,--no-as-needed ${FF_CUBLAS} -Wl,--as-needed)
ff_addon(fourierformer_cuda ${FF_OUT}/cuda)
install(TARGETS fourierformer_cuda LIBRARY DESTINATION . COMPONENT prebuild EXCLUDE_FROM_ALL)
