// All-token collection (CollectOptions::all_tokens, `nnterp collect --all-tokens`): every real token of
// every prompt, as a direct trace of each prompt alone sees it, with its prompt and position; shards of
// whole prompts within the token budget; resuming; the manifest; the CLI flags.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "methods/methods_helpers.hpp"
#include "nnterp/error.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::testing::collect_all_tokens_test {

namespace fs = std::filesystem;

// Prompts of 1 to 9 tokens, so batches are left-padded.
const std::vector<std::string> kPrompts{"The capital of France is Paris", "Hi", "People in Spain speak Spanish",
                                        "The official language of Germany is German", "cat cat", "What is the capital of Italy? It is Rome",
                                        "The sky", "Paris Paris Paris"};

class CollectAllTokens : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model = new StandardizedTransformer(default_model_dir().string()); }
  static void TearDownTestSuite() { delete model; }

  // What a trace of each prompt alone gives at layers.{layer}.output: [tokens, hidden] for every
  // token, with the prompt and position of each row.
  struct Expected {
    torch::Tensor acts, prompt_index, position;
  };
  static Expected direct(int layer, bool skip_first) {
    std::vector<torch::Tensor> acts, prompt, position;
    for (size_t p = 0; p < kPrompts.size(); ++p) {
      torch::Tensor h;
      model->trace(kPrompts[p], [&](Trace& t) { h = t.at(PointId{Point::LayerOutput, layer}).clone(); });
      const int64_t T = h.size(1), first = skip_first ? 1 : 0;
      acts.push_back(h[0].narrow(0, first, T - first));
      prompt.push_back(torch::full({T - first}, static_cast<int64_t>(p), torch::kInt64));
      position.push_back(torch::arange(first, T, torch::kInt64));
    }
    return {torch::cat(acts), torch::cat(prompt), torch::cat(position)};
  }
  static CollectOptions all_tokens_options(std::vector<int> layers) {
    CollectOptions o;
    o.layers = std::move(layers);
    o.all_tokens = true;
    o.batch_size = 3;  // prompts of different lengths share each batch
    o.progress = false;
    return o;
  }
  static StandardizedTransformer* model;
};
StandardizedTransformer* CollectAllTokens::model = nullptr;

TEST_F(CollectAllTokens, StoresExactlyTheRealTokensOfADirectTrace) {
  for (bool skip_first : {false, true}) {
    const auto expected = direct(2, skip_first);
    auto o = all_tokens_options({1, 2});
    o.skip_first_token = skip_first;
    auto r = collect_token_activations(*model, kPrompts, o);  // in memory
    EXPECT_EQ(r.num_rows, expected.acts.size(0));
    ASSERT_EQ(r.activations.sizes(), (std::vector<int64_t>{2, expected.acts.size(0), 128}));
    EXPECT_TRUE(close(r.activations[1], expected.acts, 1e-4)) << (r.activations[1] - expected.acts).abs().max();
    EXPECT_TRUE(torch::equal(r.prompt_index, expected.prompt_index));
    EXPECT_TRUE(torch::equal(r.position, expected.position));

    TempDir dir(std::string("all_tokens_") + (skip_first ? "skip" : "all"));
    o.out_dir = dir.path;
    o.max_shard_bytes = 2 * 128 * 4 * 12;  // 12 tokens of 2 layers a shard: several shards
    auto streamed = collect_token_activations(*model, kPrompts, o);
    EXPECT_GT(streamed.shards.size(), 2u);
    auto shards = ActivationShards::open(dir.path);
    EXPECT_TRUE(shards.all_tokens());
    EXPECT_EQ(shards.num_rows(), expected.acts.size(0));
    EXPECT_EQ(shards.num_prompts(), static_cast<int64_t>(kPrompts.size()));
    EXPECT_TRUE(close(shards.layer(2), r.activations[1], 1e-4));  // batched differently: padding differs
    EXPECT_TRUE(torch::equal(shards.prompt_index(), expected.prompt_index));
    EXPECT_TRUE(torch::equal(shards.position(), expected.position));
  }
}

TEST_F(CollectAllTokens, ShardsHoldWholePromptsWithinTheTokenBudgetAndResume) {
  TempDir dir("all_tokens_resume");
  auto o = all_tokens_options({2});
  o.out_dir = dir.path;
  o.max_shard_bytes = 128 * 4 * 10;  // 10 tokens a shard (a longer prompt alone)
  const auto whole = collect_token_activations(*model, kPrompts, all_tokens_options({2})).activations[0];

  int seen = 0;
  o.on_shard = [&](const ShardInfo&) {
    if (++seen == 2) throw std::runtime_error("interrupted");
  };
  EXPECT_THROW(collect_token_activations(*model, kPrompts, o), std::runtime_error);
  o.on_shard = nullptr;
  auto resumed = collect_token_activations(*model, kPrompts, o);
  EXPECT_EQ(resumed.shards_skipped, 2);
  EXPECT_EQ(resumed.shards_written, static_cast<int64_t>(resumed.shards.size()) - 2);
  EXPECT_EQ(resumed.shard_size, 10);

  auto shards = ActivationShards::open(dir.path);
  EXPECT_TRUE(close(shards.layer(2), whole, 1e-4));
  int64_t next_prompt = 0;
  for (int64_t s = 0; s < shards.num_shards(); ++s) {
    auto f = io::SafetensorsFile::open(shards.shard_path(s));
    auto prompt = f->tensor("prompt_index");
    const int64_t first = prompt[0].item<int64_t>(), last = prompt[-1].item<int64_t>();
    EXPECT_EQ(first, next_prompt) << "shard " << s << " starts where the previous one ended";
    EXPECT_TRUE(shards.shard_rows(s) <= 10 || first == last) << "shard " << s << ": over budget with more than one prompt";
    EXPECT_EQ(f->tensor("layers.2").size(0), shards.shard_rows(s));
    next_prompt = last + 1;
  }
  EXPECT_EQ(next_prompt, static_cast<int64_t>(kPrompts.size()));

  // The manifest says what was collected; skipping the first token is another collection.
  std::ifstream in(dir.path / "manifest.json");
  const auto manifest = nlohmann::json::parse(in);
  EXPECT_EQ(manifest.at("all_tokens"), true);
  EXPECT_EQ(manifest.at("num_tokens").get<int64_t>(), whole.size(0));
  EXPECT_FALSE(manifest.contains("idx"));
  o.skip_first_token = true;
  EXPECT_THROW(collect_token_activations(*model, kPrompts, o), Error);
  o.overwrite = true;
  auto other = collect_token_activations(*model, kPrompts, o);
  EXPECT_EQ(other.num_rows, whole.size(0) - static_cast<int64_t>(kPrompts.size()));
}

TEST_F(CollectAllTokens, OneTokenCollectionsAreUnchanged) {
  TempDir dir("one_token");
  CollectOptions o;
  o.layers = {2};
  o.out_dir = dir.path;
  o.progress = false;
  auto r = collect_token_activations(*model, kPrompts, o);
  EXPECT_EQ(r.num_rows, static_cast<int64_t>(kPrompts.size()));
  std::ifstream in(dir.path / "manifest.json");
  const auto manifest = nlohmann::json::parse(in);
  EXPECT_FALSE(manifest.contains("all_tokens"));
  EXPECT_EQ(manifest.at("idx"), -1);
  auto shards = ActivationShards::open(dir.path);
  EXPECT_FALSE(shards.all_tokens());
  EXPECT_EQ(shards.num_rows(), static_cast<int64_t>(kPrompts.size()));
  EXPECT_THROW(shards.position(), Error);
  EXPECT_TRUE(close(shards.layer(2), get_token_activations(*model, kPrompts, -1, {2})[0]));
}

TEST_F(CollectAllTokens, Cli) {
  if (!fs::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first";
  TempDir dir("all_tokens_cli");
  {
    std::ofstream prompts(dir.path / "prompts.txt");
    for (const auto& p : kPrompts) prompts << p << "\n";
  }
  const std::string common = "--prompts " + (dir.path / "prompts.txt").string() + " --layers 2 -q ";
  auto r = nnterp_cli("collect " + common + "--all-tokens --out-dir " + (dir.path / "acts").string() + " --out " +
                      (dir.path / "acts.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("tokens)"), std::string::npos) << r.out;
  const auto expected = direct(2, false);
  auto file = io::SafetensorsFile::open(dir.path / "acts.safetensors");
  EXPECT_TRUE(torch::equal(file->tensor("position"), expected.position));
  EXPECT_TRUE(torch::equal(file->tensor("prompt_index"), expected.prompt_index));
  EXPECT_TRUE(close(file->tensor("activations")[0], expected.acts, 1e-4));

  r = nnterp_cli("collect " + common + "--skip-first-token --out-dir " + (dir.path / "b").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--all-tokens"), std::string::npos) << r.out;
  r = nnterp_cli("collect " + common + "--all-tokens --idx 0 --out-dir " + (dir.path / "c").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--idx"), std::string::npos) << r.out;
}

}  // namespace nnterp::testing::collect_all_tokens_test
