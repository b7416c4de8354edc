// gpt_neo: like gpt2, except nn.Linear weights, separate q/k/v (no bias) and out_proj (bias),
// NO 1/sqrt(head_dim) score scaling, and layers alternating global / local attention
// (`attention_layers`, or `attention_types` expanded); local layers see keys i - window_size < j <= i.
#include "io/config_json.hpp"
#include "model/arch.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

// ["global", "local", ...] per layer: `attention_layers`, else `attention_types` [[[types...], n], ...]
// expanded as HF does (each pattern repeated n times).
static std::vector<std::string> attention_layers(const Config& c, int64_t num_layers) {
  if (c.has("attention_layers")) return c.strings_or({"attention_layers"}, {});
  const auto types = config_root(c).find("attention_types");
  if (!types) return {};
  std::vector<std::string> out;
  for (const auto& item : types->elements()) {
    const auto pair = item.elements();
    if (pair.size() != 2) item.fail("a [[types...], repeats] pair, e.g. [[\"global\", \"local\"], 6]");
    const auto pattern = pair[0].strings();
    const int64_t repeats = pair[1].integer();
    // Checked before expanding: a huge count must not build a huge list (one type per layer is expected).
    if (repeats < 0 || static_cast<double>(repeats) * static_cast<double>(pattern.size()) > static_cast<double>(num_layers))
      pair[1].fail("a repeat count giving at most " + std::to_string(num_layers) + " layer types");
    for (int64_t k = 0; k < repeats; ++k) out.insert(out.end(), pattern.begin(), pattern.end());
  }
  return out;
}

static ArchSpec gpt_neo(const Config& c) {
  ArchSpec a;
  a.name = "gpt_neo";
  a.hf_class = "GPTNeoForCausalLM";
  read_sizes(a, c, {{"hidden_size"}, {"num_layers", "num_hidden_layers"}, {"num_heads", "num_attention_heads"},
                    {"layer_norm_epsilon"}, {"max_position_embeddings"}});
  a.attn.scale = 1.0;
  a.attn.score_rounding = ScoreRounding::Never;  // _attn upcasts q and k to float32
  a.positions = PositionKind::Learned;
  a.mlp.kind = MlpKind::Plain;
  a.mlp.activation = activation_from_name(c.string_or({"activation_function"}, "gelu_new"), c.source());
  a.mlp.intermediate = c.integer_or({"intermediate_size"}, 4 * a.hidden);
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);

  const auto types = attention_layers(c, a.num_layers);
  if (types.size() != static_cast<size_t>(a.num_layers))
    throw Error(ErrorKind::Config, c.source(), "attention_layers / attention_types should give one type per layer (" +
                                                   std::to_string(a.num_layers) + "), got " + std::to_string(types.size()));
  const int64_t window = c.integer_or({"window_size"}, 256);
  for (const auto& t : types) {
    if (t != "global" && t != "local")
      throw Error(ErrorKind::Unsupported, c.source(), "attention type '" + t + "' is not supported",
                  "supported attention types: global, local");
    LayerSpec layer;
    layer.sliding_window = t == "local" ? window : 0;
    a.layers.push_back(layer);
  }

  auto& w = a.weights;
  const std::string L = "transformer.h.{i}.", A = L + "attn.attention.";
  w[Weight::Embed] = src("transformer.wte.weight");
  w[Weight::PosEmbed] = src("transformer.wpe.weight");
  map_norm(w, Weight::AttnNorm, L + "ln_1", true);
  map_norm(w, Weight::MlpNorm, L + "ln_2", true);
  w[Weight::Qkv] = cat({A + "q_proj.weight", A + "k_proj.weight", A + "v_proj.weight"});
  map_linear(w, Weight::O, A + "out_proj", true);
  map_linear(w, Weight::Up, L + "mlp.c_fc", true);
  map_linear(w, Weight::Down, L + "mlp.c_proj", true);
  map_norm(w, Weight::FinalNorm, "transformer.ln_f", true);
  w[Weight::LmHead] = src("lm_head.weight");
  // EleutherAI/gpt-neo-* checkpoints carry the causal-mask buffers as tensors.
  a.ignored_weights = {A + "bias", A + "masked_bias"};
  return a;
}

NNTERP_ARCH("gpt_neo", gpt_neo)

}  // namespace nnterp::model
