// nnterp's methods on the fixture models: activations and their collection to disk, the logit
// lens, patchscopes, run_prompts with target tokens, activation patching, steering vectors, tables.
#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <nlohmann/json.hpp>

#include "common/fixtures.hpp"
#include "methods/methods_helpers.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::testing {
namespace {

namespace fs = std::filesystem;

class Methods : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    llama = new StandardizedTransformer((hf_fixture_dir() / "llama").string());
    gpt2 = new StandardizedTransformer((hf_fixture_dir() / "gpt2").string());
    tiny = new StandardizedTransformer(tiny_model_dir().string());
  }
  static void TearDownTestSuite() {
    delete llama;
    delete gpt2;
    delete tiny;
  }
  static StandardizedTransformer* llama;
  static StandardizedTransformer* gpt2;
  static StandardizedTransformer* tiny;
};
StandardizedTransformer* Methods::llama = nullptr;
StandardizedTransformer* Methods::gpt2 = nullptr;
StandardizedTransformer* Methods::tiny = nullptr;

// ---- 1. logit lens, on every architecture ------------------------------------------------------

class LogitLensAllArchs : public ::testing::TestWithParam<std::string> {};

TEST_P(LogitLensAllArchs, LastLayerIsNextTokenProbsAndRowsSumToOne) {
  Fixture fx(GetParam());
  StandardizedTransformer model(fx.dir.string());
  TokenBatch batch{fx.input_ids, fx.attention_mask};
  auto lens = logit_lens_with_inverse(model, batch);
  const int64_t B = fx.input_ids.size(0), L = model.num_layers(), V = model.vocab_size();
  ASSERT_EQ(lens.probs.sizes(), (std::vector<int64_t>{B, L, V}));
  ASSERT_EQ(lens.inverse_probs.sizes(), lens.probs.sizes());
  EXPECT_TRUE(close(lens.probs.sum(-1), torch::ones({B, L})));
  EXPECT_TRUE(close(lens.inverse_probs.sum(-1), torch::ones({B, L})));
  torch::Tensor expected;
  model.trace(batch, [&](Trace& t) { expected = t.next_token_probs(); });
  EXPECT_TRUE(close(lens.probs.select(1, L - 1), expected)) << (lens.probs.select(1, L - 1) - expected).abs().max();
  EXPECT_TRUE(close(next_token_probs(model, batch), expected));
  // The inverse lens is nnterp's: the final norm's output negated, then lm_head (where the final
  // norm has a bias or lm_head one, this differs from the lens of -h).
  torch::Tensor h0;
  model.trace(batch, [&](Trace& t) { h0 = t.layers_output[0].select(1, -1).clone(); });
  EXPECT_TRUE(close(lens.inverse_probs.select(1, 0), torch::softmax(model.unembed(-model.final_norm(h0)), -1)));
  // Batch size 1 gives the same (each row then runs without the batch's extra left pads), unless the
  // architecture's outputs depend on the padding as HF's do.
  if (!model.padding_dependence().empty()) return;
  LensOptions one;
  one.batch_size = 1;
  EXPECT_TRUE(close(logit_lens(model, batch, one), lens.probs));
}

INSTANTIATE_TEST_SUITE_P(HF, LogitLensAllArchs, ::testing::ValuesIn(hf_fixture_names()),
                         [](const auto& info) { return info.param; });

// ---- activations -------------------------------------------------------------------------------

TEST_F(Methods, GetTokenActivationsMatchesATrace) {
  auto batch = random_batch(5, 2, 7, 1000, 1);
  auto acts = get_token_activations(*llama, batch, -1, {2, 0});
  ASSERT_EQ(acts.sizes(), (std::vector<int64_t>{2, 5, llama->hidden_size()}));
  torch::Tensor h0, h2, a1;
  llama->trace(batch, [&](Trace& t) {
    h0 = t.layers_output[0].select(1, -1).clone();
    a1 = t.attentions_output[1].select(1, 0).clone();
    h2 = t.layers_output[2].select(1, -1).clone();
  });
  EXPECT_TRUE(torch::equal(acts[0], h2));
  EXPECT_TRUE(torch::equal(acts[1], h0));
  // idx >= 0 counts from each prompt's first token: idx 0 of a padded row is its first real token.
  auto first = get_token_activations(*llama, batch, 0, {1}, Point::AttnOutput)[0];
  auto pos = token_positions(batch.attention_mask, 0);
  for (int64_t b = 0; b < 5; ++b) {
    torch::Tensor row;
    llama->trace(batch, [&](Trace& t) { row = t.attentions_output[1][b][pos[b].item<int64_t>()].clone(); });
    EXPECT_TRUE(torch::equal(first[b], row)) << b;
  }
  (void)a1;
}

TEST_F(Methods, BadArgumentsGiveClearErrors) {
  auto batch = random_batch(3, 2, 4, 1000, 2);
  auto expect_error = [](const std::function<void()>& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error (expected one mentioning '" << needle << "')";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { get_token_activations(*llama, batch, -1, {3}); }, "layer 3 is out of range");
  expect_error([&] { get_token_activations(*llama, batch, -5); }, "token index -5");
  expect_error([&] { get_token_activations(*llama, batch, -1, {}, Point::AttnProbs); }, "attn_probs");
  expect_error([&] { get_token_activations(*llama, "hello"); }, "no tokenizer");
  TokenBatch right{torch::tensor({{5, 6, 0}, {5, 6, 7}}, torch::kInt64), torch::tensor({{1, 1, 0}, {1, 1, 1}}, torch::kInt64)};
  expect_error([&] { get_token_activations(*llama, right); }, "left-padded");
  expect_error([&] { collect_token_activations_batched(*llama, batch, 0); }, "batch_size");
  expect_error([&] { patchscope_lens(*llama, torch::zeros({2, 3, 64})); }, "latents");
  expect_error([&] { ActivationShards::open(fs::temp_directory_path() / "nnterp_no_such_collection"); }, "manifest.json");
}

// ---- 2. batched collection, streaming, resuming, bounded memory ------------------------------------

TEST_F(Methods, BatchedCollectionEqualsOneUnbatchedRun) {
  for (auto* model : {llama, gpt2}) {  // rotary and learned positions: position ids must follow the mask
    auto batch = random_batch(13, 1, 9, 1000, 3);
    for (int64_t idx : {-1, -2, 0}) {
      // idx -2 and 0 need prompts of at least 2 tokens.
      TokenBatch b = idx == -1 ? batch : random_batch(13, 2, 9, 1000, 4);
      auto whole = get_token_activations(*model, b, idx, {0, 2});
      for (int64_t bs : {1, 4, 5, 13, 64}) {
        auto got = collect_token_activations_batched(*model, b, bs, {0, 2}, idx);
        EXPECT_TRUE(close(got, whole)) << model->architecture() << " batch " << bs << " idx " << idx << ": "
                                       << (got - whole).abs().max();
      }
    }
  }
}

TEST_F(Methods, StreamedShardsEqualTheInMemoryResultAndResume) {
  TempDir tmp("stream");
  auto batch = random_batch(23, 1, 8, 1000, 5);
  auto memory = collect_token_activations_batched(*llama, batch, 3, {0, 1, 2});
  CollectOptions o;
  o.layers = {0, 1, 2};
  o.batch_size = 3;
  o.shard_size = 5;
  o.out_dir = tmp.path / "acts";
  o.progress = false;
  auto r = collect_token_activations(*llama, batch, o);
  EXPECT_FALSE(r.activations.defined());
  EXPECT_EQ(r.shards.size(), 5u);
  EXPECT_EQ(r.shards_written, 5);
  EXPECT_TRUE(fs::exists(o.out_dir / "shard-00004.safetensors"));
  auto shards = ActivationShards::open(o.out_dir);
  EXPECT_EQ(shards.num_prompts(), 23);
  EXPECT_TRUE(close(shards.load(), memory));
  EXPECT_TRUE(close(shards.layer(1), memory[1]));
  EXPECT_TRUE(torch::equal(shards.prompt_index(), torch::arange(23, torch::kInt64)));
  // Each shard is a plain safetensors file: layers.{i} [n, hidden] and prompt_index.
  auto f = io::SafetensorsFile::open(o.out_dir / "shard-00001.safetensors");
  EXPECT_EQ(f->tensor("layers.2").sizes(), (std::vector<int64_t>{5, 64}));
  EXPECT_TRUE(torch::equal(f->tensor("prompt_index"), torch::arange(5, 10, torch::kInt64)));

  // Interrupted after two shards: the rerun computes only the others.
  TempDir tmp2("resume");
  o.out_dir = tmp2.path;
  int seen = 0;
  o.on_shard = [&](const ShardInfo&) {
    if (++seen == 2) throw std::runtime_error("interrupted");
  };
  EXPECT_THROW(collect_token_activations(*llama, batch, o), std::runtime_error);
  o.on_shard = nullptr;
  auto resumed = collect_token_activations(*llama, batch, o);
  EXPECT_EQ(resumed.shards_skipped, 2);
  EXPECT_EQ(resumed.shards_written, 3);
  EXPECT_TRUE(close(load_activations(tmp2.path), memory));
  // A damaged shard is recomputed, and only it.
  { std::ofstream(tmp2.path / "shard-00003.safetensors", std::ios::trunc) << "garbage"; }
  auto repaired = collect_token_activations(*llama, batch, o);
  EXPECT_EQ(repaired.shards_written, 1);
  EXPECT_EQ(repaired.shards_skipped, 4);
  EXPECT_TRUE(close(load_activations(tmp2.path), memory));
  // Another collection into the same folder is refused unless overwriting.
  o.layers = {1};
  EXPECT_THROW(collect_token_activations(*llama, batch, o), Error);
  o.overwrite = true;
  auto other = collect_token_activations(*llama, batch, o);
  EXPECT_EQ(other.shards_written, 5);
  EXPECT_TRUE(close(load_activations(tmp2.path), memory.narrow(0, 1, 1)));
}

TEST_F(Methods, StreamedCollectionMemoryIsBoundedByOneShard) {
  TempDir tmp("bounded");
  auto batch = random_batch(600, 2, 5, 1000, 6);
  CollectOptions o;
  o.layers = {0, 1, 2};
  o.batch_size = 16;
  o.max_shard_bytes = 8 << 10;  // 8 KiB: 3 layers × 64 × 4 bytes = 768 bytes a prompt → 10 prompts a shard
  o.out_dir = tmp.path;
  o.progress = false;
  o.dtype = torch::kFloat16;   // 384 bytes a prompt → 21 prompts a shard
  auto r = collect_token_activations(*llama, batch, o);
  EXPECT_EQ(r.shard_size, 21);
  EXPECT_EQ(r.shards_written, (600 + 20) / 21);
  EXPECT_LE(r.peak_buffer_bytes, o.max_shard_bytes);
  auto loaded = load_activations(tmp.path);
  EXPECT_EQ(loaded.scalar_type(), torch::kFloat16);
  EXPECT_EQ(loaded.sizes(), (std::vector<int64_t>{3, 600, 64}));
  auto some = get_token_activations(*llama, input_slice(batch, 590, 600), -1, {2});
  EXPECT_TRUE(close(loaded[2].narrow(0, 590, 10).to(torch::kFloat32), some[0], 2e-3));
}

// ---- 3. patchscopes ------------------------------------------------------------------------------

TEST_F(Methods, PatchscopeWithSourceEqualToTargetReproducesTheTarget) {
  auto batch = random_batch(4, 3, 8, 1000, 7);
  std::vector<TargetPrompt> targets;
  for (int64_t b = 0; b < 4; ++b) {
    TargetPrompt t;
    auto row = batch.input_ids[b].masked_select(batch.attention_mask[b].to(torch::kBool));
    t.token_ids.assign(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    targets.push_back(t);
  }
  auto lens = patchscope_lens(*llama, batch, targets);
  ASSERT_EQ(lens.sizes(), (std::vector<int64_t>{4, 3, 1000}));
  auto own = next_token_probs(*llama, batch);
  for (int l = 0; l < 3; ++l) EXPECT_TRUE(close(lens.select(1, l), own)) << "layer " << l;
}

TEST_F(Methods, PatchscopeEqualsAManualPatchAndLatentsGiveTheSame) {
  auto sources = random_batch(3, 2, 6, 1000, 8);
  TargetPrompt target;
  target.token_ids = {5, 17, 5, 17, 9, 31, 9, 31, 44};
  target.index_to_patch = -1;
  PatchscopeOptions o;
  o.layers = {1, 0};
  o.batch_size = 2;
  auto lens = patchscope_lens(*llama, sources, {target}, o);
  auto latents = get_token_activations(*llama, sources, -1, {1, 0});
  EXPECT_TRUE(close(patchscope_lens(*llama, latents, {target}, o), lens));
  auto tb = left_pad({target.token_ids, target.token_ids, target.token_ids});
  for (size_t li = 0; li < 2; ++li) {
    torch::Tensor probs;
    llama->trace(tb, [&](Trace& t) {
      t.layers_output[o.layers[li]].select(1, -1).copy_(latents[static_cast<int64_t>(li)]);
      probs = t.next_token_probs();
    });
    EXPECT_TRUE(close(lens.select(1, static_cast<int64_t>(li)), probs)) << "layer " << o.layers[li];
  }
  // Patching changed something.
  EXPECT_FALSE(close(lens.select(1, 0), next_token_probs(*llama, tb)));
}

TEST_F(Methods, RepeatPromptDefaults) {
  auto t = repeat_prompt();
  EXPECT_EQ(t.prompt, "king king\n1135 1135\nhello hello\n?");
  EXPECT_EQ(t.index_to_patch, -1);
  EXPECT_EQ(repeat_prompt({"a", "b"}, ": ", " | ", "x").prompt, "a: a | b: b | x");
  // With a tokenizer, string sources and the default target work end to end.
  auto lens = patchscope_lens(*tiny, std::vector<std::string>{"Paris", "the cat"});
  EXPECT_EQ(lens.sizes(), (std::vector<int64_t>{2, 3, 1000}));
  EXPECT_TRUE(close(lens.sum(-1), torch::ones({2, 3})));
}

// ---- 4. prompts with target tokens -----------------------------------------------------------------

TEST_F(Methods, FirstTokensTakeTheWordAndTheSpacedWord) {
  const Tokenizer& tok = *tiny->tokenizer();
  auto ids = get_first_tokens({"cat", "dog", "cat"}, tok);
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], *tok.token_to_id("cat"));
  EXPECT_EQ(ids[1], *tok.token_to_id("\xC4\xA0" "cat"));
  EXPECT_EQ(ids[2], *tok.token_to_id("dog"));
  EXPECT_EQ(ids[3], *tok.token_to_id("\xC4\xA0" "dog"));
}

TEST_F(Methods, RunPromptsAgreesWithAManualTrace) {
  const Tokenizer& tok = *tiny->tokenizer();
  std::vector<Prompt> prompts = {
      Prompt::from_strings("The capital of France is", {{"fr", {"Paris"}}, {"en", {"London", "England"}}}, tok),
      Prompt::from_strings("le chat est", {{"fr", {"chat", "chien"}}, {"en", {"cat", "dog"}}}, tok),
      Prompt::from_strings("one two three", {{"fr", {"un", "une"}}, {"en", {"four"}}}, tok),
  };
  RunPromptsOptions o;
  o.batch_size = 2;
  o.progress = false;
  auto res = run_prompts(*tiny, prompts, o);
  ASSERT_EQ(res.size(), 2u);
  ASSERT_EQ(res["fr"].sizes(), (std::vector<int64_t>{3, 1}));
  o.probs = logit_lens_fn();
  auto lens = run_prompts(*tiny, prompts, o);
  ASSERT_EQ(lens["en"].sizes(), (std::vector<int64_t>{3, 3}));
  o.batch_size = 1;
  EXPECT_TRUE(close(run_prompts(*tiny, prompts, o)["en"], lens["en"]));
  for (size_t i = 0; i < prompts.size(); ++i) {
    torch::Tensor probs;
    tiny->trace(prompts[i].prompt, [&](Trace& t) { probs = t.next_token_probs()[0]; });
    auto lp = logit_lens(*tiny, prompts[i].prompt)[0];  // [layers, V]
    for (const auto& [cat, ids] : prompts[i].target_tokens) {
      double expected = 0;
      for (int64_t id : ids) expected += probs[id].item<double>();
      EXPECT_NEAR(res[cat][static_cast<int64_t>(i)][0].item<double>(), expected, 1e-6) << cat << " " << i;
      auto manual = lp.index_select(1, torch::tensor(ids, torch::kInt64)).sum(1);
      EXPECT_TRUE(close(lens[cat][static_cast<int64_t>(i)], manual)) << cat << " " << i;
    }
  }
  // Token-id prompts give the same as text.
  std::vector<Prompt> by_ids = prompts;
  for (auto& p : by_ids) p.token_ids = tok.encode_ids(p.prompt, true);
  o.probs = nullptr;
  EXPECT_TRUE(close(run_prompts(*tiny, by_ids, o)["fr"], res["fr"]));
}

TEST_F(Methods, CollisionsBetweenCategoriesAreDetected) {
  const Tokenizer& tok = *tiny->tokenizer();
  try {
    Prompt::from_strings("x", {{"animals", {"cat", "dog"}}, {"pets", {"fish", "cat"}}}, tok);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("animals"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("pets"), std::string::npos) << e.what();
  }
  auto p = Prompt::from_strings("x", {{"animals", {"cat", "dog"}}, {"pets", {"fish", "cat"}}}, tok, true);
  EXPECT_FALSE(p.has_no_collisions());
  EXPECT_EQ(p.collisions().size(), 2u);  // "cat" and "Ġcat"
  EXPECT_TRUE(p.has_no_collisions({"pets"}));
  std::vector<Prompt> mixed = {Prompt::from_strings("a", {{"x", {"cat"}}}, tok), Prompt::from_strings("b", {{"y", {"dog"}}}, tok)};
  EXPECT_THROW(run_prompts(*tiny, mixed), Error);
}

TEST_F(Methods, PromptsToTableAsCsvAndJson) {
  const Tokenizer& tok = *tiny->tokenizer();
  std::vector<Prompt> prompts = {Prompt::from_strings("a, \"quoted\" prompt", {{"animal", {"cat"}}}, tok),
                                 Prompt::from_strings("the dog", {{"animal", {"dog", "bird"}}}, tok)};
  std::map<std::string, torch::Tensor> res{{"animal", torch::tensor({{0.25}, {0.5}})}};
  auto table = prompts_to_table(prompts, res, &tok);
  EXPECT_EQ(table.columns, (std::vector<std::string>{"prompt", "animal_words", "animal_tokens", "animal_ids", "animal_prob"}));
  auto csv = table.to_csv();
  EXPECT_NE(csv.find("\"a, \"\"quoted\"\" prompt\""), std::string::npos) << csv;
  EXPECT_NE(csv.find("dog bird"), std::string::npos) << csv;
  auto json = nlohmann::json::parse(table.to_json());
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[1]["animal_words"], nlohmann::json({"dog", "bird"}));
  EXPECT_EQ(json[1]["animal_prob"].get<double>(), 0.5);
  EXPECT_EQ(json[0]["animal_ids"].size(), 2u);
}

// ---- 5. activation patching ------------------------------------------------------------------------

TEST_F(Methods, PatchingTheWholeCleanResidualRecoversTheCleanMetric) {
  auto clean = random_batch(2, 6, 6, 1000, 9);
  auto corrupted = clean.input_ids.clone();
  corrupted.select(1, 1).fill_(7);  // corrupt one position
  TokenBatch xb{corrupted, clean.attention_mask};
  PatchingOptions o;
  o.metric = logit_diff_metric(11, 12);
  o.per_position = false;
  auto whole = activation_patching(*llama, clean, xb, o);
  ASSERT_EQ(whole.values.sizes(), (std::vector<int64_t>{3}));
  EXPECT_NE(whole.clean_metric, whole.corrupted_metric);
  for (int l = 0; l < 3; ++l) EXPECT_NEAR(whole.values[l].item<double>(), whole.clean_metric, 1e-5) << l;
  EXPECT_TRUE(close(whole.normalized(), torch::ones({3}, torch::kFloat64), 1e-4));

  o.per_position = true;
  o.batch_size = 5;  // patches spread over several forward passes
  auto grid = activation_patching(*llama, clean, xb, o);
  ASSERT_EQ(grid.values.sizes(), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(grid.dims, (std::vector<std::string>{"layer", "position"}));
  EXPECT_NEAR(grid.values[2][5].item<double>(), grid.clean_metric, 1e-5);  // last layer, last position
  EXPECT_NEAR(grid.values[2][1].item<double>(), grid.corrupted_metric, 1e-5);  // no effect on the last token's logits
  o.point = Point::LayerInput;  // resid_pre of layer 0 at the corrupted token: the whole run becomes clean
  o.layers = {0};
  o.positions = {1};
  EXPECT_NEAR(activation_patching(*llama, clean, xb, o).values[0][0].item<double>(), grid.clean_metric, 1e-5);
  o.point = Point::LayerOutput;
  o.layers = {};
  o.positions = {};
  o.batch_size = 64;
  EXPECT_TRUE(close(activation_patching(*llama, clean, xb, o).values, grid.values, 1e-5));

  // Per head (queries), attention and MLP outputs: the grid shapes, and patching nothing that differs changes nothing.
  o.point = Point::Query;
  auto heads = activation_patching(*llama, clean, xb, o);
  EXPECT_EQ(heads.values.sizes(), (std::vector<int64_t>{3, 4, 6}));
  EXPECT_NEAR(heads.values[0][2][0].item<double>(), heads.corrupted_metric, 1e-5);  // position 0 precedes the corruption
  o.point = Point::Value;
  o.per_position = false;
  EXPECT_EQ(activation_patching(*llama, clean, xb, o).values.sizes(), (std::vector<int64_t>{3, 2}));  // KV heads
  o.point = Point::AttnOutput;
  o.per_position = true;
  o.positions = {-1};
  auto attn = activation_patching(*llama, clean, xb, o);
  EXPECT_EQ(attn.values.sizes(), (std::vector<int64_t>{3, 1}));
  o.point = Point::AttnProbs;
  EXPECT_EQ(activation_patching(*llama, clean, xb, o).values.sizes(), (std::vector<int64_t>{3, 4, 1}));
  // z per head ([B, T, heads, d_v]); all its heads patched at once is attn_output patched, as
  // attn_output = o_proj(z); attribution patching gives the same grid.
  o.point = Point::Z;
  o.positions = {};
  auto z_heads = activation_patching(*llama, clean, xb, o);
  EXPECT_EQ(z_heads.values.sizes(), (std::vector<int64_t>{3, 4, 6}));
  EXPECT_NEAR(z_heads.values[0][1][0].item<double>(), z_heads.corrupted_metric, 1e-5);  // position 0 precedes the corruption
  o.method = PatchMethod::Attribution;
  EXPECT_EQ(activation_patching(*llama, clean, xb, o).values.sizes(), z_heads.values.sizes());
  o.method = PatchMethod::Activation;
  o.per_head = false;
  auto z_all = activation_patching(*llama, clean, xb, o);
  o.point = Point::AttnOutput;
  EXPECT_TRUE(close(z_all.values, activation_patching(*llama, clean, xb, o).values, 1e-5));
  o.per_head = true;
  o.point = Point::AttnProbs;
  EXPECT_THROW(activation_patching(*llama, clean, random_batch(2, 5, 5, 1000, 1), o), Error);
}

// ---- steering vectors --------------------------------------------------------------------------

TEST_F(Methods, SteeringVectorIsTheMeanDifference) {
  auto pos = random_batch(6, 2, 6, 1000, 10), neg = random_batch(5, 2, 6, 1000, 11);
  SteeringVectorOptions o;
  o.batch_size = 4;
  auto v = steering_vector(*llama, pos, neg, 1, o);
  ASSERT_EQ(v.sizes(), (std::vector<int64_t>{64}));
  auto expected = get_token_activations(*llama, pos, -1, {1})[0].mean(0) - get_token_activations(*llama, neg, -1, {1})[0].mean(0);
  EXPECT_TRUE(close(v, expected));
  auto both = steering_vectors(*llama, pos, neg, {0, 1}, o);
  EXPECT_TRUE(close(both[1], v));
  // Steering the negative prompts' layer 1 by the vector moves their mean onto the positive mean.
  torch::Tensor steered;
  llama->trace(neg, [&](Trace& t) {
    t.steer({1}, v);
    steered = t.layers_output[1].select(1, -1).mean(0).clone();
  });
  EXPECT_TRUE(close(steered, get_token_activations(*llama, pos, -1, {1})[0].mean(0), 1e-4));
}

}  // namespace
}  // namespace nnterp::testing
