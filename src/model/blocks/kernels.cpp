// Matmuls and element-wise ops in the model's dtype D, with the numbers a native D kernel gives
// (inputs in D, float32 arithmetic inside, one rounding to D), on devices whose libtorch lacks a
// usable D kernel. Measured on this project's CPU machine with libtorch 1.13 (docs/dtypes.md):
// a bf16 GEMM runs at 1.5 GFLOP/s against 90 in float32, and f16 has no GEMM, softmax, GELU,
// LayerNorm, tanh, exp... at all. A weight stays in D (in place from the file); each matmul
// converts it to float32 a slice at a time, so no float32 copy of the model ever exists.
#include "model/blocks/blocks.hpp"

namespace nnterp::model {

namespace {

bool reduced(torch::ScalarType dtype) { return dtype == torch::kBFloat16 || dtype == torch::kFloat16; }

// Weight rows converted per slice: 2M elements (8 MB in float32) keeps the slice in the last-level
// cache between its conversion and its GEMM, and the GEMM large enough to run at full speed
// (measured: 512-row slices of a 4096-wide bf16 weight run faster than the float32 GEMM itself
// for 1-32 rows of input, 6% slower for 512 rows).
constexpr int64_t kSliceElements = int64_t(1) << 21;

}  // namespace

torch::ScalarType matmul_dtype(torch::ScalarType dtype, const torch::Device& device) {
  return device.is_cpu() && reduced(dtype) ? torch::kFloat32 : dtype;
}

bool native_matmul(const torch::Tensor& t) { return matmul_dtype(t.scalar_type(), t.device()) == t.scalar_type(); }

namespace {

// x2 [M, K] · wᵀ for w [N, K] of x2's dtype. Up to kMaxProductRows rows (decode steps) go to
// small_product, which reads the weight once for all rows; libtorch runs them as a general GEMM
// (one row: about 2.5x slower than sgemv; 8 rows of a transposed GPT-2 weight: a third of the
// bandwidth; docs/performance.md "Issue 15").
torch::Tensor rows_times(const torch::Tensor& x2, const torch::Tensor& w) {
  if (x2.size(0) <= kMaxProductRows && x2.scalar_type() == torch::kFloat32)
    if (auto y = small_product(w, x2); y.defined()) return y;
  if (x2.size(0) == 1 && x2.is_cpu()) return at::mv(w, x2[0]).unsqueeze(0);
  return at::mm(x2, w.t());
}

// x2 [M, K] (float32) · wᵀ for a bf16/f16 weight w [N, K], in float32, converting w a slice at a time.
torch::Tensor float32_product(const torch::Tensor& x2, const torch::Tensor& w) {
  if (x2.size(0) <= kMaxProductRows)
    if (auto y = small_product(w, x2); y.defined()) return y;
  const int64_t N = w.size(0), K = w.size(1);
  const int64_t rows = std::max<int64_t>(64, kSliceElements / std::max<int64_t>(K, 1));
  if (rows >= N) return rows_times(x2, w.to(torch::kFloat32));
  auto out = torch::empty({x2.size(0), N}, x2.options());
  for (int64_t r = 0; r < N; r += rows) {
    const int64_t n = std::min(rows, N - r);
    out.narrow(1, r, n).copy_(rows_times(x2, w.narrow(0, r, n).to(torch::kFloat32)));
  }
  return out;
}

}  // namespace

torch::Tensor dense(const torch::Tensor& x, const RowBlocks& w, const torch::Tensor& b) {
  const bool native = native_matmul(w[0]);
  const int64_t K = w[0].size(1);
  auto shape = x.sizes().vec();
  const bool few_rows = x.numel() <= kMaxProductRows * K && x.is_cpu();
  if (native && w.size() == 1 && !few_rows) return at::linear(x, w[0], b);
  auto x2 = x.reshape({-1, K});
  if (!native) x2 = x2.to(torch::kFloat32);
  std::vector<torch::Tensor> outputs;
  for (const auto& block : w) outputs.push_back(native ? rows_times(x2, block) : float32_product(x2, block));
  auto out = outputs.size() == 1 ? outputs[0] : torch::cat(outputs, -1);
  // The bias goes in before the one rounding, as a fused GEMM epilogue adds it.
  if (b.defined()) out.add_(native ? b : b.to(torch::kFloat32));
  shape.back() = out.size(-1);
  return (native ? out : out.to(x.scalar_type())).view(shape);
}

torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return dense(x, RowBlocks{w}, b);
}

torch::Tensor product(const torch::Tensor& a, const torch::Tensor& b) {
  const bool native = native_matmul(a);
  auto af = native ? a : a.to(torch::kFloat32), bf = native ? b : b.to(torch::kFloat32);
  auto y = batched_small_product(af, bf);
  if (!y.defined()) y = torch::matmul(af, bf);
  return native ? y : y.to(a.scalar_type());
}

bool lacks_kernels(const torch::Tensor& x) { return x.is_cpu() && x.scalar_type() == torch::kHalf; }

}  // namespace nnterp::model
