// nnterp's threading policy (measured, see docs/performance.md): the BLAS library gets the
// threads, libtorch's own intra-op pool gets one. On small CPU machines, OpenBLAS threads plus
// libtorch OpenMP threads oversubscribe the cores and make small matmuls several times slower.
#pragma once

#include <string>

namespace nnterp {

struct ThreadingReport {
  int blas_threads = 0;      // threads given to the BLAS (0: the BLAS cannot be told)
  int torch_threads = 0;     // libtorch intra-op threads
  std::string blas;          // "OpenBLAS 0.3.21 ..." or a warning when not on an optimized BLAS
  bool optimized_blas = false;
  bool malloc_keeps_freed_memory = false;  // glibc told to keep freed buffers (see threading.cpp)
};

// `threads` = 0 uses every core. Idempotent; call before the first forward. NNTERP_TORCH_THREADS
// overrides libtorch's intra-op count for experiments. Also tells glibc's malloc to keep freed
// activation buffers instead of returning them to the OS and faulting them in again on the next
// forward (up to 256 MiB; NNTERP_MALLOC=system keeps glibc's defaults).
ThreadingReport configure_threads(int threads = 0);

// Prints a warning on stderr once if libtorch is not on an optimized BLAS.
void warn_if_reference_blas();

}  // namespace nnterp
