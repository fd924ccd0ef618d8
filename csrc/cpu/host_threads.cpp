// cpu backend: its threads. Every parallel kernel and GEMM runs on an OpenMP team of up to
// omp_get_max_threads() threads (threads.h, parallel.h, blas.h); OpenBLAS runs single-threaded
// inside it (blas.cpp). OpenMP keeps that count per OS thread, so each JS thread (the main
// thread, each worker) has its own, and each gets a team of its own when it runs an op.
#include <omp.h>
#include "../common/backend.h"

namespace ff::backend {

int num_threads() { return omp_get_max_threads(); }
void set_num_threads(int n) { omp_set_num_threads(n); }

}  // namespace ff::backend
