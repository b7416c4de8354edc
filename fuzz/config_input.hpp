// How fuzz_config turns its input bytes into a config.json (see fuzz_config.cpp, docs/fuzzing.md).
// Shared with the regression test that replays the fuzzer's findings in the normal test suite
// (tests/io/fuzz_findings_test.cpp), so that a finding decodes there exactly as it did in the
// fuzzer. Torch-free, header-only, no sanitizer or libFuzzer dependency (gcc and clang).
//
// Two kinds of input:
//  - text starting with '{' (after optional whitespace): a whole config.json; text that is not
//    JSON is skipped (Config::load turns it into Error(Format) naming the file);
//  - anything else: edits of a base config (31 fixture configs tests/data/hf/*/config.json in a
//    frozen order, load_base_configs; picked by byte 0): a sequence of (key, value) records, the key from the keys the
//    architectures read (and, for the highest key bytes, the generation settings eos_token_id /
//    pad_token_id), then one byte: erase the key (a multiple of 8) or set it to a value built from
//    the following bytes (an integer, number, boolean, null, string, array or rope_scaling-like
//    object).
//
// Changing the tables or the byte layout below changes what every stored input (corpus, findings)
// decodes to: append rather than reorder, and rerun the findings' regression test.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_common.hpp"

namespace nnterp::fuzz {

inline constexpr const char* kConfigKeys[] = {
    "model_type", "hidden_size", "n_embd", "n_embed", "d_model", "num_hidden_layers", "n_layer", "n_layers",
    "num_layers", "num_attention_heads", "n_head", "n_heads", "num_heads", "num_key_value_heads", "num_kv_heads",
    "n_head_kv", "head_dim", "intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size", "vocab_size",
    "max_position_embeddings", "n_positions", "rotary_dim", "rotary_pct", "partial_rotary_factor", "rope_theta",
    "rope_scaling", "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "sliding_window", "window_size",
    "use_sliding_window", "max_window_layers", "layer_types", "sliding_window_pattern", "_sliding_window_pattern",
    "num_experts", "num_local_experts", "num_experts_per_tok", "decoder_sparse_step", "mlp_only_layers",
    "norm_topk_prob", "hidden_act", "hidden_activation", "activation_function", "tie_word_embeddings",
    "attention_layers", "attention_types", "new_decoder_architecture", "multi_query", "parallel_attn",
    "num_ln_in_parallel_attn", "alibi", "bias", "attn_config", "query_pre_attn_scalar", "attn_logit_softcapping",
    "final_logit_softcapping", "logit_scale", "logits_scaling", "embedding_multiplier", "residual_multiplier",
    "attention_multiplier", "clip_qkv", "qk_layernorm", "use_qk_norm", "use_parallel_residual", "word_embed_proj_dim",
    "do_layer_norm_before", "_remove_final_layer_norm", "expansion_ratio", "no_bias", "torch_dtype", "dtype",
    "scale_attn_weights", "scale_attn_by_inverse_layer_idx", "rope_local_base_freq", "use_bidirectional_attention",
    "layer_norm_elementwise_affine", "prefix_lm", "attn_uses_sequence_id", "softmax_scale", "alibi_bias_max",
    "apply_residual_connection_post_layernorm", "norm_epsilon", "rotary_emb_base", "rope_embedding_base"};
inline constexpr size_t kConfigKeyCount = sizeof kConfigKeys / sizeof *kConfigKeys;
// Key bytes 254 and 255 (before: kConfigKeys[254 % 90], [255 % 90], still reachable through
// other bytes) name the token id settings that generation_config.json and config.json share.
inline constexpr const char* kGenerationKeys[] = {"eos_token_id", "pad_token_id"};
inline constexpr unsigned kFirstGenerationKeyByte = 256 - sizeof kGenerationKeys / sizeof *kGenerationKeys;

inline constexpr const char* kConfigStrings[] = {
    "", "llama", "gpt2", "mixtral", "qwen2_moe", "falcon", "gelu", "gelu_new", "silu", "relu", "sliding_attention",
    "full_attention", "global", "local", "linear", "llama3", "default", "dynamic", "float32", "bfloat16", "x"};
inline constexpr size_t kConfigStringCount = sizeof kConfigStrings / sizeof *kConfigStrings;

inline const char* config_key(uint8_t b) {
  return b >= kFirstGenerationKeyByte ? kGenerationKeys[b - kFirstGenerationKeyByte] : kConfigKeys[b % kConfigKeyCount];
}

// A JSON value built from the next bytes of `in`.
inline nlohmann::json config_value(Bytes& in, int depth = 0) {
  using nlohmann::json;
  const uint8_t kind = in.byte() % 12;
  switch (kind) {
    case 0: return static_cast<int64_t>(in.byte()) - 8;  // small: 0, negatives, a few sizes
    case 1: {
      uint64_t v = 0;
      for (int i = 0; i < 8; ++i) v = (v << 8) | in.byte();
      return static_cast<int64_t>(v);
    }
    case 2: return int64_t{1} << (in.byte() % 64);
    case 3: {
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | in.byte();
      double d;
      std::memcpy(&d, &bits, sizeof d);
      return std::isfinite(d) ? json(d) : json(1e308);  // JSON has no NaN / inf
    }
    case 4: return (in.byte() % 9) / 4.0 - 0.5;  // -0.5 .. 1.5 in quarters
    case 5: return static_cast<bool>(in.byte() & 1);
    case 6: return nullptr;
    case 7: return kConfigStrings[in.byte() % kConfigStringCount];
    case 8:
    case 9: {
      json a = json::array();
      const int n = in.byte() % 8;
      for (int i = 0; i < n && depth < 2; ++i) a.push_back(config_value(in, depth + 1));
      return a;
    }
    case 10: {  // a rope_scaling / attn_config-like object
      json o = json::object();
      o["rope_type"] = kConfigStrings[in.byte() % kConfigStringCount];
      for (const char* k : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
        if (in.byte() & 1) o[k] = depth < 2 ? config_value(in, depth + 1) : json(1);
      return o;
    }
    default: return json::object();
  }
}

// The input `data` as the config.json fuzz_config checks, given the base configs of the edit
// records (load_base_configs); nullopt when the input is skipped (whole-file text that is not JSON,
// or edit records without base configs).
inline std::optional<nlohmann::json> decode_config_input(const uint8_t* data, size_t size,
                                                         const std::vector<nlohmann::json>& bases) {
  using nlohmann::json;
  size_t first = 0;
  while (first < size && std::isspace(data[first])) ++first;
  if (first < size && data[first] == '{') {
    try {
      return json::parse(data, data + size);
    } catch (const json::exception&) {
      return std::nullopt;
    }
  }
  if (bases.empty()) return std::nullopt;
  Bytes in{data, size};
  json j = bases[in.byte() % bases.size()];
  while (in.n > 0) {
    const char* key = config_key(in.byte());
    if (in.byte() % 8 == 0) {
      j.erase(key);
    } else {
      json v = config_value(in);
      j[key] = std::move(v);
    }
  }
  return j;
}

// The edit records' base configs: the 31 fixtures byte 0 indexed (modulo 31) when the stored
// inputs were found, in that order. Frozen: another base would change what every stored input
// decodes to. Fixtures added since reach the fuzzer as whole-config seeds
// (fuzz/corpus/config/fixture_<name>.json).
inline std::vector<nlohmann::json> load_base_configs(const std::filesystem::path& hf_dir) {
  static const char* const names[] = {
      "bloom",  "codegen", "cohere", "cohere2", "falcon", "falcon_mq", "gemma",     "gemma2",
      "gemma3", "gpt2",    "gpt_neo", "gpt_neox", "gptj", "granite",   "llama",     "llama3",
      "mistral", "mixtral", "mpt",   "olmo",    "olmo2",  "olmoe",     "opt",       "phi",
      "phi3",   "qwen2",   "qwen2_moe", "qwen3", "stablelm", "stablelm_qkln_par", "starcoder2"};
  std::vector<nlohmann::json> out;
  for (const char* name : names) {
    const auto path = hf_dir / name / "config.json";
    if (!std::filesystem::exists(path)) continue;
    std::ifstream in(path);
    out.push_back(nlohmann::json::parse(in));
  }
  return out;
}

}  // namespace nnterp::fuzz
