// y = x·Wᵀ for up to 8 float32 rows x [M, K] and a float32, bfloat16 or float16 weight W [N, K],
// accumulated in float32: a decode step's products (batch 1 to 8), reading the weights once, at the
// memory's speed, for all M rows.
//
// Why not libtorch: a bf16 weight goes through float32 slices (kernels.cpp), bound by that
// conversion (~3.3 GB/s of bf16 here: a bf16 GPT-2-small decode step took 3x the float32 one);
// a float32 batch of 2-8 rows runs OpenBLAS's GEMM, which reads a transposed (GPT-2 Conv1D) weight
// at about a third of the bandwidth (batch-8 decode was 2.2x batch 1 where reading the weights
// once makes it nearly 8x); one float32 row runs sgemv, whose idle workers spin in sched_yield
// between calls (docs/performance.md).
//
// Two layouts, both read straight from the (mapped) weight:
// - rows: W [N, K] contiguous (nn.Linear): dot products along K;
// - columns: Wᵀ [K, N] contiguous (a transposed view of GPT-2's Conv1D [in, out] weight): each
//   weight row k adds x[:, k]·Wᵀ[k, :] to a block of accumulators kept in L1.
// AVX2 + FMA (+ F16C for float16) chosen at run time: the default build stays portable (no -march).
// A row's result does not depend on how many rows are in the batch.
#include <immintrin.h>
#include <omp.h>

#include <cstring>

#include "core/compute_threads.hpp"
#include "model/blocks/blocks.hpp"

namespace nnterp::model {

namespace {

// The weight's element type, as a tag.
struct F32 {
  using Stored = float;
};
struct Bf16 {
  using Stored = uint16_t;
};
struct F16 {
  using Stored = uint16_t;
};

// 8 weights → 8 floats.
__attribute__((target("avx2"))) inline __m256 load8(const float* p, F32) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2"))) inline __m256 load8(const uint16_t* p, Bf16) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));  // bf16 is the top half of a float32
}
__attribute__((target("avx2,f16c"))) inline __m256 load8(const uint16_t* p, F16) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline float scalar(float v, F32) { return v; }
inline float scalar(uint16_t v, Bf16) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline float scalar(uint16_t v, F16) { return static_cast<float>(c10::Half(v, c10::Half::from_bits())); }

__attribute__((target("avx2"))) inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}

// Outputs [begin, end) of y = x·Wᵀ, W [N, K] contiguous: each load of a weight row serves all M
// inputs; for one input, four weight rows at a time share each load of x.
template <int M, class T>
__attribute__((target("avx2,fma,f16c"))) void rows_kernel(const typename T::Stored* w, const float* x, float* y,
                                                         int64_t K, int64_t N, int64_t begin, int64_t end) {
  constexpr int R = M == 1 ? 4 : 1;  // weight rows per pass
  const int64_t K8 = K / 8 * 8;
  int64_t n = begin;
  for (; n + R <= end; n += R) {
    __m256 acc[R][M];
    for (int j = 0; j < R; ++j)
      for (int m = 0; m < M; ++m) acc[j][m] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K8; k += 8) {
      __m256 xv[M];
      for (int m = 0; m < M; ++m) xv[m] = _mm256_loadu_ps(x + m * K + k);
      for (int j = 0; j < R; ++j) {
        const __m256 wv = load8(w + (n + j) * K + k, T{});
        for (int m = 0; m < M; ++m) acc[j][m] = _mm256_fmadd_ps(wv, xv[m], acc[j][m]);
      }
    }
    for (int j = 0; j < R; ++j)
      for (int m = 0; m < M; ++m) {
        float total = horizontal_sum(acc[j][m]);
        for (int64_t k = K8; k < K; ++k) total += scalar(w[(n + j) * K + k], T{}) * x[m * K + k];
        y[m * N + n + j] = total;
      }
  }
  for (; n < end; ++n)
    for (int m = 0; m < M; ++m) {
      float total = 0;
      for (int64_t k = 0; k < K; ++k) total += scalar(w[n * K + k], T{}) * x[m * K + k];
      y[m * N + n] = total;
    }
}

// Adds rows k … k+KQ-1 of Wᵀ, times x[g, k … k+KQ-1], to the accumulators of G input rows over
// `width8` columns: each weight vector, loaded once, feeds G·KQ FMAs with the broadcasts kept in
// registers (G·KQ + KQ + 1 ≤ 14 of AVX2's 16), and each accumulator is loaded and stored once per
// KQ weight rows rather than once per row (the store port bounded the one-row-at-a-time loop).
template <int G, int KQ, class T>
__attribute__((target("avx2,fma,f16c"))) inline void columns_step(const typename T::Stored* wk, int64_t N,
                                                                 const float* xk, int64_t K, float* acc,
                                                                 int64_t acc_stride, int64_t width8) {
  __m256 xb[G][KQ];
  for (int g = 0; g < G; ++g)
    for (int q = 0; q < KQ; ++q) xb[g][q] = _mm256_broadcast_ss(xk + g * K + q);
  for (int64_t j = 0; j < width8; j += 8) {
    __m256 wv[KQ];
    for (int q = 0; q < KQ; ++q) wv[q] = load8(wk + q * N + j, T{});
    for (int g = 0; g < G; ++g) {
      float* a = acc + g * acc_stride + j;
      __m256 sum = _mm256_load_ps(a);
      for (int q = 0; q < KQ; ++q) sum = _mm256_fmadd_ps(wv[q], xb[g][q], sum);
      _mm256_store_ps(a, sum);
    }
  }
}

// All M input rows, two at a time, for weight rows k … k+KQ-1.
template <int M, int KQ, class T>
__attribute__((target("avx2,fma,f16c"))) inline void columns_rows(const typename T::Stored* wk, int64_t N,
                                                                 const float* xk, int64_t K, float* acc,
                                                                 int64_t acc_stride, int64_t width8) {
  int m = 0;
  for (; m + 2 <= M; m += 2) columns_step<2, KQ, T>(wk, N, xk + m * K, K, acc + m * acc_stride, acc_stride, width8);
  if (m < M) columns_step<1, KQ, T>(wk, N, xk + m * K, K, acc + m * acc_stride, acc_stride, width8);
}

// Outputs [begin, end) of y = x·Wᵀ given Wᵀ [K, N] contiguous, in blocks of columns whose M rows of
// accumulators (≤ 8 KB) and four weight rows' slices stay in L1 while Wᵀ streams through once.
template <int M, class T>
__attribute__((target("avx2,fma,f16c"))) void columns_kernel(const typename T::Stored* wt, const float* x, float* y,
                                                            int64_t K, int64_t N, int64_t begin, int64_t end) {
  constexpr int64_t kBlock = std::max(256, 2048 / M / 8 * 8);
  alignas(32) float acc[M][kBlock];
  for (int64_t c0 = begin; c0 < end; c0 += kBlock) {
    const int64_t width = std::min(kBlock, end - c0), width8 = width / 8 * 8;
    for (int m = 0; m < M; ++m) std::fill(acc[m], acc[m] + width, 0.0f);
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) columns_rows<M, 4, T>(wt + k * N + c0, N, x + k, K, acc[0], kBlock, width8);
    for (; k < K; ++k) columns_rows<M, 1, T>(wt + k * N + c0, N, x + k, K, acc[0], kBlock, width8);
    for (int64_t j = width8; j < width; ++j)  // the last < 8 columns
      for (int64_t kk = 0; kk < K; ++kk)
        for (int m = 0; m < M; ++m) acc[m][j] += scalar(wt[kk * N + c0 + j], T{}) * x[m * K + kk];
    for (int m = 0; m < M; ++m) std::copy(acc[m], acc[m] + width, y + m * N + c0);
  }
}

using Kernel = void (*)(const void*, const float*, float*, int64_t, int64_t, int64_t, int64_t);

template <int M, class T, bool Columns>
void kernel_entry(const void* w, const float* x, float* y, int64_t K, int64_t N, int64_t begin, int64_t end) {
  const auto* stored = static_cast<const typename T::Stored*>(w);
  if constexpr (Columns)
    columns_kernel<M, T>(stored, x, y, K, N, begin, end);
  else
    rows_kernel<M, T>(stored, x, y, K, N, begin, end);
}

template <class T, bool Columns>
Kernel kernel_for(int64_t M) {
  switch (M) {
    case 1: return kernel_entry<1, T, Columns>;
    case 2: return kernel_entry<2, T, Columns>;
    case 3: return kernel_entry<3, T, Columns>;
    case 4: return kernel_entry<4, T, Columns>;
    case 5: return kernel_entry<5, T, Columns>;
    case 6: return kernel_entry<6, T, Columns>;
    case 7: return kernel_entry<7, T, Columns>;
    default: return kernel_entry<8, T, Columns>;
  }
}

template <bool Columns>
Kernel kernel_for(torch::ScalarType dtype, int64_t M) {
  switch (dtype) {
    case torch::kFloat32: return kernel_for<F32, Columns>(M);
    case torch::kBFloat16: return kernel_for<Bf16, Columns>(M);
    default: return kernel_for<F16, Columns>(M);
  }
}

bool cpu_has_kernel(torch::ScalarType dtype) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  static const bool f16c = __builtin_cpu_supports("f16c");
  const bool known = dtype == torch::kFloat32 || dtype == torch::kBFloat16 || dtype == torch::kFloat16;
  return known && avx2 && (dtype != torch::kFloat16 || f16c);
}

// Splits outputs [0, N) into one contiguous range per thread (multiples of 8, so every thread's
// column blocks start aligned); a small product stays on one thread.
template <class Body>
void split_outputs(int64_t N, int64_t K, Body body) {
  const int threads = N * K >= (int64_t(1) << 18) ? std::max(1, compute_threads()) : 1;
  const int64_t per_thread = ((N + threads - 1) / threads + 7) / 8 * 8;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; ++t) {
    const int64_t begin = std::min(N, t * per_thread);
    body(begin, std::min(N, begin + per_thread));
  }
}

// Autograd must record the product: the kernels write raw memory, which has no backward.
bool needs_graph(const torch::Tensor& a, const torch::Tensor& b) {
  return torch::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad());
}

}  // namespace

torch::Tensor small_product(const torch::Tensor& w, const torch::Tensor& x) {
  if (!w.is_cpu() || w.dim() != 2 || x.dim() != 2 || x.size(0) < 1 || x.size(0) > kMaxProductRows ||
      x.size(1) != w.size(1) || !cpu_has_kernel(w.scalar_type()) || needs_graph(w, x))
    return {};
  const int64_t N = w.size(0), K = w.size(1), M = x.size(0);
  const bool rows = w.is_contiguous(), columns = !rows && w.t().is_contiguous();
  if (!rows && !columns) return {};
  auto xf = x.to(torch::kFloat32).contiguous();
  auto y = torch::empty({M, N}, xf.options());
  const void* wp = w.data_ptr();
  const float* xp = xf.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const Kernel kernel = rows ? kernel_for<false>(w.scalar_type(), M) : kernel_for<true>(w.scalar_type(), M);
  split_outputs(N, K, [&](int64_t begin, int64_t end) { kernel(wp, xp, yp, K, N, begin, end); });
  return y;
}

torch::Tensor batched_small_product(const torch::Tensor& a, const torch::Tensor& b) {
  const int64_t dims = a.dim();
  if (dims < 3 || b.dim() != dims || !a.is_cpu() || !b.is_cpu() || a.scalar_type() != torch::kFloat32 ||
      b.scalar_type() != torch::kFloat32 || !cpu_has_kernel(torch::kFloat32) || needs_graph(a, b))
    return {};
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  if (M < 1 || M > kMaxProductRows || b.size(-2) != K || a.sizes().slice(0, dims - 2) != b.sizes().slice(0, dims - 2))
    return {};
  // b [K, N] per batch is either row-major (a "columns" weight Wᵀ) or the transposed view of a
  // row-major [N, K] (a "rows" weight W, as kᵀ in q·kᵀ); anything else goes to libtorch.
  const bool columns = b.stride(-1) == 1 && b.stride(-2) == N, rows = b.stride(-2) == 1 && b.stride(-1) == K;
  if (!columns && !rows) return {};
  auto x = a.contiguous();
  auto shape = a.sizes().vec();
  shape.back() = N;
  auto y = torch::empty(shape, a.options());
  const int64_t batches = x.numel() / (M * K);
  const Kernel kernel = rows ? kernel_for<false>(torch::kFloat32, M) : kernel_for<true>(torch::kFloat32, M);
  const float* xp = x.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  // Offset of batch i in b, whose batch dims may be strided (a view of a larger KV cache).
  auto b_offset = [&](int64_t i) {
    int64_t offset = 0;
    for (int64_t d = dims - 3; d >= 0; --d) {
      offset += (i % b.size(d)) * b.stride(d);
      i /= b.size(d);
    }
    return offset;
  };
  const int threads = batches * M * K * N >= (int64_t(1) << 18) ? std::max(1, compute_threads()) : 1;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < batches; ++i) kernel(bp + b_offset(i), xp + i * M * K, yp + i * M * N, K, N, 0, N);
  return y;
}

}  // namespace nnterp::model
