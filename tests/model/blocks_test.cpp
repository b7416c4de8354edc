// Shared blocks of model/blocks/ on hand-made inputs whose results are known: the sink-aware
// softmax, the gated MLP's layouts and clamped form, xIELU, multi-head latent attention.
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

TEST(ChunkedMask, ChunksCountFromEachRowsFirstRealToken) {
  // row 0: one left pad then 5 tokens (positions 0..4); row 1: 6 tokens. Chunks of 2.
  auto key_mask = torch::tensor({{0, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1}}).to(torch::kBool);
  auto visible = mask_bias(key_mask, 0, 6, 0, 2).squeeze(1) == 0;  // [B, T, S]
  auto row = [&](int64_t b, int64_t t) {
    std::vector<int64_t> keys;
    for (int64_t j = 0; j < 6; ++j)
      if (visible[b][t][j].item<bool>()) keys.push_back(j);
    return keys;
  };
  EXPECT_EQ(row(0, 3), (std::vector<int64_t>{3}));     // position 2 starts the second chunk
  EXPECT_EQ(row(0, 4), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(row(1, 3), (std::vector<int64_t>{2, 3}));  // unpadded: index = position
  EXPECT_EQ(row(1, 4), (std::vector<int64_t>{4}));
  // With a cache: one new query at index 5 (position 4 of row 0) sees its chunk's keys only.
  auto step = mask_bias(key_mask, 5, 1, 0, 2).squeeze(1) == 0;
  EXPECT_TRUE(torch::equal(step[0][0].nonzero().flatten(), torch::tensor({5}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(step[1][0].nonzero().flatten(), torch::tensor({4, 5}, torch::kInt64)));
}

TEST(LongRope, TheSequenceLengthPicksTheShortOrLongFactorsAndScale) {
  RotarySpec r;
  r.dim = 4, r.theta = 100, r.scaling = RopeScaling::LongRope, r.original_max_position = 8;
  r.short_factors = {1.0, 2.0}, r.long_factors = {3.0, 5.0};
  r.attention_factor = 1.1, r.long_attention_factor = 1.25;
  const auto position = torch::ones({1, 1}, torch::kInt64);
  auto cos_at = [&](int64_t length, int64_t pair) {
    return rotary_tables(r, position, torch::kFloat32, RotaryPrecision::InDtype, length).cos[0][0][0][pair].item<double>();
  };
  // pair i turns by 1 / (factor_i · θ^(2i/d)) per position: θ^(2/4) = 10 for pair 1
  EXPECT_NEAR(cos_at(8, 0), 1.1 * std::cos(1.0 / 1.0), 1e-6);   // 8 positions: not longer than 8, short
  EXPECT_NEAR(cos_at(8, 1), 1.1 * std::cos(1.0 / (2.0 * 10)), 1e-6);
  EXPECT_NEAR(cos_at(9, 0), 1.25 * std::cos(1.0 / 3.0), 1e-6);  // 9 positions: long
  EXPECT_NEAR(cos_at(9, 1), 1.25 * std::cos(1.0 / (5.0 * 10)), 1e-6);
}

TEST(ShortConv, ACachedStepByStepRunEqualsTheWholeSequenceAndTheCausalFormula) {
  torch::manual_seed(5);
  const int64_t B = 2, T = 6, H = 4, K = 3;
  ShortConvWeights w{torch::randn({3 * H, H}), {}, torch::randn({H, 1, K}), {}, torch::randn({H, H}), {}};
  auto x = torch::randn({B, T, H});
  const auto whole = short_conv(w, x, nullptr);
  // y_t = out(c_t · Σ_k kernel[k] · (b·x)_{t-K+1+k}), zeros before the start.
  auto bcx = torch::matmul(x, w.in_w.t());
  auto bx = bcx.narrow(-1, 0, H) * bcx.narrow(-1, 2 * H, H);
  auto expected = torch::zeros({B, T, H});
  for (int64_t t = 0; t < T; ++t) {
    auto conv = torch::zeros({B, H});
    for (int64_t k = 0; k < K; ++k) {
      const int64_t s = t - (K - 1) + k;
      if (s >= 0) conv += w.kernel_w.select(1, 0).select(1, k) * bx.select(1, s);
    }
    expected.select(1, t).copy_(torch::matmul(bcx.narrow(-1, H, H).select(1, t) * conv, w.out_w.t()));
  }
  EXPECT_TRUE(torch::allclose(whole, expected, 1e-5, 1e-5)) << (whole - expected).abs().max();
  torch::Tensor state;  // the cache's state: prompt of 4, then 1 + 1
  auto steps = torch::cat({short_conv(w, x.narrow(1, 0, 4), &state), short_conv(w, x.narrow(1, 4, 1), &state),
                           short_conv(w, x.narrow(1, 5, 1), &state)}, 1);
  EXPECT_EQ(state.sizes(), (std::vector<int64_t>{B, H, K - 1}));
  EXPECT_TRUE(torch::allclose(steps, whole, 1e-5, 1e-4)) << (steps - whole).abs().max();  // values up to ~50
}

TEST(GatedDeltaNet, ACachedStepByStepRunEqualsTheWholeSequenceAndPadsAreZeroed) {
  torch::manual_seed(6);
  DeltaNetSpec s{2, 4, 8, 6, 4, 1e-6};
  const int64_t B = 2, T = 7, H = 16, channels = 2 * 2 * 8 + 4 * 6;
  DeltaNetWeights w{torch::randn({2 * 2 * 8 + 2 * 4 * 6, H}) * 0.3, torch::randn({2 * 4, H}) * 0.3,
                    torch::randn({channels, 1, s.conv_kernel}) * 0.5, torch::rand({4}).log(), torch::ones({4}),
                    torch::rand({6}) + 0.5, torch::randn({H, 4 * 6}) * 0.3};
  auto x = torch::randn({B, T, H});
  const auto whole = gated_deltanet(s, w, x, {}, nullptr, nullptr);
  torch::Tensor conv, recurrent;
  auto steps = torch::cat({gated_deltanet(s, w, x.narrow(1, 0, 3), {}, &conv, &recurrent),
                           gated_deltanet(s, w, x.narrow(1, 3, 1), {}, &conv, &recurrent),
                           gated_deltanet(s, w, x.narrow(1, 4, 3), {}, &conv, &recurrent)}, 1);
  EXPECT_EQ(recurrent.sizes(), (std::vector<int64_t>{B, 4, 8, 6}));
  EXPECT_EQ(conv.sizes(), (std::vector<int64_t>{B, channels, s.conv_kernel - 1}));
  EXPECT_TRUE(torch::allclose(steps, whole, 1e-5, 1e-5)) << (steps - whole).abs().max();
  // Row 0 with two left pads: its real positions equal the same tokens run alone.
  auto real = torch::ones({B, T}, torch::kBool);
  real[0].narrow(0, 0, 2).fill_(false);
  const auto padded = gated_deltanet(s, w, x, real, nullptr, nullptr);
  const auto alone = gated_deltanet(s, w, x.narrow(0, 0, 1).narrow(1, 2, T - 2), {}, nullptr, nullptr);
  EXPECT_TRUE(torch::allclose(padded[0].narrow(0, 2, T - 2), alone[0], 1e-5, 1e-5));
}

// A small latent attention (MLA) with random weights, and the context to run it on T positions.
struct LatentAttention {
  static constexpr int64_t B = 2, T = 5, Hd = 12, H = 3, nope = 4, rope = 4, vd = 6, lora = 5;
  AttentionSpec spec;
  AttentionWeights w;
  torch::Tensor x, mask, positions;
  LatentAttention() {
    torch::manual_seed(3);
    spec.num_heads = spec.num_kv_heads = H;
    spec.head_dim = nope + rope;
    spec.v_head_dim = vd;
    spec.mla = {lora, 0, nope, rope, false, 1e-6};
    w.q_b_w = torch::randn({H * (nope + rope), Hd});
    w.kv_a_w = torch::randn({lora + rope, Hd});
    w.kv_a_norm = Norm{NormKind::RMSNorm, 1e-6, false, torch::rand({lora}) + 0.5, {}};
    w.kv_b_w = torch::randn({H * (nope + vd), lora});
    w.o_w = torch::randn({Hd, H * vd});
    x = torch::randn({B, T, Hd});
    mask = mask_bias(torch::ones({B, T}, torch::kBool), 0, T, 0);
    positions = torch::arange(T).expand({B, T});
  }
  torch::Tensor run(RotaryLayout layout) const {
    RotarySpec r;
    r.dim = rope;
    r.layout = layout;
    const auto tables = rotary_tables(r, positions, torch::kFloat32);
    AttentionContext ctx;
    ctx.mask = &mask;
    ctx.rotary = &tables;
    return attention(spec, w, x, ctx, Tap(nullptr));
  }
};

TEST(LatentAttention, EqualsItsAbsorbedFormWithoutRotary) {
  // The absorbed form never builds per-head keys or values: q_nope·W_ukᵀ meets the latent c
  // directly, and the probabilities weigh c before W_uv. Equal to the unabsorbed form up to rounding.
  LatentAttention m;
  using L = LatentAttention;
  const auto q = torch::matmul(m.x, m.w.q_b_w.t()).view({L::B, L::T, L::H, L::nope + L::rope});
  const auto kv_a = torch::matmul(m.x, m.w.kv_a_w.t());
  const auto c = m.w.kv_a_norm(kv_a.narrow(-1, 0, L::lora));                     // [B, T, lora]
  const auto k_rope = kv_a.narrow(-1, L::lora, L::rope);                           // [B, T, rope]
  const auto kv_b = m.w.kv_b_w.view({L::H, L::nope + L::vd, L::lora});
  const auto w_uk = kv_b.narrow(1, 0, L::nope), w_uv = kv_b.narrow(1, L::nope, L::vd);
  const auto q_latent = torch::einsum("bthn,hnl->bhtl", {q.narrow(-1, 0, L::nope), w_uk});  // [B, H, T, lora]
  auto scores = torch::einsum("bhtl,bsl->bhts", {q_latent, c}) +
                torch::einsum("bthr,bsr->bhts", {q.narrow(-1, L::nope, L::rope), k_rope});
  const auto probs = torch::softmax(scores / std::sqrt(double(L::nope + L::rope)) + m.mask, -1);
  const auto context = torch::einsum("bhts,bsl,hvl->bthv", {probs, c, w_uv}).reshape({L::B, L::T, L::H * L::vd});
  const auto expected = torch::matmul(context, m.w.o_w.t());
  AttentionContext ctx;
  ctx.mask = &m.mask;
  const auto got = attention(m.spec, m.w, m.x, ctx, Tap(nullptr));
  EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-4)) << (got - expected).abs().max();
}

TEST(LatentAttention, DeinterleavedRotateHalfMeetsInterleavedPairsInTheSameScores) {
  // DeepSeek-V3's rope_interleave de-interleaves q_rope and k_rope then rotates halves; DeepSeek-V2
  // rotates the interleaved pairs in place. The keys' dims differ in order, the products do not.
  LatentAttention m;
  const auto pairs = m.run(RotaryLayout::Interleaved);
  m.spec.mla.rope_deinterleave = true;
  const auto halves = m.run(RotaryLayout::Half);
  EXPECT_TRUE(torch::allclose(pairs, halves, 1e-5, 1e-5)) << (pairs - halves).abs().max();
  m.spec.mla.rope_deinterleave = false;  // and rotate_half on the interleaved dims is another rotary
  EXPECT_FALSE(torch::allclose(pairs, m.run(RotaryLayout::Half), 1e-3, 1e-3));
}

}  // namespace
}  // namespace nnterp::model
