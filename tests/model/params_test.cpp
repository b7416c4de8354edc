// Standardized parameters (params.hpp) on every fixture architecture: each is checked against the
// points the forward computes with it (W_O against z and attn_output, W_out against mlp_hidden and
// mlp_output, W_V against attn_input and v, ...), written back unchanged it leaves the logits
// bit-identical, and the edits do what they say.
#include <gtest/gtest.h>

#include <fstream>

#include "common/fixtures.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/params.hpp"
#include "nnterp/trace.hpp"

namespace nnterp::testing {
namespace {

class Params : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fx = std::make_unique<Fixture>(GetParam());
    model = std::make_unique<StandardizedTransformer>(fx->dir.string());
    real = fx->attention_mask.to(torch::kBool);
    std::ifstream(fx->dir / "config.json") >> config;
  }
  TokenBatch batch() const { return TokenBatch{fx->input_ids, fx->attention_mask}; }
  torch::Tensor logits() const {
    torch::NoGradGuard no_grad;
    return model->forward(fx->input_ids, fx->attention_mask);
  }
  // Points of one clean forward, by name.
  std::map<std::string, torch::Tensor> read(const std::vector<PointId>& points) const {
    std::map<std::string, torch::Tensor> out;
    model->trace(batch(), [&](Trace& t) {
      for (const auto& p : points) out[p.name()] = t.at(p).clone();
    });
    return out;
  }
  torch::Tensor at_real(const torch::Tensor& x) const { return x.index({real}).to(torch::kFloat64); }
  static void expect_near(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
    const double scale = std::max(1.0, b.abs().max().item<double>());
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-5 * scale) << what;
  }
  int first_layer_with(Param p) const {
    for (int i = 0; i < model->num_layers(); ++i)
      if (has_param(*model, p, i)) return i;
    return -1;
  }
  double number(const char* key, double otherwise) const {
    return config.contains(key) && config[key].is_number() ? config[key].get<double>() : otherwise;
  }
  torch::Tensor p64(Param p, int layer = -1) const { return param(*model, p, layer).to(torch::kFloat64); }
  torch::Tensor bias_or_zero(Param p, int layer, int64_t size) const {
    return has_param(*model, p, layer) ? p64(p, layer) : torch::zeros({size}, torch::kFloat64);
  }

  std::unique_ptr<Fixture> fx;
  std::unique_ptr<StandardizedTransformer> model;
  torch::Tensor real;
  nlohmann::json config;
};

TEST_P(Params, EveryParameterHasItsDocumentedShape) {
  const int64_t H = model->hidden_size(), V = model->vocab_size(), heads = model->num_heads();
  int checked = 0;
  for (const auto& info : param_table())
    for (int layer = 0; layer < (info.per_layer ? model->num_layers() : 1); ++layer) {
      if (!has_param(*model, info.param, layer)) continue;
      const auto t = param(*model, info.param, layer);
      ++checked;
      switch (info.param) {
        case Param::W_E: EXPECT_EQ(t.sizes(), (std::vector<int64_t>{V, H})); break;
        case Param::W_U: EXPECT_EQ(t.sizes(), (std::vector<int64_t>{H, V})); break;
        case Param::W_Q: EXPECT_EQ(t.sizes(), (std::vector<int64_t>{heads, H, model->head_dim()})); break;
        case Param::W_O: EXPECT_EQ(t.size(0), heads); EXPECT_EQ(t.size(2), H); break;
        case Param::W_in: case Param::W_gate: EXPECT_EQ(t.size(0), H); break;
        case Param::W_out: EXPECT_EQ(t.size(1), H); break;
        default: EXPECT_GE(t.dim(), 1); break;
      }
    }
  EXPECT_GE(checked, 3);  // at least W_E, W_U and a final norm or a layer's parameters
}

TEST_P(Params, WrittenBackUnchangedTheLogitsAreBitIdentical) {
  const auto clean = logits();
  for (const auto& info : param_table())
    for (int layer = 0; layer < (info.per_layer ? model->num_layers() : 1); ++layer)
      if (has_param(*model, info.param, layer)) set_param(*model, info.param, layer, param(*model, info.param, layer).clone());
  EXPECT_TRUE(torch::equal(logits(), clean));
}

TEST_P(Params, WOTurnsZIntoTheAttentionOutput) {
  const int layer = first_layer_with(Param::W_O);
  ASSERT_GE(layer, 0);
  auto v = read({{Point::LayerInput, layer}, {Point::Z, layer}, {Point::AttnOutput, layer}});
  const auto z = v[PointId{Point::Z, layer}.name()].to(torch::kFloat64);
  auto expected = torch::einsum("bthd,hdo->bto", {z, p64(Param::W_O, layer)}) + bias_or_zero(Param::b_O, layer, model->hidden_size());
  auto attn = v[PointId{Point::AttnOutput, layer}.name()];
  if (GetParam() == "bloom") attn = attn - v[PointId{Point::LayerInput, layer}.name()];  // Bloom adds the residual inside
  expect_near(at_real(attn), at_real(expected), "z @ W_O + b_O vs attn_output");
  // Zeroing one head's z is zeroing that head's slice of o_proj's input: the attention output
  // loses exactly that head's result.
  const auto results = head_results(*model, layer, v[PointId{Point::Z, layer}.name()]).to(torch::kFloat64);
  expect_near(at_real(results.sum(2)), at_real(expected - bias_or_zero(Param::b_O, layer, model->hidden_size())),
              "Σ head_results vs z @ W_O");
  torch::Tensor ablated;
  model->trace(batch(), [&](Trace& t) {
    t.z[layer].select(2, 0).zero_();
    ablated = t.attentions_output[layer].clone();
  });
  expect_near(at_real(attn.to(torch::kFloat64) - results.select(2, 0)),
              at_real(ablated.to(torch::kFloat64) - (GetParam() == "bloom" ? v[PointId{Point::LayerInput, layer}.name()].to(torch::kFloat64) : torch::zeros({}, torch::kFloat64))),
              "attn_output with head 0's z zeroed vs attn_output − head 0's result");
}

TEST_P(Params, WOutTurnsTheNeuronsIntoTheMlpOutputAndWInFeedsThem) {
  const int layer = first_layer_with(Param::W_out);
  if (layer < 0) {
    std::string why;
    EXPECT_FALSE(has_param(*model, Param::W_out, 0, &why));
    EXPECT_NE(why.find("mixture of experts"), std::string::npos) << why;
    return;
  }
  // Bloom's and MPT's MLP modules add the residual (resid_mid) themselves.
  const bool adds_residual = GetParam() == "bloom" || GetParam() == "mpt";
  std::vector<PointId> points{{Point::MlpHidden, layer}, {Point::MlpOutput, layer}};
  if (adds_residual) points.insert(points.begin(), PointId{Point::ResidMid, layer});
  auto v = read(points);
  auto w_out = p64(Param::W_out, layer);
  auto expected = v[PointId{Point::MlpHidden, layer}.name()].to(torch::kFloat64).matmul(w_out) +
                  bias_or_zero(Param::b_out, layer, model->hidden_size());
  auto out = v[PointId{Point::MlpOutput, layer}.name()];
  if (adds_residual) out = out - v[PointId{Point::ResidMid, layer}.name()];
  expect_near(at_real(out), at_real(expected), "mlp_hidden @ W_out + b_out vs mlp_output");
  // A neuron whose input column (and bias) is zeroed is 0: its up input is 0 (gated: up · act(gate)
  // = 0; plain: act(0) = 0 for every activation but xIELU, whose act(0) is ~1e-6).
  const int64_t neuron = 1;
  for (Param p : {Param::W_in, Param::W_gate}) {
    if (!has_param(*model, p, layer)) continue;
    auto w = param(*model, p, layer).clone();
    w.select(1, neuron).zero_();
    set_param(*model, p, layer, w);
    const Param bias = p == Param::W_in ? Param::b_in : Param::b_gate;
    if (has_param(*model, bias, layer)) {
      auto b = param(*model, bias, layer).clone();
      b[neuron].zero_();
      set_param(*model, bias, layer, b);
    }
    auto hidden = read({{Point::MlpHidden, layer}})[PointId{Point::MlpHidden, layer}.name()];
    EXPECT_LE(at_real(hidden.select(-1, neuron)).abs().max().item<double>(), 1e-5) << param_name(p, layer);
    break;  // the first of them is enough: W_in for plain MLPs, W_in (up) for gated ones
  }
}

TEST_P(Params, WVProjectsTheAttentionInputOntoTheValues) {
  const int layer = first_layer_with(Param::W_V);
  if (layer < 0) {  // multi-head latent attention
    std::string why;
    EXPECT_FALSE(has_param(*model, Param::W_V, 0, &why));
    EXPECT_NE(why.find("latent"), std::string::npos) << why;
    return;
  }
  auto v = read({{Point::AttnInput, layer}, {Point::Query, layer}, {Point::Value, layer}});
  const auto x = v[PointId{Point::AttnInput, layer}.name()].to(torch::kFloat64);
  auto project = [&](Param w, Param b) {  // [B, heads, T, d]
    auto y = torch::einsum("bti,hid->bhtd", {x, p64(w, layer)});
    return has_param(*model, b, layer) ? y + p64(b, layer).unsqueeze(1) : y;
  };
  auto rows = [&](const torch::Tensor& t) { return at_real(t.transpose(1, 2)); };
  const double clip = number("clip_qkv", 0.0);  // OLMo clamps q, k and v
  auto values = project(Param::W_V, Param::b_V);
  if (clip > 0) values = values.clamp(-clip, clip);
  expect_near(rows(v[PointId{Point::Value, layer}.name()]), rows(values), "attn_input @ W_V + b_V vs v");
  // Without rotary or a QK-norm (learned positions: GPT-2, OPT, ...), q is the projection too.
  if (model->learned_positions())
    expect_near(rows(v[PointId{Point::Query, layer}.name()]), rows(project(Param::W_Q, Param::b_Q)), "attn_input @ W_Q + b_Q vs q");
}

TEST_P(Params, WEAndWUAreTheEmbeddingAndTheUnembedding) {
  auto v = read({{Point::Embed, -1}, {Point::FinalNorm, -1}, {Point::Logits, -1}});
  const auto ids = fx->input_ids.index({real});
  auto rows = p64(Param::W_E).index_select(0, ids);
  // Gemma-3's embedding module scales by √hidden inside (the others scale after it, if at all).
  if (GetParam() == "gemma3") rows = rows * std::sqrt(static_cast<double>(model->hidden_size()));
  expect_near(at_real(v["embed.output"]), rows, "embed.output vs W_E[ids]");
  // logits = ln_final @ W_U + b_U, then the logit scale / soft-cap the config declares.
  auto projected = at_real(v["ln_final.output"]).matmul(p64(Param::W_U)) + bias_or_zero(Param::b_U, -1, model->vocab_size());
  projected = projected * number("logit_scale", 1.0) / number("logits_scaling", 1.0);
  if (const double cap = number("final_logit_softcapping", 0.0); cap > 0) projected = torch::tanh(projected / cap) * cap;
  expect_near(at_real(v["logits"]), projected, "ln_final @ W_U + b_U vs logits");
}

TEST_P(Params, AblatingANeuronEqualsZeroingItInEveryForward) {
  const int layer = first_layer_with(Param::W_out);
  if (layer < 0) return;  // MoE only: checked by WOutTurnsTheNeuronsIntoTheMlpOutputAndWInFeedsThem
  const int64_t neuron = 2;
  auto zeroed = model->trace(batch(), [&](Trace& t) { t.mlp_hidden[layer].select(-1, neuron).zero_(); });
  ablate_neuron(*model, layer, neuron);
  expect_near(at_real(logits()), at_real(zeroed), "ablate_neuron vs mlp_hidden[..., n] = 0");
  EXPECT_THROW(ablate_neuron(*model, layer, 1 << 30), Error);
}

TEST_P(Params, ProjectingADirectionOutOfTheWritesRemovesItFromTheResidualStream) {
  torch::manual_seed(3);
  auto direction = torch::randn({model->hidden_size()}, torch::kFloat64);
  try {
    project_out_of_residual_writes(*model, direction);
  } catch (const Error& e) {  // a norm between the writes and the stream
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(e.message().find("norm"), std::string::npos) << e.what();
    return;
  }
  const auto unit = direction / direction.norm();
  std::vector<PointId> points{{Point::Embed, -1}};
  for (int i = 0; i < model->num_layers(); ++i) points.push_back({Point::LayerOutput, i});
  for (const auto& [name, value] : read(points)) {
    auto h = at_real(value);
    const double along = h.matmul(unit).abs().max().item<double>(), size = h.norm(2, -1).max().item<double>();
    EXPECT_LE(along, 1e-5 * std::max(1.0, size)) << name << ": component " << along << " of a norm up to " << size;
  }
}

INSTANTIATE_TEST_SUITE_P(HF, Params, ::testing::ValuesIn(hf_fixture_names()), [](const auto& info) { return info.param; });

TEST(ParamErrors, MissingParametersSayWhyAndBadWritesNameTheParameter) {
  struct Case { const char* arch; Param param; int layer; const char* reason; };
  const Case cases[] = {
      {"deepseek_v2", Param::W_Q, 0, "multi-head latent attention"},
      {"lfm2", Param::W_K, 0, "has no attention (a short-convolution layer)"},
      {"mixtral", Param::W_in, 0, "mixture of experts"},
      {"gpt2", Param::W_gate, 0, "MLP is not gated"},
      {"llama", Param::b_Q, 0, "has no query bias"},
      {"llama", Param::W_pos, -1, "has no learned absolute position embedding"},
  };
  for (const auto& c : cases) {
    Fixture fx(c.arch);
    StandardizedTransformer model(fx.dir.string());
    std::string why;
    EXPECT_FALSE(has_param(model, c.param, c.layer, &why)) << c.arch;
    EXPECT_NE(why.find(c.reason), std::string::npos) << c.arch << ": " << why;
    try {
      param(model, c.param, c.layer);
      ADD_FAILURE() << "no error for " << param_name(c.param, c.layer) << " on " << c.arch;
    } catch (const Error& e) {
      EXPECT_EQ(e.subject(), param_name(c.param, c.layer));
    }
  }
  Fixture fx("llama");
  StandardizedTransformer model(fx.dir.string());
  try {
    set_param(model, Param::W_Q, 1, torch::zeros({3, 3}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "layers.1.W_Q");
    EXPECT_NE(e.message().find("expected [heads, hidden, d_head] = ["), std::string::npos) << e.what();
  }
  EXPECT_THROW(param(model, Param::W_Q, 7), Error);
  try {
    parse_param("W_Qx");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("W_Q"), std::string::npos) << e.what();
  }
  // GPT-2 ties lm_head to the embedding; an edit unties them: W_U keeps its values.
  Fixture gpt2_fx("gpt2");
  StandardizedTransformer gpt2(gpt2_fx.dir.string());
  ASSERT_TRUE(torch::equal(param(gpt2, Param::W_E), param(gpt2, Param::W_U).t()));
  auto before = param(gpt2, Param::W_U).clone();
  set_param(gpt2, Param::W_E, -1, torch::zeros_like(param(gpt2, Param::W_E)));
  EXPECT_TRUE(torch::equal(param(gpt2, Param::W_U), before));
  EXPECT_EQ(param(gpt2, Param::W_E).abs().max().item<double>(), 0.0);
}

}  // namespace
}  // namespace nnterp::testing
