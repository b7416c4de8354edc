// Malformed values in tokenizer.json / tokenizer_config.json: each is an Error(Format) that names
// the file and the key path of the value (they are read through io::JsonValue), never a
// nlohmann exception or an "unexpected content" message.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "nnterp/error.hpp"
#include "nnterp/tokenizer.hpp"

using nnterp::ErrorKind;
using nnterp::Tokenizer;
using nlohmann::json;

namespace tokpaths {

json bpe_model() {
  return {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", json::array({"a b"})}};
}

json with_model(json model) { return {{"model", std::move(model)}}; }

// Loading must throw Error(Format) whose text holds `expected`.
void expect_path_error(const json& tokenizer, const std::string& expected, const std::string& config = "") {
  try {
    Tokenizer::from_json_string(tokenizer.dump(), config);
    ADD_FAILURE() << "loaded: " << tokenizer.dump();
  } catch (const nnterp::Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(ErrorKind::Format)) << e.what();
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << "'" << expected << "' not in: " << e.what();
    EXPECT_EQ(std::string(e.what()).find("unexpected content"), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-nnterp exception: " << e.what();
  }
}

TEST(TokenizerJsonPaths, ValidFileLoads) {
  const Tokenizer t = Tokenizer::from_json_string(with_model(bpe_model()).dump());
  EXPECT_EQ(t.encode_ids("ab", false), std::vector<int64_t>{2});
}

TEST(TokenizerJsonPaths, VocabValueThatIsAString) {
  json model = bpe_model();
  model["vocab"]["abc"] = "x";
  expect_path_error(with_model(model),
                    "in tokenizer.json: 'model.vocab.abc' should be an integer in [0, 2^28), got \"x\"");
  const json wordlevel = json::parse(R"({"type": "WordLevel", "vocab": {"a": [0]}})");
  expect_path_error(with_model(wordlevel), "'model.vocab.a' should be an integer in [0, 2^28), got [0]");
  // A number that is no id keeps the message the fuzz regression tests expect, plus its path.
  model["vocab"]["abc"] = 1.5;
  expect_path_error(with_model(model), "token id 1.5 is not an integer in [0, 2^28) (at 'model.vocab.abc')");
}

TEST(TokenizerJsonPaths, MergesThatAreNumbers) {
  json model = bpe_model();
  model["merges"] = json::array({3});
  expect_path_error(with_model(model),
                    "in tokenizer.json: 'model.merges[0]' should be \"a b\" or [\"a\", \"b\"], got 3");
  model["merges"] = json::array({json::array({"a", 1})});
  expect_path_error(with_model(model), "'model.merges[0][1]' should be a string, got 1");
  model["merges"] = 7;
  expect_path_error(with_model(model), "'model.merges' should be an array, got 7");
}

TEST(TokenizerJsonPaths, AddedTokenContentThatIsAnObject) {
  json j = with_model(bpe_model());
  j["added_tokens"] = json::parse(R"([{"id": 3, "content": {"text": "<s>"}, "special": true}])");
  expect_path_error(j, "in tokenizer.json: 'added_tokens[0].content' should be a string, got {\"text\":\"<s>\"}");
  j["added_tokens"] = json::parse(R"([{"id": 3, "content": "<s>", "special": "yes"}])");
  expect_path_error(j, "'added_tokens[0].special' should be true or false, got \"yes\"");
  j["added_tokens"] = json::parse(R"([{"id": 3}])");
  expect_path_error(j, "missing 'added_tokens[0].content'");
}

TEST(TokenizerJsonPaths, NormalizerWithANonStringType) {
  json j = with_model(bpe_model());
  j["normalizer"] = {{"type", 3}};
  expect_path_error(j, "in tokenizer.json: 'normalizer.type' should be a string, got 3");
  j["normalizer"] = json::parse(R"({"type": "Sequence", "normalizers": [{"type": "Lowercase"}, {"type": false}]})");
  expect_path_error(j, "'normalizer.normalizers[1].type' should be a string, got false");
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", 5}}}, {"content", " "}};
  expect_path_error(j, "'normalizer.pattern.String' should be a string, got 5");
  j["normalizer"] = {{"type", "Strip"}, {"strip_left", "no"}};
  expect_path_error(j, "'normalizer.strip_left' should be true or false, got \"no\"");
}

TEST(TokenizerJsonPaths, OtherComponents) {
  json j = with_model(bpe_model());
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "ab"}};
  expect_path_error(j, "'pre_tokenizer.replacement' should be one character, got \"ab\"");
  j.erase("pre_tokenizer");
  j["decoder"] = json::parse(R"({"type": "Sequence", "decoders": {"type": "Fuse"}})");
  expect_path_error(j, "'decoder.decoders' should be an array, got {\"type\":\"Fuse\"}");
  j.erase("decoder");
  j["post_processor"] = json::parse(R"({"type": "TemplateProcessing", "single": ["[X]", "$A"],
      "special_tokens": {"[X]": {"id": "[X]", "ids": [2], "tokens": [7]}}})");
  expect_path_error(j, "'post_processor.special_tokens.[X].tokens[0]' should be a string, got 7");
  j["post_processor"] = {{"type", "BertProcessing"}, {"cls", json::array({"a", 0})}, {"sep", "b"}};
  expect_path_error(j, "'post_processor.sep' should be [token, id], got \"b\"");
  const json unigram = json::parse(R"({"type": "Unigram", "vocab": [["a", "low"]]})");
  expect_path_error(with_model(unigram), "'model.vocab[0][1]' should be a number, got \"low\"");
}

TEST(TokenizerJsonPaths, ConfigWithANonStringBosToken) {
  const json j = with_model(bpe_model());
  expect_path_error(j, "in tokenizer_config.json: 'bos_token' should be a string or an AddedToken object, got 5",
                    R"({"bos_token": 5})");
  expect_path_error(j, "in tokenizer_config.json: 'bos_token.content' should be a string, got [\"a\"]",
                    R"({"bos_token": {"content": ["a"]}})");
  expect_path_error(j, "in tokenizer_config.json: 'add_bos_token' should be true or false, got \"yes\"",
                    R"({"add_bos_token": "yes"})");
  // A string, an AddedToken object and null are what transformers writes.
  const Tokenizer t = Tokenizer::from_json_string(
      j.dump(), R"({"bos_token": "a", "eos_token": {"content": "b", "__type": "AddedToken"}, "pad_token": null})");
  EXPECT_EQ(t.bos_token_id(), 0);
  EXPECT_EQ(t.eos_token_id(), 1);
  EXPECT_FALSE(t.pad_token_id().has_value());
}

}  // namespace tokpaths
