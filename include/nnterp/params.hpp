// The model's parameters in standardized shapes, named as in TransformerLens (W_E, W_Q, W_O, W_in,
// ...): what a researcher reads to analyse a circuit and edits to test it, whatever the checkpoint's
// packing (fused q|k|v, gate|up, GPT-2's Conv1D, tied embeddings).
//
// Reading gives a view of the weights the forward uses (or, for a projection split out of a fused
// one stored in pieces, a copy): treat it as read-only. Writing goes through set_param() (or the
// edits built on it), which replaces the parameter with a new tensor: the model's next forward sees
// it, no other model or file is touched, and tied weights are untied (editing W_E of a model whose
// lm_head shares the embedding leaves W_U as it was). Edits are not thread-safe against forwards
// running at the same time on the same model.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

namespace nnterp {

class LanguageModel;

enum class Param {
  W_E,         // [vocab, hidden]        token embedding (before any embedding multiplier, e.g. Gemma's √hidden)
  W_pos,       // [positions, hidden]    learned absolute positions (OPT: row p + 2 serves position p)
  W_U,         // [hidden, vocab]        logits = ln_final(h) @ W_U + b_U, then the model's logit scale / soft-cap
  b_U,         // [vocab]
  W_Q,         // [heads, hidden, d_head]   per layer; before QK-norm and rotary
  b_Q,         // [heads, d_head]
  W_K,         // [kv_heads, hidden, d_head]
  b_K,         // [kv_heads, d_head]
  W_V,         // [kv_heads, hidden, d_v]
  b_V,         // [kv_heads, d_v]
  W_O,         // [heads, d_v, hidden]   attn_output = Σ_h z[..., h, :] @ W_O[h] + b_O
  b_O,         // [hidden]
  W_in,        // [hidden, d_mlp]        the MLP's input (a gated MLP's `up` half)
  b_in,        // [d_mlp]
  W_gate,      // [hidden, d_mlp]        a gated MLP's gate: mlp_hidden = act(x @ W_gate) · (x @ W_in)
  b_gate,      // [d_mlp]
  W_out,       // [d_mlp, hidden]        mlp_output = mlp_hidden @ W_out + b_out
  b_out,       // [hidden]
  ln1_w,       // [hidden]               the block's pre-attention norm
  ln1_b,       // [hidden]
  ln2_w,       // [hidden]               the block's pre-MLP norm
  ln2_b,       // [hidden]
  ln_final_w,  // [hidden]               the final norm
  ln_final_b,  // [hidden]
};

struct ParamInfo {
  Param param;
  const char* name;   // "W_Q"
  bool per_layer;
  const char* shape;  // "[heads, hidden, d_head]"
  const char* meaning;
};
const std::vector<ParamInfo>& param_table();
const ParamInfo& param_info(Param param);
// "W_Q" → Param::W_Q; an unknown name is an Error suggesting the nearest.
Param parse_param(const std::string& name);
// "layers.3.W_Q", "W_E": how errors name a parameter.
std::string param_name(Param param, int layer = -1);

// Whether `model` has `param` at `layer` (-1 for a model-level one); why not when it does not
// (no bias, a plain MLP has no W_gate, an MoE layer has one MLP per expert, a layer without
// attention or with latent attention has no W_Q, ...).
bool has_param(const LanguageModel& model, Param param, int layer = -1, std::string* why_not = nullptr);
// The parameter in its standardized shape (see Param). An Error naming it when the model lacks it.
torch::Tensor param(const LanguageModel& model, Param param, int layer = -1);
// Replaces the parameter with `value` (same shape as param(); converted to the model's dtype and
// device); an Error naming it on a wrong shape.
void set_param(LanguageModel& model, Param param, int layer, const torch::Tensor& value);

// MLP neuron `neuron` of dense layer `layer` writes nothing any more: its row of W_out is zeroed
// (equal to zeroing mlp_hidden[..., neuron] in every forward).
void ablate_neuron(LanguageModel& model, int layer, int64_t neuron);
// Projects `direction` [hidden] out of everything that writes into the residual stream (W_E, W_pos,
// every W_O / b_O, MLP, expert, shared-expert and conv / DeltaNet output projection and bias), so no
// residual-stream activation has a component along it any more (Arditi et al.'s weight
// orthogonalization). Refused, with the reason, where a norm sits between a write and the stream
// (post-attention / post-MLP norms, an embedding norm): projecting there would not remove it.
void project_out_of_residual_writes(LanguageModel& model, const torch::Tensor& direction);

}  // namespace nnterp
