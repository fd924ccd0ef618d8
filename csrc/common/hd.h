// Host/device qualifiers shared by every backend. Under nvcc these are CUDA's own keywords;
// under g++ (the cpu backend) they vanish, and under the emulator csrc/emu defines them.
#pragma once
#if defined(__CUDACC__) || defined(FF_EMU)
#define FF_HD __host__ __device__ inline
#else
#define FF_HD inline
#endif
