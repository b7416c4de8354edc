// io::JsonValue, the checked reader of untrusted JSON, and the config readers built on it: every
// malformed value is an nnterp::Error naming the file, the key path and the expected type.
#include "io/config_json.hpp"
#include "io/io_helpers.hpp"
#include "io/json_reader.hpp"
#include "model/arch.hpp"

using namespace io_test;
using nnterp::ErrorKind;
using nnterp::io::JsonValue;
using nlohmann::json;

TEST(JsonReader, ReadsCheckedValuesAndNamesKeyPaths) {
  const json j = json::parse(R"({"a": {"b": [1, 2.0, "x"], "s": "text", "f": 0.5, "t": true, "n": null},
                                 "big": 18446744073709551615, "huge": 1e300})");
  const JsonValue root(j, "file.json");
  EXPECT_EQ(root.at("a").at("b").elements()[1].integer(), 2);  // 2.0 is an integer
  EXPECT_EQ(root.at("a").at("s").string(), "text");
  EXPECT_DOUBLE_EQ(root.at("a").at("f").number(), 0.5);
  EXPECT_TRUE(root.at("a").at("t").boolean());
  EXPECT_FALSE(root.at("a").has("n"));       // null counts as absent
  EXPECT_TRUE(root.at("a").contains("n"));   // but is present
  EXPECT_EQ(root.at("a").integer_or("n", 7), 7);
  EXPECT_EQ(root.at("a").at("b").elements()[2].path(), "a.b[2]");
  expect_error([&] { root.at("a").at("b").integers(); }, ErrorKind::Format, {"file.json", "'a.b[2]' should be an integer, got \"x\""});
  expect_error([&] { root.at("a").at("missing"); }, ErrorKind::Format, {"file.json", "missing 'a.missing'"});
  expect_error([&] { root.at("a").at("s").at("k"); }, ErrorKind::Format, {"'a.s' should be an object, got \"text\""});
  expect_error([&] { root.at("a").at("f").integer(); }, ErrorKind::Format, {"'a.f' should be an integer, got 0.5"});
  expect_error([&] { root.at("big").integer(); }, ErrorKind::Format, {"'big' should be an integer, got 18446744073709551615"});
  expect_error([&] { root.at("huge").integer(); }, ErrorKind::Format, {"'huge' should be an integer"});
  expect_error([&] { root.at("a").at("t").string(); }, ErrorKind::Format, {"'a.t' should be a string, got true"});
  expect_error([&] { root.elements(); }, ErrorKind::Format, {"the top level should be an array"});
}

TEST(JsonReader, LongValuesAreShortenedInMessages) {
  const json j = {{"k", std::string(100000, 'x')}};
  const auto text = expect_error([&] { JsonValue(j, "f.json", ErrorKind::Config).at("k").integer(); }, ErrorKind::Config,
                                 {"'k' should be an integer, got \"xxx", "..."});
  EXPECT_LT(text.size(), 200u);
}

// The config readers of the architecture files: a wrong type anywhere is a Config error naming
// the key (the crash fuzz_config found: a non-number in mlp_only_layers escaped as a raw
// nlohmann::json::type_error and aborted the process).
static nnterp::Config config_of(json j) { return nnterp::ConfigAccess::from_json(std::move(j), "config.json"); }

static json qwen2_moe_config() {
  return {{"model_type", "qwen2_moe"}, {"hidden_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
          {"num_key_value_heads", 2}, {"intermediate_size", 128}, {"vocab_size", 100}, {"num_experts", 4},
          {"num_experts_per_tok", 2}, {"moe_intermediate_size", 32}, {"shared_expert_intermediate_size", 64}};
}

TEST(ConfigReaders, ListsWithAWrongElementNameTheElement) {
  auto j = qwen2_moe_config();
  j["mlp_only_layers"] = {0, {{"a", 1}}};
  expect_error([&] { nnterp::model::arch_from_config(config_of(j)); }, ErrorKind::Config,
               {"config.json", "'mlp_only_layers[1]' should be an integer, got {\"a\":1}"});
  j["mlp_only_layers"] = "0";
  expect_error([&] { nnterp::model::arch_from_config(config_of(j)); }, ErrorKind::Config,
               {"'mlp_only_layers' should be a list of integers, got \"0\""});
  j["mlp_only_layers"] = json::array();
  EXPECT_EQ(nnterp::model::arch_from_config(config_of(j)).name, "qwen2_moe");
}

TEST(ConfigReaders, GptNeoAttentionTypesAreCheckedBeforeExpansion) {
  json j = {{"model_type", "gpt_neo"}, {"hidden_size", 64}, {"num_layers", 2}, {"num_heads", 4},
            {"vocab_size", 100}, {"max_position_embeddings", 64}};
  j["attention_types"] = {{{"global", "local"}, 1}};
  EXPECT_EQ(nnterp::model::arch_from_config(config_of(j)).layers.size(), 2u);
  j["attention_types"] = {{{"global", "local"}, 2000000000}};
  expect_error([&] { nnterp::model::arch_from_config(config_of(j)); }, ErrorKind::Config,
               {"'attention_types[0][1]' should be a repeat count giving at most 2 layer types"});
  j["attention_types"] = {{{"global", 3}, 1}};
  expect_error([&] { nnterp::model::arch_from_config(config_of(j)); }, ErrorKind::Config,
               {"'attention_types[0][0][1]' should be a string, got 3"});
  j["attention_types"] = {{"global"}};
  expect_error([&] { nnterp::model::arch_from_config(config_of(j)); }, ErrorKind::Config,
               {"'attention_types[0]' should be a [[types...], repeats] pair"});
}

TEST(ConfigReaders, TokenIdSettings) {
  EXPECT_EQ(config_of({{"eos_token_id", 2}}).token_ids("eos_token_id"), (std::vector<int64_t>{2}));
  EXPECT_EQ(config_of({{"eos_token_id", {1, 2}}}).token_ids("eos_token_id"), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(config_of({{"eos_token_id", nullptr}}).token_ids("eos_token_id").empty());
  expect_error([] { config_of({{"eos_token_id", {1, "2"}}}).token_ids("eos_token_id"); }, ErrorKind::Config,
               {"config.json", "'eos_token_id[1]' should be an integer, got \"2\""});
}
