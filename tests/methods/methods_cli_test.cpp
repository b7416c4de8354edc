// The CLI commands over the methods: logit-lens, patchscope, collect, run-prompts, patch, with
// --inputs (pre-tokenized, models without a tokenizer), prompts (a model with a tokenizer),
// --json and --out.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "methods/methods_helpers.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::testing {
namespace {

nlohmann::json json_of(const CliResult& r) {
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON: " << r.out;
    return {};
  }
}

class MethodsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first: " << NNTERP_CLI_PATH;
  }
  std::string llama = (hf_fixture_dir() / "llama").string();
  std::string inputs = (hf_fixture_dir() / "llama" / "expected.safetensors").string();  // input_ids + attention_mask, B = 2
};

TEST_F(MethodsCli, LogitLensWithInputsJsonAndOut) {
  TempDir tmp("cli_lens");
  auto out = (tmp.path / "lens.safetensors").string();
  auto r = nnterp_cli("logit-lens " + llama + " --inputs " + inputs + " --inverse --top 3 --json --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = json_of(r);
  ASSERT_EQ(j["prompts"].size(), 2u);
  EXPECT_EQ(j["prompts"][0]["layers"].size(), 3u);
  EXPECT_EQ(j["prompts"][0]["layers"][2]["top"].size(), 3u);
  EXPECT_EQ(j["prompts"][0]["layers"][2]["top"][0]["token"].get<std::string>().rfind("#", 0), 0u);  // no tokenizer: ids
  auto f = io::SafetensorsFile::open(out);
  EXPECT_EQ(f->tensor("probs").sizes(), (std::vector<int64_t>{2, 3, 1000}));
  EXPECT_EQ(f->tensor("inverse_probs").sizes(), (std::vector<int64_t>{2, 3, 1000}));
  StandardizedTransformer model(llama);
  Fixture fx("llama");
  EXPECT_TRUE(close(f->tensor("probs"), logit_lens(model, TokenBatch{fx.input_ids, fx.attention_mask})));
  // Prompts need a tokenizer: a clear error.
  auto bad = nnterp_cli("logit-lens " + llama + " --prompt hello");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("no tokenizer"), std::string::npos) << bad.out;
}

TEST_F(MethodsCli, PointsSaysWhichLayersHaveEachPointWhyNotAndItsShape) {
  // lfm2's fixture: layers 0 and 2 are short convolutions, layer 1 attention; a dense MLP.
  const auto lfm2 = (hf_fixture_dir() / "lfm2").string();
  auto r = nnterp_cli("points " + lfm2 + " --tokens 5 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& row : json_of(r)) by_name[row["name"]] = row;
  StandardizedTransformer model(lfm2);
  EXPECT_EQ(by_name["layers.{i}.q"]["layers"], nlohmann::json({1}));
  EXPECT_NE(by_name["layers.{i}.q"]["why_not"].get<std::string>().find("short-convolution"), std::string::npos);
  EXPECT_EQ(by_name["layers.{i}.conv_state"]["layers"], nlohmann::json({0, 2}));
  EXPECT_FALSE(by_name["layers.{i}.recurrent_state"]["available"].get<bool>());
  EXPECT_FALSE(by_name["layers.{i}.router_logits"]["available"].get<bool>());
  EXPECT_EQ(by_name["layers.{i}.z"]["model_shape"].get<std::vector<int64_t>>(),
            (std::vector<int64_t>{1, 5, model.num_heads(), model.point_shape({Point::Z, 1}, 1, 1)[3]}));
  EXPECT_EQ(by_name["logits"]["model_shape"].get<std::vector<int64_t>>(), (std::vector<int64_t>{1, 5, model.vocab_size()}));
  // The same as a table, with the reasons.
  auto text = nnterp_cli("points " + lfm2);
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_NE(text.out.find("layers.{i}.conv_state"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("absent: this lfm2 model has no router"), std::string::npos) << text.out;
  auto zero = nnterp_cli("points " + lfm2 + " --batch 0");  // a usage error, checked as it is parsed
  EXPECT_EQ(zero.code, 2) << zero.out;
  EXPECT_NE(zero.out.find("--batch must be a positive integer (1, 2, ...), got '0'"), std::string::npos) << zero.out;
}

TEST_F(MethodsCli, LogitLensAndPatchscopeWithPrompts) {
  auto tiny = tiny_model_dir().string();
  auto r = nnterp_cli("logit-lens " + tiny + " --prompt \"the cat\" --prompt \"Paris is\" --layers -1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("prompt 1: \"Paris is\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("layer   2:"), std::string::npos) << r.out;
  auto p = nnterp_cli("patchscope " + tiny + " --prompt Paris --layers 0,1 --json");
  ASSERT_EQ(p.code, 0) << p.out;
  auto j = json_of(p);
  EXPECT_EQ(j["target"], "king king\n1135 1135\nhello hello\n?");
  EXPECT_EQ(j["sources"][0]["layers"].size(), 2u);
}

TEST_F(MethodsCli, PatchscopeWithInputsAndTargetIds) {
  TempDir tmp("cli_ps");
  auto out = (tmp.path / "ps.safetensors").string();
  auto r = nnterp_cli("patchscope " + llama + " --inputs " + inputs + " --target-ids 5,17,5,17,9 --json --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(json_of(r)["sources"].size(), 2u);
  EXPECT_EQ(io::SafetensorsFile::open(out)->tensor("probs").sizes(), (std::vector<int64_t>{2, 3, 1000}));
  auto bad = nnterp_cli("patchscope " + llama + " --inputs " + inputs);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("--target-ids"), std::string::npos) << bad.out;
}

TEST_F(MethodsCli, CollectToShardsAndToOneFile) {
  TempDir tmp("cli_collect");
  auto dir = (tmp.path / "acts").string(), out = (tmp.path / "acts.safetensors").string();
  auto r = nnterp_cli("collect " + llama + " --inputs " + inputs + " --layers 0,2 --shard-size 1 --out-dir " + dir + " --out " + out + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = json_of(r);
  EXPECT_EQ(j["shards"], 2);
  EXPECT_EQ(j["shards_written"], 2);
  auto again = json_of(nnterp_cli("collect " + llama + " --inputs " + inputs + " --layers 0,2 --shard-size 1 --out-dir " + dir + " --json"));
  EXPECT_EQ(again["shards_skipped"], 2);
  auto acts = io::SafetensorsFile::open(out)->tensor("activations");
  EXPECT_EQ(acts.sizes(), (std::vector<int64_t>{2, 2, 64}));
  EXPECT_TRUE(close(load_activations(dir), acts));
  StandardizedTransformer model(llama);
  Fixture fx("llama");
  EXPECT_TRUE(close(acts, get_token_activations(model, TokenBatch{fx.input_ids, fx.attention_mask}, -1, {0, 2})));
  // Prompts from a text file, with a tokenizer.
  std::ofstream(tmp.path / "prompts.txt") << "the cat\nParis is\n\nhello world\n";
  auto t = nnterp_cli("collect " + tiny_model_dir().string() + " --prompts " + (tmp.path / "prompts.txt").string() +
                      " --point attn_output --out " + out + " --json");
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_EQ(json_of(t)["num_prompts"], 3);
}

TEST_F(MethodsCli, RunPromptsWithWordsAndWithTokenIds) {
  TempDir tmp("cli_rp");
  auto jsonl = (tmp.path / "p.jsonl").string();
  std::ofstream(jsonl) << R"({"prompt": "The capital of France is", "targets": {"fr": ["Paris"], "en": ["London"]}})" << "\n"
                       << R"({"prompt": "le chat", "targets": {"fr": ["est", 5], "en": "is"}})" << "\n";
  auto tiny = tiny_model_dir().string();
  auto csv = nnterp_cli("run-prompts " + tiny + " --prompts " + jsonl);
  ASSERT_EQ(csv.code, 0) << csv.out;
  EXPECT_EQ(csv.out.rfind("prompt,en_words,en_tokens,en_ids,en_prob,fr_words,fr_tokens,fr_ids,fr_prob\n", 0), 0u) << csv.out;
  auto j = json_of(nnterp_cli("run-prompts " + tiny + " --prompts " + jsonl + " --lens logit-lens --json"));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_TRUE(j[1].contains("fr_prob.2")) << j.dump();
  EXPECT_EQ(j[1]["fr_ids"].size(), 3u);  // "est", "Ġest", 5
  // Token ids in --inputs, target ids in the JSONL (no tokenizer).
  auto targets = (tmp.path / "t.jsonl").string();
  std::ofstream(targets) << R"({"targets": {"a": [11, 12], "b": [13]}})" << "\n" << R"({"targets": {"a": [11], "b": [14]}})" << "\n";
  auto out = (tmp.path / "rp.safetensors").string();
  auto r = nnterp_cli("run-prompts " + llama + " --inputs " + inputs + " --prompts " + targets + " --json --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  auto rows = json_of(r);
  StandardizedTransformer model(llama);
  Fixture fx("llama");
  auto probs = next_token_probs(model, TokenBatch{fx.input_ids, fx.attention_mask});
  EXPECT_NEAR(rows[0]["a_prob"].get<double>(), (probs[0][11] + probs[0][12]).item<double>(), 1e-6);
  EXPECT_NEAR(rows[1]["b_prob"].get<double>(), probs[1][14].item<double>(), 1e-6);
  EXPECT_EQ(io::SafetensorsFile::open(out)->tensor("a").sizes(), (std::vector<int64_t>{2, 1}));
  // Collisions are refused unless allowed.
  std::ofstream(targets) << R"({"targets": {"a": [11, 12], "b": [12]}})" << "\n" << R"({"targets": {"a": [11], "b": [14]}})" << "\n";
  auto bad = nnterp_cli("run-prompts " + llama + " --inputs " + inputs + " --prompts " + targets);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("--allow-collisions"), std::string::npos) << bad.out;
  EXPECT_EQ(nnterp_cli("run-prompts " + llama + " --inputs " + inputs + " --prompts " + targets + " --allow-collisions").code, 0);
}

TEST_F(MethodsCli, PatchWithInputsAndWithPrompts) {
  TempDir tmp("cli_patch");
  Fixture fx("llama");
  auto corrupted = fx.input_ids.clone();
  corrupted.select(1, -2).fill_(7);
  auto cpath = (tmp.path / "corrupted.safetensors").string();
  io::save_safetensors(cpath, {{"input_ids", corrupted}, {"attention_mask", fx.attention_mask}});
  auto out = (tmp.path / "patch.safetensors").string();
  auto r = nnterp_cli("patch " + llama + " --inputs " + inputs + " --corrupted-inputs " + cpath +
                      " --correct-id 11 --incorrect-id 12 --json --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = json_of(r);
  EXPECT_EQ(j["dims"], nlohmann::json({"layer", "position"}));
  ASSERT_EQ(j["values"].size(), 3u);
  const size_t T = static_cast<size_t>(fx.input_ids.size(1));
  ASSERT_EQ(j["values"][2].size(), T);
  EXPECT_NEAR(j["values"][2][T - 1].get<double>(), j["clean_metric"].get<double>(), 1e-4);
  EXPECT_EQ(io::SafetensorsFile::open(out)->tensor("values").sizes(), (std::vector<int64_t>{3, static_cast<int64_t>(T)}));
  auto text = nnterp_cli("patch " + tiny_model_dir().string() + " --prompt \"the cat is\" --corrupted-prompt \"the dog is\" " +
                         "--correct \" red\" --incorrect \" blue\" --point v --all-positions");
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_NE(text.out.find("layer head"), std::string::npos) << text.out;
}

TEST_F(MethodsCli, DumpWritesTheRequestedPointsAndRefusesAbsentOnes) {
  TempDir tmp("cli_dump");
  const auto out = (tmp.path / "dump.safetensors").string();
  auto r = nnterp_cli("dump " + llama + " --inputs " + inputs + " --out " + out + " --points layers.{i}.z layers.1.mlp_hidden");
  ASSERT_EQ(r.code, 0) << r.out;
  auto f = io::SafetensorsFile::open(out);
  EXPECT_EQ(f->tensors().size(), 4u);  // z at 3 layers, mlp_hidden at one
  EXPECT_TRUE(f->contains("layers.2.z") && f->contains("layers.1.mlp_hidden"));
  // A layer the model lacks, or a point its layer lacks: an error, not an empty file.
  auto beyond = nnterp_cli("dump " + llama + " --inputs " + inputs + " --out " + out + " --points layers.9.output");
  EXPECT_EQ(beyond.code, 1);
  EXPECT_NE(beyond.out.find("--points layers.9.output: layer index out of range: the model has 3 layers (0..2)"), std::string::npos)
      << beyond.out;
  auto router = nnterp_cli("dump " + llama + " --inputs " + inputs + " --out " + out + " --points layers.{i}.router_logits");
  EXPECT_EQ(router.code, 1);
  EXPECT_NE(router.out.find("has no router"), std::string::npos) << router.out;
  // Integer points keep their dtype.
  const auto mixtral = (hf_fixture_dir() / "mixtral").string();
  auto routing = nnterp_cli("dump " + mixtral + " --inputs " + (hf_fixture_dir() / "mixtral" / "expected.safetensors").string() +
                            " --out " + out + " --points layers.0.expert_indices");
  ASSERT_EQ(routing.code, 0) << routing.out;
  EXPECT_EQ(io::SafetensorsFile::open(out)->tensor("layers.0.expert_indices").scalar_type(), torch::kInt64);
}

TEST_F(MethodsCli, GenerateRefusesAModelFolderWithoutAPrompt) {
  // The prompt forgotten: the folder is not taken as a prompt for the default model.
  auto forgot = nnterp_cli("generate " + llama);
  EXPECT_EQ(forgot.code, 1);
  EXPECT_NE(forgot.out.find("is a model folder, and no prompt was given"), std::string::npos) << forgot.out;
  auto ok = nnterp_cli("generate \"The capital of France is\" --max-new-tokens 1 --json");
  ASSERT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find(" Paris"), std::string::npos) << ok.out;
}

TEST_F(MethodsCli, PatchWithAttributionAndDirectLogitAttribution) {
  // On the default model: --method atp gives the grid activation patching gives, estimated.
  const std::string prompts = "--prompt \"The capital of France is\" --corrupted-prompt \"The capital of Spain is\" "
                              "--correct \" Paris\" --incorrect \" Madrid\" --json";
  auto exact = nnterp_cli("patch " + prompts), atp = nnterp_cli("patch " + prompts + " --method atp");
  ASSERT_EQ(exact.code, 0) << exact.out;
  ASSERT_EQ(atp.code, 0) << atp.out;
  auto je = json_of(exact), ja = json_of(atp);
  EXPECT_EQ(ja["method"], "atp");
  EXPECT_EQ(ja["values"].size(), je["values"].size());
  // The gradient run uses no autograd-less kernels: its metric differs by float rounding only.
  EXPECT_NEAR(ja["corrupted_metric"].get<double>(), je["corrupted_metric"].get<double>(), 1e-4);
  EXPECT_EQ(nnterp_cli("patch " + prompts + " --method fast").code, 2);
  // nnterp dla: the components sum to the model's logit.
  auto dla = nnterp_cli("dla --prompt \"The capital of France is\" --target \" Paris\" --json");
  ASSERT_EQ(dla.code, 0) << dla.out;
  auto j = json_of(dla)["prompts"][0];
  double sum = 0;
  for (const auto& [name, value] : j["components"].items()) sum += value.get<double>();
  EXPECT_NEAR(sum, j["model_logit"].get<double>(), 1e-3);
  EXPECT_TRUE(j["components"].contains("layers.3.mlp"));
  auto text = nnterp_cli("dla --prompt \"The capital of France is\" --target \" Paris\" --top 3");
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_NE(text.out.find("logit of  Paris = "), std::string::npos) << text.out;
  EXPECT_EQ(nnterp_cli("dla --prompt hi").code, 1);  // no target
}

// ---- usage and input errors: exit code 2 for usage, 1 for bad input, and a message saying what ----

TEST_F(MethodsCli, DtypeAndDeviceOnEveryCommandThatLoadsAModel) {
  // The same bf16 logit lens from the CLI and from the library.
  TempDir tmp("cli_dtype");
  auto out = (tmp.path / "lens.safetensors").string();
  auto r = nnterp_cli("logit-lens " + llama + " --inputs " + inputs + " --dtype bf16 --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  LoadOptions options;
  options.dtype = torch::kBFloat16;
  StandardizedTransformer model(llama, options);
  Fixture fx("llama");
  EXPECT_TRUE(close(io::SafetensorsFile::open(out)->tensor("probs"), logit_lens(model, TokenBatch{fx.input_ids, fx.attention_mask})));
  // info reports what the load did.
  auto info = json_of(nnterp_cli("info " + llama + " --dtype auto --json"));
  EXPECT_EQ(info["memory"]["dtype"], "float32");  // the fixture's own dtype
  EXPECT_EQ(info["memory"]["device"], "cpu");
  EXPECT_GT(info["memory"]["bytes_in_place"].get<int64_t>(), 0);
  for (const char* command : {"info", "validate", "logit-lens", "collect", "run-prompts", "patchscope", "patch", "dump", "generate"}) {
    auto bad = nnterp_cli(std::string(command) + " " + llama + " --dtype bf17");
    EXPECT_EQ(bad.code, 1) << command << ": " << bad.out;
    EXPECT_NE(bad.out.find("invalid argument in --dtype: unknown dtype 'bf17'"), std::string::npos) << command << ": " << bad.out;
    auto device = nnterp_cli(std::string(command) + " " + llama + " --device tpu");
    EXPECT_NE(device.out.find("--device: unknown device 'tpu'"), std::string::npos) << command << ": " << device.out;
  }
}

TEST_F(MethodsCli, UnknownCommandSuggestsTheNearestAndListsThemAll) {
  auto r = nnterp_cli("genrate \"hello\"");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("nnterp: unknown command 'genrate'; did you mean 'generate'?"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("commands: info, "), std::string::npos) << r.out;
}

TEST_F(MethodsCli, UnknownOptionIsAUsageError) {
  auto r = nnterp_cli("info " + llama + " --frobnicate");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("nnterp info: unknown option --frobnicate"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("run `nnterp info --help` for its options"), std::string::npos) << r.out;
}

TEST_F(MethodsCli, BadJsonlPromptLineNamesTheFileAndLine) {
  TempDir tmp("cli_jsonl");
  auto file = (tmp.path / "prompts.jsonl").string();
  std::ofstream(file) << "\"The capital of France is\"\n{\"prompt\": \"unterminated\n";
  auto r = nnterp_cli("logit-lens --prompts " + file);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("nnterp: format error in " + file + ":2: invalid JSON"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hint: one JSON value per line (JSONL)"), std::string::npos) << r.out;
}

TEST_F(MethodsCli, MissingModelListsWhereItLookedAndSaysItNeverDownloads) {
  TempDir tmp("cli_missing");
  auto r = nnterp_cli("info org/missing-model", "HF_HUB_CACHE=" + tmp.path.string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("nnterp: not found in org/missing-model: no model folder found; searched:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find((tmp.path / "models--org--missing-model").string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nnterp never downloads"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace nnterp::testing
