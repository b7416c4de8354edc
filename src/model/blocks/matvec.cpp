// y = W·x for a bfloat16 or float16 weight W [N, K] and a float32 vector x [K], accumulated in
// float32: a decode step's products, reading the 2-byte weights straight from memory. The float32
// slice path (kernels.cpp) converts each weight slice first and is bound by that conversion
// (~3.3 GB/s of bf16 here, measured: a bf16 GPT-2-small decode step took 3x the float32 one);
// this reads the weights once at the memory's speed. AVX2 + FMA (+ F16C for float16) chosen at run
// time: the default build stays portable (no -march).
#include <immintrin.h>
#include <omp.h>

#include <cstring>
#include <type_traits>

#include "core/compute_threads.hpp"
#include "model/blocks/blocks.hpp"

namespace nnterp::model {

namespace {

// 8 weights → 8 floats.
__attribute__((target("avx2"))) inline __m256 load8(const uint16_t* p, std::true_type /*bf16*/) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));  // bf16 is the top half of a float32
}
__attribute__((target("avx2,f16c"))) inline __m256 load8(const uint16_t* p, std::false_type /*f16*/) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline float scalar(uint16_t v, std::true_type) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline float scalar(uint16_t v, std::false_type) { return static_cast<float>(c10::Half(v, c10::Half::from_bits())); }

// Rows [begin, end) of y = W·x: four rows at a time share each load of x.
template <class IsBf16>
__attribute__((target("avx2,fma,f16c"))) void rows_avx2(const uint16_t* w, const float* x, float* y, int64_t K,
                                                       int64_t begin, int64_t end) {
  const int64_t K8 = K / 8 * 8;
  int64_t n = begin;
  for (; n + 4 <= end; n += 4) {
    const uint16_t* r[4] = {w + n * K, w + (n + 1) * K, w + (n + 2) * K, w + (n + 3) * K};
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t k = 0; k < K8; k += 8) {
      const __m256 xv = _mm256_loadu_ps(x + k);
      for (int j = 0; j < 4; ++j) acc[j] = _mm256_fmadd_ps(load8(r[j] + k, IsBf16{}), xv, acc[j]);
    }
    for (int j = 0; j < 4; ++j) {
      __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[j]), _mm256_extractf128_ps(acc[j], 1));
      s = _mm_hadd_ps(s, s);
      s = _mm_hadd_ps(s, s);
      float total = _mm_cvtss_f32(s);
      for (int64_t k = K8; k < K; ++k) total += scalar(r[j][k], IsBf16{}) * x[k];
      y[n + j] = total;
    }
  }
  for (; n < end; ++n) {
    float total = 0;
    for (int64_t k = 0; k < K; ++k) total += scalar(w[n * K + k], IsBf16{}) * x[k];
    y[n] = total;
  }
}

bool cpu_has_kernel(bool bf16) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  static const bool f16c = __builtin_cpu_supports("f16c");
  return avx2 && (bf16 || f16c);
}

}  // namespace

torch::Tensor half_matvec(const torch::Tensor& w, const torch::Tensor& x) {
  const bool bf16 = w.scalar_type() == torch::kBFloat16;
  if ((!bf16 && w.scalar_type() != torch::kFloat16) || !w.is_cpu() || w.dim() != 2 || !w.is_contiguous() ||
      !cpu_has_kernel(bf16))
    return {};
  const int64_t N = w.size(0), K = w.size(1);
  auto xf = x.to(torch::kFloat32).contiguous();
  auto y = torch::empty({N}, xf.options());
  const auto* wp = reinterpret_cast<const uint16_t*>(w.data_ptr());
  const float* xp = xf.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  // Blocks of 64 rows (a multiple of 4) split over the threads; a small product stays on one.
  const int threads = N * K >= (int64_t(1) << 18) ? compute_threads() : 1;
  const int64_t blocks = (N + 63) / 64;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * 64, end = std::min(N, begin + 64);
    if (bf16) rows_avx2<std::true_type>(wp, xp, yp, K, begin, end);
    else rows_avx2<std::false_type>(wp, xp, yp, K, begin, end);
  }
  return y;
}

}  // namespace nnterp::model
