// The tuned lens (include/nnterp/tuned_lens.hpp) on the embedded default model: an untrained lens is
// the logit lens, files round-trip and bad ones are clear errors, training lowers the KL, a resumed
// run equals an uninterrupted one, and the committed lens (models/default/tuned_lens.safetensors)
// beats the logit lens on the held-out prompts at every layer but the last (issue 21, must-show 2).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <stdexcept>

#include "methods/methods_helpers.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/inputs.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/tuned_lens.hpp"

namespace nnterp::testing {
namespace tuned_lens_tests {  // named: the test binary is a unity build

namespace fs = std::filesystem;

class TunedLensTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model = new StandardizedTransformer(default_model_dir().string()); }
  static void TearDownTestSuite() {
    delete model;
    model = nullptr;
  }
  static StandardizedTransformer* model;
  TempDir tmp{"tuned_lens"};
  std::string path(const std::string& name) const { return (tmp.path / name).string(); }

  // The first `n` training sentences of the default model's corpus.
  static std::vector<std::string> train_prompts(size_t n) {
    auto all = io::read_prompt_file((default_model_dir() / "corpus" / "train.txt").string());
    all.resize(std::min(n, all.size()));
    return all;
  }
  // A lens with random translators (exact round trips need values that are not all zero).
  static TunedLens random_lens(int64_t layers, int64_t hidden, uint64_t seed) {
    torch::manual_seed(seed);
    std::vector<torch::Tensor> w, b;
    for (int64_t l = 0; l < layers; ++l) {
      w.push_back(torch::randn({hidden, hidden}) * 0.01);
      b.push_back(torch::randn({hidden}) * 0.01);
    }
    TunedLensInfo info;
    info.model = "test";
    info.steps = 7;
    info.train_loss = 0.125;
    return TunedLens(w, b, info);
  }
  static void expect_same_lens(const TunedLens& a, const TunedLens& b) {
    ASSERT_EQ(a.num_layers(), b.num_layers());
    for (int l = 0; l < a.num_layers(); ++l) {
      EXPECT_TRUE(torch::equal(a.weight(l), b.weight(l))) << "layer " << l << " weight";
      EXPECT_TRUE(torch::equal(a.bias(l), b.bias(l))) << "layer " << l << " bias";
    }
  }
  // The Error a call throws (fails the test when it throws none or another kind).
  template <class F>
  static Error error_of(F&& f) {
    try {
      f();
    } catch (const Error& e) {
      return e;
    }
    ADD_FAILURE() << "no nnterp::Error thrown";
    return Error(ErrorKind::Io, "", "");
  }
};

StandardizedTransformer* TunedLensTest::model = nullptr;

TEST_F(TunedLensTest, UntrainedLensIsTheLogitLensExactly) {
  const std::vector<std::string> prompts = {"The capital of France is", "The sky is", "People in Spain speak"};
  const TunedLens zero = TunedLens::identity(*model);
  EXPECT_EQ(zero.num_layers(), model->num_layers());
  EXPECT_EQ(zero.hidden_size(), model->hidden_size());
  for (int64_t batch : {1, 2, 32}) {
    LensOptions o;
    o.batch_size = batch;
    EXPECT_TRUE(torch::equal(tuned_lens(*model, prompts, zero, o), logit_lens(*model, prompts, o))) << "batch size " << batch;
  }
  LensOptions some;
  some.layers = {0, -1};
  some.idx = 1;
  EXPECT_TRUE(torch::equal(tuned_lens(*model, prompts, zero, some), logit_lens(*model, prompts, some)));
}

TEST_F(TunedLensTest, SaveLoadRoundTripIsExact) {
  const TunedLens lens = random_lens(model->num_layers(), model->hidden_size(), 1);
  lens.save(path("lens.safetensors"));
  const TunedLens back = TunedLens::load(path("lens.safetensors"), *model);
  expect_same_lens(lens, back);
  EXPECT_EQ(back.info().model, "test");
  EXPECT_EQ(back.info().steps, 7);
  EXPECT_DOUBLE_EQ(back.info().train_loss, 0.125);
  // The file uses the tuned-lens package's state-dict names and records the model's sizes.
  auto file = io::SafetensorsFile::open(path("lens.safetensors"));
  EXPECT_TRUE(file->contains("layer_translators.0.weight"));
  EXPECT_TRUE(file->contains("layer_translators.3.bias"));
  EXPECT_EQ(file->metadata().at("hidden_size"), std::to_string(model->hidden_size()));
  EXPECT_EQ(file->metadata().at("num_layers"), std::to_string(model->num_layers()));
  // translate is h + A h + b.
  auto h = torch::randn({5, model->hidden_size()});
  EXPECT_TRUE(close(back.translate(1, h), h + torch::matmul(h, lens.weight(1).t()) + lens.bias(1)));
}

TEST_F(TunedLensTest, BadLensFilesAreErrorsNamingTheFile) {
  const int64_t L = model->num_layers(), H = model->hidden_size();
  random_lens(L, H / 2, 2).save(path("narrow.safetensors"));
  random_lens(L - 1, H, 3).save(path("short.safetensors"));
  auto e = error_of([&] { TunedLens::load(path("narrow.safetensors"), *model); });
  EXPECT_EQ(e.kind(), ErrorKind::Shape);
  EXPECT_NE(std::string(e.what()).find("narrow.safetensors"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("hidden size 64"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("hidden size 128"), std::string::npos) << e.what();
  e = error_of([&] { TunedLens::load(path("short.safetensors"), *model); });
  EXPECT_EQ(e.kind(), ErrorKind::Shape);
  EXPECT_NE(std::string(e.what()).find("short.safetensors"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("3 layers"), std::string::npos) << e.what();
  std::printf("wrong hidden size: %s\nwrong layer count: %s\n", error_of([&] { TunedLens::load(path("narrow.safetensors"), *model); }).what(), e.what());

  // A lens missing one tensor, and a safetensors file that is no lens at all.
  auto full = io::SafetensorsFile::open(path("narrow.safetensors"));
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  const TunedLens good = random_lens(L, H, 4);
  for (int l = 0; l < L; ++l) {
    tensors.emplace_back("layer_translators." + std::to_string(l) + ".weight", good.weight(l));
    if (l != 2) tensors.emplace_back("layer_translators." + std::to_string(l) + ".bias", good.bias(l));
  }
  io::save_safetensors(path("missing.safetensors"), tensors, full->metadata());
  e = error_of([&] { TunedLens::load(path("missing.safetensors"), *model); });
  EXPECT_EQ(e.kind(), ErrorKind::MissingWeight);
  EXPECT_NE(std::string(e.what()).find("missing.safetensors"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("layer_translators.2.bias"), std::string::npos) << e.what();
  io::save_safetensors(path("other.safetensors"), {{"x", torch::zeros({2})}});
  e = error_of([&] { TunedLens::load(path("other.safetensors"), *model); });
  EXPECT_EQ(e.kind(), ErrorKind::Format);
  EXPECT_NE(std::string(e.what()).find("other.safetensors"), std::string::npos) << e.what();
  EXPECT_EQ(error_of([&] { tuned_lens(*model, "The sky is", random_lens(L - 1, H, 5)); }).kind(), ErrorKind::Shape);
}

TEST_F(TunedLensTest, AFewStepsOfTrainingLowerTheKl) {
  const auto prompts = train_prompts(64);
  const auto model_before = logit_lens(*model, prompts);
  TunedLensTrainOptions o;
  o.steps = 20;
  o.batch_size = 16;
  std::vector<double> losses;
  o.on_step = [&](const TunedLensTrainProgress& p) { losses.push_back(p.loss); };
  const TunedLens lens = train_tuned_lens(*model, prompts, o);
  ASSERT_EQ(losses.size(), 20u);
  EXPECT_LT(losses.back(), losses.front());
  EXPECT_EQ(lens.info().steps, 20);
  auto before = lens_kl_to_final(*model, prompts, TunedLens::identity(*model));
  auto after = lens_kl_to_final(*model, prompts, lens);
  for (int64_t l = 0; l + 1 < model->num_layers(); ++l)
    EXPECT_LT(after[l].item<double>(), before[l].item<double>()) << "layer " << l;
  // The last layer is never trained: its translator stays zero, its KL is 0.
  EXPECT_EQ(lens.weight(static_cast<int>(model->num_layers() - 1)).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(after[model->num_layers() - 1].item<double>(), 0.0);
  // The model's own weights are untouched (no gradient reaches them).
  EXPECT_TRUE(torch::equal(logit_lens(*model, prompts), model_before));
}

TEST_F(TunedLensTest, ResumedRunEqualsUninterruptedRun) {
  const auto prompts = train_prompts(40);
  for (LensOptimizer optimizer : {LensOptimizer::Sgd, LensOptimizer::Adam}) {
    SCOPED_TRACE(lens_optimizer_name(optimizer));
    TunedLensTrainOptions o;
    o.steps = 7;
    o.batch_size = 16;  // 40 prompts: steps straddle epochs
    o.optimizer = optimizer;
    const TunedLens uninterrupted = train_tuned_lens(*model, prompts, o);

    o.checkpoint = path("ckpt.safetensors");
    o.checkpoint_every = 3;
    o.on_step = [](const TunedLensTrainProgress& p) {
      if (p.step == 4) throw std::runtime_error("killed");  // after step 4; the checkpoint is step 3's
    };
    EXPECT_THROW(train_tuned_lens(*model, prompts, o), std::runtime_error);
    o.on_step = nullptr;
    o.resume = true;
    int64_t first_step = 0;
    o.on_step = [&](const TunedLensTrainProgress& p) {
      if (!first_step) first_step = p.step;
    };
    const TunedLens resumed = train_tuned_lens(*model, prompts, o);
    EXPECT_EQ(first_step, 4);  // it went on from step 3
    expect_same_lens(uninterrupted, resumed);
    EXPECT_EQ(resumed.info().steps, 7);
    EXPECT_DOUBLE_EQ(resumed.info().train_loss, uninterrupted.info().train_loss);
    // A checkpoint is a lens file too.
    expect_same_lens(uninterrupted, TunedLens::load(o.checkpoint, *model));

    // A checkpoint of another run is refused, naming what differs.
    o.seed = 7;
    auto e = error_of([&] { train_tuned_lens(*model, prompts, o); });
    EXPECT_NE(std::string(e.what()).find("train.seed"), std::string::npos) << e.what();
    fs::remove(o.checkpoint);
  }
}

TEST_F(TunedLensTest, CommittedLensBeatsTheLogitLensOnHeldOutPrompts) {
  const fs::path file = default_model_dir() / "tuned_lens.safetensors";
  ASSERT_TRUE(fs::exists(file)) << file;
  const TunedLens lens = TunedLens::load(file, *model);
  EXPECT_EQ(lens.info().fingerprint, unembedding_fingerprint(*model));  // trained on this very model
  EXPECT_EQ(lens.info().model, "default");
  const auto heldout = io::read_prompt_file((default_model_dir() / "corpus" / "heldout.jsonl").string());
  ASSERT_EQ(heldout.size(), 310u);
  auto plain = lens_kl_to_final(*model, heldout, TunedLens::identity(*model));
  auto tuned = lens_kl_to_final(*model, heldout, lens);
  auto plain_last = lens_kl_to_final(*model, heldout, TunedLens::identity(*model), 32, /*last_token_only=*/true);
  auto tuned_last = lens_kl_to_final(*model, heldout, lens, 32, true);
  std::printf("KL(final || lens) on %zu held-out prompts, nats per token (all tokens | last token)\n"
              "  layer  logit lens  tuned lens | logit lens  tuned lens\n", heldout.size());
  const int64_t L = model->num_layers();
  for (int64_t l = 0; l < L; ++l)
    std::printf("  %5lld  %10.4f  %10.4f | %10.4f  %10.4f\n", static_cast<long long>(l), plain[l].item<double>(),
                tuned[l].item<double>(), plain_last[l].item<double>(), tuned_last[l].item<double>());
  for (int64_t l = 0; l + 1 < L; ++l) {
    EXPECT_LT(tuned[l].item<double>(), plain[l].item<double>()) << "layer " << l;
    EXPECT_LT(tuned_last[l].item<double>(), plain_last[l].item<double>()) << "layer " << l << ", last token";
  }
  EXPECT_EQ(tuned[L - 1].item<double>(), 0.0);
  EXPECT_EQ(plain[L - 1].item<double>(), 0.0);
}

// ---- the CLI -------------------------------------------------------------------------------------

class TunedLensCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first: " << NNTERP_CLI_PATH;
  }
  TempDir tmp{"tuned_lens_cli"};
  std::string path(const std::string& name) const { return (tmp.path / name).string(); }
  static bool has(const CliResult& r, const std::string& text) { return r.out.find(text) != std::string::npos; }
};

TEST_F(TunedLensCli, TrainLensThenLogitLensTuned) {
  const std::string prompts = "--prompt 'The capital of France is Paris' --prompt 'People in Spain speak Spanish' --prompt 'The sky is blue'";
  auto r = nnterp_cli("train-lens " + prompts + " --steps 4 --batch-size 2 --out " + path("lens.safetensors") +
                      " --checkpoint " + path("ckpt.safetensors") + " --checkpoint-every 2 --quiet --threads 1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r, "trained 4 steps")) << r.out;
  EXPECT_TRUE(has(r, "logit lens  tuned lens")) << r.out;
  StandardizedTransformer model(default_model_dir().string());
  const TunedLens lens = TunedLens::load(path("lens.safetensors"), model);
  EXPECT_EQ(lens.info().steps, 4);

  // Resuming a finished run changes nothing; --resume without --checkpoint is a usage error.
  r = nnterp_cli("train-lens " + prompts + " --steps 4 --batch-size 2 --out " + path("again.safetensors") + " --checkpoint " +
                 path("ckpt.safetensors") + " --checkpoint-every 2 --resume --quiet --threads 1");
  ASSERT_EQ(r.code, 0) << r.out;
  const TunedLens again = TunedLens::load(path("again.safetensors"), model);
  for (int l = 0; l < lens.num_layers(); ++l) EXPECT_TRUE(torch::equal(lens.weight(l), again.weight(l)));
  r = nnterp_cli("train-lens " + prompts + " --out " + path("x.safetensors") + " --resume");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_TRUE(has(r, "--resume needs --checkpoint")) << r.out;

  // logit-lens --tuned shows the tuned lens: the same numbers as the library's tuned_lens.
  r = nnterp_cli("logit-lens --prompt 'The capital of France is' --tuned " + path("lens.safetensors") + " --json --threads 1");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["lens"], "tuned");
  auto probs = tuned_lens(model, "The capital of France is", lens);
  auto top = probs[0][0].argmax().item<int64_t>();
  EXPECT_EQ(j["prompts"][0]["layers"][0]["top"][0]["id"].get<int64_t>(), top);
  r = nnterp_cli("logit-lens --prompt 'The capital of France is' --tuned " + path("lens.safetensors") + " --html " +
                 path("lens.html") + " --quiet --threads 1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r, "tuned lens")) << r.out;
  EXPECT_TRUE(fs::exists(path("lens.html")));
}

TEST_F(TunedLensCli, BadLensIsAnErrorNamingTheFile) {
  std::vector<torch::Tensor> w, b;
  for (int l = 0; l < 4; ++l) w.push_back(torch::zeros({64, 64})), b.push_back(torch::zeros({64}));
  TunedLens(w, b).save(path("narrow.safetensors"));
  auto r = nnterp_cli("logit-lens --prompt 'The sky is' --tuned " + path("narrow.safetensors"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(has(r, "narrow.safetensors")) << r.out;
  EXPECT_TRUE(has(r, "hidden size 64")) << r.out;
  r = nnterp_cli("logit-lens --prompt 'The sky is' --tuned " + path("narrow.safetensors") + " --inverse");
  EXPECT_EQ(r.code, 2) << r.out;
}

}  // namespace tuned_lens_tests
}  // namespace nnterp::testing
