// Generation: greedy ids equal HuggingFace's on every fixture (batched, left-padded), cached vs
// recompute agreement, step interventions and their KV semantics, sampling reproducibility.
#include <gtest/gtest.h>

#include "common/fixtures.hpp"
#include "nnterp/error.hpp"
#include "nnterp/generate.hpp"

namespace nnterp::testing {
namespace {

class Generation : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fx = std::make_unique<Fixture>(GetParam());
    model = std::make_unique<StandardizedTransformer>(fx->dir.string(), fixture_load_options());
    new_tokens = fx->tensor("generated_ids").size(1) - fx->input_ids.size(1);
  }
  TokenBatch batch() const { return TokenBatch{fx->input_ids, fx->attention_mask}; }
  GenerateOptions greedy(bool recompute = false) const {
    GenerateOptions o;
    o.max_new_tokens = static_cast<int>(new_tokens);
    o.recompute = recompute;
    o.keep_logits = true;
    return o;
  }
  std::unique_ptr<Fixture> fx;
  std::unique_ptr<StandardizedTransformer> model;
  int64_t new_tokens = 0;
};

TEST_P(Generation, GreedyIdsEqualHuggingFace) {
  auto result = model->generate(batch(), greedy());
  auto expected = fx->tensor("generated_ids");
  EXPECT_TRUE(torch::equal(result.ids, expected)) << fx->name << "\nours\n" << result.ids << "\nHF\n" << expected;
  // Each step's logits too (a real test of the sliding-window KV cache for gemma2 / cohere2 / mistral).
  auto hf_logits = fx->tensor("generated_logits");
  const int64_t steps = std::min(result.step_logits.size(1), hf_logits.size(1));
  double worst = (result.step_logits.narrow(1, 0, steps) - hf_logits.narrow(1, 0, steps)).abs().max().item<double>();
  double scale = std::max(1.0, hf_logits.abs().max().item<double>());
  EXPECT_LE(worst / scale, 1e-4) << fx->name;
}

TEST_P(Generation, CachedAndRecomputeAgree) {
  auto cached = model->generate(batch(), greedy(false));
  auto recomputed = model->generate(batch(), greedy(true));
  EXPECT_TRUE(torch::equal(cached.ids, recomputed.ids));
  EXPECT_TRUE(torch::allclose(cached.step_logits, recomputed.step_logits, 0, 1e-4))
      << (cached.step_logits - recomputed.step_logits).abs().max();
}

TEST_P(Generation, StepsDrivenThroughOpenTracesEqualGenerateWithABody) {
  // The Python module's loop: nnterp::Generation with an OpenTrace per step, the body's code run
  // between opening and finishing it, against generate() with the same body as a StepBody.
  auto o = greedy();
  const auto v = torch::randn({model->hidden_size()}) * 3;
  auto steer = [&](Trace& t) { t.steer({0}, v); };
  auto expected = model->generate(batch(), o, at_steps(1, 2, steer));
  nnterp::Generation generation(*model, batch(), o);
  while (!generation.done()) {
    const int step = generation.step();
    OpenTrace open(*model, generation.next_input());
    if (step >= 1 && step <= 2) steer(open.trace());
    generation.accept(open.finish());
  }
  EXPECT_TRUE(torch::equal(generation.result().ids, expected.ids)) << fx->name;
  EXPECT_TRUE(torch::equal(generation.result().step_logits, expected.step_logits)) << fx->name;
}

INSTANTIATE_TEST_SUITE_P(HF, Generation, ::testing::ValuesIn(hf_fixture_names()), [](const auto& info) { return info.param; });

class GenerationSemantics : public ::testing::Test {
 protected:
  void SetUp() override {
    fx = std::make_unique<Fixture>("llama");
    model = std::make_unique<StandardizedTransformer>(fx->dir.string(), fixture_load_options());
    torch::manual_seed(3);
    vector = torch::randn({model->hidden_size()}) * 4.0;
  }
  TokenBatch batch() const { return TokenBatch{fx->input_ids, fx->attention_mask}; }
  GenerateOptions options(int n = 8) const {
    GenerateOptions o;
    o.max_new_tokens = n;
    o.keep_logits = true;
    o.stop_at_eos = false;
    return o;
  }
  std::unique_ptr<Fixture> fx;
  std::unique_ptr<StandardizedTransformer> model;
  torch::Tensor vector;
};

TEST_F(GenerationSemantics, SteeringAllStepsDiffersFromPromptOnlyAsDocumented) {
  auto steer = [&](Trace& t) { t.steer({1}, vector, 1.0); };
  auto plain = model->generate(batch(), options());
  auto prompt_only = model->generate(batch(), options(), at_prompt(steer));
  auto all_steps = model->generate(batch(), options(), at_all_steps(steer));
  // Step 0 (the prompt pass) is steered identically in both.
  EXPECT_TRUE(torch::equal(prompt_only.step_logits.select(1, 0), all_steps.step_logits.select(1, 0)));
  EXPECT_FALSE(torch::allclose(prompt_only.step_logits.select(1, 0), plain.step_logits.select(1, 0)));
  // Prompt-only steering still reaches later steps through the cached (steered) keys/values ...
  auto later = [](const GenerateResult& r) { return r.step_logits.narrow(1, 1, r.step_logits.size(1) - 1); };
  // ... but differs from steering every step, which also edits each new position.
  EXPECT_FALSE(torch::allclose(later(prompt_only), later(all_steps)));
  // With the cache, prompt-only steering differs from recompute-mode prompt-only steering, where
  // later steps re-run the prompt unsteered.
  auto recompute = options();
  recompute.recompute = true;
  auto prompt_only_recompute = model->generate(batch(), recompute, at_prompt(steer));
  EXPECT_TRUE(torch::allclose(prompt_only_recompute.step_logits.select(1, 0), prompt_only.step_logits.select(1, 0), 0, 1e-5));
  if (torch::equal(prompt_only_recompute.ids.narrow(1, 0, fx->input_ids.size(1) + 1),
                   prompt_only.ids.narrow(1, 0, fx->input_ids.size(1) + 1)))
    EXPECT_FALSE(torch::allclose(prompt_only_recompute.step_logits.select(1, 1), prompt_only.step_logits.select(1, 1)));
}

TEST_F(GenerationSemantics, EditAtAMiddleStepChangesOnlyLaterTokens) {
  const int s = 3;
  auto plain = model->generate(batch(), options());
  auto edited = model->generate(batch(), options(), at_steps(s, s, [&](Trace& t) { t.steer({0}, vector, 3.0); }));
  const int64_t T = fx->input_ids.size(1);
  // Tokens chosen at steps < s are identical; the step-s logits differ.
  EXPECT_TRUE(torch::equal(edited.ids.narrow(1, 0, T + s), plain.ids.narrow(1, 0, T + s)));
  EXPECT_TRUE(torch::equal(edited.step_logits.narrow(1, 0, s), plain.step_logits.narrow(1, 0, s)));
  EXPECT_FALSE(torch::allclose(edited.step_logits.select(1, s), plain.step_logits.select(1, s)));
}

TEST_F(GenerationSemantics, SamplingWithASeedIsReproducibleAndTopKOneIsGreedy) {
  auto o = options();
  o.temperature = 1.5;
  o.seed = 1234;
  auto a = model->generate(batch(), o);
  auto b = model->generate(batch(), o);
  EXPECT_TRUE(torch::equal(a.ids, b.ids));
  o.seed = 99;
  bool any_difference = false;
  for (uint64_t seed = 1; seed < 6 && !any_difference; ++seed) {
    o.seed = seed;
    any_difference = !torch::equal(model->generate(batch(), o).ids, a.ids);
  }
  EXPECT_TRUE(any_difference) << "different seeds never changed the sample";
  auto top1 = options();
  top1.temperature = 2.0;
  top1.top_k = 1;
  top1.seed = 5;
  EXPECT_TRUE(torch::equal(model->generate(batch(), top1).ids, model->generate(batch(), options()).ids));
}

TEST_F(GenerationSemantics, TopPKeepsOnlyTheNucleus) {
  auto o = options();
  o.temperature = 1.0;
  o.top_p = 1e-6;  // only the single most likely token survives
  o.seed = 7;
  EXPECT_TRUE(torch::equal(model->generate(batch(), o).ids, model->generate(batch(), options()).ids));
}

TEST_F(GenerationSemantics, StopsRowsAtEos) {
  auto plain = model->generate(batch(), options(4));
  const int64_t T = fx->input_ids.size(1);
  // Declare row 0's first generated token to be EOS: row 0 is then padded, row 1 goes on.
  int64_t first = plain.ids[0][T].item<int64_t>();
  auto o = options(4);
  o.stop_at_eos = true;
  o.eos_token_ids = {first};
  o.pad_token_id = 0;
  auto r = model->generate(batch(), o);
  for (int64_t k = T + 1; k < r.ids.size(1); ++k) EXPECT_EQ(r.ids[0][k].item<int64_t>(), 0);
}

TEST_F(GenerationSemantics, BadOptionsAreClearErrors) {
  auto o = options();
  o.top_p = 0;
  EXPECT_THROW(model->generate(batch(), o), Error);
  o = options();
  o.temperature = -1;
  EXPECT_THROW(model->generate(batch(), o), Error);
}

}  // namespace
}  // namespace nnterp::testing
