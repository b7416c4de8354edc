// The architecture registry and the helpers shared by the architecture files.
#include <algorithm>
#include <cmath>
#include <map>

#include "io/config_json.hpp"
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

// Sanity ranges of the config.json sizes every architecture file reads, checked before a builder
// runs: a zero head count would divide by zero, a negative or absurd layer count would size a
// vector, and products such as 4 * hidden must not overflow. A present (non-null) key out of its
// range is a Config error naming the key; the builders then read values they can compute with.
struct SizeRange {
  std::initializer_list<const char*> keys;
  int64_t min, max;
  const char* what;
};
static void check_config_sizes(const Config& c) {
  static const SizeRange kRanges[] = {
      {{"num_hidden_layers", "n_layer", "n_layers", "num_layers"}, 1, int64_t{1} << 16, "a layer count"},
      {{"hidden_size", "n_embd", "n_embed", "d_model", "intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size",
        "head_dim", "word_embed_proj_dim", "rotary_dim"},
       1, int64_t{1} << 24, "a width"},
      {{"num_attention_heads", "n_head", "n_heads", "num_heads", "num_key_value_heads", "num_kv_heads", "n_head_kv"},
       1, int64_t{1} << 16, "a head count"},
      {{"vocab_size"}, 1, int64_t{1} << 31, "a vocabulary size"},
      {{"max_position_embeddings", "n_positions", "original_max_position_embeddings"}, 1, int64_t{1} << 40, "a position count"},
      {{"num_experts", "num_local_experts", "num_experts_per_tok"}, 0, int64_t{1} << 16, "an expert count"},
      {{"sliding_window", "window_size", "max_window_layers", "sliding_window_pattern", "_sliding_window_pattern",
        "decoder_sparse_step", "num_ln_in_parallel_attn"},
       0, int64_t{1} << 40, "a window, layer or step count"},
  };
  for (const auto& r : kRanges) {
    for (const char* key : r.keys) {
      if (!c.has(key)) continue;
      const int64_t v = c.integer({key});
      if (v < r.min || v > r.max)
        throw Error(ErrorKind::Config, c.source(),
                    "'" + std::string(key) + "' is " + std::to_string(v) + ", expected " + r.what + " in [" +
                        std::to_string(r.min) + ", " + std::to_string(r.max) + "]");
    }
  }
  for (const char* key : {"partial_rotary_factor", "rotary_pct"}) {
    if (!c.has(key)) continue;
    const double v = c.number({key});
    if (!(v >= 0.0 && v <= 1.0))
      throw Error(ErrorKind::Config, c.source(), "'" + std::string(key) + "' is " + config_root(c).at(key).raw().dump() +
                                                     ", expected a fraction of the head dimension in [0, 1]");
  }
}

// Group-limited routing needs whole groups, and enough experts in the kept groups for the top-k.
template <class Fail>
static void check_expert_groups(const MoeSpec& m, Fail fail) {
  if (m.groups == 1) return;
  const int64_t per_group = m.groups > 0 ? m.num_experts / m.groups : 0;
  if (m.groups < 1 || m.num_experts % m.groups != 0)
    fail("n_group (" + std::to_string(m.groups) + ") must divide the " + std::to_string(m.num_experts) + " routed experts");
  if (m.top_groups < 1 || m.top_groups > m.groups)
    fail("topk_group (" + std::to_string(m.top_groups) + ") must be in [1, n_group = " + std::to_string(m.groups) + "]");
  if (m.top_k > m.top_groups * per_group)
    fail("num_experts_per_tok (" + std::to_string(m.top_k) + ") is more than the " + std::to_string(m.top_groups * per_group) +
         " experts of the topk_group kept groups");
  if (m.group_score == GroupScore::SumTop2 && per_group < 2)
    fail("each of the n_group groups needs at least 2 experts (a group is scored by its two best)");
}

// The built ArchSpec must be one the decoder can run: positive sizes, whole kv groups, rotary
// dims that fit a head, a top-k within the experts.
static void check_spec(const ArchSpec& a, const Config& c) {
  auto fail = [&](const std::string& what) { throw Error(ErrorKind::Config, c.source(), what); };
  auto positive = [&](int64_t v, const char* name) {
    if (v < 1) fail(std::string(name) + " is " + std::to_string(v) + ", expected a positive integer");
  };
  positive(a.num_layers, "the number of layers");
  positive(a.hidden, "the hidden size");
  positive(a.vocab, "the vocabulary size");
  positive(a.attn.num_heads, "the number of attention heads");
  positive(a.attn.num_kv_heads, "the number of key/value heads");
  positive(a.attn.head_dim, "the head dimension (hidden_size / num_attention_heads or head_dim)");
  positive(a.mlp.intermediate, "the MLP's intermediate size");
  if (a.attn.num_heads % a.attn.num_kv_heads != 0)
    fail("num_attention_heads (" + std::to_string(a.attn.num_heads) + ") is not a multiple of the key/value heads (" +
         std::to_string(a.attn.num_kv_heads) + ")");
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const auto& l = a.layers[i];
    if (l.sliding_window < 0) fail("layer " + std::to_string(i) + " has a negative sliding window");
    if (l.positions == PositionKind::Rotary && (l.rotary.dim < 0 || l.rotary.dim > a.attn.head_dim || l.rotary.dim % 2 != 0))
      fail("layer " + std::to_string(i) + " rotates " + std::to_string(l.rotary.dim) +
           " dims per head, expected an even number in [0, head_dim = " + std::to_string(a.attn.head_dim) + "]");
  }
  if (a.mlp.kind == MlpKind::MoE && (a.mlp.moe.num_experts < 1 || a.mlp.moe.top_k < 1 || a.mlp.moe.top_k > a.mlp.moe.num_experts))
    fail("num_experts_per_tok (" + std::to_string(a.mlp.moe.top_k) + ") must be in [1, num_experts = " +
         std::to_string(a.mlp.moe.num_experts) + "]");
  if (a.mlp.kind == MlpKind::MoE) check_expert_groups(a.mlp.moe, fail);
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
  check_config_sizes(config);
  ArchSpec spec = it->second(config);
  if (spec.layers.size() != static_cast<size_t>(spec.num_layers))
    throw std::logic_error("architecture '" + type + "' built " + std::to_string(spec.layers.size()) +
                           " layer specs for " + std::to_string(spec.num_layers) + " layers");
  check_spec(spec, config);
  return spec;
}

std::vector<LayerSpec> uniform_layers(int64_t n, const LayerSpec& spec) {
  return std::vector<LayerSpec>(static_cast<size_t>(n), spec);
}

namespace {

// HF's yarn parameters (modeling_rope_utils._compute_yarn_parameters).
void read_yarn(RotarySpec& r, const Config& c, const Config& s) {
  r.scaling = RopeScaling::Yarn;
  r.original_max_position = s.integer_or({"original_max_position_embeddings"}, c.integer({"max_position_embeddings"}));
  r.factor = s.has("factor") ? s.number({"factor"})
                             : static_cast<double>(c.integer({"max_position_embeddings"})) / r.original_max_position;
  r.beta_fast = s.number_or({"beta_fast"}, 0) ? s.number({"beta_fast"}) : 32;  // HF: `or 32`, so 0 means 32
  r.beta_slow = s.number_or({"beta_slow"}, 0) ? s.number({"beta_slow"}) : 1;
  r.truncate = s.boolean_or({"truncate"}, true);
  auto mscale = [](double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
  const double m = s.number_or({"mscale"}, 0), m_all = s.number_or({"mscale_all_dim"}, 0);
  if (s.has("attention_factor"))
    r.attention_factor = s.number({"attention_factor"});
  else if (m != 0 && m_all != 0)  // a lone mscale has no effect, as in HF
    r.attention_factor = mscale(r.factor, m) / mscale(r.factor, m_all);
  else
    r.attention_factor = mscale(r.factor, 1.0);
}

// PhiMoE's longrope: per-dim short/long factors with the explicit short_mscale / long_mscale.
// (Phi-3's longrope, which derives its scale and picks the regime by the largest position id,
// is not supported: no fixture checks it.)
void read_longrope(RotarySpec& r, const Config& c, const Config& s) {
  r.scaling = RopeScaling::LongRope;
  r.original_max_position = s.integer_or({"original_max_position_embeddings"}, c.integer({"original_max_position_embeddings"}));
  r.short_factors = s.numbers({"short_factor"});
  r.long_factors = s.numbers({"long_factor"});
  r.attention_factor = s.number({"short_mscale"});
  r.long_attention_factor = s.number({"long_mscale"});
  const size_t half = static_cast<size_t>(r.dim / 2);
  if (r.short_factors.size() != half || r.long_factors.size() != half)
    throw Error(ErrorKind::Config, c.source(),
                "rope_scaling's short_factor and long_factor need one factor per rotated pair (" + std::to_string(half) +
                    "), got " + std::to_string(r.short_factors.size()) + " and " + std::to_string(r.long_factors.size()));
}

}  // namespace

RotarySpec rotary_from_config(const Config& c, int64_t rotary_dim, RotaryLayout layout, double default_theta) {
  RotarySpec r;
  r.dim = rotary_dim;
  r.layout = layout;
  r.theta = c.number_or({"rope_theta", "rotary_emb_base", "rope_embedding_base"}, default_theta);
  if (!c.has("rope_scaling")) return r;
  const Config s = c.section("rope_scaling");
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
  } else if (type == "yarn") {
    read_yarn(r, c, s);
  } else if (type == "longrope" && s.has("short_mscale")) {
    read_longrope(r, c, s);
  } else if (type == "dynamic" && s.has("alpha")) {
    // NTK-alpha (HunYuan): a fixed base θ·α^(d/(d−2)), no attention scaling. (HF's plain "dynamic"
    // NTK, whose base grows with the sequence, is not supported.)
    const double d = static_cast<double>(rotary_dim);
    r.theta *= std::pow(s.number({"alpha"}), d / (d - 2));
  } else {
    throw Error(ErrorKind::Unsupported, c.source(), "rope_scaling type '" + type + "' is not supported",
                "supported rope_scaling types: default, linear, llama3, yarn, dynamic with alpha (NTK-alpha), longrope with "
                "short_mscale / long_mscale (PhiMoE)");
  }
  return r;
}

Activation activation_from_name(const std::string& name, const std::string& source) {
  if (name == "gelu_new") return Activation::GeluNew;
  if (name == "gelu_pytorch_tanh" || name == "gelu_fast" || name == "bloom_gelu" || name == "gelu_tanh")
    return Activation::GeluTanh;
  if (name == "gelu") return Activation::GeluExact;
  if (name == "silu" || name == "swish") return Activation::Silu;
  if (name == "relu") return Activation::Relu;
  if (name == "relu2") return Activation::Relu2;
  if (name == "xielu") return Activation::Xielu;
  throw Error(ErrorKind::Unsupported, source, "activation '" + name + "' is not supported",
              "supported activations: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, silu, relu, relu2, xielu");
}

std::vector<bool> sliding_layers_from_config(const Config& c, int64_t n, std::function<bool(int64_t)> fallback) {
  std::vector<bool> sliding(static_cast<size_t>(n));
  if (c.has("layer_types")) {
    const auto types = c.strings_or({"layer_types"}, {});
    if (types.size() != static_cast<size_t>(n))
      throw Error(ErrorKind::Config, c.source(), "'layer_types' should list one type per layer (" + std::to_string(n) + ")");
    for (int64_t i = 0; i < n; ++i) {
      const auto& t = types[static_cast<size_t>(i)];
      if (t == "sliding_attention") sliding[i] = true;
      else if (t == "full_attention") sliding[i] = false;
      else throw Error(ErrorKind::Unsupported, c.source(), "layer type \"" + t + "\" is not supported",
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

void map_linear(WeightMap& w, Weight weight, const std::string& hf_prefix, bool with_bias) {
  w[weight] = src(hf_prefix + ".weight");
  if (with_bias) w[bias_of(weight)] = src(hf_prefix + ".bias", true);
}

void map_norm(WeightMap& w, Weight weight, const std::string& hf_prefix, bool with_bias) {
  map_linear(w, weight, hf_prefix, with_bias);
}

void use_qk_norm(ArchSpec& a, QkNorm kind, const std::string& hf_q, const std::string& hf_k, bool with_bias) {
  a.attn.qk_norm = kind;
  a.attn.qk_norm_spec = a.norm;
  map_norm(a.weights, Weight::QNorm, hf_q, with_bias);
  map_norm(a.weights, Weight::KNorm, hf_k, with_bias);
}

static int64_t integer(const Config& c, const ConfigKeys& k) {
  return k.second ? c.integer({k.first, k.second}) : c.integer({k.first});
}

void read_sizes(ArchSpec& a, const Config& c, const SizeKeys& keys) {
  a.hidden = integer(c, keys.hidden);
  a.num_layers = integer(c, keys.layers);
  a.vocab = c.integer({"vocab_size"});
  if (keys.max_positions.first) a.max_positions = integer(c, keys.max_positions);
  a.attn.num_heads = a.attn.num_kv_heads = integer(c, keys.heads);
  a.attn.head_dim = a.hidden / a.attn.num_heads;
  const ConfigKeys& e = keys.eps;
  const double eps = !e.first ? 1e-5 : e.second ? c.number_or({e.first, e.second}, 1e-5) : c.number_or({e.first}, 1e-5);
  a.norm = {NormKind::LayerNorm, eps};
}

void set_sliding_layers(ArchSpec& a, const std::vector<bool>& sliding, int64_t window, bool full_layers_nope) {
  for (size_t i = 0; i < a.layers.size(); ++i) {
    a.layers[i].sliding_window = sliding[i] ? window : 0;
    if (full_layers_nope && !sliding[i]) a.layers[i].positions = PositionKind::None;
  }
}

MlpKind layer_mlp_kind(const ArchSpec& a, int64_t layer) {
  if (a.mlp.kind != MlpKind::MoE) return a.mlp.kind;
  return a.layers[static_cast<size_t>(layer)].dense_mlp ? MlpKind::Gated : MlpKind::MoE;
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
  w[Weight::Embed] = src("model.embed_tokens.weight");
  map_norm(w, Weight::AttnNorm, L + "input_layernorm", false);
  map_norm(w, Weight::MlpNorm, L + "post_attention_layernorm", false);
  w[Weight::Qkv] = cat({L + "self_attn.q_proj.weight", L + "self_attn.k_proj.weight", L + "self_attn.v_proj.weight"});
  w[Weight::QkvBias] = cat({L + "self_attn.q_proj.bias", L + "self_attn.k_proj.bias", L + "self_attn.v_proj.bias"}, true);
  map_linear(w, Weight::O, L + "self_attn.o_proj", true);
  w[Weight::GateUp] = cat({L + "mlp.gate_proj.weight", L + "mlp.up_proj.weight"});
  w[Weight::Down] = src(L + "mlp.down_proj.weight");
  w[Weight::FinalNorm] = src("model.norm.weight");
  w[Weight::LmHead] = src("lm_head.weight");
  a.ignored_weights = {L + "self_attn.rotary_emb.inv_freq"};
  return a;
}

}  // namespace nnterp::model
