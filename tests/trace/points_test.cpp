// The points inside the blocks (attn_scores, z, resid_mid, mlp_hidden) on every fixture
// architecture. HF's fixtures hold none of them, so each is proven by what defines it: the softmax
// of attn_scores is attn_probs; attn_output is affine in z and its heads' contributions sum to it;
// mlp_output is affine in mlp_hidden; a block's output is a function of resid_mid alone.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "common/fixtures.hpp"
#include "nnterp/error.hpp"
#include "nnterp/trace.hpp"

namespace nnterp::testing {
namespace {

using Edit = std::function<torch::Tensor(const torch::Tensor&)>;

class InnerPoints : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fx = std::make_unique<Fixture>(GetParam());
    model = std::make_unique<StandardizedTransformer>(fx->dir.string());
    real = fx->attention_mask.to(torch::kBool);
  }
  TokenBatch batch() const { return TokenBatch{fx->input_ids, fx->attention_mask}; }
  // The first layer where `point` exists, or -1.
  int first_layer_with(Point point) const {
    for (int i = 0; i < model->num_layers(); ++i)
      if (model->has_point({point, i})) return i;
    return -1;
  }
  // `read` at layer `layer` after `edit` replaced `written` there (the forward stops after it).
  torch::Tensor read_after(const PointId& written, const Edit& edit, const PointId& read) const {
    torch::Tensor out;
    model->trace(batch(), [&](Trace& t) {
      auto& value = t.at(written);
      value = edit(value);
      out = t.at(read).clone();
      t.stop();
    });
    return out;
  }
  torch::Tensor read(const PointId& p) const {
    return read_after(p, [](const torch::Tensor& x) { return x; }, p);
  }
  // [B, T, ...] values at real positions, in float64.
  torch::Tensor at_real(const torch::Tensor& x) const { return x.index({real}).to(torch::kFloat64); }
  // |a − b| ≤ 1e-5 of the values' scale (float32 sums in another order).
  static void expect_near(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
    const double scale = std::max(1.0, b.abs().max().item<double>());
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-5 * scale) << what;
  }

  std::unique_ptr<Fixture> fx;
  std::unique_ptr<StandardizedTransformer> model;
  torch::Tensor real;
};

TEST_P(InnerPoints, AttnScoresAreWhatTheSoftmaxTakes) {
  const int layer = first_layer_with(Point::AttnScores);
  ASSERT_GE(layer, 0) << "every fixture has an attention layer";
  const PointId scores{Point::AttnScores, layer}, probs{Point::AttnProbs, layer};
  // Rows of real queries, [N, heads, S]; with attention sinks a row sums to less than 1, so each is
  // compared after normalising it.
  auto rows = [&](const torch::Tensor& x) { return at_real(x.transpose(1, 2)); };
  auto normalised = [](const torch::Tensor& p) { return p / p.sum(-1, true); };
  const auto s = read(scores);
  EXPECT_EQ(s.sizes(), read(probs).sizes());
  expect_near(normalised(rows(read(probs))), torch::softmax(rows(s), -1), "softmax(attn_scores) vs attn_probs");
  // Written scores are what the softmax takes: halved, they give softmax(s / 2).
  auto halved = rows(read_after(scores, [](const torch::Tensor& x) { return x / 2; }, probs));
  expect_near(normalised(halved), torch::softmax(rows(s) / 2, -1), "probs after halving the scores");
  EXPECT_FALSE(torch::allclose(halved, rows(read(probs)), 1e-4, 1e-6));
}

TEST_P(InnerPoints, AttnOutputIsAffineInZAndItsHeadsSumToIt) {
  const int layer = first_layer_with(Point::Z);
  ASSERT_GE(layer, 0);
  const PointId z{Point::Z, layer}, out{Point::AttnOutput, layer};
  const auto z_clean = read(z);
  EXPECT_EQ(z_clean.sizes(), (std::vector<int64_t>{fx->input_ids.size(0), fx->input_ids.size(1), model->num_heads(),
                                                   z_clean.size(3)}));
  auto with_z = [&](const Edit& edit) { return at_real(read_after(z, edit, out)); };
  const auto a = at_real(read(out));
  const auto a0 = with_z([](const torch::Tensor& x) { return torch::zeros_like(x); });  // o_proj's bias (+ Bloom's residual)
  expect_near(with_z([](const torch::Tensor& x) { return 2 * x; }) - a0, 2 * (a - a0), "attn_output(2z) − attn_output(0)");
  // Each head alone (the others' z zeroed): the contributions sum to attn_output minus the bias.
  auto sum = torch::zeros_like(a);
  for (int64_t h = 0; h < z_clean.size(2); ++h)
    sum += with_z([h](const torch::Tensor& x) {
             auto only = torch::zeros_like(x);
             only.select(2, h).copy_(x.select(2, h));
             return only;
           }) - a0;
  expect_near(sum, a - a0, "sum of the heads' contributions");
}

TEST_P(InnerPoints, MlpOutputIsAffineInMlpHidden) {
  const int layer = first_layer_with(Point::MlpHidden);
  if (layer < 0) {  // every layer a mixture of experts
    std::string why;
    EXPECT_FALSE(model->has_point({Point::MlpHidden, 0}, &why));
    EXPECT_NE(why.find("mixture of experts"), std::string::npos) << why;
    return;
  }
  const PointId hidden{Point::MlpHidden, layer}, out{Point::MlpOutput, layer};
  const auto h = read(hidden);
  EXPECT_EQ(h.dim(), 3);
  auto with_hidden = [&](const Edit& edit) { return at_real(read_after(hidden, edit, out)); };
  const auto m = at_real(read(out));
  const auto m0 = with_hidden([](const torch::Tensor& x) { return torch::zeros_like(x); });
  expect_near(with_hidden([](const torch::Tensor& x) { return 2 * x; }) - m0, 2 * (m - m0), "mlp_output(2h) − mlp_output(0)");
  // The most active neuron ablated changes the output by its column of down_proj only: rank one
  // (up to float32 rounding of the output).
  const int64_t neuron = h.abs().flatten(0, 1).amax(0).argmax().item<int64_t>();
  auto delta = with_hidden([neuron](const torch::Tensor& x) {
                 auto y = x.clone();
                 y.select(-1, neuron).zero_();
                 return y;
               }) - m;
  const auto singular = torch::linalg_svdvals(delta);
  const double rounding = 1e-6 * std::max(1.0, m.abs().max().item<double>());
  EXPECT_GT(singular[0].item<double>(), 100 * rounding);
  EXPECT_LE(singular[1].item<double>(), rounding + 1e-4 * singular[0].item<double>()) << "a one-neuron edit is rank one";
}

TEST_P(InnerPoints, TheBlockOutputIsAFunctionOfResidMidAlone) {
  const PointId mid{Point::ResidMid, 0}, out{Point::LayerOutput, 0};
  std::string why;
  if (!model->has_point(mid, &why)) {
    EXPECT_NE(why.find("in parallel"), std::string::npos) << why;
    return;
  }
  torch::Tensor input, attn, resid_mid, output;
  model->trace(batch(), [&](Trace& t) {
    input = t.layers_input[0].clone();
    attn = t.attentions_output[0].clone();
    resid_mid = t.resid_mid[0].clone();
    output = t.layers_output[0].clone();
  });
  // The attention branch doubled but resid_mid written back: the block's output is unchanged.
  torch::Tensor same;
  model->trace(batch(), [&](Trace& t) {
    t.attentions_output[0] = 2 * t.attentions_output[0];
    t.resid_mid[0] = resid_mid.clone();
    same = t.layers_output[0].clone();
  });
  expect_near(at_real(same), at_real(output), "output with resid_mid restored");
  EXPECT_FALSE(torch::allclose(at_real(read_after(mid, [](const torch::Tensor& x) { return x + 1; }, out)), at_real(output)));
  // Where the block adds attn_output as it is (no post-attention norm), resid_mid is that sum.
  nlohmann::json config;
  std::ifstream(fx->dir / "config.json") >> config;
  const double r = config.value("residual_multiplier", 1.0);
  for (const auto& m : model->modules())
    if (m.weights.count("layers.0.post_attn_norm.weight")) return;
  const auto expected = model->architecture() == "bloom" ? attn : input + r * attn;  // Bloom's attention adds the residual itself
  expect_near(at_real(resid_mid), at_real(expected), "resid_mid vs input + attn_output");
}

INSTANTIATE_TEST_SUITE_P(HF, InnerPoints, ::testing::ValuesIn(hf_fixture_names()), [](const auto& info) { return info.param; });

TEST(InnerPointsAvailability, EachIsRefusedWhereItCannotExistWithTheReason) {
  struct Case { const char* arch; PointId point; const char* reason; };
  const Case cases[] = {
      {"gptj", {Point::ResidMid, 0}, "in parallel from the block's input"},
      {"mixtral", {Point::MlpHidden, 1}, "each expert has its own hidden layer"},
      {"lfm2", {Point::Z, 0}, "short-convolution layer"},
      {"lfm2", {Point::AttnScores, 2}, "short-convolution layer"},
  };
  for (const auto& c : cases) {
    Fixture fx(c.arch);
    StandardizedTransformer model(fx.dir.string());
    try {
      model.trace(TokenBatch{fx.input_ids, fx.attention_mask}, [&](Trace& t) { t.at(c.point); });
      ADD_FAILURE() << "no error for " << c.point.name() << " on " << c.arch;
    } catch (const Error& e) {
      EXPECT_EQ(e.subject(), c.point.name());
      EXPECT_NE(e.message().find(c.reason), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace nnterp::testing
