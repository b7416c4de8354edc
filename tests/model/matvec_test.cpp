// The bf16/f16 small-batch product kernel (src/model/blocks/matvec.cpp) against the float32 product of
// the same (exactly representable) weights: equal up to float32 summation order.
#include <gtest/gtest.h>

#include "model/blocks/blocks.hpp"

namespace nnterp::model {
namespace {

TEST(HalfProduct, EqualsTheFloat64ProductOfTheSameWeights) {
  torch::manual_seed(3);
  for (auto dtype : {torch::kBFloat16, torch::kFloat16})
    for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 7}, {64, 768}, {131, 77}, {3072, 768}, {5, 4101}}) {
      auto w = torch::randn({N, K}).to(dtype);
      for (int64_t M : {1, 2, 5, 8}) {
        auto x = torch::randn({M, K});
        auto y = half_product(w, x);
        if (!y.defined()) GTEST_SKIP() << "this CPU has no AVX2 + FMA (+ F16C): the kernel is not used here";
        auto w64 = w.to(torch::kFloat64), x64 = x.to(torch::kFloat64);
        auto expected = at::mm(x64, w64.t());
        const double scale = at::mm(x64.abs(), w64.abs().t()).max().item<double>();
        EXPECT_LE((y.to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-6 * std::max(1.0, scale))
            << c10::toString(dtype) << " " << M << "x" << K << " · " << N << "x" << K;
      }
    }
}

TEST(HalfProduct, DeclinesWhatItDoesNotHandle) {
  EXPECT_FALSE(half_product(torch::randn({8, 16}), torch::randn({1, 16})).defined());                          // float32
  EXPECT_FALSE(half_product(torch::randn({16, 8}).to(torch::kBFloat16).t(), torch::randn({1, 16})).defined());  // a view
  EXPECT_FALSE(half_product(torch::randn({8, 16}).to(torch::kBFloat16), torch::randn({9, 16})).defined());      // 9 rows
}

TEST(HalfProduct, OneRowAndABatchOfNineAgree) {
  // dense() on one row goes through the kernel; on nine rows through the float32 slices. The same
  // row must give the same numbers up to summation order, rounded to bf16.
  auto w = torch::randn({300, 96}).to(torch::kBFloat16);
  auto x = torch::randn({1, 96}).to(torch::kBFloat16);
  auto one = dense(x, w);
  auto two = dense(x.expand({9, 96}).contiguous(), w);
  EXPECT_LE((one[0].to(torch::kFloat32) - two[0].to(torch::kFloat32)).abs().max().item<float>(),
            one.to(torch::kFloat32).abs().max().item<float>() / 128);
}

}  // namespace
}  // namespace nnterp::model
