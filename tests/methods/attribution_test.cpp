// Gradient tools: attribution patching (AtP) against real activation patching on the trained default
// model, and direct logit attribution on every fixture architecture.
#include <gtest/gtest.h>

#include "common/fixtures.hpp"
#include "methods/methods_helpers.hpp"
#include "nnterp/error.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/params.hpp"
#include "nnterp/patching.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::testing {
namespace {

// Ranks with ties sharing their average rank.
torch::Tensor ranks(const torch::Tensor& x) {
  auto flat = x.flatten().to(torch::kFloat64);
  const int64_t n = flat.numel();
  auto order = flat.argsort();
  auto out = torch::empty({n}, torch::kFloat64);
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j + 1 < n && flat[order[j + 1]].item<double>() == flat[order[i]].item<double>()) ++j;
    for (int64_t k = i; k <= j; ++k) out[order[k]] = (i + j) / 2.0;
    i = j + 1;
  }
  return out;
}

double spearman(const torch::Tensor& a, const torch::Tensor& b) {
  auto ra = ranks(a), rb = ranks(b);
  ra = ra - ra.mean();
  rb = rb - rb.mean();
  return ((ra * rb).sum() / (ra.norm() * rb.norm())).item<double>();
}

class Attribution : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model = new StandardizedTransformer(default_model_dir().string()); }
  static void TearDownTestSuite() { delete model; }
  static int64_t token(const std::string& word) { return model->tokenizer()->encode_ids(word, false).at(0); }
  static StandardizedTransformer* model;
};
StandardizedTransformer* Attribution::model = nullptr;

TEST_F(Attribution, AttributionPatchingRanksTheCellsAsActivationPatchingDoes) {
  // Factual recall on the default model: which layer × position carries "France" → " Paris".
  const std::vector<std::string> clean{"The capital of France is", "The government of Germany sits in"};
  const std::vector<std::string> corrupted{"The capital of Spain is", "The government of Italy sits in"};
  PatchingOptions o;
  o.metric = logit_diff_metric(torch::tensor({token(" Paris"), token(" Berlin")}), torch::tensor({token(" Madrid"), token(" Rome")}));
  for (Point point : {Point::LayerOutput, Point::AttnOutput, Point::MlpOutput}) {
    o.point = point;
    o.method = PatchMethod::Activation;
    auto exact = activation_patching(*model, clean, corrupted, o);
    o.method = PatchMethod::Attribution;
    auto atp = activation_patching(*model, clean, corrupted, o);
    ASSERT_EQ(atp.values.sizes(), exact.values.sizes());
    EXPECT_EQ(atp.dims, exact.dims);
    EXPECT_NEAR(atp.clean_metric, exact.clean_metric, 1e-9);
    EXPECT_NEAR(atp.corrupted_metric, exact.corrupted_metric, 1e-4);  // autograd-less kernels aside: rounding
    ASSERT_GT(exact.clean_metric - exact.corrupted_metric, 1.0) << "the model must tell the capitals apart";
    const auto atp_effect = atp.values - atp.corrupted_metric, exact_effect = exact.values - exact.corrupted_metric;
    const double rho = spearman(atp_effect, exact_effect);
    std::cout << "[ atp ] " << point_info(point).pattern << ": Spearman rank correlation with activation patching " << rho << "\n";
    // The residual stream and the MLP outputs rank every cell alike. Attention outputs rank their
    // many near-zero cells less alike (0.67 here): first-order AtP underestimates the one big
    // attention effect (layer 1, last token: +9.4 for +24.9 patched), the saturation Kramár et
    // al. (2024) describe; it still has the right sign and is the largest AtP estimate there.
    if (point == Point::AttnOutput) {
      const int64_t top = exact_effect.abs().argmax().item<int64_t>();
      EXPECT_GT(atp_effect.flatten()[top].item<double>() * exact_effect.flatten()[top].item<double>(), 0.0);
      EXPECT_EQ(atp_effect.abs().argmax().item<int64_t>(), top);
    } else {
      EXPECT_GE(rho, 0.8) << point_info(point).pattern << ": Spearman " << rho << "\nexact " << exact.values << "\natp " << atp.values;
    }
    // Positions where clean and corrupted share the whole prefix (before the country): both are 0.
    EXPECT_NEAR(atp.values.select(-1, 0).sub(atp.corrupted_metric).abs().max().item<double>(), 0.0, 1e-9);
  }
  // Per head too (queries), with the same grid as activation patching.
  o.point = Point::Query;
  auto per_head = attribution_patching(*model, clean, corrupted, o);
  o.method = PatchMethod::Activation;
  EXPECT_EQ(per_head.values.sizes(), activation_patching(*model, clean, corrupted, o).values.sizes());
  EXPECT_EQ(per_head.dims, (std::vector<std::string>{"layer", "head", "position"}));
}

TEST_F(Attribution, DlaComponentsSumToTheLogitAndNameTheirPlace) {
  auto r = direct_logit_attribution(*model, std::vector<std::string>{"The capital of France is", "The language of France is"},
                                    {token(" Paris")});
  ASSERT_EQ(r.values.sizes(), (std::vector<int64_t>{2, 2 * model->num_layers() + 2}));
  EXPECT_EQ(r.components.front(), "embed");
  EXPECT_EQ(r.components[1], "layers.0.attn");
  EXPECT_EQ(r.components.back(), "bias");
  EXPECT_TRUE(close(r.logits, r.model_logits, 1e-4)) << r.logits << r.model_logits;
  EXPECT_GT(r.logits[0].item<double>(), r.logits[1].item<double>()) << "Paris fits the capital prompt better";
  EXPECT_THROW(direct_logit_attribution(*model, std::vector<std::string>{"a", "b", "c"}, {1, 2}), Error);
}

class DlaAllArchs : public ::testing::TestWithParam<std::string> {};

TEST_P(DlaAllArchs, ComponentsSumToTheLogitAndTheRestIsTheBiases) {
  Fixture fx(GetParam());
  StandardizedTransformer model(fx.dir.string());
  const int64_t target = 5;
  auto r = direct_logit_attribution(model, TokenBatch{fx.input_ids, fx.attention_mask}, {target});
  const double cap = model.final_softcap();
  auto summed = cap > 0 ? torch::tanh(r.logits / cap) * cap : r.logits;
  const double scale = std::max(1.0, r.model_logits.abs().max().item<double>());
  EXPECT_LE((summed - r.model_logits).abs().max().item<double>(), 1e-4 * scale) << summed << r.model_logits;
  // The "bias" component is what the biases after the stream add: (ln_final bias · W_U[:, t] + b_U[t])
  // × logit scale, which is only so if the final norm's frozen linear part is right.
  const auto w_u = param(model, Param::W_U).to(torch::kFloat64).select(1, target);
  double expected = has_param(model, Param::b_U) ? param(model, Param::b_U)[target].item<double>() : 0.0;
  if (has_param(model, Param::ln_final_b)) expected += param(model, Param::ln_final_b).to(torch::kFloat64).dot(w_u).item<double>();
  expected *= model.logit_scale();
  auto bias = r.values.select(1, r.values.size(1) - 1);
  EXPECT_LE((bias - expected).abs().max().item<double>(), 1e-4 * scale) << bias << " vs " << expected;
}

INSTANTIATE_TEST_SUITE_P(HF, DlaAllArchs, ::testing::ValuesIn(hf_fixture_names()), [](const auto& info) { return info.param; });

}  // namespace
}  // namespace nnterp::testing
