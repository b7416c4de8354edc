// SAE methods on the default model (issue 21): top features, attribution to a logit (gradient and
// DLA), evaluation (FVE, L0, loss recovered), and feature collection. Synthetic dictionaries are
// built in memory; the TopK SAE trained by nnterp on the default model (models/default/sae/) is used
// when it is committed, and its tests say so when it is not.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "methods/methods_helpers.hpp"
#include "nnterp/error.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/sae_methods.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::testing::sae_methods_test {

// A ReLU SAE ("standard") at `point` with the given weights; b_dec is not subtracted from the input.
inline Sae relu_sae(const std::string& point, torch::Tensor W_enc, torch::Tensor b_enc, torch::Tensor W_dec,
                    torch::Tensor b_dec) {
  SaeConfig c;
  c.activation = SaeActivation::ReLU;
  c.d_in = W_enc.size(0);
  c.d_sae = W_enc.size(1);
  c.d_out = W_dec.size(1);
  c.apply_b_dec_to_input = false;
  c.architecture = "standard";
  c.input_point = parse_point(point);
  return Sae(c, SaeWeights{W_enc, b_enc, W_dec, b_dec});
}

// Reconstructs exactly: features relu(x) and relu(−x), decoded by [I; −I] (x = relu(x) − relu(−x)).
inline Sae identity_sae(const std::string& point, int64_t d) {
  auto eye = torch::eye(d);
  return relu_sae(point, torch::cat({eye, -eye}, 1), torch::zeros({2 * d}), torch::cat({eye, -eye}, 0), torch::zeros({d}));
}

// Decodes to zero whatever it reads: no better than zero-ablating the point.
inline Sae useless_sae(const std::string& point, int64_t d, int64_t d_sae) {
  torch::manual_seed(3);
  return relu_sae(point, torch::randn({d, d_sae}) / std::sqrt(static_cast<double>(d)), torch::zeros({d_sae}),
                  torch::zeros({d_sae, d}), torch::zeros({d}));
}

// Random unit-norm decoder rows, encoder their transpose, a small negative bias (about a third fire).
inline Sae random_sae(const std::string& point, int64_t d, int64_t d_sae, uint64_t seed) {
  torch::manual_seed(seed);
  auto W_dec = torch::randn({d_sae, d});
  W_dec = W_dec / W_dec.norm(2, 1, true);
  return relu_sae(point, W_dec.t().contiguous(), torch::full({d_sae}, -0.2), W_dec, torch::zeros({d}));
}

// The TopK SAE trained on the default model, when committed (its folder, or the first folder under
// models/default/sae/ holding a cfg.json).
inline std::optional<std::filesystem::path> committed_sae() {
  namespace fs = std::filesystem;
  const fs::path root = default_model_dir() / "sae";
  if (!fs::is_directory(root)) return std::nullopt;
  if (fs::exists(root / "cfg.json")) return root;
  std::vector<fs::path> found;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.path().filename() == "cfg.json") found.push_back(e.path().parent_path());
  if (found.empty()) return std::nullopt;
  std::sort(found.begin(), found.end());
  return found.front();
}

class SaeMethods : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model = new StandardizedTransformer(default_model_dir().string()); }
  static void TearDownTestSuite() { delete model; }
  static int64_t token(const std::string& word) { return model->tokenizer()->encode_ids(word, false).at(0); }
  // The model's own most likely next token after each prompt.
  static std::vector<int64_t> top_tokens(const std::vector<std::string>& prompts) {
    auto probs = next_token_probs(*model, prompts);
    auto ids = probs.argmax(-1);
    return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  }
  // The target's logit at each prompt's last token, with `body` run on the features first.
  static torch::Tensor logits_with(const std::vector<std::string>& prompts, const Sae& sae, const std::vector<int64_t>& targets,
                                   const std::function<void(torch::Tensor& f, const torch::Tensor& last)>& body) {
    auto batch = model->tokenize(prompts);
    auto last = token_positions(batch.attention_mask, -1);
    torch::NoGradGuard no_grad;
    auto logits = model->trace(batch, [&](Trace& t) { body(t.sae(sae), last); });
    auto rows = torch::arange(static_cast<int64_t>(prompts.size()));
    return logits.index({rows, last, torch::tensor(targets)}).to(torch::kFloat64);
  }
  static StandardizedTransformer* model;
  const std::vector<std::string> prompts{"The capital of France is", "The sky is", "The capital of Germany is",
                                         "Paris is the capital of"};
};
StandardizedTransformer* SaeMethods::model = nullptr;

TEST_F(SaeMethods, TopFeaturesEqualEncodeOfTheTracedActivation) {
  const auto sae = random_sae("layers.2.output", 128, 512, 1);
  const auto r = sae_top_features(*model, prompts, sae, 6, 3);
  // Directly: the point's activation in a plain trace, encoded, its 6 largest.
  auto batch = model->tokenize(prompts);
  torch::Tensor x;
  model->trace(batch, [&](Trace& t) { x = t.layers_output[2].clone(); });
  auto [values, indices] = sae.encode(x).topk(6, -1);
  const auto real = batch.attention_mask.ne(0);
  ASSERT_EQ(r.indices.sizes(), indices.sizes());
  EXPECT_TRUE(torch::equal(r.input_ids, batch.input_ids));
  const auto fires = values.gt(0).logical_and(real.unsqueeze(-1));
  EXPECT_GT(fires.sum().item<int64_t>(), 0);
  EXPECT_TRUE(torch::equal(r.indices.masked_select(fires), indices.masked_select(fires)));
  EXPECT_TRUE(torch::allclose(r.activations.masked_select(fires), values.masked_select(fires), 1e-6, 1e-6));
  EXPECT_TRUE(r.indices.masked_select(fires.logical_not()).eq(-1).all().item<bool>()) << "padding and silent slots are -1";
  EXPECT_TRUE(r.activations.masked_select(fires.logical_not()).eq(0).all().item<bool>());
  // Per prompt its own tokens, and the same result for any batch size.
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(static_cast<int64_t>(r.tokens[i].size()), real[static_cast<int64_t>(i)].sum().item<int64_t>());
  EXPECT_EQ(r.tokens[1].back(), model->tokenizer()->decode({batch.input_ids[1][-1].item<int64_t>()}));
  // (Rows padded differently differ by float rounding only.)
  const auto one_by_one = sae_top_features(*model, prompts, sae, 6, 1);
  EXPECT_TRUE(torch::equal(one_by_one.indices, r.indices));
  EXPECT_TRUE(torch::allclose(one_by_one.activations, r.activations, 1e-5, 1e-5));
  // sae_feature_activations: the same features, every token.
  const auto acts = sae_feature_activations(*model, prompts, sae, {5, 17}, 2);
  auto direct = sae.encode(x).index({"...", torch::tensor({5, 17})}).masked_fill(real.logical_not().unsqueeze(-1), 0.0);
  EXPECT_TRUE(torch::allclose(acts, direct, 1e-6, 1e-6));
}

TEST_F(SaeMethods, AttributionEqualsFiniteDifferences) {
  // An SAE in the middle of the model: the gradient flows through two later layers and attention.
  const auto sae = random_sae("layers.1.output", 128, 256, 2);
  const std::vector<std::string> two{"The capital of France is", "The sky is"};
  const auto targets = top_tokens(two);
  SaeAttributionOptions o;
  o.top = 3;
  const auto r = sae_feature_attribution(*model, two, sae, targets, o);
  ASSERT_EQ(r.attribution.sizes(), (std::vector<int64_t>{2, 256}));
  EXPECT_TRUE(torch::allclose(r.logits, logits_with(two, sae, targets, [](torch::Tensor&, const torch::Tensor&) {}), 1e-9, 1e-5));
  const double eps = 1e-2;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t k = 0; k < 3; ++k) {
      const int64_t f = r.top_features[b][k].item<int64_t>();
      // d logit / dα with the feature scaled by α at every token, at α = 1 (central difference) ...
      auto scaled = [&](double alpha, bool only_last) {
        return logits_with(two, sae, targets, [&](torch::Tensor& feats, const torch::Tensor& last) {
          if (only_last) feats.index({b, last[b].item<int64_t>(), f}).mul_(alpha);
          else feats.index({b, torch::indexing::Slice(), f}).mul_(alpha);
        })[b].item<double>();
      };
      const double fd = (scaled(1 + eps, false) - scaled(1 - eps, false)) / (2 * eps);
      const double fd_last = (scaled(1 + eps, true) - scaled(1 - eps, true)) / (2 * eps);
      const double a = r.attribution[b][f].item<double>(), a_last = r.attribution_at_idx[b][f].item<double>();
      std::cout << "[ attribution ] prompt " << b << " feature " << f << ": gradient " << a << ", finite difference " << fd
                << "; at the last token " << a_last << " / " << fd_last << "\n";
      EXPECT_NEAR(a, fd, 2e-3 + 2e-3 * std::abs(fd));
      EXPECT_NEAR(a_last, fd_last, 2e-3 + 2e-3 * std::abs(fd_last));
    }
  // The top features are ordered by |attribution|.
  EXPECT_GE(std::abs(r.attribution[0][r.top_features[0][0]].item<double>()),
            std::abs(r.attribution[0][r.top_features[0][2]].item<double>()));
  // Not a residual-stream point: no DLA.
  const auto mlp = random_sae("layers.1.mlp_output", 128, 64, 4);
  EXPECT_FALSE(sae_feature_attribution(*model, two, mlp, targets).dla.defined());
}

// Must-show 2 of issue 21: ablating the feature with the largest |DLA| for the model's own top
// token moves that token's logit the way the DLA says (down for a positive contribution).
void expect_ablation_follows_dla(StandardizedTransformer& model, const Sae& sae, const std::vector<std::string>& prompts,
                                 const std::vector<int64_t>& targets, const std::string& what) {
  const auto r = sae_feature_attribution(model, prompts, sae, targets);
  ASSERT_TRUE(r.dla.defined()) << what;
  auto batch = model.tokenize(prompts);
  auto last = token_positions(batch.attention_mask, -1);
  for (size_t b = 0; b < prompts.size(); ++b) {
    const int64_t i = static_cast<int64_t>(b);
    const int64_t f = r.dla[i].abs().argmax().item<int64_t>();
    const double dla = r.dla[i][f].item<double>();
    ASSERT_NE(dla, 0.0) << what << ": no feature fires at the last token of " << prompts[b];
    torch::NoGradGuard no_grad;
    auto logits = model.trace(batch, [&](Trace& t) { t.sae(sae).index_put_({i, last[i].item<int64_t>(), f}, 0.0); });
    const double change = logits[i][last[i]][targets[b]].item<double>() - r.logits[i].item<double>();
    std::cout << "[ dla ] " << what << " " << nlohmann::json(prompts[b]).dump() << ": feature " << f << " DLA " << dla
              << ", ablated: logit change " << change << " (first-order attribution " << -r.attribution_at_idx[i][f].item<double>()
              << ")\n";
    EXPECT_LT(change * dla, 0.0) << what << ": " << prompts[b] << " feature " << f;
  }
}

TEST_F(SaeMethods, AblatingAFeatureMovesTheLogitTheWayItsDlaSays) {
  const auto targets = top_tokens(prompts);
  expect_ablation_follows_dla(*model, random_sae("layers.3.output", 128, 512, 5), prompts, targets, "random SAE, last layer");
  expect_ablation_follows_dla(*model, random_sae("layers.2.output", 128, 512, 6), prompts, targets, "random SAE, layer 2");
  const auto trained = committed_sae();
  if (!trained) GTEST_SKIP() << "no trained SAE under " << (default_model_dir() / "sae") << ": checked on random SAEs only";
  expect_ablation_follows_dla(*model, Sae::load(*trained), prompts, targets, "trained SAE " + trained->string());
}

TEST_F(SaeMethods, EvaluateMatchesADirectComputation) {
  const auto sae = random_sae("layers.1.output", 128, 256, 7);
  SaeEvalOptions o;
  o.batch_size = 3;
  const auto r = sae_evaluate(*model, prompts, sae, o);
  // Directly: every real token but the special ones (the BOS the tokenizer adds), pooled.
  auto batch = model->tokenize(prompts);
  torch::Tensor x;
  auto logits = model->trace(batch, [&](Trace& t) { x = t.layers_output[1].clone(); });
  auto counted = batch.attention_mask.ne(0);
  const auto bos = model->tokenizer()->bos_token_id();
  if (bos) counted = counted.logical_and(batch.input_ids.ne(*bos));
  auto xs = x.index({counted}).to(torch::kFloat64);
  auto features = sae.encode(x.index({counted}));
  auto x_hat = sae.reconstruct(x.index({counted})).to(torch::kFloat64);
  const double mse = (xs - x_hat).pow(2).sum(-1).mean().item<double>();
  const double variance = xs.pow(2).sum(-1).mean().item<double>() - xs.mean(0).pow(2).sum().item<double>();
  EXPECT_EQ(r.tokens, counted.sum().item<int64_t>());
  EXPECT_NEAR(r.mse, mse, 1e-6 * mse);
  EXPECT_NEAR(r.fve, 1 - mse / variance, 1e-6);
  EXPECT_NEAR(r.l0, features.ne(0).sum(-1).to(torch::kFloat64).mean().item<double>(), 1e-9);
  EXPECT_NEAR(r.dead_fraction, features.ne(0).any(0).logical_not().sum().item<double>() / 256.0, 1e-12);
  // The clean loss: next-token cross-entropy from every counted token.
  const int64_t T = logits.size(1);
  auto losses = -logits.narrow(1, 0, T - 1).log_softmax(-1).gather(-1, batch.input_ids.narrow(1, 1, T - 1).unsqueeze(-1)).squeeze(-1);
  auto from = counted.narrow(1, 0, T - 1);
  EXPECT_EQ(r.predictions, from.sum().item<int64_t>());
  EXPECT_NEAR(r.ce_clean, losses.masked_select(from).to(torch::kFloat64).mean().item<double>(), 1e-5);
  EXPECT_NEAR(r.loss_recovered, (r.ce_zero - r.ce_sae) / (r.ce_zero - r.ce_clean), 1e-12);
  std::cout << "[ eval ] random SAE at layers.1.output: FVE " << r.fve << ", L0 " << r.l0 << ", CE " << r.ce_clean << " / "
            << r.ce_sae << " / " << r.ce_zero << ", loss recovered " << r.loss_recovered << "\n";
  // Any batch size: the same numbers.
  o.batch_size = 1;
  const auto one = sae_evaluate(*model, prompts, sae, o);
  EXPECT_NEAR(one.fve, r.fve, 1e-6);
  EXPECT_NEAR(one.ce_sae, r.ce_sae, 1e-5);
  EXPECT_EQ(one.l0, r.l0);
}

TEST_F(SaeMethods, LossRecoveredIsOneForAPerfectDictionaryAndZeroForAUselessOne) {
  for (const std::string point : {"layers.1.output", "layers.2.mlp_output"}) {
    const auto perfect = sae_evaluate(*model, prompts, identity_sae(point, 128));
    std::cout << "[ eval ] identity SAE at " << point << ": FVE " << perfect.fve << ", loss recovered " << perfect.loss_recovered
              << " (CE " << perfect.ce_clean << " / " << perfect.ce_sae << " / " << perfect.ce_zero << ")\n";
    EXPECT_NEAR(perfect.fve, 1.0, 1e-9) << point;
    EXPECT_NEAR(perfect.ce_sae, perfect.ce_clean, 1e-6) << point;
    EXPECT_NEAR(perfect.loss_recovered, 1.0, 1e-5) << point;
    EXPECT_GT(perfect.ce_zero, perfect.ce_clean + 0.1) << point << ": zero-ablating the point must hurt";
    // Every token replaced, BOS included: exactly the zero-ablated run. (With the special tokens left
    // out, as SAELens does by default, the BOS keeps its activation in the SAE's run but not in the
    // zero-ablated one, so even a useless dictionary is not at 0.)
    SaeEvalOptions every_token;
    every_token.exclude_special_tokens = false;
    const auto useless = sae_evaluate(*model, prompts, useless_sae(point, 128, 64), every_token);
    EXPECT_NEAR(useless.loss_recovered, 0.0, 1e-9) << point;
    EXPECT_LT(useless.fve, 0.0) << point << ": predicting zeros explains less than the mean does";
    EXPECT_GT(useless.l0, 0.0);
  }
}

TEST_F(SaeMethods, TrainedSaeQuality) {
  const auto trained = committed_sae();
  if (!trained) GTEST_SKIP() << "no trained SAE under " << (default_model_dir() / "sae") << " yet";
  const auto sae = Sae::load(*trained);
  // Held-out facts as whole sentences (prompt + answer).
  std::vector<std::string> corpus;
  std::ifstream in(default_model_dir() / "corpus" / "heldout.jsonl");
  for (std::string line; std::getline(in, line) && corpus.size() < 256;)
    if (!line.empty()) {
      const auto j = nlohmann::json::parse(line);
      corpus.push_back(j.at("prompt").get<std::string>() + j.at("answer").get<std::string>());
    }
  ASSERT_FALSE(corpus.empty());
  const auto r = sae_evaluate(*model, corpus, sae);
  std::cout << "[ eval ] " << trained->string() << " (" << sae_point(*model, sae).name() << ", d_sae " << sae.d_sae() << ") on "
            << corpus.size() << " prompts, " << r.tokens << " tokens: FVE " << r.fve << ", L0 " << r.l0 << ", dead "
            << r.dead_fraction << ", CE clean " << r.ce_clean << " / SAE " << r.ce_sae << " / zero " << r.ce_zero
            << ", loss recovered " << r.loss_recovered << "\n";
  // docs/sae.md documents FVE 0.985-0.993 and loss recovered 1.000 on these sentences; the floors:
  EXPECT_GT(r.fve, 0.98);
  EXPECT_GT(r.loss_recovered, 0.95);
}

TEST_F(SaeMethods, CollectStoresFeatures) {
  const auto sae = std::make_shared<const Sae>(random_sae("layers.2.output", 128, 256, 9));
  const auto expected = sae->encode(get_token_activations(*model, prompts, -1, {2}));  // [1, N, 256]
  CollectOptions o;
  o.sae = sae;
  o.progress = false;
  const auto in_memory = collect_token_activations(*model, prompts, o);
  EXPECT_EQ(in_memory.layers, std::vector<int>{2}) << "the SAE's layer";
  EXPECT_TRUE(torch::allclose(in_memory.activations, expected, 1e-6, 1e-6));
  TempDir dir("sae_collect");
  o.out_dir = dir.path / "features";
  collect_token_activations(*model, prompts, o);
  const auto shards = ActivationShards::open(o.out_dir);
  EXPECT_EQ(shards.hidden_size(), 256);
  EXPECT_TRUE(torch::allclose(shards.layer(2), expected[0], 1e-6, 1e-6));
  const auto manifest = nlohmann::json::parse(shards.manifest_json());
  EXPECT_EQ(manifest["sae"]["d_sae"], 256);
  EXPECT_EQ(manifest["sae"]["point"], "layers.2.output");
  // Other layers or another point than the SAE's: an error naming the option.
  o.layers = {1};
  try {
    collect_token_activations(*model, prompts, o);
    ADD_FAILURE() << "collected layer 1 with an SAE of layer 2";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "CollectOptions::layers") << e.what();
  }
}

TEST_F(SaeMethods, BadArgumentsNameTheProblem) {
  auto message = [](const std::function<void()>& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  // An SAE trained for another width: the SAE, the point and both widths.
  const auto narrow = random_sae("layers.1.output", 64, 32, 8);
  const auto wrong_width = message([&] { sae_top_features(*model, prompts, narrow); });
  EXPECT_NE(wrong_width.find("layers.1.output"), std::string::npos) << wrong_width;
  EXPECT_NE(wrong_width.find("64"), std::string::npos) << wrong_width;
  EXPECT_NE(wrong_width.find("128"), std::string::npos) << wrong_width;
  // A point the model does not have.
  const auto beyond = message([&] { sae_evaluate(*model, prompts, random_sae("layers.9.output", 128, 32, 8)); });
  EXPECT_NE(beyond.find("layers.9.output"), std::string::npos) << beyond;
  // No point at all.
  SaeConfig c = random_sae("layers.1.output", 128, 32, 8).config();
  c.input_point.reset();
  const Sae pointless(c, random_sae("layers.1.output", 128, 32, 8).weights());
  EXPECT_NE(message([&] { sae_top_features(*model, prompts, pointless); }).find("names no point"), std::string::npos);
  const auto sae = random_sae("layers.1.output", 128, 32, 8);
  EXPECT_NE(message([&] { sae_top_features(*model, prompts, sae, 0); }).find("k"), std::string::npos);
  EXPECT_NE(message([&] { sae_feature_attribution(*model, prompts, sae, {model->vocab_size()}); }).find("targets"), std::string::npos);
  EXPECT_NE(message([&] { sae_feature_attribution(*model, prompts, sae, {1, 2}); }).find("2 target tokens for 4 prompts"),
            std::string::npos);
  EXPECT_NE(message([&] { sae_feature_activations(*model, prompts, sae, {32}); }).find("feature 32"), std::string::npos);
  SaeAttributionOptions far;
  far.idx = 50;
  EXPECT_NE(message([&] { sae_feature_attribution(*model, prompts, sae, {1}, far); }).find("idx"), std::string::npos);
}

}  // namespace nnterp::testing::sae_methods_test
