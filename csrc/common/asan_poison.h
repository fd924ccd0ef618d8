// FF_POISON(p, n) / FF_UNPOISON(p, n): mark n bytes at p unusable / usable again under
// AddressSanitizer, so that reading a released tensor's cached bytes or an allocation's slack is
// reported; no-ops otherwise. The host allocators of both backends use them; the cuda backend's
// memory is host memory only under cuda-emu (FF_EMU), so a real CUDA build never poisons.
#pragma once
#if defined(__SANITIZE_ADDRESS__) && (defined(FF_EMU) || !defined(__CUDACC__))
#include <sanitizer/asan_interface.h>
#define FF_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define FF_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define FF_POISON(p, n) ((void)(p), (void)(n))
#define FF_UNPOISON(p, n) ((void)(p), (void)(n))
#endif
