// Regression tests for tokenizer.json contents found by fuzz/fuzz_tokenizer_load.cpp (see
// docs/fuzzing.md): ids and sizes read from JSON numbers that are floats, negative or huge were
// converted unchecked (undefined behaviour for 1e20 -> int64, a silent wrap for -1 -> uint32),
// and a FixedLength pre-tokenizer of length 0 looped forever. Each is now an Error(Format) that
// names the component and the value.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "nnterp/error.hpp"
#include "nnterp/tokenizer.hpp"

using nnterp::ErrorKind;
using nnterp::Tokenizer;
using nlohmann::json;

namespace tokfuzz {

json bpe(json vocab) {
  return {{"model", {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", json::array()}}}};
}

// Loading `j` must throw Error(Format) whose text holds every part.
void expect_format_error(const json& j, std::initializer_list<std::string> parts) {
  try {
    Tokenizer::from_json_string(j.dump());
    ADD_FAILURE() << "loaded: " << j.dump();
  } catch (const nnterp::Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(ErrorKind::Format)) << e.what();
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << "'" << p << "' not in: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-nnterp exception: " << e.what();
  }
}

TEST(TokenizerFuzzRegression, BpeVocabIdsMustBeIntegers) {
  // Found by the fuzzer: 18446744073709551615 mutated into a float id (UBSan: float -> long).
  expect_format_error(bpe({{"a", 1.18e20}}), {"model (BPE)", "token id 1.18e+20 is not an integer"});
  expect_format_error(bpe({{"a", 1.5}}), {"token id 1.5"});  // was silently truncated to 1
  expect_format_error(bpe({{"a", -1}}), {"token id -1"});
  expect_format_error(bpe({{"a", 18446744073709551615ull}}), {"token id 18446744073709551615"});
  EXPECT_NO_THROW(Tokenizer::from_json_string(bpe({{"a", 0}, {"b", 1}}).dump()));
}

TEST(TokenizerFuzzRegression, WordLevelAndUnigramIdsMustBeIntegers) {
  expect_format_error({{"model", {{"type", "WordLevel"}, {"vocab", {{"a", 2.5}}}, {"unk_token", "a"}}}}, {"token id 2.5"});
  json unigram = json::parse(R"({"model": {"type": "Unigram", "vocab": [["<unk>", 0.0], ["a", -1.0]], "unk_id": -1}})");
  expect_format_error(unigram, {"token id -1"});  // get<size_t>(-1) wrapped to SIZE_MAX
  unigram["model"]["unk_id"] = 0.5;
  expect_format_error(unigram, {"token id 0.5"});
  unigram["model"]["unk_id"] = 0;
  EXPECT_NO_THROW(Tokenizer::from_json_string(unigram.dump()));
}

TEST(TokenizerFuzzRegression, PostProcessorIdsMustBeIntegers) {
  json j = bpe({{"a", 0}, {"<s>", 1}});
  j["post_processor"] = json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<s>": {"id": "<s>", "ids": [-1], "tokens": ["<s>"]}}})");
  expect_format_error(j, {"post_processor", "token id -1"});  // wrapped to 4294967295
  j["post_processor"]["special_tokens"]["<s>"]["ids"] = json::array({1});
  EXPECT_NO_THROW(Tokenizer::from_json_string(j.dump()));

  json bert = bpe({{"a", 0}, {"[CLS]", 1}, {"[SEP]", 2}});
  bert["post_processor"] = json::parse(R"({"type": "BertProcessing", "cls": ["[CLS]", 1e30], "sep": ["[SEP]", 2]})");
  expect_format_error(bert, {"token id 1e+30"});
}

TEST(TokenizerFuzzRegression, CountsMustBeNonNegativeIntegers) {
  // FixedLength of length 0 never advanced: encode looped forever.
  json fixed = bpe({{"a", 0}});
  fixed["pre_tokenizer"] = {{"type", "FixedLength"}, {"length", 0}};
  expect_format_error(fixed, {"FixedLength", "'length' is 0, expected an integer in [1, "});
  fixed["pre_tokenizer"]["length"] = 2;
  EXPECT_NO_THROW(Tokenizer::from_json_string(fixed.dump()).encode_ids("aaaaa", false));

  json strip = bpe({{"a", 0}});
  strip["decoder"] = {{"type", "Strip"}, {"content", " "}, {"start", -1}, {"stop", 0}};
  expect_format_error(strip, {"Strip", "'start' is -1"});
  strip["decoder"]["start"] = 1e300;
  expect_format_error(strip, {"'start' is 1e+300"});

  json wordpiece = {{"model", {{"type", "WordPiece"}, {"vocab", {{"[UNK]", 0}, {"a", 1}}}, {"max_input_chars_per_word", -5}}}};
  expect_format_error(wordpiece, {"'max_input_chars_per_word' is -5"});
}

// A million nested arrays overflowed the stack when the error message quoted them.
TEST(TokenizerFuzzRegression, DeepNestingIsAFormatError) {
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  try {
    Tokenizer::from_json_string(R"({"model": {"type": "BPE", "vocab": {"a": )" + deep + R"(}, "merges": []}})");
    ADD_FAILURE() << "loaded";
  } catch (const nnterp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nests 1000003 levels deep"), std::string::npos) << e.what();
  }
  try {
    Tokenizer::from_json_string(bpe({{"a", 0}}).dump(), "{\"x\": " + deep + "}");
    ADD_FAILURE() << "loaded";
  } catch (const nnterp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
  }
}

}  // namespace tokfuzz
