// Shared blocks of model/blocks/ on hand-made inputs whose results are known: the sink-aware
// softmax, the gated MLP's layouts and clamped form, xIELU.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "model/blocks/blocks.hpp"

namespace nnterp::model {
namespace {

TEST(SoftmaxWithSinks, ASinkTakesItsShareOfEachRow) {
  const int64_t B = 2, H = 3, T = 4, S = 5;
  auto scores = torch::zeros({B, H, T, S});
  auto sinks = torch::tensor({0.0f, std::log(5.0f), -std::numeric_limits<float>::infinity()});
  auto probs = softmax_with_sinks(scores, sinks);
  ASSERT_EQ(probs.sizes(), scores.sizes());
  // head 0: 5 keys and a sink of the same logit; head 1: the sink weighs as much as the 5 keys; head 2: no sink.
  EXPECT_NEAR(probs[1][0][2][3].item<float>(), 1.0 / 6, 1e-7);
  EXPECT_NEAR(probs[1][1][2].sum().item<float>(), 0.5, 1e-6);
  EXPECT_TRUE(torch::allclose(probs.select(1, 2), torch::softmax(scores.select(1, 2), -1)));
}

TEST(SoftmaxWithSinks, MaskedKeysStayMasked) {
  auto scores = torch::tensor({0.0f, std::numeric_limits<float>::lowest(), 1.0f}).view({1, 1, 1, 3});
  auto probs = softmax_with_sinks(scores, torch::tensor({0.5f}));
  const double total = 1 + std::exp(1.0) + std::exp(0.5);
  EXPECT_EQ(probs[0][0][0][1].item<float>(), 0.0f);
  EXPECT_NEAR(probs[0][0][0][2].item<float>(), std::exp(1.0) / total, 1e-6);
}

// Identity projections, so that the MLP's hidden layer is its output.
MlpWeights identity_gated(int64_t inter) {
  MlpWeights w;
  w.gate_up_w = {torch::eye(2 * inter)};
  w.down_w = torch::eye(inter);
  return w;
}

TEST(GatedMlp, GateAndUpSideBySideOrInterleaved) {
  auto x = torch::tensor({{-1.0f, 2.0f, 3.0f, 0.5f}});
  MlpSpec spec;
  spec.activation = Activation::Relu;
  auto side_by_side = mlp(MlpKind::Gated, spec, identity_gated(2), x);  // gate [-1, 2], up [3, 0.5]
  EXPECT_TRUE(torch::equal(side_by_side, torch::tensor({{0.0f, 1.0f}})));
  spec.gate_up_interleaved = true;  // gate [-1, 3], up [2, 0.5]
  EXPECT_TRUE(torch::equal(mlp(MlpKind::Gated, spec, identity_gated(2), x), torch::tensor({{0.0f, 1.5f}})));
}

TEST(GatedMlp, ClampedSwigluClampsGateAboveAndUpBothWays) {
  MlpSpec spec;
  spec.gate_up_interleaved = true;
  spec.swiglu_limit = 7;
  // (gate, up) pairs: (10, -9), (-2, 3), (1, 8)
  auto x = torch::tensor({{10.0f, -9.0f, -2.0f, 3.0f, 1.0f, 8.0f}});
  auto y = mlp(MlpKind::Gated, spec, identity_gated(3), x);
  auto glu = [](double g) { return g / (1 + std::exp(-1.702 * g)); };
  EXPECT_NEAR(y[0][0].item<float>(), (-7 + 1) * glu(7), 1e-5);
  EXPECT_NEAR(y[0][1].item<float>(), (3 + 1) * glu(-2), 1e-5);
  EXPECT_NEAR(y[0][2].item<float>(), (7 + 1) * glu(1), 1e-5);
}

TEST(Xielu, ItsScalarsAreTakenInBfloat16AsHuggingFaceDoes) {
  XieluParams p{torch::zeros({1}), torch::zeros({1}), torch::tensor(0.5f), torch::tensor(-1e-6f)};
  auto y = xielu(torch::tensor({2.0f, -1.0f, 0.0f}), p);
  // softplus(0) = ln 2 = 0.6931 is 0.69140625 in bfloat16; 0.5 + that, 1.19140625, rounds to 1.1875.
  EXPECT_NEAR(y[0].item<float>(), 0.69140625 * 4 + 0.5 * 2, 1e-6);
  EXPECT_NEAR(y[1].item<float>(), (std::expm1(-1.0) + 1) * 1.1875 - 0.5, 1e-6);
  const double eps = torch::tensor(-1e-6f).to(torch::kBFloat16).item<float>();  // x = 0 takes the x ≤ 0 branch
  EXPECT_NEAR(y[2].item<float>(), std::expm1(eps) * 1.1875, 1e-9);
}

}  // namespace
}  // namespace nnterp::model
