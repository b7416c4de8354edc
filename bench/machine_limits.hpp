// What the benchmarks measure against, in the same run: the machine's sgemm rate and memory
// bandwidth (speed goals are ratios to these, never absolute times), and a small timing helper.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

namespace nnterp::bench {

struct Timing {
  double best = 0, median = 0;  // seconds
};

inline Timing time_it(const std::function<void()>& fn, int reps, int warmup = 2) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return {t.front(), t[t.size() / 2]};
}

// Best sgemm GFLOP/s of torch::mm over square float32 sizes, with the current thread settings.
inline double sgemm_gflops(int reps, int64_t* best_n = nullptr) {
  double best = 0;
  for (int64_t n : {1024, 2048}) {
    auto a = torch::randn({n, n}), b = torch::randn({n, n}), c = torch::empty({n, n});
    auto t = time_it([&] { torch::mm_out(c, a, b); }, reps, 1);
    double g = 2.0 * n * n * n / t.best / 1e9;
    if (g > best) {
      best = g;
      if (best_n) *best_n = n;
    }
  }
  return best;
}

// Best read bandwidth in GB/s: a sum over a 512 MB float32 tensor (far beyond the caches).
inline double read_bandwidth_gbs(int reps) {
  auto big = torch::ones({int64_t(1) << 27});
  auto t = time_it([&] { (void)big.sum().item<float>(); }, reps, 1);
  return static_cast<double>(big.nbytes()) / t.best / 1e9;
}

}  // namespace nnterp::bench
