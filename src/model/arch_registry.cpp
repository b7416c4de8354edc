// The architecture registry and the helpers shared by the architecture files.
#include <algorithm>
#include <cmath>
#include <map>

#include "model/arch.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

static std::map<std::string, ArchBuilder>& registry() {
  static std::map<std::string, ArchBuilder> builders;
  return builders;
}

void register_arch(const std::string& model_type, ArchBuilder builder) {
  registry()[model_type] = std::move(builder);
}

std::vector<std::string> supported_model_types() {
  std::vector<std::string> out;
  for (const auto& [name, builder] : registry()) out.push_back(name);
  return out;
}

ArchSpec arch_from_config(const Config& config) {
  std::string type = config.model_type();
  auto it = registry().find(type);
  if (it == registry().end()) {
    std::string list;
    for (const auto& name : supported_model_types()) list += (list.empty() ? "" : ", ") + name;
    throw Error(ErrorKind::Unsupported, config.source(), "model_type '" + type + "' is not supported",
                "supported model types: " + list);
  }
  ArchSpec spec = it->second(config);
  if (spec.layers.size() != static_cast<size_t>(spec.num_layers))
    throw std::logic_error("architecture '" + type + "' built " + std::to_string(spec.layers.size()) +
                           " layer specs for " + std::to_string(spec.num_layers) + " layers");
  return spec;
}

std::vector<LayerSpec> uniform_layers(int64_t n, const LayerSpec& spec) {
  return std::vector<LayerSpec>(static_cast<size_t>(n), spec);
}

RotarySpec rotary_from_config(const Config& c, int64_t rotary_dim, RotaryLayout layout, double default_theta) {
  RotarySpec r;
  r.dim = rotary_dim;
  r.layout = layout;
  r.theta = c.number_or({"rope_theta", "rotary_emb_base", "rope_embedding_base"}, default_theta);
  const auto* scaling = c.find({"rope_scaling"});
  if (!scaling) return r;
  if (!scaling->is_object()) throw Error(ErrorKind::Config, c.source(), "'rope_scaling' should be an object or null");
  Config s(*scaling, c.source() + " (rope_scaling)");
  std::string type = s.string_or({"rope_type", "type"}, "default");
  if (type == "default") return r;
  if (type == "linear") {
    r.scaling = RopeScaling::Linear;
    r.factor = s.number({"factor"});
  } else if (type == "llama3") {
    r.scaling = RopeScaling::Llama3;
    r.factor = s.number({"factor"});
    r.low_freq_factor = s.number({"low_freq_factor"});
    r.high_freq_factor = s.number({"high_freq_factor"});
    r.original_max_position = s.integer({"original_max_position_embeddings"});
  } else {
    throw Error(ErrorKind::Unsupported, c.source(), "rope_scaling type '" + type + "' is not supported",
                "supported rope_scaling types: default, linear, llama3");
  }
  return r;
}

Activation activation_from_name(const std::string& name, const std::string& source) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast" || name == "bloom_gelu" ||
      name == "gelu_tanh")
    return Activation::GeluTanh;
  if (name == "gelu") return Activation::GeluExact;
  if (name == "silu" || name == "swish") return Activation::Silu;
  if (name == "relu") return Activation::Relu;
  throw Error(ErrorKind::Unsupported, source, "activation '" + name + "' is not supported",
              "supported activations: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, silu, relu");
}

std::vector<bool> sliding_layers_from_config(const Config& c, int64_t n, std::function<bool(int64_t)> fallback) {
  std::vector<bool> sliding(static_cast<size_t>(n));
  if (const auto* types = c.find({"layer_types"})) {
    if (!types->is_array() || types->size() != static_cast<size_t>(n))
      throw Error(ErrorKind::Config, c.source(), "'layer_types' should list one type per layer (" + std::to_string(n) + ")");
    for (int64_t i = 0; i < n; ++i) {
      const auto& t = (*types)[static_cast<size_t>(i)];
      if (t == "sliding_attention") sliding[i] = true;
      else if (t == "full_attention") sliding[i] = false;
      else throw Error(ErrorKind::Unsupported, c.source(), "layer type " + t.dump() + " is not supported",
                       "supported layer types: sliding_attention, full_attention");
    }
    return sliding;
  }
  if (c.has("sliding_window_pattern")) {
    int64_t p = c.integer({"sliding_window_pattern"});
    for (int64_t i = 0; i < n; ++i) sliding[i] = p > 0 && (i + 1) % p != 0;
    return sliding;
  }
  for (int64_t i = 0; i < n; ++i) sliding[i] = fallback(i);
  return sliding;
}

WeightSource src(std::string name, bool optional) { return WeightSource{{std::move(name)}, WeightTransform::None, optional}; }

WeightSource cat(std::vector<std::string> names, bool optional) {
  return WeightSource{std::move(names), WeightTransform::None, optional};
}

void map_norm(WeightMap& w, const std::string& std_prefix, const std::string& hf_prefix, bool with_bias) {
  w[std_prefix + ".weight"] = src(hf_prefix + ".weight");
  if (with_bias) w[std_prefix + ".bias"] = src(hf_prefix + ".bias", true);
}

ArchSpec llama_like(const Config& c, const std::string& name, const std::string& hf_class) {
  ArchSpec a;
  a.name = name;
  a.hf_class = hf_class;
  a.hidden = c.integer({"hidden_size"});
  a.num_layers = c.integer({"num_hidden_layers"});
  a.vocab = c.integer({"vocab_size"});
  a.attn.num_heads = c.integer({"num_attention_heads"});
  a.attn.num_kv_heads = c.integer_or({"num_key_value_heads"}, a.attn.num_heads);
  a.attn.head_dim = c.integer_or({"head_dim"}, a.hidden / a.attn.num_heads);
  a.norm = {NormKind::RMSNorm, c.number_or({"rms_norm_eps"}, 1e-6)};
  a.positions = PositionKind::Rotary;
  a.mlp.kind = MlpKind::Gated;
  a.mlp.activation = activation_from_name(c.string_or({"hidden_act"}, "silu"), c.source());
  a.mlp.intermediate = c.integer({"intermediate_size"});
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, false);
  LayerSpec layer;
  layer.positions = PositionKind::Rotary;
  double partial = c.number_or({"partial_rotary_factor"}, 1.0);
  layer.rotary = rotary_from_config(c, static_cast<int64_t>(a.attn.head_dim * partial), RotaryLayout::Half);
  a.layers = uniform_layers(a.num_layers, layer);

  auto& w = a.weights;
  const std::string L = "model.layers.{i}.";
  w["embed.weight"] = src("model.embed_tokens.weight");
  map_norm(w, "layers.{i}.attn_norm", L + "input_layernorm", false);
  map_norm(w, "layers.{i}.mlp_norm", L + "post_attention_layernorm", false);
  w["layers.{i}.attn.qkv.weight"] = cat({L + "self_attn.q_proj.weight", L + "self_attn.k_proj.weight", L + "self_attn.v_proj.weight"});
  w["layers.{i}.attn.qkv.bias"] = cat({L + "self_attn.q_proj.bias", L + "self_attn.k_proj.bias", L + "self_attn.v_proj.bias"}, true);
  w["layers.{i}.attn.o.weight"] = src(L + "self_attn.o_proj.weight");
  w["layers.{i}.attn.o.bias"] = src(L + "self_attn.o_proj.bias", true);
  w["layers.{i}.mlp.gate_up.weight"] = cat({L + "mlp.gate_proj.weight", L + "mlp.up_proj.weight"});
  w["layers.{i}.mlp.down.weight"] = src(L + "mlp.down_proj.weight");
  w["final_norm.weight"] = src("model.norm.weight");
  w["lm_head.weight"] = src("lm_head.weight");
  a.ignored_weights = {L + "self_attn.rotary_emb.inv_freq"};
  return a;
}

}  // namespace nnterp::model
