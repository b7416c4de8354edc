// Regression tests for the bad inputs the fuzz targets (fuzz/, docs/fuzzing.md) found or guard
// against in config.json -> ArchSpec and in safetensors files. Each once crashed (division by
// zero, a vector sized from a negative or huge count, undefined behaviour) or hung; each must now
// be an nnterp::Error that names the file and the key or tensor.
#include <nlohmann/json.hpp>

#include <cstring>

#include "io/io_helpers.hpp"
#include "model/arch.hpp"
#include "io/config_json.hpp"
#include "nnterp/config.hpp"
#include "nnterp/safetensors.hpp"

using namespace io_test;
using nnterp::ErrorKind;

namespace {

nlohmann::json fixture_config(const std::string& family) {
  std::ifstream in(fs::path(NNTERP_TEST_DATA) / "hf" / family / "config.json");
  return nlohmann::json::parse(in);
}

// arch_from_config on the fixture's config.json with `edits` applied.
void build_arch(const std::string& family, const nlohmann::json& edits) {
  nlohmann::json j = fixture_config(family);
  for (auto it = edits.begin(); it != edits.end(); ++it) j[it.key()] = *it;
  nnterp::model::arch_from_config(nnterp::ConfigAccess::from_json(j, "fuzz/config.json"));
}

std::vector<uint8_t> safetensors_bytes(const std::string& header, const std::string& data) {
  std::vector<uint8_t> out(8);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

}  // namespace

TEST(FuzzRegressionConfig, FixtureConfigsStillBuild) {
  for (const auto& e : fs::directory_iterator(fs::path(NNTERP_TEST_DATA) / "hf")) {
    if (!fs::exists(e.path() / "config.json")) continue;
    SCOPED_TRACE(e.path().filename().string());
    EXPECT_NO_THROW(build_arch(e.path().filename().string(), nlohmann::json::object()));
  }
}

// Crashed with SIGFPE (hidden / num_heads).
TEST(FuzzRegressionConfig, ZeroHeadsIsAConfigErrorNotADivisionByZero) {
  expect_error([] { build_arch("gpt2", {{"n_head", 0}}); }, ErrorKind::Config,
               {"fuzz/config.json", "'n_head' is 0", "head count in [1, 65536]"});
  expect_error([] { build_arch("llama", {{"num_attention_heads", 0}}); }, ErrorKind::Config, {"'num_attention_heads' is 0"});
  expect_error([] { build_arch("falcon", {{"num_attention_heads", -3}}); }, ErrorKind::Config, {"'num_attention_heads' is -3"});
}

// Crashed with std::length_error (-1 layers -> a vector of SIZE_MAX specs) or ran out of memory.
TEST(FuzzRegressionConfig, NegativeOrHugeLayerCountsAreConfigErrors) {
  expect_error([] { build_arch("gpt2", {{"n_layer", -1}}); }, ErrorKind::Config, {"'n_layer' is -1", "layer count"});
  expect_error([] { build_arch("gpt2", {{"n_layer", 1000000000}}); }, ErrorKind::Config, {"'n_layer' is 1000000000"});
  expect_error([] { build_arch("llama", {{"num_hidden_layers", int64_t{1} << 50}}); }, ErrorKind::Config,
               {"'num_hidden_layers' is 1125899906842624"});
  expect_error([] { build_arch("mistral", {{"num_hidden_layers", 0}}); }, ErrorKind::Config, {"'num_hidden_layers' is 0"});
}

// 4 * hidden overflowed int64 (undefined behaviour) and negative widths went through.
TEST(FuzzRegressionConfig, WidthsOutOfRangeAreConfigErrors) {
  expect_error([] { build_arch("gpt2", {{"n_embd", -64}}); }, ErrorKind::Config, {"'n_embd' is -64", "width"});
  expect_error([] { build_arch("gptj", {{"n_embd", int64_t{1} << 62}}); }, ErrorKind::Config, {"'n_embd' is 4611686018427387904"});
  expect_error([] { build_arch("llama", {{"intermediate_size", 0}}); }, ErrorKind::Config, {"'intermediate_size' is 0"});
  expect_error([] { build_arch("llama", {{"vocab_size", -5}}); }, ErrorKind::Config, {"'vocab_size' is -5"});
}

// head_dim * partial_rotary_factor was cast to int64 out of range (undefined behaviour).
TEST(FuzzRegressionConfig, RotaryFractionOutsideZeroOneIsAConfigError) {
  expect_error([] { build_arch("phi", {{"partial_rotary_factor", 1e300}}); }, ErrorKind::Config,
               {"'partial_rotary_factor' is 1e+300", "[0, 1]"});
  expect_error([] { build_arch("gpt_neox", {{"rotary_pct", -0.5}}); }, ErrorKind::Config, {"'rotary_pct' is -0.5"});
}

// The built spec is checked: kv heads must divide the heads, the MoE top-k must fit the experts.
TEST(FuzzRegressionConfig, InconsistentSpecsAreConfigErrors) {
  expect_error([] { build_arch("llama", {{"num_attention_heads", 4}, {"num_key_value_heads", 3}}); }, ErrorKind::Config,
               {"not a multiple of the key/value heads (3)"});
  expect_error([] { build_arch("mixtral", {{"num_experts_per_tok", 9}}); }, ErrorKind::Config, {"num_experts_per_tok (9)"});
  expect_error([] { build_arch("mistral", {{"sliding_window", -1}}); }, ErrorKind::Config, {"'sliding_window' is -1"});
  expect_error([] { build_arch("gptj", {{"rotary_dim", 3}}); }, ErrorKind::Config, {"rotates 3 dims per head"});
}

// The safetensors parser accepted every fuzz input so far with an nnterp::Error; these pin the
// edge cases the fuzz seeds start from.
TEST(FuzzRegressionSafetensors, ParseBufferEdgeCases) {
  // A huge dimension hidden behind a zero: numel is 0, the shape is still refused.
  expect_error([] {
    nnterp::io::SafetensorsFile::parse_buffer(
        safetensors_bytes(R"({"a":{"dtype":"F32","shape":[0,1152921504606846977],"data_offsets":[0,0]}})", ""), "buf");
  }, ErrorKind::Format, {"buf (tensor 'a')", "is too large"});
  // A NUL inside the header followed by more JSON.
  expect_error([] {
    nnterp::io::SafetensorsFile::parse_buffer(safetensors_bytes(std::string("{}\0{\"a\":1}", 10), ""), "buf");
  }, ErrorKind::Format, {"NUL byte"});
  // Floating offsets and a negative shape entry.
  expect_error([] {
    nnterp::io::SafetensorsFile::parse_buffer(
        safetensors_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1e300]}})", "x"), "buf");
  }, ErrorKind::Format, {"data_offsets must be non-negative integers"});
  // A misaligned F32 tensor is copied, not read out of bounds.
  auto file = nnterp::io::SafetensorsFile::parse_buffer(
      safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string("\0\0\x80?\0\0\0@", 8)), "buf");
  auto t = file->tensor("a");
  EXPECT_FLOAT_EQ(t[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(t[1].item<float>(), 2.0f);
}

// A million nested arrays parse (nlohmann's parser is iterative) but overflowed the stack when an
// error message dumped them or a Config copied them. Every JSON reader now refuses nesting deeper
// than 128 levels first.
TEST(FuzzRegressionJsonDepth, DeepNestingIsAFormatErrorNotAStackOverflow) {
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  expect_error([&] {
    nnterp::io::SafetensorsFile::parse_buffer(
        safetensors_bytes(R"({"a":{"dtype":"F32","shape":[)" + deep + R"(],"data_offsets":[0,0]}})", ""), "buf");
  }, ErrorKind::Format, {"buf", "nests 1000003 levels deep"});
  TempDir dir;
  write_text(dir / "config.json", R"({"model_type": "gpt2", "n_head": )" + deep + "}");
  expect_error([&] { nnterp::Config::load(dir / "config.json"); }, ErrorKind::Format,
               {(dir / "config.json").string(), "nests 1000001 levels deep"});
  write_text(dir / "model.safetensors.index.json", R"({"weight_map": )" + deep + "}");
  expect_error([&] { nnterp::io::WeightStore::open(dir.path()); }, ErrorKind::Format, {"model.safetensors.index.json", "levels deep"});
  // A Config built from a parsed value checks it too (iteratively).
  nlohmann::json nested = nlohmann::json::array();
  for (int i = 0; i < 200; ++i) nested = nlohmann::json::array({std::move(nested)});
  expect_error([&] { nnterp::ConfigAccess::from_json({{"model_type", "gpt2"}, {"n_head", nested}}, "inline"); }, ErrorKind::Format,
               {"inline", "nests 202 levels deep, more than the 128"});
  // Real nesting is shallow: every fixture config loads.
  EXPECT_NO_THROW(nnterp::Config::load(fs::path(NNTERP_TEST_DATA) / "hf" / "qwen2_moe" / "config.json"));
}
