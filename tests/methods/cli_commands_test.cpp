// The CLI makes its own inputs, and every method has a command (issue 20): tokenize --out, dump
// --prompt, generate --out read back as --inputs, steer compute / apply, skip, patchscope --generate.
// All on the embedded default model (a toy model trained on facts: capitals, colours, languages).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "methods/methods_helpers.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::testing {
namespace {

nlohmann::json cc_json(const CliResult& r) {
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception&) {
    ADD_FAILURE() << "not JSON (or JSON mixed with other text): " << r.out;
    return {};
  }
}

bool cc_has(const CliResult& r, const std::string& text) { return r.out.find(text) != std::string::npos; }

std::string read_text(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class CliCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first: " << NNTERP_CLI_PATH;
  }
  TempDir tmp{"cli_commands"};
  std::string path(const std::string& name) const { return (tmp.path / name).string(); }
  const std::string prompts = "--prompt 'The capital of France is' --prompt 'The sky is'";
};

TEST_F(CliCommands, TokenizeOutThenInputsGivesWhatPromptGives) {
  // MODEL is optional (the default model), as for every other command.
  auto tok = nnterp_cli("tokenize " + prompts + " --out " + path("in.safetensors"));
  ASSERT_EQ(tok.code, 0) << tok.out;
  auto f = io::SafetensorsFile::open(path("in.safetensors"));
  EXPECT_EQ(f->tensor("input_ids").scalar_type(), torch::kInt64);
  EXPECT_EQ(f->tensor("input_ids").size(0), 2);
  EXPECT_EQ(f->tensor("attention_mask").sizes(), f->tensor("input_ids").sizes());
  EXPECT_EQ(f->tensor("attention_mask")[1][0].item<int64_t>(), 0);  // the shorter prompt, left-padded

  auto by_inputs = nnterp_cli("logit-lens --inputs " + path("in.safetensors") + " --out " + path("a.safetensors"));
  auto by_prompt = nnterp_cli("logit-lens " + prompts + " --out " + path("b.safetensors"));
  ASSERT_EQ(by_inputs.code, 0) << by_inputs.out;
  ASSERT_EQ(by_prompt.code, 0) << by_prompt.out;
  EXPECT_TRUE(torch::equal(io::SafetensorsFile::open(path("a.safetensors"))->tensor("probs"),
                           io::SafetensorsFile::open(path("b.safetensors"))->tensor("probs")));

  // --prompts FILE and --text too; --no-special drops the BOS the methods add.
  std::ofstream(path("p.txt")) << "The capital of France is\nThe sky is\n";
  ASSERT_EQ(nnterp_cli("tokenize --prompts " + path("p.txt") + " --out " + path("in2.safetensors")).code, 0);
  EXPECT_TRUE(torch::equal(io::SafetensorsFile::open(path("in2.safetensors"))->tensor("input_ids"), f->tensor("input_ids")));
  ASSERT_EQ(nnterp_cli("tokenize --text 'The sky' --no-special --out " + path("raw.safetensors")).code, 0);
  ASSERT_EQ(nnterp_cli("tokenize --text 'The sky' --out " + path("bos.safetensors")).code, 0);
  EXPECT_EQ(io::SafetensorsFile::open(path("raw.safetensors"))->tensor("input_ids").size(1) + 1,
            io::SafetensorsFile::open(path("bos.safetensors"))->tensor("input_ids").size(1));

  // Texts given two ways, --no-special without --out: usage errors naming the flags.
  auto twice = nnterp_cli("tokenize --prompt a --text b");
  EXPECT_EQ(twice.code, 2);
  EXPECT_TRUE(cc_has(twice, "--text / --jsonl / --prompt / --prompts")) << twice.out;
  auto no_special = nnterp_cli("tokenize --prompt a --no-special");
  EXPECT_EQ(no_special.code, 2);
  EXPECT_TRUE(cc_has(no_special, "--no-special")) << no_special.out;
}

TEST_F(CliCommands, DumpTakesPromptsAndGenerateOutput) {
  auto by_prompt = nnterp_cli("dump " + prompts + " --points logits --out " + path("d1.safetensors"));
  ASSERT_EQ(by_prompt.code, 0) << by_prompt.out;
  ASSERT_EQ(nnterp_cli("tokenize " + prompts + " --out " + path("in.safetensors")).code, 0);
  auto by_inputs = nnterp_cli("dump --inputs " + path("in.safetensors") + " --points logits --out " + path("d2.safetensors"));
  ASSERT_EQ(by_inputs.code, 0) << by_inputs.out;
  EXPECT_TRUE(torch::equal(io::SafetensorsFile::open(path("d1.safetensors"))->tensor("logits"),
                           io::SafetensorsFile::open(path("d2.safetensors"))->tensor("logits")));

  // generate --out writes generated_ids: --inputs reads it (rows that stopped at their EOS left-aligned).
  auto gen = nnterp_cli("generate --inputs " + path("in.safetensors") + " --max-new-tokens 3 --out " + path("gen.safetensors"));
  ASSERT_EQ(gen.code, 0) << gen.out;
  auto generated = io::SafetensorsFile::open(path("gen.safetensors"))->tensor("generated_ids");
  auto dump = nnterp_cli("dump --inputs " + path("gen.safetensors") + " --points logits --out " + path("d3.safetensors"));
  ASSERT_EQ(dump.code, 0) << dump.out;
  auto logits = io::SafetensorsFile::open(path("d3.safetensors"))->tensor("logits");
  EXPECT_EQ(logits.size(0), 2);
  EXPECT_EQ(logits.size(1), generated.size(1));
  auto lens = nnterp_cli("logit-lens --inputs " + path("gen.safetensors") + " --layers -1 --json");
  ASSERT_EQ(lens.code, 0) << lens.out;

  // Neither input_ids nor generated_ids: the error names both. No prompt at all: names the flags.
  auto neither = nnterp_cli("dump --inputs " + path("d1.safetensors") + " --out " + path("x.safetensors"));
  EXPECT_EQ(neither.code, 1);
  EXPECT_TRUE(cc_has(neither, "no tensor 'input_ids' (nor 'generated_ids'")) << neither.out;
  auto none = nnterp_cli("dump --out " + path("x.safetensors"));
  EXPECT_EQ(none.code, 1);
  EXPECT_TRUE(cc_has(none, "--prompt TEXT, --prompts FILE or --inputs")) << none.out;
}

TEST_F(CliCommands, SteerComputeThenApplyRaisesThePositiveToken) {
  // Blue things against green and yellow ones, at layer 2 of 4.
  auto compute = nnterp_cli(
      "steer compute --positive-prompt 'The colour of the sky is' --positive-prompt 'The colour of the ocean is' "
      "--negative-prompt 'The colour of the grass is' --negative-prompt 'The colour of the banana is' --layer 2 --json --out " +
      path("blue.safetensors"));
  ASSERT_EQ(compute.code, 0) << compute.out;
  auto cj = cc_json(compute);
  EXPECT_EQ(cj["layer"], 2);
  EXPECT_EQ(cj["positive"], 2);
  auto vec = io::SafetensorsFile::open(path("blue.safetensors"))->tensor("vector");
  EXPECT_EQ(vec.dim(), 1);
  EXPECT_EQ(vec.scalar_type(), torch::kFloat32);

  auto apply = nnterp_cli("steer apply --vector " + path("blue.safetensors") +
                          " --layer 2 --factor 1 --prompt 'The colour of the lemon is' --json --out " + path("probs.safetensors"));
  ASSERT_EQ(apply.code, 0) << apply.out;
  auto aj = cc_json(apply);
  ASSERT_EQ(aj["prompts"].size(), 1u);
  EXPECT_EQ(aj["prompts"][0]["before"][0]["token"], " yellow");
  EXPECT_EQ(aj["prompts"][0]["after"][0]["token"], " blue");
  const int64_t blue = aj["prompts"][0]["after"][0]["id"].get<int64_t>();
  auto f = io::SafetensorsFile::open(path("probs.safetensors"));
  EXPECT_GT(f->tensor("probs_after")[0][blue].item<float>(), f->tensor("probs_before")[0][blue].item<float>() + 0.5f);
  // Without --layer: the layer recorded in the file.
  auto recorded = nnterp_cli("steer apply --vector " + path("blue.safetensors") + " --factor 1 --prompt 'The colour of the lemon is'");
  ASSERT_EQ(recorded.code, 0) << recorded.out;
  EXPECT_TRUE(cc_has(recorded, "steering layer 2 by 1")) << recorded.out;
  // Factor 0 changes nothing.
  ASSERT_EQ(nnterp_cli("steer apply --vector " + path("blue.safetensors") + " --layer 2 --factor 0 --prompt 'The colour of the lemon is' --out " +
                       path("zero.safetensors")).code, 0);
  auto z = io::SafetensorsFile::open(path("zero.safetensors"));
  EXPECT_TRUE(close(z->tensor("probs_after"), z->tensor("probs_before")));
  // generate --steer reads the same file.
  auto gen = nnterp_cli("generate --prompt 'The colour of the lemon is' --max-new-tokens 1 --steer 2:" + path("blue.safetensors") + ":1");
  ASSERT_EQ(gen.code, 0) << gen.out;
  EXPECT_TRUE(cc_has(gen, " blue")) << gen.out;
}

TEST_F(CliCommands, SteerAndSkipDrawTheirComparisonAsAHeatmap) {
  auto compute = nnterp_cli("steer compute --positive-prompt 'The colour of the sky is' --negative-prompt "
                            "'The colour of the grass is' --layer 2 --out " + path("v.safetensors"));
  ASSERT_EQ(compute.code, 0) << compute.out;
  auto apply = nnterp_cli("steer apply --vector " + path("v.safetensors") + " --factor 1 --prompt 'The colour of the lemon is' "
                          "--html " + path("steer.html") + " --width 700");
  ASSERT_EQ(apply.code, 0) << apply.out;
  const std::string steer = read_text(path("steer.html"));
  for (const char* expected : {"without steering", "layer 2 + 1 x vector", "The colour of the lemon is"})
    EXPECT_NE(steer.find(expected), std::string::npos) << expected;
  EXPECT_TRUE(steer.find("\"width\":700") != std::string::npos || steer.find("\"width\": 700") != std::string::npos);
  auto skip = nnterp_cli("skip --layers 2,3 --prompt 'The capital of France is' --html " + path("skip.html"));
  ASSERT_EQ(skip.code, 0) << skip.out;
  const std::string page = read_text(path("skip.html"));
  EXPECT_NE(page.find("all layers"), std::string::npos);
  EXPECT_NE(page.find("skipping 2,3"), std::string::npos);
}

TEST_F(CliCommands, SteerErrorsNameTheFlag) {
  auto no_negative = nnterp_cli("steer compute --positive-prompt 'The sky' --layer 1 --out " + path("v.safetensors"));
  EXPECT_EQ(no_negative.code, 1);
  EXPECT_TRUE(cc_has(no_negative, "--negative-prompt")) << no_negative.out;
  auto two_layers = nnterp_cli("steer compute --positive-prompt a --negative-prompt b --layer 1,2 --out " + path("v.safetensors"));
  EXPECT_EQ(two_layers.code, 1);
  EXPECT_TRUE(cc_has(two_layers, "--layer")) << two_layers.out;
  auto bad_point = nnterp_cli("steer compute --positive-prompt a --negative-prompt b --layer 1 --point nope --out " + path("v.safetensors"));
  EXPECT_EQ(bad_point.code, 1);
  EXPECT_TRUE(cc_has(bad_point, "--point")) << bad_point.out;
  std::ofstream(path("short.txt")) << "1 2 3\n";
  auto short_vector = nnterp_cli("steer apply --vector " + path("short.txt") + " --layer 1 --prompt a");
  EXPECT_EQ(short_vector.code, 1);
  EXPECT_TRUE(cc_has(short_vector, "--vector")) << short_vector.out;
  auto no_layer = nnterp_cli("steer apply --vector " + path("short.txt") + " --prompt a");
  EXPECT_EQ(no_layer.code, 1);
  EXPECT_TRUE(cc_has(no_layer, "--layer: missing")) << no_layer.out;
  auto no_subcommand = nnterp_cli("steer");
  EXPECT_EQ(no_subcommand.code, 2);
}

TEST_F(CliCommands, SkipNoLayerIsThePlainRunAndSkippingChangesIt) {
  auto none = nnterp_cli("skip " + prompts + " --layers none --out " + path("none.safetensors"));
  ASSERT_EQ(none.code, 0) << none.out;
  auto n = io::SafetensorsFile::open(path("none.safetensors"));
  EXPECT_TRUE(close(n->tensor("probs"), n->tensor("probs_skipped")));
  EXPECT_EQ(n->tensor("layers").numel(), 0);
  // The plain run is the logit lens at the last layer.
  ASSERT_EQ(nnterp_cli("logit-lens " + prompts + " --layers -1 --out " + path("lens.safetensors")).code, 0);
  EXPECT_TRUE(close(n->tensor("probs"), io::SafetensorsFile::open(path("lens.safetensors"))->tensor("probs").select(1, 0)));

  auto skip = nnterp_cli("skip " + prompts + " --layers 2,3 --json --out " + path("skip.safetensors"));
  ASSERT_EQ(skip.code, 0) << skip.out;
  auto j = cc_json(skip);
  EXPECT_EQ(j["skipped_layers"], nlohmann::json({2, 3}));
  ASSERT_EQ(j["prompts"].size(), 2u);
  EXPECT_GT(j["prompts"][0]["kl"].get<double>(), 1e-3);
  auto s = io::SafetensorsFile::open(path("skip.safetensors"));
  EXPECT_FALSE(close(s->tensor("probs"), s->tensor("probs_skipped"), 1e-3));

  auto text = nnterp_cli("skip --prompt 'The capital of France is' --layers -1");
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_TRUE(cc_has(text, "skipping layers: 3") && cc_has(text, "plain:") && cc_has(text, "skipped:")) << text.out;
}

TEST_F(CliCommands, SkipBadLayersNameTheFlag) {
  auto beyond = nnterp_cli("skip --prompt a --layers 9");
  EXPECT_EQ(beyond.code, 1);
  EXPECT_TRUE(cc_has(beyond, "--layers") && cc_has(beyond, "out of range")) << beyond.out;
  auto junk = nnterp_cli("skip --prompt a --layers two");
  EXPECT_EQ(junk.code, 1);
  EXPECT_TRUE(cc_has(junk, "--layers")) << junk.out;
  auto missing = nnterp_cli("skip --prompt a");
  EXPECT_EQ(missing.code, 2);
  EXPECT_TRUE(cc_has(missing, "--layers")) << missing.out;
}

TEST_F(CliCommands, PatchscopeGeneratePrintsTheTextPerLayer) {
  auto r = nnterp_cli("patchscope --prompt Paris --prompt Berlin --layers 0,1 --generate 3 --json --out " + path("ps.safetensors"));
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = cc_json(r);
  EXPECT_EQ(j["layers"], nlohmann::json({0, 1}));
  ASSERT_EQ(j["sources"].size(), 2u);
  for (const auto& source : j["sources"]) {
    ASSERT_EQ(source["layers"].size(), 2u);
    for (const auto& layer : source["layers"]) {
      EXPECT_TRUE(layer["text"].is_string());
      EXPECT_LE(layer["ids"].size(), 3u);
    }
  }
  // The source's hidden state, patched in at layer 1, is what the target repeats.
  EXPECT_EQ(j["sources"][0]["layers"][1]["text"].get<std::string>().rfind(" Paris", 0), 0u) << r.out;
  EXPECT_EQ(j["sources"][1]["layers"][1]["text"].get<std::string>().rfind(" Berlin", 0), 0u) << r.out;
  auto f = io::SafetensorsFile::open(path("ps.safetensors"));
  EXPECT_EQ(f->tensor("generated").sizes(), (std::vector<int64_t>{2, 2, 3}));

  auto text = nnterp_cli("patchscope --prompt Paris --layers 1 --generate 2");
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_TRUE(cc_has(text, "layer   1: \" Paris")) << text.out;
  auto bad = nnterp_cli("patchscope --prompt Paris --generate 0");
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(cc_has(bad, "--generate")) << bad.out;
}

TEST_F(CliCommands, NewCommandsHaveHelpWithExamples) {
  for (const char* command : {"tokenize", "dump", "steer", "steer compute", "steer apply", "skip", "patchscope"}) {
    auto r = nnterp_cli(std::string(command) + " --help");
    EXPECT_EQ(r.code, 0) << command << ": " << r.out;
    EXPECT_TRUE(cc_has(r, "Example")) << command << ": " << r.out;
  }
}

}  // namespace
}  // namespace nnterp::testing
