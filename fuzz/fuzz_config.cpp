// Fuzz target: config.json -> Config -> ArchSpec (the architecture registry and every
// architecture file in src/model/archs/).
//
// Two kinds of input:
//  - text starting with '{' (after optional whitespace): a whole config.json, parsed as
//    Config::load parses it (malformed JSON is rejected there with Error(Format));
//  - anything else: edits of a real config (tests/data/hf/*/config.json, picked by byte 0): a
//    sequence of (key, value) records, the key from the list of keys the architectures read and
//    the value an integer, number, boolean, null, string, array or rope_scaling object built from
//    the following bytes. This reaches the numeric edge cases (0, negative, huge, fractional
//    sizes) far faster than mutating JSON text.
// Either way, arch_from_config must return an ArchSpec that passes its own checks or throw
// nnterp::Error.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "fuzz_common.hpp"
#include "io/config_json.hpp"
#include "model/arch.hpp"
#include "nnterp/config.hpp"

using namespace nnterp;
using namespace nnterp::fuzz;
using nlohmann::json;

namespace {

const char* const kKeys[] = {
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
const char* const kStrings[] = {"", "llama", "gpt2", "mixtral", "qwen2_moe", "falcon", "gelu", "gelu_new", "silu", "relu",
                                "sliding_attention", "full_attention", "global", "local", "linear", "llama3", "default",
                                "dynamic", "float32", "bfloat16", "x"};

std::vector<json>& base_configs() {
  static std::vector<json> all = [] {
    std::vector<std::filesystem::path> paths;
    for (const auto& e : std::filesystem::directory_iterator(std::string(NNTERP_TEST_DATA) + "/hf"))
      if (std::filesystem::exists(e.path() / "config.json")) paths.push_back(e.path() / "config.json");
    std::sort(paths.begin(), paths.end());
    std::vector<json> out;
    for (const auto& p : paths) out.push_back(json::parse(std::ifstream(p)));
    return out;
  }();
  return all;
}

json value(Bytes& in, int depth = 0) {
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
    case 7: return kStrings[in.byte() % (sizeof kStrings / sizeof *kStrings)];
    case 8:
    case 9: {
      json a = json::array();
      const int n = in.byte() % 8;
      for (int i = 0; i < n && depth < 2; ++i) a.push_back(value(in, depth + 1));
      return a;
    }
    case 10: {  // a rope_scaling / attn_config-like object
      json o = json::object();
      o["rope_type"] = kStrings[in.byte() % (sizeof kStrings / sizeof *kStrings)];
      for (const char* k : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
        if (in.byte() & 1) o[k] = depth < 2 ? value(in, depth + 1) : json(1);
      return o;
    }
    default: return json::object();
  }
}

void check(json j) {
  accepts([&] {
    Config config = ConfigAccess::from_json(std::move(j), "config.json");
    config.checkpoint_dtype();
    model::ArchSpec a = model::arch_from_config(config);
    require(a.layers.size() == static_cast<size_t>(a.num_layers), "one LayerSpec per layer");
    require(a.num_layers > 0 && a.hidden > 0 && a.vocab > 0 && a.attn.num_heads > 0 && a.attn.num_kv_heads > 0 &&
                a.attn.head_dim > 0,
            "positive sizes");
    require(!a.weights.empty(), "a weight map");
    for (Weight needed : {Weight::Embed, Weight::Qkv, Weight::O, Weight::LmHead})
      require(a.weights.count(needed) == 1, "a source for every weight the decoder always reads");
    for (const auto& [weight, source] : a.weights) require(!source.parts.empty(), "every weight has HF sources");
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  base_configs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t first = 0;
  while (first < size && std::isspace(data[first])) ++first;
  if (first < size && data[first] == '{') {
    json j;
    try {
      j = json::parse(data, data + size);
    } catch (const json::exception&) {
      return 0;  // Config::load turns this into Error(Format) naming the file
    }
    check(std::move(j));
    return 0;
  }
  Bytes in{data, size};
  const auto& bases = base_configs();
  json j = bases[in.byte() % bases.size()];
  while (in.n > 0) {
    const char* key = kKeys[in.byte() % (sizeof kKeys / sizeof *kKeys)];
    if (in.byte() % 8 == 0) j.erase(key);
    else j[key] = value(in);
  }
  check(std::move(j));
  return 0;
}
