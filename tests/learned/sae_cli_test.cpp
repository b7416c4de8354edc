// `nnterp sae` (issue 21): top features per token as text, JSON and an HTML heatmap, --attribute,
// --eval, and the errors of bad flags and of an SAE that does not fit the model; `nnterp collect --sae`.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "methods/methods_helpers.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/sae_methods.hpp"

namespace nnterp::testing::sae_cli_test {

// A ReLU SAE with random unit decoder rows at `point`, written in the SAELens format into `dir`.
inline Sae write_random_sae(const std::filesystem::path& dir, const std::string& point, int64_t d_in, int64_t d_sae,
                            bool identity = false) {
  torch::manual_seed(11);
  SaeConfig c;
  c.activation = SaeActivation::ReLU;
  c.d_in = c.d_out = d_in;
  c.d_sae = identity ? 2 * d_in : d_sae;
  c.apply_b_dec_to_input = false;
  c.architecture = "standard";
  c.input_point = parse_point(point);
  SaeWeights w;
  if (identity) {  // relu(x) and relu(−x), decoded back to x exactly
    auto eye = torch::eye(d_in);
    w.W_enc = torch::cat({eye, -eye}, 1), w.W_dec = torch::cat({eye, -eye}, 0);
  } else {
    w.W_dec = torch::randn({d_sae, d_in});
    w.W_dec = w.W_dec / w.W_dec.norm(2, 1, true);
    w.W_enc = w.W_dec.t().contiguous();
  }
  w.b_enc = identity ? torch::zeros({2 * d_in}) : torch::full({d_sae}, -0.2);
  w.b_dec = torch::zeros({d_in});
  Sae sae(c, w);
  sae.save_saelens(dir);
  return Sae::load(dir);
}

nlohmann::json parse_json(const CliResult& r) {
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception&) {
    ADD_FAILURE() << "not JSON (or JSON mixed with other text): " << r.out;
    return {};
  }
}

bool has(const CliResult& r, const std::string& text) { return r.out.find(text) != std::string::npos; }

class SaeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first: " << NNTERP_CLI_PATH;
    sae = std::make_unique<Sae>(write_random_sae(tmp.path / "sae", "layers.2.output", 128, 256));
  }
  TempDir tmp{"sae_cli"};
  std::unique_ptr<Sae> sae;
  std::string dir() const { return (tmp.path / "sae").string(); }
  const std::string prompts = "--prompt 'The capital of France is' --prompt 'The sky is'";
};

TEST_F(SaeCli, TopFeaturesAsTextAndJson) {
  auto text = nnterp_cli("sae --sae " + dir() + " " + prompts + " --top 3 --quiet");
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_TRUE(has(text, "at layers.2.output: 256 features")) << text.out;
  EXPECT_TRUE(has(text, "prompt 1: \"The sky is\"")) << text.out;
  EXPECT_TRUE(has(text, "\" France\"")) << text.out;

  auto json = nnterp_cli("sae --sae " + dir() + " " + prompts + " --top 3 --json");
  ASSERT_EQ(json.code, 0) << json.out;
  auto j = parse_json(json);
  ASSERT_EQ(j["prompts"].size(), 2u);
  EXPECT_EQ(j["sae"]["point"], "layers.2.output");
  // The same features as the library's sae_top_features, token by token.
  StandardizedTransformer model(default_model_dir().string());
  auto r = sae_top_features(model, {"The capital of France is", "The sky is"}, *sae, 3);
  const auto& tokens = j["prompts"][1]["tokens"];
  const int64_t T = r.indices.size(1), n = static_cast<int64_t>(tokens.size());
  ASSERT_EQ(n, static_cast<int64_t>(r.tokens[1].size()));
  for (int64_t t = 0; t < n; ++t) {
    EXPECT_EQ(tokens[t]["token"], r.tokens[1][static_cast<size_t>(t)]);
    const auto& features = tokens[t]["features"];
    for (size_t k = 0; k < features.size(); ++k) {
      EXPECT_EQ(features[k]["feature"].get<int64_t>(), r.indices[1][T - n + t][static_cast<int64_t>(k)].item<int64_t>());
      EXPECT_NEAR(features[k]["activation"].get<double>(), r.activations[1][T - n + t][static_cast<int64_t>(k)].item<double>(), 1e-6);
    }
  }
}

TEST_F(SaeCli, HtmlHeatmap) {
  const auto html = (tmp.path / "features.html").string();
  auto r = nnterp_cli("sae --sae " + dir() + " " + prompts + " --top 4 --html " + html + " --quiet");
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream in(html);
  const std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(page.find("SAE features per token"), std::string::npos);
  EXPECT_NE(page.find("nnterp-plot-1"), std::string::npos) << "one heatmap per prompt";
  EXPECT_NE(page.find("\"heatmap\""), std::string::npos);
  EXPECT_NE(page.find("\xE2\x90\xA3" "France"), std::string::npos) << "token rows, spaces shown";
}

TEST_F(SaeCli, AttributeAndEval) {
  auto text = nnterp_cli("sae --sae " + dir() + " --prompt 'The capital of France is' --attribute ' Paris' --top 0 --quiet");
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_TRUE(has(text, "logit of \" Paris\"")) << text.out;
  EXPECT_TRUE(has(text, "DLA")) << text.out;

  auto json = nnterp_cli("sae --sae " + dir() + " --prompt 'The capital of France is' --attribute ' Paris' --top 4 --json");
  ASSERT_EQ(json.code, 0) << json.out;
  auto j = parse_json(json);
  const auto& features = j["attribution"]["prompts"][0]["features"];
  ASSERT_EQ(features.size(), 4u);
  EXPECT_GE(std::abs(features[0]["attribution"].get<double>()), std::abs(features[3]["attribution"].get<double>()));
  EXPECT_TRUE(features[0]["dla"].is_number());

  // --eval on a dictionary that reconstructs exactly: loss recovered 1.
  write_random_sae(tmp.path / "identity", "layers.1.output", 128, 0, /*identity=*/true);
  auto eval = nnterp_cli("sae --sae " + (tmp.path / "identity").string() + " " + prompts + " --eval --top 0 --json");
  ASSERT_EQ(eval.code, 0) << eval.out;
  auto e = parse_json(eval)["eval"];
  EXPECT_NEAR(e["fve"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(e["loss_recovered"].get<double>(), 1.0, 1e-5);
  auto eval_text = nnterp_cli("sae --sae " + dir() + " " + prompts + " --eval --top 0 --quiet");
  ASSERT_EQ(eval_text.code, 0) << eval_text.out;
  EXPECT_TRUE(has(eval_text, "loss recovered")) << eval_text.out;
  EXPECT_TRUE(has(eval_text, "fraction of variance explained")) << eval_text.out;
}

TEST_F(SaeCli, BadFlagsAndMisfitSaesNameTheProblem) {
  auto no_sae = nnterp_cli("sae " + prompts);
  EXPECT_EQ(no_sae.code, 2);
  EXPECT_TRUE(has(no_sae, "--sae")) << no_sae.out;
  auto top = nnterp_cli("sae --sae " + dir() + " " + prompts + " --top -1");
  EXPECT_EQ(top.code, 2);
  EXPECT_TRUE(has(top, "--top")) << top.out;
  auto both = nnterp_cli("sae --sae " + dir() + " " + prompts + " --attribute ' Paris' --attribute-id 3");
  EXPECT_EQ(both.code, 2);
  EXPECT_TRUE(has(both, "--attribute")) << both.out;
  auto point = nnterp_cli("sae --sae " + dir() + " " + prompts + " --point layers.2.outptu");
  EXPECT_EQ(point.code, 1);
  EXPECT_TRUE(has(point, "--point")) << point.out;
  auto missing = nnterp_cli("sae --sae " + (tmp.path / "nowhere").string() + " " + prompts);
  EXPECT_EQ(missing.code, 1);
  EXPECT_TRUE(has(missing, "nowhere")) << missing.out;
  auto idx = nnterp_cli("sae --sae " + dir() + " " + prompts + " --attribute ' Paris' --idx 40");
  EXPECT_EQ(idx.code, 1);
  EXPECT_TRUE(has(idx, "--idx")) << idx.out;
  // An SAE for another model: 64 wide where layers.2.output is 128.
  write_random_sae(tmp.path / "narrow", "layers.2.output", 64, 32);
  auto narrow = nnterp_cli("sae --sae " + (tmp.path / "narrow").string() + " " + prompts);
  EXPECT_EQ(narrow.code, 1);
  EXPECT_TRUE(has(narrow, "64")) << narrow.out;
  EXPECT_TRUE(has(narrow, "128")) << narrow.out;
  EXPECT_TRUE(has(narrow, "layers.2.output")) << narrow.out;
  // --point moves the SAE: to a layer the model lacks.
  auto beyond = nnterp_cli("sae --sae " + dir() + " " + prompts + " --point layers.7.output");
  EXPECT_EQ(beyond.code, 1);
  EXPECT_TRUE(has(beyond, "layers.7.output")) << beyond.out;
}

TEST_F(SaeCli, CollectStoresTheSaeFeatures) {
  const auto out = (tmp.path / "features").string();
  auto r = nnterp_cli("collect --sae " + dir() + " " + prompts + " --out-dir " + out + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = parse_json(r);
  EXPECT_EQ(j["hidden_size"], 256);
  EXPECT_EQ(j["layers"], nlohmann::json::array({2}));
  auto manifest = nlohmann::json::parse(ActivationShards::open(out).manifest_json());
  EXPECT_EQ(manifest["sae"]["values"], "features");
  StandardizedTransformer model(default_model_dir().string());
  auto expected = sae->encode(get_token_activations(model, {"The capital of France is", "The sky is"}, -1, {2}))[0];
  EXPECT_TRUE(torch::allclose(load_activations(out)[0], expected, 1e-5, 1e-5));
  auto other_layer = nnterp_cli("collect --sae " + dir() + " " + prompts + " --layers 1 --out-dir " + out + "2");
  EXPECT_EQ(other_layer.code, 1);
  EXPECT_TRUE(has(other_layer, "--layers")) << other_layer.out;
}

}  // namespace nnterp::testing::sae_cli_test
