// The library's input readers (nnterp/inputs.hpp: prompt files, --inputs safetensors, layer
// lists), Config's text parsing and sections, and the data files an install finds.
#include <sstream>

#include "io/io_helpers.hpp"
#include "nnterp/config.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/inputs.hpp"
#include "nnterp/safetensors.hpp"

using namespace io_test;
using nnterp::ErrorKind;
namespace nio = nnterp::io;

TEST(InputReaders, PromptFilesAsLinesOrJsonl) {
  TempDir dir;
  write_text(dir / "p.txt", "The cat\r\n\nA dog sat\n");
  EXPECT_EQ(nio::read_prompt_file((dir / "p.txt").string()), (std::vector<std::string>{"The cat", "A dog sat"}));
  write_text(dir / "p.jsonl", "\"first\\nline\"\n\n{\"prompt\": \"second\", \"extra\": 1}\n");
  EXPECT_EQ(nio::read_prompt_file((dir / "p.jsonl").string()), (std::vector<std::string>{"first\nline", "second"}));
  EXPECT_TRUE(nio::is_jsonl_path("a/b.ndjson"));
  EXPECT_FALSE(nio::is_jsonl_path("a/b.txt"));
  std::istringstream in("[1, 2]\n");
  expect_error([&] { nio::read_prompts(in, true, "mem.jsonl"); }, ErrorKind::Format,
               {"mem.jsonl (record 1)", "neither a string nor an object with a \"prompt\" string"});
  std::istringstream broken("\"ok\"\n{\"prompt\": \n");
  expect_error([&] { nio::read_prompts(broken, true, "mem.jsonl"); }, ErrorKind::Format, {"mem.jsonl:2", "invalid JSON"});
  expect_error([&] { nio::read_prompt_file((dir / "absent.txt").string()); }, ErrorKind::Io, {"absent.txt", "cannot open"});
}

TEST(InputReaders, TokenInputsFromSafetensors) {
  TempDir dir;
  const auto ids = torch::tensor({{0, 5, 6}, {7, 8, 9}}, torch::kInt64);
  const auto mask = torch::tensor({{0, 1, 1}, {1, 1, 1}}, torch::kInt64);
  nio::save_safetensors(dir / "in.safetensors", {{"input_ids", ids}, {"attention_mask", mask}});
  auto b = nio::read_token_inputs((dir / "in.safetensors").string());
  EXPECT_TRUE(torch::equal(b.input_ids, ids));
  EXPECT_TRUE(torch::equal(b.attention_mask, mask));
  nio::save_safetensors(dir / "ids.safetensors", {{"input_ids", ids}});
  EXPECT_TRUE(torch::equal(nio::read_token_inputs((dir / "ids.safetensors").string()).attention_mask, torch::ones_like(ids)));
  nio::save_safetensors(dir / "f.safetensors", {{"input_ids", ids.to(torch::kFloat32)}});
  expect_error([&] { nio::read_token_inputs((dir / "f.safetensors").string()); }, ErrorKind::Shape,
               {"tensor 'input_ids'", "expected int64 [batch, tokens], got [2, 3] Float"});
  nio::save_safetensors(dir / "none.safetensors", {{"tokens", ids}});
  expect_error([&] { nio::read_token_inputs((dir / "none.safetensors").string()); }, ErrorKind::Format, {"no tensor 'input_ids'"});
}

TEST(InputReaders, LayerLists) {
  EXPECT_EQ(nio::parse_layers("all", 4), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(nio::parse_layers("", 2), (std::vector<int>{0, 1}));
  EXPECT_EQ(nio::parse_layers("0,2-3,-1", 4), (std::vector<int>{0, 2, 3, 3}));
  EXPECT_EQ(nio::parse_layers("-2--1", 4), (std::vector<int>{2, 3}));
  expect_error([] { nio::parse_layers("0-2147483647", 3); }, ErrorKind::InvalidArgument,
               {"--layers", "layer 2147483647 is out of range (the model has 3 layers"});
  expect_error([] { nio::parse_layers("3-1", 4, "--source-layers"); }, ErrorKind::InvalidArgument,
               {"--source-layers", "cannot read '3-1'"});
  expect_error([] { nio::parse_layers("x", 4); }, ErrorKind::InvalidArgument, {"cannot read 'x' in 'x'"});
}

TEST(ConfigText, ParseAndSections) {
  auto c = nnterp::Config::parse(R"({"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0},
                                      "attn_config": null, "bad": [1]})", "inline.json");
  EXPECT_EQ(c.model_type(), "llama");
  auto rope = c.section("rope_scaling");
  EXPECT_EQ(rope.source(), "inline.json (rope_scaling)");
  EXPECT_DOUBLE_EQ(rope.number({"factor"}), 8.0);
  EXPECT_FALSE(c.section("attn_config").has("alibi"));  // null: an empty section
  EXPECT_FALSE(c.section("absent").has("x"));
  expect_error([&] { c.section("bad"); }, ErrorKind::Config, {"inline.json", "'bad' should be an object or null, got [1]"});
  EXPECT_EQ(nnterp::Config::parse(c.dump(), "again").section("rope_scaling").string({"rope_type"}), "llama3");
  expect_error([] { nnterp::Config::parse("{\"a\": ", "cut.json"); }, ErrorKind::Format, {"cut.json", "invalid JSON"});
  expect_error([] { nnterp::Config::parse(std::string(200, '[') + std::string(200, ']'), "deep.json"); }, ErrorKind::Format,
               {"deep.json", "nests 200 levels deep"});
  EXPECT_FALSE(nnterp::Config().has("model_type"));
}

TEST(DataFiles, DefaultModelIsFoundAndOverridable) {
  const auto dir = nnterp::default_model_dir();
  EXPECT_TRUE(std::filesystem::exists(dir / "config.json")) << dir;
  TempDir tmp;
  EnvGuard env({"NNTERP_DEFAULT_MODEL"});
  env.set("NNTERP_DEFAULT_MODEL", tmp.path().string());
  EXPECT_EQ(nnterp::default_model_dir(), tmp.path());
  env.set("NNTERP_DEFAULT_MODEL", (tmp / "absent").string());  // an override is never silently ignored
  expect_error([] { nnterp::default_model_dir(); }, ErrorKind::NotFound,
               {"the default model", "NNTERP_DEFAULT_MODEL is set to '" + (tmp / "absent").string() + "', which does not exist"});
  env.unset("NNTERP_DEFAULT_MODEL");
  EXPECT_EQ(nnterp::default_model_dir(), dir);
}
