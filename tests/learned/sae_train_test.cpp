// The TopK SAE trainer (sae_train.hpp): the hand-written gradients against autograd, recovery of a
// planted sparse dictionary, the decoder-norm constraint, dead-latent accounting and AuxK, the SAE
// written (SAELens) and resumed runs, the committed default-model SAE's documented FVE, and
// `nnterp train-sae`.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "methods/methods_helpers.hpp"
#include "nnterp/error.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/sae.hpp"
#include "nnterp/sae_train.hpp"

namespace nnterp::testing::sae_train_test {

namespace fs = std::filesystem;
using sae_training::TopKParams;

// The floor docs/sae.md ("Training") states for the committed SAE's FVE on held-out sentences.
constexpr double kDocumentedHeldoutFveFloor = 0.98;
const fs::path kCommittedSae = default_model_dir() / "sae" / "layers.2.output";

// Tokens made of `active` of `n_atoms` planted unit directions in R^d, with coefficients in [0.5, 1.5].
struct Planted {
  torch::Tensor atoms, x;  // [n_atoms, d], [N, d]
};
Planted planted_dictionary(int64_t n_atoms, int64_t d, int64_t active, int64_t N, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  Planted p;
  p.atoms = torch::randn({n_atoms, d}, gen);
  p.atoms = p.atoms / p.atoms.norm(2, 1, true);
  auto which = torch::rand({N, n_atoms}, gen).argsort(/*dim=*/int64_t{1}).narrow(1, 0, active);  // `active` distinct atoms a token
  auto coeff = torch::rand({N, active}, gen) + 0.5;
  auto codes = torch::zeros({N, n_atoms}).scatter_(1, which, coeff);
  p.x = torch::matmul(codes, p.atoms);
  return p;
}

TopKParams random_params(int64_t d, int64_t F, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  TopKParams p;
  p.W_dec = torch::randn({F, d}, gen);
  p.W_dec = p.W_dec / p.W_dec.norm(2, 1, true);
  p.W_enc = (p.W_dec.t() + 0.1 * torch::randn({d, F}, gen)).contiguous();
  p.b_enc = 0.1 * torch::randn({F}, gen);
  p.b_dec = 0.1 * torch::randn({d}, gen);
  return p;
}

// The loss the trainer minimizes, written with autograd: mse + aux_coefficient · scale · AuxK.
torch::Tensor autograd_loss(const TopKParams& p, const torch::Tensor& x, int64_t k, const torch::Tensor& dead, int64_t aux_k,
                            double aux_coefficient) {
  const int64_t B = x.size(0);
  auto pre = torch::addmm(p.b_enc, x - p.b_dec, p.W_enc);
  auto top = pre.topk(k, 1);
  auto f = torch::zeros_like(pre).scatter(1, std::get<1>(top), torch::relu(std::get<0>(top)));
  auto x_hat = torch::matmul(f, p.W_dec) + p.b_dec;
  auto loss = (x_hat - x).pow(2).sum() / B;
  const int64_t num_dead = dead.sum().item<int64_t>();
  if (num_dead > 0) {
    const double scale = std::min(1.0, static_cast<double>(num_dead) / aux_k);
    auto aux_pre = pre.masked_fill(dead.logical_not(), -std::numeric_limits<float>::infinity());
    auto aux_top = aux_pre.topk(std::min(aux_k, num_dead), 1);
    auto f_aux = torch::zeros_like(pre).scatter(1, std::get<1>(aux_top), torch::relu(std::get<0>(aux_top)));
    auto residual = (x - x_hat).detach();
    loss = loss + aux_coefficient * scale * (torch::matmul(f_aux, p.W_dec) - residual).pow(2).sum() / B;
  }
  return loss;
}

SaeTrainOptions small_options() {
  SaeTrainOptions o;
  o.d_sae = 64;
  o.k = 4;
  o.batch_size = 128;
  o.steps = 40;
  o.lr = 3e-3;
  o.seed = 5;
  o.holdout_fraction = 0.1;
  return o;
}

TEST(SaeTrain, HandWrittenGradientsEqualAutograd) {
  const int64_t d = 12, F = 40, k = 3, B = 33;
  auto p = random_params(d, F, 1);
  auto x = torch::randn({B, d}, at::detail::createCPUGenerator(2));
  for (bool with_aux : {false, true}) {
    auto dead = torch::zeros({F}, torch::kBool);
    if (with_aux) dead.narrow(0, 0, 25).fill_(true);  // more dead latents than aux_k: scale 1; some also in the top k
    const int64_t aux_k = 6;
    const double coefficient = 0.5;  // large, so that a wrong AuxK gradient shows
    auto step = sae_training::topk_loss_and_grads(p, x, k, dead, aux_k, coefficient);

    TopKParams leaf{p.W_enc.clone().requires_grad_(), p.b_enc.clone().requires_grad_(), p.W_dec.clone().requires_grad_(),
                    p.b_dec.clone().requires_grad_()};
    auto loss = autograd_loss(leaf, x, k, dead, aux_k, coefficient);
    loss.backward();
    EXPECT_NEAR(step.mse + (with_aux ? coefficient * step.aux : 0.0), loss.item<double>(), 1e-4);
    EXPECT_TRUE(close(step.grads.W_enc, leaf.W_enc.grad(), 1e-4)) << "W_enc, aux " << with_aux;
    EXPECT_TRUE(close(step.grads.b_enc, leaf.b_enc.grad(), 1e-4)) << "b_enc, aux " << with_aux;
    EXPECT_TRUE(close(step.grads.W_dec, leaf.W_dec.grad(), 1e-4)) << "W_dec, aux " << with_aux;
    EXPECT_TRUE(close(step.grads.b_dec, leaf.b_dec.grad(), 1e-4)) << "b_dec, aux " << with_aux;
  }
}

TEST(SaeTrain, RecoversAPlantedSparseDictionary) {
  const auto planted = planted_dictionary(64, 32, 4, 8192, 3);
  SaeTrainOptions o;
  o.d_sae = 128;
  o.k = 4;
  o.batch_size = 256;
  o.epochs = 12;
  o.lr = 1e-2;
  o.seed = 1;
  o.dead_after_tokens = 20'000;
  auto r = train_topk_sae(planted.x, o);
  EXPECT_GT(r.stats.heldout_fve, 0.9) << "L0 " << r.stats.heldout_l0;
  EXPECT_LE(r.stats.heldout_l0, 4.0);
  // Each planted direction has a decoder row pointing its way.
  auto cosine = torch::matmul(planted.atoms, r.sae.weights().W_dec.t());  // rows are unit vectors
  auto best = std::get<0>(cosine.max(1));
  const int64_t recovered = best.gt(0.9).sum().item<int64_t>();
  std::cout << "[ planted ] FVE " << r.stats.heldout_fve << ", " << recovered << " of 64 directions at cosine > 0.9, "
            << r.stats.seconds << " s\n";
  EXPECT_GE(recovered, 58);
  // The loss went down.
  ASSERT_GE(r.stats.loss_curve.size(), 2u);
  EXPECT_LT(r.stats.loss_curve.back().normalized_mse, r.stats.loss_curve.front().normalized_mse);
}

TEST(SaeTrain, DecoderRowsStayUnitNormAndTheParallelGradientIsRemoved) {
  auto gen = at::detail::createCPUGenerator(4);
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {  // the fused loops and the torch fallback
    auto W = torch::randn({50, 16}, gen).to(dtype);
    sae_training::normalize_decoder_rows(W);
    EXPECT_TRUE(close(W.norm(2, 1), torch::ones({50}))) << dtype;
    auto G = torch::randn({50, 16}, gen).to(dtype);
    auto expected = G - (G * W).sum(1, true) * W;
    sae_training::remove_parallel_decoder_grad(W, G);
    EXPECT_TRUE(close(G, expected, 1e-5)) << dtype;
    EXPECT_LT((G * W).sum(1).abs().max().item<double>(), 1e-5) << dtype;
  }
  // After training: unit rows (no input scaling), and with it, rows of norm 1/s (the scale folded in).
  const auto planted = planted_dictionary(32, 16, 3, 2048, 5);
  auto o = small_options();
  auto plain = train_topk_sae(planted.x, o);
  EXPECT_TRUE(close(plain.sae.weights().W_dec.norm(2, 1), torch::ones({o.d_sae}), 1e-5));
  o.normalize_activations = true;
  auto scaled = train_topk_sae(planted.x * 7, o);
  const double s = scaled.stats.norm_scaling_factor;
  EXPECT_NEAR(s, std::sqrt(16.0) / (planted.x * 7).norm(2, 1).mean().item<double>(), 0.05 * s);
  EXPECT_TRUE(close(scaled.sae.weights().W_dec.norm(2, 1), torch::full({o.d_sae}, 1 / s), 1e-5));
  EXPECT_EQ(scaled.sae.config().normalization, SaeNormalization::None);
  // Scaling the data by 7 with normalization trains the same SAE up to that scale.
  EXPECT_NEAR(scaled.stats.heldout_fve, plain.stats.heldout_fve, 0.05);
}

TEST(SaeTrain, DeadLatentsAreCountedAndAuxKGivesThemGradient) {
  sae_training::DeadLatentTracker tracker(4, 10);
  auto fired = [](std::vector<bool> v) {
    auto t = torch::zeros({static_cast<int64_t>(v.size())}, torch::kBool);
    for (size_t i = 0; i < v.size(); ++i) t[static_cast<int64_t>(i)] = static_cast<bool>(v[i]);
    return t;
  };
  tracker.update(fired({true, false, false, false}), 4);
  tracker.update(fired({true, false, true, false}), 4);
  EXPECT_EQ(tracker.num_dead(), 0);  // 8 tokens: none yet
  tracker.update(fired({true, false, false, false}), 4);
  EXPECT_TRUE(torch::equal(tracker.dead(), fired({false, true, false, true})));  // 12 tokens unfired; latent 2 fired 4 ago
  tracker.update(fired({false, true, false, false}), 4);
  EXPECT_TRUE(torch::equal(tracker.dead(), fired({false, false, false, true})));  // latent 2: 8 tokens
  tracker.update(fired({true, true, false, false}), 2);
  EXPECT_TRUE(torch::equal(tracker.dead(), fired({false, false, true, true})));   // latent 2: 10 tokens
  EXPECT_EQ(tracker.num_dead(), 2);

  // Latent 0 never makes the top k (a very negative bias): only AuxK gives it gradient, once dead.
  const int64_t d = 8, F = 16;
  auto p = random_params(d, F, 6);
  p.b_enc[0] = -100.0;
  auto x = torch::randn({20, d}, at::detail::createCPUGenerator(7));
  auto dead = torch::zeros({F}, torch::kBool);
  dead[0] = true;
  auto without = sae_training::topk_loss_and_grads(p, x, 2, {}, 4, 1.0 / 32);
  EXPECT_EQ(without.grads.W_enc.select(1, 0).abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(without.fired[0].item<bool>());
  p.b_enc[0] = 0.5;  // above the others' pre-activations often, but dead: AuxK selects it
  auto with = sae_training::topk_loss_and_grads(p, x, 2, dead, 4, 1.0 / 32);
  EXPECT_GT(with.aux, 0.0);
  EXPECT_GT(with.grads.W_dec[0].abs().sum().item<double>(), 0.0);
  auto no_aux = sae_training::topk_loss_and_grads(p, x, 2, dead, 4, 0.0);
  EXPECT_FALSE(torch::equal(with.grads.W_dec[0], no_aux.grads.W_dec[0])) << "AuxK adds gradient to the dead latent's row";

  // In training: a latent that cannot fire is reported dead once dead_after_tokens have passed.
  const auto planted = planted_dictionary(8, 8, 1, 2048, 8);  // 8 directions for 64 latents: many never win
  auto o = small_options();
  o.aux_coefficient = 0;  // nothing revives them
  o.dead_after_tokens = 1024;
  o.steps = 30;
  auto r = train_topk_sae(planted.x, o);
  EXPECT_GT(r.stats.dead_features, 0);
  EXPECT_DOUBLE_EQ(r.stats.dead_fraction, r.stats.dead_features / 64.0);
  EXPECT_DOUBLE_EQ(r.stats.loss_curve.back().dead_fraction, r.stats.dead_fraction);
  EXPECT_EQ(r.stats.loss_curve.front().dead_fraction, 0.0) << "nothing is dead before dead_after_tokens";
}

TEST(SaeTrain, TheSaeWrittenLoadsAndEncodesIdentically) {
  TempDir dir("sae_train_written");
  const auto planted = planted_dictionary(32, 16, 3, 2048, 9);
  auto o = small_options();
  o.point = PointId{Point::LayerOutput, 2};
  o.model_name = "toy";
  o.normalize_activations = true;
  auto r = train_topk_sae(planted.x, o);
  r.sae.save_saelens(dir.path);
  auto loaded = Sae::load(dir.path);
  EXPECT_TRUE(torch::equal(loaded.encode(planted.x), r.sae.encode(planted.x)));
  EXPECT_TRUE(torch::equal(loaded.reconstruct(planted.x), r.sae.reconstruct(planted.x)));
  std::ifstream in(dir.path / "cfg.json");
  const auto cfg = nlohmann::json::parse(in);
  EXPECT_EQ(cfg.at("architecture"), "topk");
  EXPECT_EQ(cfg.at("k"), 4);
  EXPECT_EQ(cfg.at("d_in"), 16);
  EXPECT_EQ(cfg.at("d_sae"), 64);
  EXPECT_EQ(cfg.at("apply_b_dec_to_input"), true);
  EXPECT_EQ(cfg.at("normalize_activations"), "none");  // the scale is folded into the weights
  EXPECT_EQ(cfg.at("hook_name"), "blocks.2.hook_resid_post");
  EXPECT_EQ(cfg.at("model_name"), "toy");
  EXPECT_EQ(loaded.config().input_point, (PointId{Point::LayerOutput, 2}));
}

TEST(SaeTrain, AResumedRunEqualsAnUninterruptedOne) {
  TempDir dir("sae_train_resume");
  const auto planted = planted_dictionary(32, 16, 3, 2048, 10);
  auto o = small_options();
  o.loss_curve_points = 40;  // a point (and a callback) every step
  o.dead_after_tokens = 1000;  // latents die during the run: the counters are checkpointed too
  const auto uninterrupted = train_topk_sae(planted.x, o);

  o.checkpoint = dir.path / "ckpt.safetensors";
  o.checkpoint_every = 10;
  o.on_progress = [](const SaeTrainProgress& p) {
    if (p.step == 25) throw std::runtime_error("interrupted");
  };
  EXPECT_THROW(train_topk_sae(planted.x, o), std::runtime_error);  // the checkpoint of step 20 stays
  o.on_progress = nullptr;
  o.resume = true;
  const auto resumed = train_topk_sae(planted.x, o);
  EXPECT_TRUE(resumed.stats.resumed);
  const auto& a = uninterrupted.sae.weights();
  const auto& b = resumed.sae.weights();
  EXPECT_TRUE(torch::equal(a.W_enc, b.W_enc));
  EXPECT_TRUE(torch::equal(a.W_dec, b.W_dec));
  EXPECT_TRUE(torch::equal(a.b_enc, b.b_enc));
  EXPECT_TRUE(torch::equal(a.b_dec, b.b_dec));
  ASSERT_EQ(resumed.stats.loss_curve.size(), uninterrupted.stats.loss_curve.size());
  for (size_t i = 0; i < resumed.stats.loss_curve.size(); ++i)
    EXPECT_EQ(resumed.stats.loss_curve[i].mse, uninterrupted.stats.loss_curve[i].mse) << "step " << i + 1;
  EXPECT_EQ(resumed.stats.dead_features, uninterrupted.stats.dead_features);
  EXPECT_EQ(resumed.stats.heldout_fve, uninterrupted.stats.heldout_fve);

  // Another run's checkpoint is refused, naming the file and the setting.
  o.k = 3;
  try {
    train_topk_sae(planted.x, o);
    ADD_FAILURE() << "resumed another run's checkpoint";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("k was 4, now 3"), std::string::npos) << e.what();
  }
}

TEST(SaeTrain, BadOptionsNameTheField) {
  const auto x = torch::randn({64, 8});
  auto expect_error = [&](SaeTrainOptions o, const std::string& field) {
    try {
      train_topk_sae(x, o);
      ADD_FAILURE() << "no error for " << field;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  auto o = small_options();
  o.k = 65;
  expect_error(o, "SaeTrainOptions::k");
  o = small_options();
  o.batch_size = 0;
  expect_error(o, "SaeTrainOptions::batch_size");
  o = small_options();
  o.resume = true;
  expect_error(o, "SaeTrainOptions::resume");
  o = small_options();
  o.holdout_fraction = 1;
  expect_error(o, "SaeTrainOptions::holdout_fraction");
  EXPECT_THROW(train_topk_sae(torch::randn({4}), small_options()), Error);
  EXPECT_THROW(train_topk_sae(fs::path("/nonexistent/acts"), 2, small_options()), Error);
}

// The held-out sentences (prompt + answer) of the default model's corpus, never seen in training.
std::vector<std::string> heldout_sentences(size_t n) {
  std::vector<std::string> sentences;
  std::ifstream in(default_model_dir() / "corpus" / "heldout.jsonl");
  for (std::string line; std::getline(in, line) && sentences.size() < n;)
    if (!line.empty()) {
      const auto j = nlohmann::json::parse(line);
      sentences.push_back(j.at("prompt").get<std::string>() + j.at("answer").get<std::string>());
    }
  return sentences;
}

TEST(SaeTrain, TheCommittedSaeReachesTheDocumentedFveOnHeldOutTokens) {
  ASSERT_TRUE(fs::exists(kCommittedSae / "cfg.json")) << kCommittedSae;
  const auto sae = Sae::load(kCommittedSae);
  ASSERT_TRUE(sae.config().input_point.has_value());
  EXPECT_EQ(*sae.config().input_point, (PointId{Point::LayerOutput, 2}));
  StandardizedTransformer model(default_model_dir().string());
  CollectOptions o;
  o.layers = {2};
  o.all_tokens = true;
  o.progress = false;
  const auto x = collect_token_activations(model, heldout_sentences(310), o).activations[0].to(torch::kFloat64);
  const auto x_hat = sae.reconstruct(x.to(torch::kFloat32)).to(torch::kFloat64);
  const double fve = 1 - (x - x_hat).pow(2).sum().item<double>() / (x - x.mean(0)).pow(2).sum().item<double>();
  const double l0 = sae.encode(x.to(torch::kFloat32)).ne(0).sum().item<double>() / static_cast<double>(x.size(0));
  std::cout << "[ committed SAE ] " << x.size(0) << " held-out tokens: FVE " << fve << ", L0 " << l0 << "\n";
  EXPECT_GE(fve, kDocumentedHeldoutFveFloor);
  EXPECT_LE(l0, static_cast<double>(sae.config().k));
}

class SaeTrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first: " << NNTERP_CLI_PATH;
    std::ofstream prompts(tmp.path / "prompts.txt");
    for (const auto& s : heldout_sentences(40)) prompts << s << "\n";
    prompts.close();
    auto r = nnterp_cli("collect --prompts " + (tmp.path / "prompts.txt").string() + " --layers 1,2 --all-tokens -q --out-dir " +
                        acts());
    ASSERT_EQ(r.code, 0) << r.out;
  }
  std::string acts() const { return (tmp.path / "acts").string(); }
  std::string train(const std::string& flags) const {
    return "train-sae --activations " + acts() + " --features 64 --k 4 --batch-size 64 " + flags;
  }
  TempDir tmp{"sae_train_cli"};
};

TEST_F(SaeTrainCli, TrainsEndToEnd) {
  const auto out = tmp.path / "sae";
  auto r = nnterp_cli(train("--layer 2 --steps 30 -q --out " + out.string()));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("FVE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dead latents"), std::string::npos) << r.out;
  auto sae = Sae::load(out);
  EXPECT_EQ(sae.d_sae(), 64);
  EXPECT_EQ(*sae.config().input_point, (PointId{Point::LayerOutput, 2}));
  EXPECT_EQ(sae.config().model_name, "default");

  // --json with a checkpoint; resuming the finished run gives the same SAE without training again.
  const auto ckpt = (tmp.path / "ckpt.safetensors").string();
  r = nnterp_cli(train("--layer 2 --steps 30 --json --checkpoint " + ckpt + " --out " + (tmp.path / "sae2").string()));
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("steps"), 30);
  EXPECT_EQ(j.at("d_sae"), 64);
  EXPECT_GT(j.at("heldout_fve").get<double>(), 0.0);
  EXPECT_FALSE(j.at("loss_curve").empty());
  r = nnterp_cli(train("--layer 2 --steps 30 --json --resume --checkpoint " + ckpt + " --out " + (tmp.path / "sae3").string()));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("resumed"), true);
  EXPECT_TRUE(torch::equal(Sae::load(tmp.path / "sae2").weights().W_dec, Sae::load(tmp.path / "sae3").weights().W_dec));
}

TEST_F(SaeTrainCli, BadFlagsNameTheFlag) {
  const std::string out = " --out " + (tmp.path / "bad").string();
  const std::vector<std::pair<std::string, std::string>> cases{
      {train("--layer 2 --k 0" + out), "--k"},
      {train("--layer 2 --k 65" + out), "--k"},                   // more than --features
      {train("" + out), "--layer"},                               // two layers collected: which?
      {train("--layer 3" + out), "--layer"},                      // not collected
      {train("--layer 2 --resume" + out), "--resume"},            // without --checkpoint
      {train("--layer 2 --holdout 1.5" + out), "--holdout"},
      {train("--layer 2 --b-dec-init median" + out), "--b-dec-init"},
      {"train-sae --activations " + (tmp.path / "none").string() + " --features 64 --k 4" + out, "--activations"},
      {"train-sae --activations " + acts() + " --k 4" + out, "--features"},
  };
  for (const auto& [args, flag] : cases) {
    auto r = nnterp_cli(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_NE(r.out.find(flag), std::string::npos) << args << "\n" << r.out;
  }
}

}  // namespace nnterp::testing::sae_train_test
