// Regression tests for the CLI input readers (cli/cli_inputs.cpp), from fuzz/fuzz_cli_inputs.cpp
// (see docs/fuzzing.md): --layers, --prompts (text and JSONL) and --inputs. Run through the
// nnterp binary: a bad input must exit with 1 and an error naming what and where, never hang,
// crash or exhaust memory.
#include <gtest/gtest.h>

#include <fstream>

#include "methods/methods_helpers.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::testing::cli_inputs_fuzz {
namespace {

class CliInputsFuzz : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first: " << NNTERP_CLI_PATH;
  }
  void expect_error(const std::string& args, std::initializer_list<std::string> parts) {
    auto r = nnterp_cli(args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
    for (const auto& p : parts) EXPECT_NE(r.out.find(p), std::string::npos) << "'" << p << "' not in: " << r.out;
  }
  std::string llama = (hf_fixture_dir() / "llama").string();
  std::string inputs = (hf_fixture_dir() / "llama" / "expected.safetensors").string();
};

// Found by the fuzzer: "0-2147483647" expanded the range before checking it (two billion
// layers: out of memory, then a signed overflow at INT_MAX).
TEST_F(CliInputsFuzz, HugeLayerRangeIsRefusedBeforeExpansion) {
  expect_error("logit-lens " + llama + " --inputs " + inputs + " --layers 0-2147483647",
               {"--layers", "layer 2147483647 is out of range", "the model has 3 layers"});
  expect_error("logit-lens " + llama + " --inputs " + inputs + " --layers 0-99999999999999999999", {"cannot read '0-99999999999999999999'"});
  expect_error("logit-lens " + llama + " --inputs " + inputs + " --layers=-9--1", {"layer -9 is out of range"});
  auto ok = nnterp_cli("logit-lens " + llama + " --inputs " + inputs + " --layers=-2--1 --json");
  EXPECT_EQ(ok.code, 0) << ok.out;
}

TEST_F(CliInputsFuzz, BadPromptFilesNameTheFileAndRecord) {
  TempDir tmp("cli_inputs_fuzz");
  auto jsonl = tmp.path / "prompts.jsonl";
  std::ofstream(jsonl) << "\"fine\"\n{\"text\": \"no prompt key\"}\n";
  expect_error("logit-lens " + llama + " --prompts " + jsonl.string(), {jsonl.string() + " (record 2)", "\"prompt\""});
  auto broken = tmp.path / "broken.jsonl";
  std::ofstream(broken) << "\"a\"\n\n{\"prompt\": \"b\"\n";
  expect_error("logit-lens " + llama + " --prompts " + broken.string(), {broken.string() + ":3", "invalid JSON"});
  auto deep = tmp.path / "deep.jsonl";  // parsed fine, then overflowed the stack in the error message
  std::ofstream(deep) << std::string(1000000, '[') << std::string(1000000, ']') << "\n";
  expect_error("logit-lens " + llama + " --prompts " + deep.string(), {deep.string() + ":1", "nests 1000000 levels deep"});
}

TEST_F(CliInputsFuzz, BadInputsFilesNameTheTensor) {
  TempDir tmp("cli_inputs_fuzz_st");
  auto i32 = (tmp.path / "i32.safetensors").string();
  io::save_safetensors(i32, {{"input_ids", torch::ones({1, 3}, torch::kInt32)}});
  expect_error("logit-lens " + llama + " --inputs " + i32, {"tensor 'input_ids'", "expected int64 [batch, tokens]"});
  auto mask = (tmp.path / "mask.safetensors").string();
  io::save_safetensors(mask, {{"input_ids", torch::ones({1, 3}, torch::kInt64)}, {"attention_mask", torch::ones({3, 1}, torch::kInt64)}});
  expect_error("logit-lens " + llama + " --inputs " + mask, {"tensor 'attention_mask'", "expected the shape of input_ids [1, 3]"});
  auto truncated = tmp.path / "truncated.safetensors";
  std::ofstream(truncated, std::ios::binary) << std::string("\x40\0\0\0\0\0\0\0{\"input_ids\"", 20);
  expect_error("logit-lens " + llama + " --inputs " + truncated.string(), {truncated.string(), "runs past the end of the file"});
}

}  // namespace
}  // namespace nnterp::testing::cli_inputs_fuzz
