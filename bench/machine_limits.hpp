// What the benchmarks measure against, in the same run: the machine's sgemm rate and memory
// bandwidth (speed goals are ratios to these, never absolute times), and a small timing helper.
#pragma once

#include <immintrin.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
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

// The sum of n 64-bit words, with four AVX2 accumulators when the CPU has AVX2 (a plain loop
// reads ~20% slower here, and would understate the limit).
__attribute__((target("avx2"))) inline uint64_t sum_words_avx2(const uint64_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  uint64_t lanes[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  uint64_t sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; ++i) sum += p[i];
  return sum;
}

inline uint64_t sum_words(const uint64_t* p, size_t n) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return sum_words_avx2(p, n);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += p[i];
  return sum;
}

// Best read bandwidth in GB/s over a 512 MB buffer (far beyond the caches), read by `threads`
// threads in equal parts (use the BLAS thread count: what a matrix-vector product gets).
inline double read_bandwidth_gbs(int reps, int threads = 1) {
  const size_t words = size_t(1) << 26;  // 64M x 8 bytes
  std::vector<uint64_t> data(words, 1);
  double best = 0;
  for (int r = 0; r < reps + 1; ++r) {
    std::vector<uint64_t> sums(static_cast<size_t>(threads));
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const size_t begin = words * t / threads, end = words * (t + 1) / threads;
        sums[static_cast<size_t>(t)] = sum_words(data.data() + begin, end - begin);
      });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r > 0) best = std::max(best, words * 8.0 / s / 1e9);  // the first pass pages the buffer in
    if (sums[0] == 0) return 0;  // keeps the sums alive
  }
  return best;
}

}  // namespace nnterp::bench
