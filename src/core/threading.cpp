#include "nnterp/threading.hpp"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <cstdlib>
#include <iostream>
#include <thread>

namespace nnterp {

namespace {

using SetThreads = void (*)(int);
using GetConfig = char* (*)();

SetThreads openblas_set_threads() {
  return reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
}

std::string blas_config() {
  if (auto get = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    std::string config = get();  // "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." on current versions
    return config.rfind("OpenBLAS", 0) == 0 ? config : "OpenBLAS " + config;
  }
  if (dlsym(RTLD_DEFAULT, "mkl_set_num_threads")) return "MKL";
  return "";
}

}  // namespace

ThreadingReport configure_threads(int threads) {
  ThreadingReport report;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  report.blas_threads = threads > 0 ? threads : cores;
  // libtorch intra-op = 1: with 2 pools of spinning workers on few cores, GEMMs run up to 14x and
  // softmax/layer_norm up to 400x slower (bench_forward --ops/--sweep, docs/performance.md).
  report.torch_threads = 1;
  if (const char* env = std::getenv("NNTERP_TORCH_THREADS"); env && std::atoi(env) > 0) report.torch_threads = std::atoi(env);
  at::set_num_threads(report.torch_threads);
  report.blas = blas_config();
  report.optimized_blas = !report.blas.empty();
  if (auto set = openblas_set_threads()) set(report.blas_threads);
  else report.blas_threads = 0;
  if (!report.optimized_blas)
    report.blas = "reference BLAS (about 20x slower): install libopenblas0-pthread (Debian) so libtorch uses OpenBLAS";
  return report;
}

void warn_if_reference_blas() {
  static bool warned = false;
  if (warned) return;
  warned = true;
  if (blas_config().empty())
    std::cerr << "nnterp: warning: libtorch is not using an optimized BLAS; matmuls will be ~20x slower. "
                 "Install libopenblas0-pthread (apt-get install libopenblas-dev).\n";
}

}  // namespace nnterp
