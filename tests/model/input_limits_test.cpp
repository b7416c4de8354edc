// Input limits: every bad input to a public entry point (forward, trace, generate, tokenize, the
// methods) is an nnterp::Error with a subject, a message saying what was expected and what came,
// and a hint; the model stays usable after each one. See docs/bad_inputs.md.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>

#include "common/fixtures.hpp"
#include "core/tensor_text.hpp"
#include "nnterp/error.hpp"
#include "nnterp/generate.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::testing {
namespace input_limits {

namespace fs = std::filesystem;

// The llama fixture (vocab 1000) with the tiny test tokenizer (tests/data/tiny_tokenizer: no BOS
// token added, unless `add_bos`), in a temporary folder.
class TokenizerModelDir {
 public:
  explicit TokenizerModelDir(bool add_bos) {
    dir_ = fs::temp_directory_path() /
           ("nnterp_input_limits_" + std::to_string(::getpid()) + (add_bos ? "_bos" : "_nobos"));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const auto& e : fs::directory_iterator(hf_fixture_dir() / "llama")) fs::copy_file(e.path(), dir_ / e.path().filename());
    fs::copy_file(fs::path(NNTERP_TEST_DATA) / "tiny_tokenizer" / "tokenizer.json", dir_ / "tokenizer.json");
    std::ifstream in(fs::path(NNTERP_TEST_DATA) / "tiny_tokenizer" / "tokenizer_config.json");
    auto config = nlohmann::json::parse(in);
    config["add_bos_token"] = add_bos;
    std::ofstream(dir_ / "tokenizer_config.json") << config.dump(1);
  }
  ~TokenizerModelDir() { fs::remove_all(dir_); }
  std::string path() const { return dir_.string(); }

 private:
  fs::path dir_;
};

// Runs `fn`, which must throw nnterp::Error; returns it (a failure is recorded otherwise).
Error error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no nnterp::Error thrown";
  return Error(ErrorKind::Io, "<none>", "<none>");
}

#define EXPECT_ERROR(call, kind_, subject_, message_)            \
  do {                                                            \
    Error e_ = error_of([&] { (void)(call); });                   \
    EXPECT_EQ(e_.kind(), kind_) << e_.what();                     \
    EXPECT_EQ(e_.subject(), subject_) << e_.what();               \
    EXPECT_EQ(e_.message(), message_) << e_.what();               \
  } while (0)

class InputLimits : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fx = new Fixture("llama");
    llama = new StandardizedTransformer(fx->dir.string());
    gpt2 = new StandardizedTransformer((hf_fixture_dir() / "gpt2").string());
    no_bos_dir = new TokenizerModelDir(false);
    with_tok = new StandardizedTransformer(no_bos_dir->path());
    torch::NoGradGuard no_grad;
    clean = new torch::Tensor(llama->forward(fx->input_ids, fx->attention_mask));
  }
  static void TearDownTestSuite() {
    delete clean;
    delete with_tok;
    delete no_bos_dir;
    delete gpt2;
    delete llama;
    delete fx;
  }
  static TokenBatch batch() { return TokenBatch{fx->input_ids, fx->attention_mask}; }
  // After an error the model gives the same logits as before, by forward, trace and generate.
  static void expect_still_usable() {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(llama->forward(fx->input_ids, fx->attention_mask), *clean));
    EXPECT_TRUE(torch::equal(llama->trace(batch(), [](Trace& t) { t.layers_output[1]; }), *clean));
    GenerateOptions o;
    o.max_new_tokens = 2;
    o.stop_at_eos = false;
    EXPECT_EQ(llama->generate(batch(), o).ids.size(1), fx->input_ids.size(1) + 2);
    EXPECT_EQ(with_tok->tokenize(TraceInput("Paris is")).input_ids.size(0), 1);
  }
  static GenerateOptions options(int n = 2) {
    GenerateOptions o;
    o.max_new_tokens = n;
    return o;
  }

  static inline Fixture* fx = nullptr;
  static inline StandardizedTransformer *llama = nullptr, *gpt2 = nullptr, *with_tok = nullptr;
  static inline TokenizerModelDir* no_bos_dir = nullptr;
  static inline torch::Tensor* clean = nullptr;
};

// ---- prompt lists and prompts ------------------------------------------------------------------

TEST_F(InputLimits, EmptyPromptListIsAnErrorEverywhere) {
  const TraceInput none(std::vector<std::string>{});
  const std::string msg = "no prompt given";
  EXPECT_ERROR(with_tok->tokenize(none), ErrorKind::InvalidArgument, "prompts", msg);
  EXPECT_ERROR(with_tok->trace(none, [](Trace&) {}), ErrorKind::InvalidArgument, "prompts", msg);
  EXPECT_ERROR(with_tok->generate(none, options()), ErrorKind::InvalidArgument, "prompts", msg);
  EXPECT_ERROR(logit_lens(*with_tok, none), ErrorKind::InvalidArgument, "prompts", msg);
  EXPECT_ERROR(next_token_probs(*with_tok, none), ErrorKind::InvalidArgument, "prompts", msg);
  EXPECT_ERROR(get_token_activations(*with_tok, none), ErrorKind::InvalidArgument, "prompts", msg);
  EXPECT_ERROR(collect_token_activations(*with_tok, none), ErrorKind::InvalidArgument, "prompts", msg);
  EXPECT_ERROR(patchscope_lens(*with_tok, none), ErrorKind::InvalidArgument, "source prompts", msg);
  EXPECT_ERROR(steering_vector(*with_tok, none, TraceInput("a"), 0), ErrorKind::InvalidArgument, "positive prompts", msg);
  EXPECT_ERROR(run_prompts(*with_tok, std::vector<Prompt>{}), ErrorKind::InvalidArgument, "prompts", msg);
  PatchingOptions po;
  po.metric = logit_diff_metric(3, 4);
  EXPECT_ERROR(activation_patching(*with_tok, none, none, po), ErrorKind::InvalidArgument, "prompts", msg);
  // A TokenBatch with no rows.
  EXPECT_ERROR(llama->trace(TokenBatch{torch::zeros({0, 3}, torch::kInt64), {}}, [](Trace&) {}), ErrorKind::InvalidArgument,
               "input_ids", "empty batch or sequence (shape [0, 3])");
  expect_still_usable();
}

TEST_F(InputLimits, EmptyStringPromptWithoutBosNamesThePromptIndex) {
  const std::string msg = "the prompt \"\" is empty after tokenization (and the tokenizer adds no BOS token)";
  Error e = error_of([&] { with_tok->tokenize(TraceInput(std::vector<std::string>{"Paris is", ""})); });
  EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
  EXPECT_EQ(e.subject(), "prompt 1");
  EXPECT_EQ(e.message(), msg);
  EXPECT_EQ(e.hint(), "give a non-empty prompt: a forward pass needs at least one token per prompt");
  EXPECT_ERROR(with_tok->trace(TraceInput(""), [](Trace&) {}), ErrorKind::InvalidArgument, "prompt 0", msg);
  EXPECT_ERROR(with_tok->generate(TraceInput(std::vector<std::string>{"a", "b", ""}), options()), ErrorKind::InvalidArgument, "prompt 2", msg);
  EXPECT_ERROR(logit_lens(*with_tok, TraceInput(std::vector<std::string>{""})), ErrorKind::InvalidArgument, "prompt 0", msg);
  // A patchscope's target prompt.
  EXPECT_ERROR(patchscope_lens(*with_tok, TraceInput("Paris"), {TargetPrompt{"", -1, {}}}), ErrorKind::InvalidArgument,
               "target prompt 0", "is empty after tokenization (and the tokenizer adds no BOS token)");
  expect_still_usable();
}

TEST_F(InputLimits, EmptyStringPromptWithBosRunsOnTheBosToken) {
  TokenizerModelDir dir(true);
  StandardizedTransformer model(dir.path());
  auto b = model.tokenize(TraceInput(std::vector<std::string>{"", "Paris is"}));
  ASSERT_TRUE(model.tokenizer()->bos_token_id().has_value());
  EXPECT_EQ(b.attention_mask[0].sum().item<int64_t>(), 1);
  EXPECT_EQ(b.input_ids[0][-1].item<int64_t>(), *model.tokenizer()->bos_token_id());
  auto logits = model.trace(TraceInput(""), [](Trace&) {});
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 1, 1000}));
}

// ---- token ids ---------------------------------------------------------------------------------

TEST_F(InputLimits, TokenIdsOutsideTheVocabularyNameTheFirstOne) {
  auto ids = torch::tensor({{5, 7, 9}, {5, 1000, 1003}}, torch::kInt64);
  const std::string msg = "token ids must lie in [0, 1000), got 1000 at row 1, position 1 (min 5, max 1003)";
  EXPECT_ERROR(llama->forward(ids), ErrorKind::InvalidArgument, "input_ids", msg);
  EXPECT_ERROR(llama->trace(TokenBatch{ids, {}}, [](Trace&) {}), ErrorKind::InvalidArgument, "input_ids", msg);
  EXPECT_ERROR(llama->tokenize(TokenBatch{ids, {}}), ErrorKind::InvalidArgument, "input_ids", msg);
  EXPECT_ERROR(llama->generate(TokenBatch{ids, {}}, options()), ErrorKind::InvalidArgument, "input_ids", msg);
  EXPECT_ERROR(logit_lens(*llama, TokenBatch{ids, {}}), ErrorKind::InvalidArgument, "input_ids", msg);
  auto negative = torch::tensor({{-1, 7, 9}}, torch::kInt64);
  Error e = error_of([&] { llama->forward(negative); });
  EXPECT_EQ(e.message(), "token ids must lie in [0, 1000), got -1 at row 0, position 0 (min -1, max 9)");
  EXPECT_EQ(e.hint(), "was the input tokenized with this model's tokenizer? Padding positions need a valid id too (the mask hides them)");
  // Even under padding: the id is embedded before the mask applies.
  EXPECT_ERROR(llama->forward(negative, torch::tensor({{0, 1, 1}})), ErrorKind::InvalidArgument, "input_ids",
               "token ids must lie in [0, 1000), got -1 at row 0, position 0 (min -1, max 9)");
  expect_still_usable();
}

TEST_F(InputLimits, InputIdsMustBeATwoDimensionalInt64Tensor) {
  Error e = error_of([&] { llama->forward(torch::tensor({5, 7, 9}, torch::kInt64)); });
  EXPECT_EQ(e.kind(), ErrorKind::Shape);
  EXPECT_EQ(e.subject(), "input_ids");
  EXPECT_EQ(e.message(), "expected an int64 tensor [batch, tokens], got [3] Long");
  EXPECT_EQ(e.hint(), "add the batch dimension: input_ids.unsqueeze(0)");
  e = error_of([&] { llama->trace(TokenBatch{torch::tensor({{5.0, 7.0}}), {}}, [](Trace&) {}); });
  EXPECT_EQ(e.message(), "expected an int64 tensor [batch, tokens], got [1, 2] Float");
  EXPECT_EQ(e.hint(), "token ids are int64: convert with .to(torch::kInt64)");
  EXPECT_ERROR(llama->generate(TokenBatch{torch::tensor({{5, 7}}, torch::kInt32), {}}, options()), ErrorKind::Shape, "input_ids",
               "expected an int64 tensor [batch, tokens], got [1, 2] Int");
  EXPECT_ERROR(llama->forward(torch::zeros({1, 2, 3}, torch::kInt64)), ErrorKind::Shape, "input_ids",
               "expected an int64 tensor [batch, tokens], got [1, 2, 3] Long");
  EXPECT_ERROR(llama->forward(torch::Tensor()), ErrorKind::Shape, "input_ids", "expected an int64 tensor [batch, tokens], got none");
  EXPECT_ERROR(llama->forward(torch::zeros({1, 0}, torch::kInt64)), ErrorKind::InvalidArgument, "input_ids",
               "empty batch or sequence (shape [1, 0])");
  expect_still_usable();
}

// ---- attention masks ---------------------------------------------------------------------------

TEST_F(InputLimits, AttentionMaskOfTheWrongShape) {
  auto ids = torch::tensor({{5, 7, 9}}, torch::kInt64);
  const std::string msg = "expected [1, 3] (batch, cached + new tokens), got [1, 4]";
  EXPECT_ERROR(llama->forward(ids, torch::ones({1, 4}, torch::kInt64)), ErrorKind::Shape, "attention_mask", msg);
  EXPECT_ERROR(llama->trace(TokenBatch{ids, torch::ones({1, 4}, torch::kInt64)}, [](Trace&) {}), ErrorKind::Shape, "attention_mask", msg);
  EXPECT_ERROR(llama->generate(TokenBatch{ids, torch::ones({1, 4}, torch::kInt64)}, options()), ErrorKind::Shape, "attention_mask", msg);
  EXPECT_ERROR(llama->forward(ids, torch::ones({3}, torch::kInt64)), ErrorKind::Shape, "attention_mask",
               "expected [1, 3] (batch, cached + new tokens), got [3]");
  EXPECT_ERROR(llama->forward(ids, torch::ones({2, 3}, torch::kInt64)), ErrorKind::Shape, "attention_mask",
               "expected [1, 3] (batch, cached + new tokens), got [2, 3]");
  expect_still_usable();
}

TEST_F(InputLimits, AttentionMaskDtypeAndValues) {
  auto ids = torch::tensor({{5, 7, 9}, {4, 6, 8}}, torch::kInt64);
  Error e = error_of([&] { llama->forward(ids, torch::ones({2, 3})); });
  EXPECT_EQ(e.kind(), ErrorKind::Shape);
  EXPECT_EQ(e.subject(), "attention_mask");
  EXPECT_EQ(e.message(), "expected an integer or bool mask of 0/1, got [2, 3] Float");
  EXPECT_EQ(e.hint(), "convert with .to(torch::kInt64); additive (0 / -inf) float masks are not supported");
  EXPECT_ERROR(llama->trace(TokenBatch{ids, torch::tensor({{1, 1, 1}, {0, 2, 1}})}, [](Trace&) {}), ErrorKind::InvalidArgument,
               "attention_mask", "values must be 0 (padding) or 1 (token), got 2 at row 1, position 1");
  EXPECT_ERROR(llama->forward(ids, torch::tensor({{1, -1, 1}, {1, 1, 1}})), ErrorKind::InvalidArgument, "attention_mask",
               "values must be 0 (padding) or 1 (token), got -1 at row 0, position 1");
  // bool and int32 masks are accepted and mean the same as int64.
  auto m64 = torch::tensor({{0, 1, 1}, {1, 1, 1}}, torch::kInt64);
  torch::NoGradGuard no_grad;
  auto ref = llama->forward(ids, m64);
  EXPECT_TRUE(torch::equal(llama->forward(ids, m64.to(torch::kBool)), ref));
  EXPECT_TRUE(torch::equal(llama->forward(ids, m64.to(torch::kInt32)), ref));
  expect_still_usable();
}

TEST_F(InputLimits, ARowWithAnAllZeroMaskIsAnError) {
  auto ids = torch::tensor({{5, 7, 9}, {4, 6, 8}}, torch::kInt64);
  auto mask = torch::tensor({{1, 1, 1}, {0, 0, 0}}, torch::kInt64);
  const std::string msg = "row 1 has no real token (its mask is all zeros)";
  Error e = error_of([&] { llama->forward(ids, mask); });
  EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
  EXPECT_EQ(e.subject(), "attention_mask");
  EXPECT_EQ(e.message(), msg);
  EXPECT_EQ(e.hint(), "drop the empty row: every row needs at least one token with mask 1");
  EXPECT_ERROR(llama->trace(TokenBatch{ids, mask}, [](Trace&) {}), ErrorKind::InvalidArgument, "attention_mask", msg);
  EXPECT_ERROR(llama->generate(TokenBatch{ids, mask}, options()), ErrorKind::InvalidArgument, "attention_mask", msg);
  EXPECT_ERROR(get_token_activations(*llama, TokenBatch{ids, mask}), ErrorKind::InvalidArgument, "attention_mask", msg);
  expect_still_usable();
}

// Decision: forward and trace support right padding (positions follow the mask, padded keys are
// masked); generation and the methods, which read each row's last column, refuse it.
TEST_F(InputLimits, RightPaddingWorksInForwardButIsRefusedByGenerationAndMethods) {
  torch::NoGradGuard no_grad;
  auto row = torch::tensor({{5, 7, 9, 11}}, torch::kInt64);
  auto right = torch::tensor({{5, 7, 9, 11, 0, 0}, {4, 6, 8, 10, 12, 14}}, torch::kInt64);
  auto mask = torch::tensor({{1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 1}}, torch::kInt64);
  for (auto* model : {llama, gpt2}) {  // rotary and learned positions
    auto alone = model->forward(row);
    auto padded = model->forward(right, mask);
    EXPECT_LE((padded[0].narrow(0, 0, 4) - alone[0]).abs().max().item<double>(), 1e-5) << model->architecture();
  }
  const std::string gen_msg =
      "prompt row 0 ends with padding (its mask is 0 in the last column): generation appends new tokens after the last "
      "column, so prompts must be left-padded";
  Error e = error_of([&] { llama->generate(TokenBatch{right, mask}, options()); });
  EXPECT_EQ(e.subject(), "attention_mask");
  EXPECT_EQ(e.message(), gen_msg);
  EXPECT_EQ(e.hint(), "pad on the left (BatchOptions::padding_side = PaddingSide::Left, the default of model.tokenize)");
  EXPECT_ERROR(logit_lens(*llama, TokenBatch{right, mask}), ErrorKind::InvalidArgument, "attention_mask",
               "some rows do not end with a real token: the inputs are not left-padded (or a row is empty)");
  expect_still_usable();
}

// ---- positions ---------------------------------------------------------------------------------

TEST_F(InputLimits, LearnedPositionsAreAHardLimit) {
  torch::NoGradGuard no_grad;
  auto ids = torch::randint(3, 1000, {1, 257}, torch::kInt64);
  Error e = error_of([&] { gpt2->forward(ids); });
  EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
  EXPECT_EQ(e.subject(), "input_ids");
  EXPECT_EQ(e.message(), "position 256 is beyond the model's 256 learned positions (0..255)");
  EXPECT_EQ(e.hint(), "shorten the input to at most 256 tokens (gpt2 has learned absolute positions and cannot extrapolate)");
  EXPECT_ERROR(gpt2->trace(TokenBatch{ids, {}}, [](Trace&) {}), ErrorKind::InvalidArgument, "input_ids",
               "position 256 is beyond the model's 256 learned positions (0..255)");
  // Exactly 256 positions fit; so do 257 columns of which one is left padding.
  EXPECT_EQ(gpt2->forward(ids.narrow(1, 1, 256)).size(1), 256);
  auto mask = torch::ones({1, 257}, torch::kInt64);
  mask[0][0] = 0;
  EXPECT_EQ(gpt2->forward(ids, mask).size(1), 257);
}

TEST_F(InputLimits, GenerationBeyondLearnedPositionsFailsBeforeRunning) {
  auto ids = torch::randint(3, 1000, {2, 250}, torch::kInt64);
  auto mask = torch::ones({2, 250}, torch::kInt64);
  mask[1][0] = 0;
  int steps = 0;
  GenerateOptions o = options(10);
  o.on_step = [&](int, const torch::Tensor&) { ++steps; };
  o.stop_at_eos = false;
  Error e = error_of([&] { gpt2->generate(TokenBatch{ids, mask}, o); });
  EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
  EXPECT_EQ(e.subject(), "max_new_tokens");
  EXPECT_EQ(e.message(), "a prompt of 250 tokens plus 10 new tokens needs 259 positions, but the model has 256 learned positions");
  EXPECT_EQ(e.hint(), "lower max_new_tokens to at most 7 or shorten the prompt");
  EXPECT_EQ(steps, 0);
  // The suggested budget works, with and without the KV cache.
  o.max_new_tokens = 7;
  EXPECT_EQ(gpt2->generate(TokenBatch{ids, mask}, o).ids.size(1), 257);
  o.recompute = true;
  EXPECT_EQ(gpt2->generate(TokenBatch{ids, mask}, o).ids.size(1), 257);
  // A prompt that alone is too long.
  auto long_ids = torch::randint(3, 1000, {1, 300}, torch::kInt64);
  e = error_of([&] { gpt2->generate(TokenBatch{long_ids, {}}, options(1)); });
  EXPECT_EQ(e.message(), "a prompt of 300 tokens plus 1 new tokens needs 300 positions, but the model has 256 learned positions");
  EXPECT_EQ(e.hint(), "shorten the prompt to at most 256 tokens");
  // Rotary models have no such limit (they warn on stderr, see below).
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(llama->generate(TokenBatch{ids, mask}, options(10)).ids.size(1), 260);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("rotary positions extrapolate"), std::string::npos) << err;
}

// Decision: rotary and ALiBi positions extrapolate, so a sequence longer than config.json's
// max_position_embeddings runs, with one warning on stderr per model.
TEST_F(InputLimits, RotaryBeyondMaxPositionsWarnsOncePerModel) {
  torch::NoGradGuard no_grad;
  StandardizedTransformer model(fx->dir.string());
  ::testing::internal::CaptureStderr();
  model.forward(torch::randint(3, 1000, {1, 256}, torch::kInt64));  // within the limit: silent
  auto ids = torch::randint(3, 1000, {1, 300}, torch::kInt64);
  auto logits = model.forward(ids);
  model.trace(TokenBatch{ids, {}}, [](Trace& t) { t.layers_output[0]; });
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(logits.size(1), 300);
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  EXPECT_EQ(err, "nnterp: warning: " + model.path().string() +
                     " (llama): a sequence of 300 positions is longer than max_position_embeddings = 256; rotary positions "
                     "extrapolate, but the model was not trained beyond 256 positions (warned once per model)\n");
  // ALiBi (mpt: max_seq_len) warns likewise.
  StandardizedTransformer mpt((hf_fixture_dir() / "mpt").string());
  ::testing::internal::CaptureStderr();
  mpt.forward(ids);
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("is longer than max_seq_len = 256; ALiBi positions extrapolate"), std::string::npos) << err;
}

TEST_F(InputLimits, ExplicitPositionIdsAreChecked) {
  auto ids = torch::tensor({{5, 7, 9}}, torch::kInt64);
  ForwardInput in;
  in.input_ids = ids;
  in.position_ids = torch::tensor({{0, 1}}, torch::kInt64);
  EXPECT_ERROR(llama->forward(in), ErrorKind::Shape, "position_ids", "expected the shape of input_ids [1, 3], got [1, 2]");
  in.position_ids = torch::tensor({{0.0, 1.0, 2.0}});
  EXPECT_ERROR(llama->forward(in), ErrorKind::Shape, "position_ids", "expected int64 positions, got [1, 3] Float");
  in.position_ids = torch::tensor({{-1, 0, 1}}, torch::kInt64);
  EXPECT_ERROR(llama->forward(in), ErrorKind::InvalidArgument, "position_ids", "positions must be >= 0, got -1");
  expect_still_usable();
}

// ---- generation options ------------------------------------------------------------------------

TEST_F(InputLimits, GenerationOptionsOutOfRange) {
  auto expect_option_error = [&](const std::function<void(GenerateOptions&)>& set, const std::string& subject,
                                 const std::string& message) {
    GenerateOptions o = options();
    set(o);
    EXPECT_ERROR(llama->generate(batch(), o), ErrorKind::InvalidArgument, subject, message);
  };
  expect_option_error([](auto& o) { o.max_new_tokens = 0; }, "max_new_tokens", "must be >= 1, got 0");
  expect_option_error([](auto& o) { o.max_new_tokens = -3; }, "max_new_tokens", "must be >= 1, got -3");
  expect_option_error([](auto& o) { o.temperature = -0.5; }, "temperature", "must be >= 0 (0 is greedy), got -0.5");
  expect_option_error([](auto& o) { o.temperature = std::nan(""); }, "temperature", "must be >= 0 (0 is greedy), got nan");
  expect_option_error([](auto& o) { o.top_k = -1; }, "top_k", "must be >= 0 (0 is off), got -1");
  expect_option_error([](auto& o) { o.top_p = 0; }, "top_p", "must lie in (0, 1] (1 is off), got 0");
  expect_option_error([](auto& o) { o.top_p = 1.5; }, "top_p", "must lie in (0, 1] (1 is off), got 1.5");
  expect_option_error([](auto& o) { o.repetition_penalty = 0; }, "repetition_penalty", "must be > 0 (1 is off), got 0");
  expect_option_error([](auto& o) { o.pad_token_id = 1000; }, "pad_token_id",
                      "the id padding finished rows, 1000, is outside the vocabulary [0, 1000)");
  expect_option_error([](auto& o) { o.pad_token_id = -1; }, "pad_token_id",
                      "the id padding finished rows, -1, is outside the vocabulary [0, 1000)");
  // The same options through patchscope_generate.
  EXPECT_ERROR(patchscope_generate(*llama, torch::zeros({1, 64}), 1, TargetPrompt{"", -1, {5, 6, 7}}, 0), ErrorKind::InvalidArgument,
               "max_new_tokens", "must be >= 1, got 0");
  expect_still_usable();
}

// ---- methods: layers, indices, vectors -----------------------------------------------------------

TEST_F(InputLimits, LayerIndicesOutOfRangeInMethodsAndTrace) {
  const std::string msg = "layer 3 is out of range: the model has 3 layers (0..2, or -1..-3 from the end)";
  LensOptions lo;
  lo.layers = {0, 3};
  EXPECT_ERROR(logit_lens(*llama, batch(), lo), ErrorKind::InvalidArgument, "layers", msg);
  EXPECT_ERROR(get_token_activations(*llama, batch(), -1, {3}), ErrorKind::InvalidArgument, "layers", msg);
  EXPECT_ERROR(steering_vector(*llama, batch(), batch(), 3), ErrorKind::InvalidArgument, "layers", msg);
  PatchscopeOptions pso;
  pso.layers = {-4};
  EXPECT_ERROR(patchscope_lens(*llama, batch(), {}, pso), ErrorKind::InvalidArgument, "layers",
               "layer -4 is out of range: the model has 3 layers (0..2, or -1..-3 from the end)");
  EXPECT_ERROR(patchscope_generate(*llama, torch::zeros({1, 64}), 3, TargetPrompt{"", -1, {5, 6, 7}}, 2), ErrorKind::InvalidArgument,
               "patchscope layer", msg);
  EXPECT_ERROR(llama->trace(batch(), [](Trace& t) { t.steer({5}, torch::zeros({64})); }), ErrorKind::InvalidArgument,
               "layers.5.output", "layer index out of range: the model has 3 layers (0..2, or -1..-3 from the end)");
  EXPECT_ERROR(llama->trace(batch(), [](Trace& t) { t.skip_layers(1, 7); }), ErrorKind::InvalidArgument, "layers.7.output",
               "layer index out of range: the model has 3 layers (0..2, or -1..-3 from the end)");
  expect_still_usable();
}

TEST_F(InputLimits, TokenIndexOutsideAPrompt) {
  auto ids = torch::tensor({{0, 5, 7}, {4, 6, 8}}, torch::kInt64);
  auto mask = torch::tensor({{0, 1, 1}, {1, 1, 1}}, torch::kInt64);
  EXPECT_ERROR(get_token_activations(*llama, TokenBatch{ids, mask}, -3), ErrorKind::InvalidArgument, "idx",
               "token index -3 is outside prompt 0 of the batch, which has 2 tokens");
  EXPECT_ERROR(get_token_activations(*llama, TokenBatch{ids, mask}, 2), ErrorKind::InvalidArgument, "idx",
               "token index 2 is outside prompt 0 of the batch, which has 2 tokens");
  expect_still_usable();
}

TEST_F(InputLimits, SteeringVectorAndLatentsOfTheWrongSize) {
  EXPECT_ERROR(llama->trace(batch(), [](Trace& t) { t.steer({1}, torch::zeros({63})); }), ErrorKind::Shape, "steering vector",
               "expected a vector of size hidden_size = 64, got [63] Float");
  EXPECT_ERROR(llama->generate(batch(), options(), at_all_steps([](Trace& t) { t.steer({1}, torch::Tensor()); })), ErrorKind::Shape,
               "steering vector", "expected a vector of size hidden_size = 64, got an undefined tensor");
  EXPECT_ERROR(patchscope_lens(*llama, torch::zeros({3, 2, 63})), ErrorKind::Shape, "latents",
               "expected [layers = 3, sources, hidden = 64], got [3, 2, 63] Float");
  EXPECT_ERROR(patchscope_generate(*llama, torch::zeros({2, 65}), 1), ErrorKind::Shape, "patchscope latents",
               "expected [N, hidden = 64], got [2, 65] Float");
  // Another floating dtype is converted to the model's: a float64 vector steers like its float32 copy.
  torch::NoGradGuard no_grad;
  auto v = torch::randn({64});
  auto a = llama->trace(batch(), [&](Trace& t) { t.steer({1}, v); });
  auto b = llama->trace(batch(), [&](Trace& t) { t.steer({1}, v.to(torch::kFloat64)); });
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-5));
  expect_still_usable();
}

TEST_F(InputLimits, ProjectOnVocabChecksItsInput) {
  const std::string msg = "expected a floating-point tensor [..., hidden_size = 64], got [2, 63] Float";
  EXPECT_ERROR(llama->project_on_vocab(torch::zeros({2, 63})), ErrorKind::Shape, "project_on_vocab", msg);
  EXPECT_ERROR(llama->trace(batch(), [](Trace& t) { t.project_on_vocab(torch::zeros({2, 63})); }), ErrorKind::Shape,
               "project_on_vocab", msg);
  EXPECT_ERROR(llama->project_on_vocab(torch::zeros({2, 64}, torch::kInt64)), ErrorKind::Shape, "project_on_vocab",
               "expected a floating-point tensor [..., hidden_size = 64], got [2, 64] Long");
  EXPECT_ERROR(llama->project_on_vocab(torch::Tensor()), ErrorKind::Shape, "project_on_vocab",
               "expected a floating-point tensor [..., hidden_size = 64], got an undefined tensor");
  // Another floating dtype is converted to the model's.
  torch::NoGradGuard no_grad;
  auto h = torch::randn({2, 64});
  EXPECT_TRUE(torch::allclose(llama->project_on_vocab(h.to(torch::kFloat64)), llama->project_on_vocab(h), 1e-5, 1e-5));
  expect_still_usable();
}

TEST_F(InputLimits, WriteOfTheWrongDtypeNamesThePoint) {
  Error e = error_of([&] {
    llama->trace(batch(), [](Trace& t) {
      auto& h = t.layers_output[1];
      h = h.to(torch::kFloat64);
      t.logits();
    });
  });
  EXPECT_EQ(e.kind(), ErrorKind::Shape);
  EXPECT_EQ(e.subject(), "layers.1.output");
  const std::string shape = shape_text(fx->input_ids.sizes()), hidden = std::to_string(llama->hidden_size());
  EXPECT_EQ(e.message(), "a write must keep shape " + shape.substr(0, shape.size() - 1) + ", " + hidden +
                             "] and dtype Float, got " + shape.substr(0, shape.size() - 1) + ", " + hidden + "] Double");
  expect_still_usable();
}

#undef EXPECT_ERROR

}  // namespace input_limits
}  // namespace nnterp::testing
