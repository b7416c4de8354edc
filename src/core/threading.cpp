#include "nnterp/threading.hpp"
#include "core/compute_threads.hpp"

#include <atomic>

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>

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

// glibc hands freed blocks at the top of the heap back to the OS and serves large blocks with
// fresh mmaps, so every forward pass page-faults its activation buffers in again: measured on the
// GPT-2-small shape, 10% of a 1×128 forward, and 14% more at 8×128 when a trace keeps the 12
// layer outputs it handed out (bench_trace, docs/performance.md). Keep up to 256 MiB of freed
// memory in the process instead. NNTERP_MALLOC=system leaves glibc's defaults.
bool keep_freed_memory() {
#ifdef __GLIBC__
  if (const char* env = std::getenv("NNTERP_MALLOC"); env && std::string(env) == "system") return false;
  return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1;
#else
  return false;
#endif
}

}  // namespace

static std::atomic<int> g_compute_threads{0};  // 0: not configured

int compute_threads() {
  const int configured = g_compute_threads.load(std::memory_order_relaxed);
  return configured > 0 ? configured : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void set_compute_threads(int threads) { g_compute_threads.store(threads, std::memory_order_relaxed); }

ThreadingReport configure_threads(int threads) {
  ThreadingReport report;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  report.blas_threads = threads > 0 ? threads : cores;
  set_compute_threads(report.blas_threads);
  // libtorch intra-op = 1: with 2 pools of spinning workers on few cores, GEMMs run up to 14x and
  // softmax/layer_norm up to 400x slower (bench_forward --ops/--sweep, docs/performance.md).
  report.torch_threads = 1;
  report.malloc_keeps_freed_memory = keep_freed_memory();
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
