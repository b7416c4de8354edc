// mpt: like bloom, except MPT's ALiBi slopes and bias slope·(j - (K-1)), no embedding norm, no
// biases at all (LayerNorms included; HF's port has none), a fused `Wqkv` already [q | k | v],
// optional clip_qkv / softmax_scale, exact gelu, MLP width 4·d_model, and only the MLP module's
// output includes the residual. Keys `transformer.blocks.*`, `transformer.norm_f`; tied.
// Unsupported (HF's port ignores them, so a checkpoint relying on them is not this model):
// no_bias=false, alibi=false, alibi_bias_max != 8, expansion_ratio != 4, qk_ln, prefix_lm,
// attn_uses_sequence_id, logit_scale.
#include "model/arch.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

static ArchSpec mpt(const Config& c) {
  ArchSpec a;
  a.name = "mpt";
  a.hf_class = "MptForCausalLM";
  auto unsupported = [&](const std::string& what) {
    throw Error(ErrorKind::Unsupported, c.source(), what + " is not supported",
                "transformers' MptForCausalLM ignores this option, so nnterp refuses rather than guess");
  };
  const Config attn = c.section("attn_config");
  if (!c.boolean_or({"no_bias"}, true)) unsupported("no_bias=false");
  if (!attn.boolean_or({"alibi"}, true)) unsupported("attn_config.alibi=false");
  if (attn.number_or({"alibi_bias_max"}, 8.0) != 8.0) unsupported("attn_config.alibi_bias_max != 8");
  if (attn.boolean_or({"qk_ln"}, false)) unsupported("attn_config.qk_ln=true");
  if (attn.boolean_or({"prefix_lm"}, false)) unsupported("attn_config.prefix_lm=true");
  if (attn.boolean_or({"attn_uses_sequence_id"}, false)) unsupported("attn_config.attn_uses_sequence_id=true");
  if (c.number_or({"expansion_ratio"}, 4.0) != 4.0) unsupported("expansion_ratio != 4");
  if (c.has("logit_scale")) unsupported("logit_scale");

  read_sizes(a, c, {{"d_model", "hidden_size"}, {"n_layers", "num_hidden_layers"}, {"n_heads", "num_attention_heads"},
                    {"layer_norm_epsilon"}});
  a.attn.scale = attn.number_or({"softmax_scale"}, 0.0);
  a.attn.clip_qkv = attn.number_or({"clip_qkv"}, 0.0);
  a.positions = PositionKind::Alibi;
  a.alibi = AlibiKind::Mpt;
  a.mlp.kind = MlpKind::Plain;
  a.mlp.activation = Activation::GeluExact;
  a.mlp.intermediate = 4 * a.hidden;
  a.quirks.mlp_output_includes_residual = true;
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);
  a.layers = uniform_layers(a.num_layers, LayerSpec{});

  auto& w = a.weights;
  const std::string L = "transformer.blocks.{i}.";
  w[Weight::Embed] = src("transformer.wte.weight");
  map_norm(w, Weight::AttnNorm, L + "norm_1", false);
  map_norm(w, Weight::MlpNorm, L + "norm_2", false);
  w[Weight::Qkv] = src(L + "attn.Wqkv.weight");
  w[Weight::O] = src(L + "attn.out_proj.weight");
  w[Weight::Up] = src(L + "ffn.up_proj.weight");
  w[Weight::Down] = src(L + "ffn.down_proj.weight");
  map_norm(w, Weight::FinalNorm, "transformer.norm_f", false);
  w[Weight::LmHead] = src("lm_head.weight");
  return a;
}

NNTERP_ARCH("mpt", mpt)

}  // namespace nnterp::model
