// qwen3_next (Qwen3-Next): `layer_types` mixes Gated DeltaNet layers ("linear_attention",
// `linear_attn.{in_proj_qkvz, in_proj_ba, conv1d, A_log, dt_bias, norm, out_proj}`; left pads
// zeroed during a prompt, as HF does) with gated attention ("full_attention": q_proj gives per head
// [q | gate], per-head QK-norm before a partial rotary, output × sigmoid(gate)). Every RMSNorm
// but the DeltaNet's output norm is (1 + w), in float32. The MLP is Qwen-MoE's plan (softmax top-k,
// renormalised, + shared_expert × sigmoid(shared_expert_gate)), mlp_only_layers dense.
#include "model/archs/relatives.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

static ArchSpec qwen3_next(const Config& c) {
  ArchSpec a = llama_like(c, "qwen3_next", "Qwen3NextForCausalLM");
  a.norm = {NormKind::RMSNormPlusOne, c.number_or({"rms_norm_eps"}, 1e-6)};
  use_qk_norm(a, QkNorm::PerHead, "model.layers.{i}.self_attn.q_norm", "model.layers.{i}.self_attn.k_norm");
  a.attn.output_gate = true;
  auto& d = a.deltanet;
  d.key_heads = c.integer({"linear_num_key_heads"});
  d.value_heads = c.integer({"linear_num_value_heads"});
  d.key_dim = c.integer({"linear_key_head_dim"});
  d.value_dim = c.integer({"linear_value_head_dim"});
  d.conv_kernel = c.integer_or({"linear_conv_kernel_dim"}, 4);
  d.norm_eps = a.norm.eps;
  const auto types = c.strings_or({"layer_types"}, {});
  for (int64_t i = 0; i < a.num_layers; ++i) {
    // HF's default: every 4th layer full attention.
    const std::string type = types.empty() ? ((i + 1) % 4 == 0 ? "full_attention" : "linear_attention") : types.at(i);
    if (type != "linear_attention" && type != "full_attention")
      throw Error(ErrorKind::Unsupported, c.source(), "qwen3_next layer type \"" + type + "\" is not supported",
                  "supported layer types: linear_attention, full_attention");
    if (type == "linear_attention") a.layers[i].mixer = Mixer::GatedDeltaNet, a.layers[i].positions = PositionKind::None;
  }
  if (!types.empty() && types.size() != static_cast<size_t>(a.num_layers))
    throw Error(ErrorKind::Config, c.source(), "'layer_types' should list one type per layer (" + std::to_string(a.num_layers) + ")");
  const std::string D = "model.layers.{i}.linear_attn.";
  a.weights[Weight::DeltaQkvz] = src(D + "in_proj_qkvz.weight");
  a.weights[Weight::DeltaBa] = src(D + "in_proj_ba.weight");
  a.weights[Weight::DeltaConv] = src(D + "conv1d.weight");
  a.weights[Weight::DeltaALog] = src(D + "A_log");
  a.weights[Weight::DeltaDtBias] = src(D + "dt_bias");
  a.weights[Weight::DeltaNorm] = src(D + "norm.weight");
  a.weights[Weight::DeltaOut] = src(D + "out_proj.weight");
  use_qwen_moe_with_gated_shared_expert(a, c);
  return a;
}

NNTERP_ARCH("qwen3_next", qwen3_next)

}  // namespace nnterp::model
