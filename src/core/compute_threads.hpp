// How many threads nnterp's own kernels (the bf16/f16 matrix-vector product) use: the BLAS thread
// count configure_threads() set, else every core. Internal.
#pragma once

namespace nnterp {

int compute_threads();
void set_compute_threads(int threads);  // configure_threads() calls this

}  // namespace nnterp
