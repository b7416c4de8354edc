// A newcomer's first hour with the CLI: every command on the embedded default model (no MODEL
// argument) with typical inputs, then the typical mistakes, each of which must exit with the
// right code and a message naming the flag and saying what to do.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "methods/methods_helpers.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::testing {
namespace {

class CliFirstHour : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first: " << NNTERP_CLI_PATH;
  }
};

bool first_hour_has(const CliResult& r, const std::string& text) { return r.out.find(text) != std::string::npos; }

// Runs `args` and checks its exit code and that its output holds every one of `expected`.
void expect_run(const std::string& args, int code, const std::vector<std::string>& expected) {
  auto r = nnterp_cli(args);
  EXPECT_EQ(r.code, code) << "nnterp " << args << "\n" << r.out;
  for (const auto& text : expected) EXPECT_TRUE(first_hour_has(r, text)) << "nnterp " << args << ": missing '" << text << "'\n" << r.out;
}

TEST_F(CliFirstHour, EveryCommandOnTheDefaultModel) {
  TempDir tmp("cli_first_hour");
  const std::string dir = tmp.path.string() + "/";
  // Pre-tokenized "The capital of France is" (BOS first), as `--inputs` files hold.
  io::save_safetensors(dir + "in.safetensors",
                       {{"input_ids", torch::tensor({0, 292, 393, 300, 1153, 263}, torch::kInt64).reshape({1, 6})},
                        {"attention_mask", torch::ones({1, 6}, torch::kInt64)}});
  std::ofstream(dir + "targets.jsonl") << "{\"prompt\": \"The capital of France is\", \"targets\": {\"fr\": [\" Paris\"], \"es\": [\" Madrid\"]}}\n";
  const std::string template_file = (std::filesystem::path(NNTERP_TEST_DATA) / "chat_templates" / "chatml.jinja").string();
  const std::string prompt = "--prompt \"The capital of France is\"";

  expect_run("--help", 0, {"Usage: nnterp", "logit-lens", "MODEL      the only positional argument, optional"});
  expect_run("logit-lens --help", 0, {"--prompt", "--layers", "Examples:"});
  expect_run("info", 0, {"LlamaForCausalLM", "layers 4"});
  expect_run("validate", 0, {"ok   forward pass"});
  expect_run("points", 0, {"layers.{i}.output"});
  expect_run("tokenize --text \"The capital\"", 0, {"\"Ġcapital\"", "ids: [292, 393]"});
  expect_run("chat-template --user Hi --add-generation-prompt --template " + template_file, 0, {"<|im_start|>assistant"});
  expect_run("generate " + prompt + " --max-new-tokens 1", 0, {"The capital of France is Paris"});
  expect_run("logit-lens " + prompt + " --layers -1 --top 2", 0, {"layer   3:", "\" Paris\""});
  expect_run("patchscope --prompt Paris --layers 0 --top 2", 0, {"source 0: \"Paris\"", "\" Paris\""});
  expect_run("collect --prompt hello --prompt world --layers 0,1 --out " + dir + "acts.safetensors", 0,
             {"collected 2 prompts × 2 layers"});
  expect_run("run-prompts --prompts " + dir + "targets.jsonl", 0, {"fr_prob", "The capital of France is"});
  expect_run("patch " + prompt + " --corrupted-prompt \"The capital of Spain is\" --correct \" Paris\" --incorrect \" Madrid\" "
             "--layers 3 --point attn_output",
             0, {"metric: logit[ Paris] - logit[ Madrid]"});
  expect_run("dla " + prompt + " --target \" Paris\" --top 2", 0, {"logit of  Paris"});
  expect_run("dump --inputs " + dir + "in.safetensors --points logits --out " + dir + "dump.safetensors", 0, {});
  EXPECT_TRUE(io::SafetensorsFile::open(dir + "dump.safetensors")->contains("logits"));
}

TEST_F(CliFirstHour, TypicalMistakesNameTheFlagAndTheFix) {
  // The prompt as the positional argument.
  expect_run("logit-lens \"The capital of France is\"", 1, {"did you mean --prompt \"The capital of France is\"?"});
  expect_run("generate \"The capital of France is Paris\" --max-new-tokens 3", 0, {"note: the model ended the text at once (EOS)"});
  // No prompt at all.
  expect_run("logit-lens", 1, {"none given", "use --prompt TEXT, --prompts FILE or --inputs IN.safetensors"});
  expect_run("patch --prompt a --correct \" Paris\" --incorrect \" Rome\"", 1,
             {"corrupted prompts: none given", "use --corrupted-prompt TEXT"});
  // A mistyped flag.
  expect_run("logit-lens --prompt hi --layer 2", 2, {"unknown option --layer; did you mean --layers?"});
  expect_run("generate --promt hi", 2, {"unknown option --promt; did you mean --prompt?"});
  // Zero and negative numbers.
  expect_run("logit-lens --prompt hi --top 0", 2, {"--top must be a positive integer (1, 2, ...), got '0'"});
  expect_run("collect --prompt hi --out x.safetensors --batch-size -1", 2, {"--batch-size must be a positive integer"});
  expect_run("generate --prompt hi --max-new-tokens -3", 2, {"--max-new-tokens must be a positive integer (1, 2, ...), got '-3'"});
  // Bad --layers.
  expect_run("logit-lens --prompt hi --layers 7", 1, {"invalid argument in --layers: layer 7 is out of range", "0..3"});
  expect_run("patchscope --prompt hi --layers x", 1, {"invalid argument in --layers", "hint: e.g. all, 3, 0,4,8, 2-5 or -1"});
  // Token indices out of the prompt.
  expect_run("patchscope --prompt hi --source-idx 5 --layers 0", 1, {"invalid argument in --source-idx", "hint: negative indices"});
  // Missing --out.
  expect_run("collect --prompt hi", 1, {"--out-dir / --out: nowhere to write", "give --out-dir DIR (shards) or --out FILE.safetensors"});
  expect_run("dump --prompt hi", 2, {"nnterp dump: --out is required", "run `nnterp dump --help`"});
  // A point collect cannot read.
  expect_run("collect --prompt hi --point attn_probs --out x.safetensors", 1, {"invalid argument in --point", "one of: input,"});
  // Bad enum values.
  expect_run("run-prompts --prompts /dev/null --lens tuned", 1, {"invalid argument in --lens", "next-token or logit-lens"});
  expect_run("info --dtype float64", 1, {"--dtype"});
  // A missing target word.
  expect_run("dla --prompt hi", 1, {"invalid argument in --target: missing", "give --target WORD or --target-id N"});
}

}  // namespace
}  // namespace nnterp::testing
