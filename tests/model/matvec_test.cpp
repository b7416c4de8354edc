// The small-batch product kernel (src/model/blocks/matvec.cpp) against the float64 product of the
// same weights, in every dtype and both layouts it reads: equal up to float32 summation order.
#include <gtest/gtest.h>

#include "model/blocks/blocks.hpp"

namespace nnterp::model {
namespace {

// W [N, K] in `dtype`, either contiguous or (columns) the transposed view of a contiguous [K, N],
// as GPT-2's Conv1D weights are used.
torch::Tensor weight(int64_t N, int64_t K, torch::ScalarType dtype, bool columns) {
  return columns ? torch::randn({K, N}).to(dtype).t() : torch::randn({N, K}).to(dtype);
}

TEST(SmallProduct, EqualsTheFloat64ProductOfTheSameWeights) {
  torch::manual_seed(3);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16})
    for (bool columns : {false, true})
      for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{
               {1, 1}, {3, 7}, {64, 768}, {131, 77}, {3072, 768}, {5, 4101}, {4500, 70}}) {
        auto w = weight(N, K, dtype, columns);
        for (int64_t M : {1, 2, 5, 8}) {
          auto x = torch::randn({M, K});
          auto y = small_product(w, x);
          if (!y.defined()) GTEST_SKIP() << "this CPU has no AVX2 + FMA (+ F16C): the kernel is not used here";
          auto w64 = w.to(torch::kFloat64), x64 = x.to(torch::kFloat64);
          auto expected = at::mm(x64, w64.t());
          const double scale = at::mm(x64.abs(), w64.abs().t()).max().item<double>();
          EXPECT_LE((y.to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-6 * std::max(1.0, scale))
              << c10::toString(dtype) << (columns ? " columns " : " rows ") << M << "x" << K << " · " << N << "x" << K;
        }
      }
}

TEST(SmallProduct, ARowsResultDoesNotDependOnTheBatch) {
  // Each row is summed in the same order whatever M is: batch-1 and batch-8 decode agree bit for bit.
  torch::manual_seed(4);
  for (bool columns : {false, true}) {
    auto w = weight(300, 96, torch::kFloat32, columns);
    auto x = torch::randn({8, 96});
    auto all = small_product(w, x);
    if (!all.defined()) GTEST_SKIP() << "this CPU has no AVX2 + FMA: the kernel is not used here";
    for (int64_t m = 0; m < 8; ++m) EXPECT_TRUE(torch::equal(small_product(w, x.narrow(0, m, 1))[0], all[m])) << m;
  }
}

TEST(SmallProduct, DeclinesWhatItDoesNotHandle) {
  EXPECT_FALSE(small_product(torch::randn({8, 16}, torch::kFloat64), torch::randn({1, 16})).defined());  // float64
  EXPECT_FALSE(small_product(torch::randn({16, 32}).narrow(1, 0, 16), torch::randn({1, 16})).defined());  // strided
  EXPECT_FALSE(small_product(torch::randn({8, 16}).to(torch::kBFloat16), torch::randn({9, 16})).defined());  // 9 rows
  EXPECT_FALSE(small_product(torch::randn({8, 16}), torch::randn({1, 15})).defined());                         // K
}

TEST(SmallProduct, LeavesProductsAutogradMustRecordToLibtorch) {
  // A trace with grad = true differentiates through decode-sized products: they must keep their graph.
  auto w = torch::randn({30, 16});
  auto x = torch::randn({2, 16}).requires_grad_(true);
  EXPECT_FALSE(small_product(w, x).defined());
  auto y = dense(x, w);
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad(), w.sum(0).expand({2, 16})));
  auto q = torch::randn({1, 2, 1, 16}).requires_grad_(true), k = torch::randn({1, 2, 5, 16});
  EXPECT_FALSE(batched_small_product(q, k.transpose(-1, -2)).defined());
  EXPECT_TRUE(product(q, k.transpose(-1, -2)).requires_grad());
  torch::NoGradGuard no_grad;  // without autograd the kernel is used
  EXPECT_TRUE(small_product(w, x).defined() || !__builtin_cpu_supports("avx2"));
}

TEST(SmallProduct, OneRowAndABatchOfNineAgree) {
  // dense() on one row goes through the kernel; on nine rows through the float32 slices (bf16) or
  // the GEMM (float32). The same row must give the same numbers up to summation order.
  for (auto dtype : {torch::kBFloat16, torch::kFloat32}) {
    auto w = torch::randn({300, 96}).to(dtype);
    auto x = torch::randn({1, 96}).to(dtype);
    auto one = dense(x, w);
    auto nine = dense(x.expand({9, 96}).contiguous(), w);
    EXPECT_LE((one[0].to(torch::kFloat32) - nine[0].to(torch::kFloat32)).abs().max().item<float>(),
              one.to(torch::kFloat32).abs().max().item<float>() / (dtype == torch::kFloat32 ? 1e5 : 128));
  }
}

TEST(BatchedSmallProduct, EqualsMatmulForAttentionsProductsOnACacheView) {
  // A decode step's q·kᵀ and probs·v, with k and v the first 37 positions of a 64-position cache
  // buffer (strided batch dims), against libtorch's matmul.
  torch::manual_seed(5);
  auto buffer = torch::randn({2, 3, 64, 16});
  auto k = buffer.narrow(2, 0, 37), v = torch::randn({2, 3, 64, 16}).narrow(2, 0, 37);
  for (int64_t M : {1, 4, 8}) {
    auto q = torch::randn({2, 3, M, 16}), probs = torch::softmax(torch::randn({2, 3, M, 37}), -1);
    auto scores = batched_small_product(q, k.transpose(-1, -2)), context = batched_small_product(probs, v);
    if (!scores.defined()) GTEST_SKIP() << "this CPU has no AVX2 + FMA: the kernel is not used here";
    ASSERT_TRUE(context.defined());
    EXPECT_TRUE(torch::allclose(scores, torch::matmul(q, k.transpose(-1, -2)), 1e-5, 1e-5)) << M;
    EXPECT_TRUE(torch::allclose(context, torch::matmul(probs, v), 1e-5, 1e-6)) << M;
  }
  EXPECT_FALSE(batched_small_product(torch::randn({2, 3, 9, 16}), k.transpose(-1, -2)).defined());  // 9 rows
  EXPECT_FALSE(batched_small_product(torch::randn({1, 3, 1, 16}), k.transpose(-1, -2)).defined());  // broadcast
}

}  // namespace
}  // namespace nnterp::model
