// The CLI's conventions (issue 20): MODEL is the only positional and is optional, prompts come by
// --prompt / --prompts / --inputs; a prompt given as MODEL, a mistyped flag or a bad number is an error
// that names the flag the user typed and says what to do (not CLI11's "Value 0 not in range 0.000000
// to 1797...", not the library's API field names).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "methods/methods_helpers.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::testing {
namespace {

class CliConventions : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first: " << NNTERP_CLI_PATH;
  }
};

bool conventions_has(const CliResult& r, const std::string& text) { return r.out.find(text) != std::string::npos; }

TEST_F(CliConventions, BareNnterpListsTheCommands) {
  auto r = nnterp_cli("");
  EXPECT_EQ(r.code, 0) << r.out;
  for (const char* command : {"info", "validate", "points", "dump", "tokenize", "chat-template", "generate", "logit-lens",
                              "patchscope", "collect", "run-prompts", "patch", "dla"})
    EXPECT_TRUE(conventions_has(r, std::string("\n  ") + command + " ")) << command << "\n" << r.out;
  EXPECT_FALSE(conventions_has(r, "A subcommand is required")) << r.out;
}

TEST_F(CliConventions, HelpDocumentsTheConvention) {
  auto r = nnterp_cli("--help");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(conventions_has(r, "Usage: nnterp ")) << r.out;
  EXPECT_TRUE(conventions_has(r, "MODEL      the only positional argument, optional")) << r.out;
  EXPECT_TRUE(conventions_has(r, "--prompt TEXT (repeatable), --prompts FILE")) << r.out;
  EXPECT_TRUE(conventions_has(r, "exit codes 0 ok, 1")) << r.out;
}

TEST_F(CliConventions, APromptGivenAsModelSuggestsDashDashPrompt) {
  // Before: "not found in The capital of France is: no model folder found ..." and no hint.
  for (const char* command : {"logit-lens", "patchscope", "collect --out x.safetensors", "dla --target x", "info"}) {
    auto r = nnterp_cli(std::string(command) + " \"The capital of France is\"");
    EXPECT_EQ(r.code, 1) << command << ": " << r.out;
    EXPECT_TRUE(conventions_has(r, "'The capital of France is' is neither a model folder nor a hub id")) << command << ": " << r.out;
    EXPECT_TRUE(conventions_has(r, "did you mean --prompt \"The capital of France is\"?")) << command << ": " << r.out;
  }
  // A hub-id-shaped name is still looked up (and its not-found error lists where).
  auto hub = nnterp_cli("info org/missing-model");
  EXPECT_FALSE(conventions_has(hub, "did you mean --prompt")) << hub.out;
  // A prompt after MODEL: a positional too many.
  auto extra = nnterp_cli("logit-lens gpt2 \"The capital of France is\"");
  EXPECT_EQ(extra.code, 2) << extra.out;
  EXPECT_TRUE(conventions_has(extra, "nnterp logit-lens: unexpected argument \"The capital of France is\"; did you mean --prompt "
                         "\"The capital of France is\"?"))
      << extra.out;
}

TEST_F(CliConventions, AMistypedFlagSuggestsTheNearest) {
  auto r = nnterp_cli("logit-lens --prompt hi --layer 1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_TRUE(conventions_has(r, "nnterp logit-lens: unknown option --layer; did you mean --layers?")) << r.out;
  auto eq = nnterp_cli("collect --prompt hi --out-dri=x");
  EXPECT_TRUE(conventions_has(eq, "unknown option --out-dri; did you mean --out-dir?")) << eq.out;
  // Nothing near: no suggestion, a pointer to --help.
  auto far = nnterp_cli("dla --prompt hi --frobnicate");
  EXPECT_EQ(far.code, 2) << far.out;
  EXPECT_TRUE(conventions_has(far, "nnterp dla: unknown option --frobnicate\n")) << far.out;
  EXPECT_TRUE(conventions_has(far, "run `nnterp dla --help` for its options")) << far.out;
}

TEST_F(CliConventions, BadNumbersNameTheFlagInWords) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"logit-lens --prompt hi --top 0", "nnterp logit-lens: --top must be a positive integer (1, 2, ...), got '0'"},
      {"logit-lens --prompt hi --batch-size -2", "--batch-size must be a positive integer (1, 2, ...), got '-2'"},
      {"logit-lens --prompt hi --idx x", "--idx must be an integer (-1 is the last token, 0 the first), got 'x'"},
      {"info --threads -1", "nnterp info: --threads must be a non-negative integer (0, 1, ...), got '-1'"},
      {"generate --prompt hi --threads -1", "nnterp generate: --threads must be a non-negative integer (0, 1, ...), got '-1'"},
      {"generate --prompt hi --max-new-tokens 0", "--max-new-tokens must be a positive integer (1, 2, ...), got '0'"},
      {"generate --prompt hi --temperature -1", "--temperature must be a number >= 0, got '-1'"},
      {"generate --prompt hi --top-p 2", "--top-p must be a number in (0, 1], got '2'"},
      {"generate --prompt hi --top-k -1", "--top-k must be a non-negative integer (0, 1, ...), got '-1'"},
      {"generate --prompt hi --repetition-penalty 0", "--repetition-penalty must be a number > 0, got '0'"},
      {"collect --prompt hi --out x.safetensors --max-shard-mb 0", "--max-shard-mb must be a number > 0, got '0'"},
      {"dla --prompt hi --target x --top -1", "--top must be a non-negative integer (0, 1, ...), got '-1'"},
      {"points --tokens 0", "--tokens must be a positive integer (1, 2, ...), got '0'"},
      {"run-prompts --batch-size 0", "--batch-size must be a positive integer (1, 2, ...), got '0'"},
      // Commands still on CLI::PositiveNumber: CLI11's range message is rewritten.
      {"patchscope --prompt hi --top 0", "nnterp patchscope: --top must be a positive number, got '0'"},
  };
  for (const auto& [args, message] : cases) {
    auto r = nnterp_cli(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.out;
    EXPECT_TRUE(conventions_has(r, message)) << args << ": " << r.out;
    EXPECT_FALSE(conventions_has(r, "179769313486231570814527")) << args << ": " << r.out;
    EXPECT_FALSE(conventions_has(r, "not in range")) << args << ": " << r.out;
  }
}

TEST_F(CliConventions, IndexErrorsNameTheFlagTyped) {
  // Before: "invalid argument in idx", "in index_to_patch", "in DlaOptions::idx".
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"patchscope --prompt hi --source-idx 99 --layers 0", "nnterp: invalid argument in --source-idx: token index 99"},
      {"patchscope --prompt hi --index 99 --layers 0", "nnterp: invalid argument in --index: token index 99"},
      {"logit-lens --prompt hi --idx 99", "nnterp: invalid argument in --idx: token index 99"},
      {"dla --prompt hi --target \" Paris\" --idx 99", "nnterp: invalid argument in --idx: token index 99"},
  };
  for (const auto& [args, message] : cases) {
    auto r = nnterp_cli(args);
    EXPECT_EQ(r.code, 1) << args << ": " << r.out;
    EXPECT_TRUE(conventions_has(r, message)) << args << ": " << r.out;
    EXPECT_TRUE(conventions_has(r, "hint: negative indices count from the last token (-1)")) << args << ": " << r.out;
  }
}

TEST_F(CliConventions, CollectPointListsExactlyWhatItAccepts) {
  TempDir tmp("cli_conv_point");
  auto out = (tmp.path / "acts.safetensors").string();
  auto r = nnterp_cli("collect --prompt hi --point q --out " + out);
  EXPECT_EQ(r.code, 1) << r.out;
  // Before: "CollectOptions::point: 'layers.{i}.q' is not ..." after a list offering q, k, v, ...
  EXPECT_TRUE(conventions_has(r, "invalid argument in --point: unknown point 'q'")) << r.out;
  const std::string prefix = "hint: one of: ";
  const auto at = r.out.find(prefix);
  ASSERT_NE(at, std::string::npos) << r.out;
  std::stringstream list(r.out.substr(at + prefix.size(), r.out.find('\n', at) - at - prefix.size()));
  std::vector<std::string> names;
  for (std::string name; std::getline(list, name, ',');) names.push_back(name.substr(name.find_first_not_of(' ')));
  EXPECT_EQ(names, (std::vector<std::string>{"input", "attn_input", "attn_output", "resid_mid", "mlp_input", "mlp_output", "output"}))
      << r.out;
  for (const char* name : {"resid_mid", "mlp_input"}) {
    auto ok = nnterp_cli("collect --prompt hi --layers 0 --point " + std::string(name) + " --out " + out);
    EXPECT_EQ(ok.code, 0) << name << ": " << ok.out;
  }
  auto nowhere = nnterp_cli("collect --prompt hi");
  EXPECT_EQ(nowhere.code, 1) << nowhere.out;
  EXPECT_TRUE(conventions_has(nowhere, "invalid argument in --out-dir / --out: nowhere to write the activations")) << nowhere.out;
}

TEST_F(CliConventions, GenerateTakesPromptsByFlagAndChecksBeforePrinting) {
  auto flag = nnterp_cli("generate --prompt \"The capital of France is\" --max-new-tokens 1");
  EXPECT_EQ(flag.code, 0) << flag.out;
  EXPECT_EQ(flag.out, "The capital of France is Paris\n");
  // Before, the prompt was streamed and then the library refused --top-p.
  auto bad = nnterp_cli("generate --prompt \"Once upon\" --top-p 1.5");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_FALSE(conventions_has(bad, "Once upon")) << bad.out;
  auto none = nnterp_cli("generate --max-new-tokens 2");
  EXPECT_EQ(none.code, 1) << none.out;
  EXPECT_TRUE(conventions_has(none, "no prompt given")) << none.out;
  EXPECT_TRUE(conventions_has(none, "--prompt \"your prompt\"")) << none.out;
}

TEST_F(CliConventions, GenerateWithInputsAndNoOutPrintsTheIdsAsJsonLines) {
  TempDir tmp("cli_conv_gen");
  auto in = (tmp.path / "in.safetensors").string();
  io::save_safetensors(in, {{"input_ids", torch::tensor({0, 292, 393, 300, 1153, 263}, torch::kInt64).reshape({1, 6})},
                            {"attention_mask", torch::ones({1, 6}, torch::kInt64)}});
  auto r = nnterp_cli("generate --inputs " + in + " --max-new-tokens 2");
  ASSERT_EQ(r.code, 0) << r.out;
  auto line = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_EQ(line["row"], 0);
  EXPECT_EQ(line["ids"].size(), 8u) << r.out;
  EXPECT_EQ(line["new_ids"].size(), 2u) << r.out;
  EXPECT_EQ(line["text"].get<std::string>().rfind(" Paris", 0), 0u) << r.out;
  auto help = nnterp_cli("generate --help");
  EXPECT_TRUE(conventions_has(help, "--inputs (token ids) and no --out, each row's ids are printed as a JSON line")) << help.out;
}

TEST_F(CliConventions, GenerateNotesAnImmediateEos) {
  // The toy model ends a finished sentence at once.
  auto r = nnterp_cli("generate --prompt \"The capital of France is Paris\" --max-new-tokens 4");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(conventions_has(r, "nnterp: note: the model ended the text at once (EOS)")) << r.out;
  auto normal = nnterp_cli("generate --prompt \"The capital of France is\" --max-new-tokens 2");
  EXPECT_FALSE(conventions_has(normal, "ended the text at once")) << normal.out;
}

TEST_F(CliConventions, ChatTemplateTakesTheDefaultModel) {
  auto r = nnterp_cli("chat-template --user Hi --add-generation-prompt --template " +
                      (std::filesystem::path(NNTERP_TEST_DATA) / "chat_templates" / "chatml.jinja").string());
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(conventions_has(r, "<|im_start|>user\nHi<|im_end|>")) << r.out;
}

}  // namespace
}  // namespace nnterp::testing
