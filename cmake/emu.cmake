# The cuda-emu build: every csrc/cuda/*.cu compiled by g++ as C++ against the emulator
# (csrc/emu), the cuda-emu addon, and the emulator's test binary (test/emu).
#   FF_EMU_SANITIZE=none     build-native/cuda-emu/fourierformer_cuda_emu.node + tests
#   FF_EMU_SANITIZE=address  build-native/cuda-emu-asan/ + tests: ASan + -fsanitize=bounds (ASan
#                            misses overflows of static __shared__ arrays, which are
#                            thread_local), fiber mode
#   FF_EMU_SANITIZE=thread   build-native/cuda-emu-tsan/ + tests: TSan, thread mode (one OS thread
#                            per CUDA thread)
# A sanitized addon needs its runtime loaded first: node runs it with LD_PRELOAD set to
# libasan.so or libtsan.so (scripts/sanitize-addon.sh).
find_package(Threads REQUIRED)
find_library(FF_OPENBLAS openblas)
if(NOT FF_OPENBLAS)
  message(FATAL_ERROR "OpenBLAS not found: install libopenblas-dev (scripts/setup.sh does)")
endif()

if(FF_EMU_SANITIZE STREQUAL "address")
  set(FF_SANITIZER_FLAGS -fsanitize=address,bounds -fno-sanitize-recover=all -fno-omit-frame-pointer)
elseif(FF_EMU_SANITIZE STREQUAL "thread")
  set(FF_SANITIZER_FLAGS -fsanitize=thread)
elseif(NOT FF_EMU_SANITIZE STREQUAL "none")
  message(FATAL_ERROR "FF_EMU_SANITIZE must be none, address or thread (got ${FF_EMU_SANITIZE})")
endif()
if(FF_SANITIZER_FLAGS)
  list(APPEND FF_SANITIZER_FLAGS -O1 -g1)  # readable reports, tests still quick
endif()

# The emulator: the runtime, the sync rules, and one executor (fibers, or OS threads for TSan).
add_library(ff_emu STATIC csrc/emu/block.cpp csrc/emu/runtime.cpp)
target_compile_definitions(ff_emu PUBLIC FF_EMU)
target_compile_options(ff_emu PUBLIC -Wno-unknown-pragmas ${FF_SANITIZER_FLAGS})
target_link_options(ff_emu PUBLIC ${FF_SANITIZER_FLAGS})
target_link_libraries(ff_emu PUBLIC Threads::Threads ${FF_OPENBLAS})
if(FF_EMU_SANITIZE STREQUAL "thread")
  target_sources(ff_emu PRIVATE csrc/emu/threads.cpp)
  target_compile_definitions(ff_emu PUBLIC FF_EMU_THREADS)
else()
  find_package(Boost 1.66 REQUIRED COMPONENTS context)
  target_sources(ff_emu PRIVATE csrc/emu/fibers.cpp)
  target_link_libraries(ff_emu PRIVATE Boost::context)
endif()

# .cu sources as C++: one generated wrapper each that includes the emulator first, as nvcc
# includes cuda_runtime.h before a .cu file's first line.
function(ff_emu_sources out_var)
  set(wrappers)
  foreach(cu ${ARGN})
    get_filename_component(name ${cu} NAME)
    set(wrapper ${CMAKE_BINARY_DIR}/emu-src/${name}.cpp)
    file(CONFIGURE OUTPUT ${wrapper} CONTENT
         "#include \"${PROJECT_SOURCE_DIR}/csrc/emu/cuda_emu.h\"\n#include \"${cu}\"\n")
    list(APPEND wrappers ${wrapper})
  endforeach()
  set(${out_var} ${wrappers} PARENT_SCOPE)
endfunction()

if(FF_EMU_SANITIZE STREQUAL "address")
  set(FF_EMU_ADDON_DIR ${FF_OUT}/cuda-emu-asan)
elseif(FF_EMU_SANITIZE STREQUAL "thread")
  set(FF_EMU_ADDON_DIR ${FF_OUT}/cuda-emu-tsan)
else()
  set(FF_EMU_ADDON_DIR ${FF_OUT}/cuda-emu)
endif()
ff_emu_sources(FF_EMU_ADDON_SOURCES ${FF_CUDA_SOURCES})
add_library(fourierformer_cuda_emu MODULE ${FF_EMU_ADDON_SOURCES})
target_link_libraries(fourierformer_cuda_emu PRIVATE ff_emu)
ff_addon(fourierformer_cuda_emu ${FF_EMU_ADDON_DIR})
target_compile_options(ff_binding PRIVATE ${FF_SANITIZER_FLAGS})
if(FF_SANITIZER_FLAGS)
  # plantedBug(name): kernels with planted bugs (test/sanitize), for scripts/sanitize-addon.sh to
  # prove that reports from kernels run through node fail the stage. Sanitizer addons only.
  ff_emu_sources(FF_EMU_PLANTED_KERNELS ${PROJECT_SOURCE_DIR}/test/sanitize/planted_kernels.cu)
  add_library(ff_planted_binding OBJECT test/sanitize/planted_binding.cpp)  # as ff_binding
  ff_node_api(ff_planted_binding)
  target_compile_options(ff_planted_binding PRIVATE ${FF_SANITIZER_FLAGS})
  target_sources(fourierformer_cuda_emu PRIVATE ${FF_EMU_PLANTED_KERNELS}
                                                $<TARGET_OBJECTS:ff_planted_binding>)
endif()

# The emulator tests (test/emu/*.cpp) with the kernels they check, and the cpu backend's metric
# as the reference (its ff::backend renamed ff::cpu_reference, so both backends link together).
set(FF_EMU_TESTED_KERNELS memory.cu checks.cu elementwise.cu fourier_metric.cu)
list(TRANSFORM FF_EMU_TESTED_KERNELS PREPEND ${PROJECT_SOURCE_DIR}/csrc/cuda/)
ff_emu_sources(FF_EMU_TEST_KERNEL_SOURCES ${FF_EMU_TESTED_KERNELS})
add_library(ff_cpu_reference OBJECT csrc/cpu/fourier_metric.cpp)
target_compile_definitions(ff_cpu_reference PRIVATE backend=cpu_reference)
target_compile_options(ff_cpu_reference PRIVATE -Wno-unknown-pragmas ${FF_SANITIZER_FLAGS})
file(GLOB FF_EMU_TEST_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/test/emu/*.cpp)
add_executable(ff_emu_tests ${FF_EMU_TEST_SOURCES} ${FF_EMU_TEST_KERNEL_SOURCES}
                            $<TARGET_OBJECTS:ff_cpu_reference>)
target_include_directories(ff_emu_tests PRIVATE ${PROJECT_SOURCE_DIR}/csrc)
# The tests are CUDA sources too: the emulator comes first, as in the wrappers.
target_compile_options(ff_emu_tests PRIVATE -include ${PROJECT_SOURCE_DIR}/csrc/emu/cuda_emu.h)
target_link_libraries(ff_emu_tests PRIVATE ff_emu)
enable_testing()
add_test(NAME emu COMMAND ff_emu_tests)
