// Standardized parameters (params.hpp): each one is a row selection of one standardized weight
// (q out of the fused q|k|v, up out of gate|up) seen through a reshape to TransformerLens's shape.
// Reading applies the selection and the reshape; writing inverts both into a copy of the whole
// weight, which replaces it in the decoder.
#include "nnterp/params.hpp"

#include <cmath>

#include "core/tensor_text.hpp"
#include "model/access.hpp"
#include "model/decoder.hpp"
#include "nnterp/error.hpp"
#include "nnterp/language_model.hpp"

namespace nnterp {

const std::vector<ParamInfo>& param_table() {
  static const std::vector<ParamInfo> table = {
      {Param::W_E, "W_E", false, "[vocab, hidden]", "token embedding (before any embedding multiplier)"},
      {Param::W_pos, "W_pos", false, "[positions, hidden]", "learned absolute position embedding"},
      {Param::W_U, "W_U", false, "[hidden, vocab]", "unembedding: logits = ln_final(h) @ W_U + b_U, then logit scale / soft-cap"},
      {Param::b_U, "b_U", false, "[vocab]", "unembedding bias"},
      {Param::W_Q, "W_Q", true, "[heads, hidden, d_head]", "query projection per head (before QK-norm and rotary)"},
      {Param::b_Q, "b_Q", true, "[heads, d_head]", "query bias"},
      {Param::W_K, "W_K", true, "[kv_heads, hidden, d_head]", "key projection per kv head"},
      {Param::b_K, "b_K", true, "[kv_heads, d_head]", "key bias"},
      {Param::W_V, "W_V", true, "[kv_heads, hidden, d_v]", "value projection per kv head"},
      {Param::b_V, "b_V", true, "[kv_heads, d_v]", "value bias"},
      {Param::W_O, "W_O", true, "[heads, d_v, hidden]", "output projection per head: attn_output = Σ_h z_h @ W_O[h] + b_O"},
      {Param::b_O, "b_O", true, "[hidden]", "output projection bias"},
      {Param::W_in, "W_in", true, "[hidden, d_mlp]", "MLP input (a gated MLP's up half)"},
      {Param::b_in, "b_in", true, "[d_mlp]", "MLP input bias"},
      {Param::W_gate, "W_gate", true, "[hidden, d_mlp]", "gated MLP's gate: mlp_hidden = act(x @ W_gate) · (x @ W_in)"},
      {Param::b_gate, "b_gate", true, "[d_mlp]", "gate bias"},
      {Param::W_out, "W_out", true, "[d_mlp, hidden]", "MLP output: mlp_output = mlp_hidden @ W_out + b_out"},
      {Param::b_out, "b_out", true, "[hidden]", "MLP output bias"},
      {Param::ln1_w, "ln1_w", true, "[hidden]", "pre-attention norm weight"},
      {Param::ln1_b, "ln1_b", true, "[hidden]", "pre-attention norm bias"},
      {Param::ln2_w, "ln2_w", true, "[hidden]", "pre-MLP norm weight"},
      {Param::ln2_b, "ln2_b", true, "[hidden]", "pre-MLP norm bias"},
      {Param::ln_final_w, "ln_final_w", false, "[hidden]", "final norm weight"},
      {Param::ln_final_b, "ln_final_b", false, "[hidden]", "final norm bias"},
  };
  return table;
}

const ParamInfo& param_info(Param param) { return param_table().at(static_cast<size_t>(param)); }

Param parse_param(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& info : param_table()) {
    if (name == info.name) return info.param;
    names.emplace_back(info.name);
  }
  throw Error(ErrorKind::InvalidArgument, name, "unknown parameter name", "did you mean '" + nearest_name(name, names) + "'?");
}

std::string param_name(Param param, int layer) {
  const auto& info = param_info(param);
  return info.per_layer ? "layers." + std::to_string(layer) + "." + info.name : info.name;
}

namespace {

using model::Decoder;

// How a parameter sits in its standardized weight.
enum class Layout {
  Same,        // as stored
  Transposed,  // stored [out, in] ↔ [in, out]
  HeadsIn,     // stored [n·d, hidden] ↔ [n, hidden, d]
  HeadBias,    // stored [n·d] ↔ [n, d]
  HeadsOut,    // stored [hidden, n·d] ↔ [n, d, hidden]
};

struct Location {
  WeightId id;
  std::vector<int64_t> rows;  // rows of the stored weight, in order; empty: all of them
  Layout layout = Layout::Same;
  int64_t heads = 0;          // HeadsIn / HeadBias / HeadsOut
  std::string why_not;        // non-empty: the model lacks the parameter
};

std::vector<int64_t> row_range(int64_t first, int64_t count, int64_t step = 1) {
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < count; ++r) rows.push_back(first + r * step);
  return rows;
}

bool stored(const model::Weights& w, const WeightId& id) { return w.tensors.count(id) || w.row_blocks.count(id); }

// Rows of q, k or v in the fused q|k|v projection (Qwen3-Next's q rows are per head [q_h | gate_h]).
std::vector<int64_t> qkv_rows(const model::AttentionSpec& a, Param p) {
  const int64_t H = a.num_heads, KV = a.num_kv_heads, hd = a.head_dim;
  const int64_t q_rows = (a.output_gate ? 2 : 1) * H * hd;
  if (p == Param::W_Q || p == Param::b_Q) {
    if (!a.output_gate) return row_range(0, H * hd);
    std::vector<int64_t> rows;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t j = 0; j < hd; ++j) rows.push_back(h * 2 * hd + j);
    return rows;
  }
  if (p == Param::W_K || p == Param::b_K) return row_range(q_rows, KV * hd);
  return row_range(q_rows + KV * hd, KV * a.value_dim());
}

std::string attention_lack(const model::ArchSpec& spec, int layer) {
  const auto& l = spec.layers[static_cast<size_t>(layer)];
  if (l.mixer != model::Mixer::Attention)
    return "layer " + std::to_string(layer) + " of this " + spec.name + " model has no attention (a " +
           (l.mixer == model::Mixer::ShortConv ? "short-convolution" : "Gated DeltaNet") + " layer)";
  if (spec.attn.latent())
    return "this " + spec.name +
           " model uses multi-head latent attention: q, k and v come from low-rank projections (the weights "
           "layers.{i}.attn.q_a / q_b / kv_a / kv_b that `nnterp info` lists), not from per-head W_Q / W_K / W_V";
  return "";
}

Location locate(const LanguageModel& model, Param p, int layer) {
  const auto& spec = LanguageModelAccess::spec(model);
  const auto& w = LanguageModelAccess::decoder(model).weights();
  const auto& a = spec.attn;
  Location loc;
  auto at = [&](Weight weight, Layout layout = Layout::Same, int64_t heads = 0) {
    loc.id = WeightId{weight, param_info(p).per_layer ? layer : -1};
    loc.layout = layout;
    loc.heads = heads;
  };
  const bool gated = spec.mlp.kind != model::MlpKind::Plain;
  switch (p) {
    case Param::W_E: at(Weight::Embed); break;
    case Param::W_pos: at(Weight::PosEmbed); break;
    case Param::W_U: at(Weight::LmHead, Layout::Transposed); break;
    case Param::b_U: at(Weight::LmHeadBias); break;
    case Param::W_Q: case Param::W_K: case Param::W_V:
    case Param::b_Q: case Param::b_K: case Param::b_V: {
      const bool bias = p == Param::b_Q || p == Param::b_K || p == Param::b_V;
      at(bias ? Weight::QkvBias : Weight::Qkv, bias ? Layout::HeadBias : Layout::HeadsIn,
         p == Param::W_Q || p == Param::b_Q ? a.num_heads : a.num_kv_heads);
      loc.why_not = attention_lack(spec, layer);
      loc.rows = qkv_rows(a, p);
      break;
    }
    case Param::W_O: at(Weight::O, Layout::HeadsOut, a.num_heads); break;
    case Param::b_O: at(Weight::OBias); break;
    case Param::W_in: case Param::W_gate: case Param::b_in: case Param::b_gate: {
      const bool bias = p == Param::b_in || p == Param::b_gate;
      const int64_t I = spec.mlp.intermediate;
      if (!gated) {
        at(bias ? Weight::UpBias : Weight::Up, bias ? Layout::Same : Layout::Transposed);
        if (p == Param::W_gate || p == Param::b_gate) loc.why_not = "this " + spec.name + " model's MLP is not gated";
        break;
      }
      at(bias ? Weight::GateUpBias : Weight::GateUp, bias ? Layout::Same : Layout::Transposed);
      const bool gate = p == Param::W_gate || p == Param::b_gate;
      loc.rows = spec.mlp.gate_up_interleaved ? row_range(gate ? 0 : 1, I, 2) : row_range(gate ? 0 : I, I);
      break;
    }
    case Param::W_out: at(Weight::Down, Layout::Transposed); break;
    case Param::b_out: at(Weight::DownBias); break;
    case Param::ln1_w: at(Weight::AttnNorm); break;
    case Param::ln1_b: at(Weight::AttnNormBias); break;
    case Param::ln2_w: at(Weight::MlpNorm); break;
    case Param::ln2_b: at(Weight::MlpNormBias); break;
    case Param::ln_final_w: at(Weight::FinalNorm); break;
    case Param::ln_final_b: at(Weight::FinalNormBias); break;
  }
  const bool mlp_param = p == Param::W_in || p == Param::b_in || p == Param::W_gate || p == Param::b_gate ||
                         p == Param::W_out || p == Param::b_out;
  if ((p == Param::W_O || p == Param::b_O) && loc.why_not.empty()) {
    const auto& l = spec.layers[static_cast<size_t>(layer)];
    if (l.mixer != model::Mixer::Attention) loc.why_not = attention_lack(spec, layer);
  }
  if (mlp_param && loc.why_not.empty() && model.has_router(layer))
    loc.why_not = "layer " + std::to_string(layer) + " of this " + spec.name +
                  " model is a mixture of experts: each expert has its own MLP (see `nnterp info` for their weights)";
  if (loc.why_not.empty() && !stored(w, loc.id))
    loc.why_not = "this " + spec.name + " model has no " + param_info(p).meaning + " (no " + loc.id.name() + ")";
  return loc;
}

Location checked_location(const LanguageModel& model, Param p, int layer) {
  if (param_info(p).per_layer && (layer < 0 || layer >= model.num_layers()))
    throw Error(ErrorKind::InvalidArgument, param_name(p, layer),
                "layer index out of range: the model has " + std::to_string(model.num_layers()) + " layers");
  auto loc = locate(model, p, param_info(p).per_layer ? layer : -1);
  if (!loc.why_not.empty()) throw Error(ErrorKind::InvalidArgument, param_name(p, layer), loc.why_not);
  return loc;
}

// The whole stored weight as one tensor (a fused weight kept as row blocks is concatenated).
torch::Tensor whole(const model::Weights& w, const WeightId& id) {
  auto blocks = w.rows(id);
  return blocks.size() == 1 ? blocks[0] : torch::cat(blocks, 0);
}

// A copy of the weight's blocks, each with its own strides (a transposed view stays transposed), with
// `rows` (all when empty) replaced by the rows of `part`, in order. Keeping the layout keeps the
// forward's GEMMs and so its rounding: a parameter written back unchanged leaves the logits as they were.
model::RowBlocks with_rows_replaced(const model::RowBlocks& blocks, std::vector<int64_t> rows, const torch::Tensor& part) {
  int64_t total = 0;
  for (const auto& b : blocks) total += b.size(0);
  if (rows.empty()) rows = row_range(0, total);
  model::RowBlocks out;
  int64_t first = 0;
  for (const auto& block : blocks) {
    auto copy = block.clone(at::MemoryFormat::Preserve);
    std::vector<int64_t> local, source;
    for (size_t k = 0; k < rows.size(); ++k)
      if (rows[k] >= first && rows[k] < first + block.size(0)) {
        local.push_back(rows[k] - first);
        source.push_back(static_cast<int64_t>(k));
      }
    if (!local.empty()) {
      auto opts = torch::TensorOptions().dtype(torch::kInt64).device(block.device());
      copy.index_copy_(0, torch::tensor(local, opts), part.index_select(0, torch::tensor(source, opts)).to(block.scalar_type()));
    }
    out.push_back(copy);
    first += block.size(0);
  }
  return out;
}

bool contiguous_range(const std::vector<int64_t>& rows) {
  for (size_t i = 1; i < rows.size(); ++i)
    if (rows[i] != rows[0] + static_cast<int64_t>(i)) return false;
  return true;
}

torch::Tensor selected(const torch::Tensor& weight, const std::vector<int64_t>& rows) {
  if (rows.empty()) return weight;
  if (contiguous_range(rows)) return weight.narrow(0, rows[0], static_cast<int64_t>(rows.size()));
  return weight.index_select(0, torch::tensor(rows, torch::TensorOptions().dtype(torch::kInt64).device(weight.device())));
}

torch::Tensor to_standard(const torch::Tensor& t, Layout layout, int64_t n) {
  switch (layout) {
    case Layout::Same: return t;
    case Layout::Transposed: return t.t();
    case Layout::HeadsIn: return t.view({n, t.size(0) / n, t.size(1)}).permute({0, 2, 1});
    case Layout::HeadBias: return t.view({n, t.size(0) / n});
    case Layout::HeadsOut: return t.t().view({n, t.size(1) / n, t.size(0)});
  }
  return t;
}

torch::Tensor from_standard(const torch::Tensor& t, Layout layout) {
  switch (layout) {
    case Layout::Same: return t;
    case Layout::Transposed: return t.t();
    case Layout::HeadsIn: return t.permute({0, 2, 1}).reshape({t.size(0) * t.size(2), t.size(1)});
    case Layout::HeadBias: return t.reshape({t.numel()});
    case Layout::HeadsOut: return t.reshape({t.size(0) * t.size(1), t.size(2)}).t();
  }
  return t;
}

}  // namespace

bool has_param(const LanguageModel& model, Param p, int layer, std::string* why_not) {
  std::string reason;
  if (param_info(p).per_layer && (layer < 0 || layer >= model.num_layers()))
    reason = "layer index out of range: the model has " + std::to_string(model.num_layers()) + " layers";
  else
    reason = locate(model, p, param_info(p).per_layer ? layer : -1).why_not;
  if (why_not) *why_not = reason;
  return reason.empty();
}

torch::Tensor param(const LanguageModel& model, Param p, int layer) {
  const auto loc = checked_location(model, p, layer);
  const auto& w = LanguageModelAccess::decoder(model).weights();
  return to_standard(selected(whole(w, loc.id), loc.rows), loc.layout, loc.heads);
}

void set_param(LanguageModel& model, Param p, int layer, const torch::Tensor& value) {
  const auto loc = checked_location(model, p, layer);
  auto& decoder = LanguageModelAccess::decoder(model);
  const auto current = param(model, p, layer);
  if (!value.defined() || value.sizes() != current.sizes())
    throw Error(ErrorKind::Shape, param_name(p, layer),
                std::string("expected ") + param_info(p).shape + " = " + shape_text(current.sizes()) + ", got " +
                    (value.defined() ? shape_text(value.sizes()) : std::string("an undefined tensor")));
  const auto blocks = decoder.weights().rows(loc.id);
  auto part = from_standard(value.to(blocks[0].device(), blocks[0].scalar_type()), loc.layout);
  decoder.replace_weights({{loc.id, with_rows_replaced(blocks, loc.rows, part)}});
}

void ablate_neuron(LanguageModel& model, int layer, int64_t neuron) {
  auto w_out = param(model, Param::W_out, layer).clone();
  if (neuron < 0 || neuron >= w_out.size(0))
    throw Error(ErrorKind::InvalidArgument, param_name(Param::W_out, layer),
                "neuron " + std::to_string(neuron) + " is out of range: the MLP has " + std::to_string(w_out.size(0)) +
                    " neurons (0.." + std::to_string(w_out.size(0) - 1) + ")");
  w_out[neuron].zero_();
  set_param(model, Param::W_out, layer, w_out);
}

void project_out_of_residual_writes(LanguageModel& model, const torch::Tensor& direction) {
  const auto& spec = LanguageModelAccess::spec(model);
  const char* norm_between = spec.post_attn_norm ? "a norm on each attention output before it is added"
                             : spec.post_mlp_norm ? "a norm on each MLP output before it is added"
                             : spec.embed_norm    ? "a norm on the embedding before the first layer"
                                                  : nullptr;
  if (norm_between)
    throw Error(ErrorKind::Unsupported, model.architecture(),
                std::string("this model has ") + norm_between +
                    ": a direction projected out of the weights before that norm would reappear after it");
  if (!direction.defined() || direction.dim() != 1 || direction.size(0) != model.hidden_size())
    throw Error(ErrorKind::Shape, "direction", "expected a vector of size hidden_size = " + std::to_string(model.hidden_size()));
  auto d = direction.to(torch::kFloat64);
  const double norm = d.norm().item<double>();
  if (!(norm > 0) || !std::isfinite(norm)) throw Error(ErrorKind::InvalidArgument, "direction", "must be finite and nonzero");
  d = d / norm;
  auto& decoder = LanguageModelAccess::decoder(model);
  // Weights whose rows are residual vectors (embeddings) or whose outputs are (output projections).
  auto rows_are_residual = [](Weight k) { return k == Weight::Embed || k == Weight::PosEmbed; };
  auto writes = [](Weight k) {
    return k == Weight::O || k == Weight::OBias || k == Weight::Down || k == Weight::DownBias || k == Weight::ExpertDown ||
           k == Weight::ExpertDownBias || k == Weight::SharedDown || k == Weight::ConvOut || k == Weight::ConvOutBias ||
           k == Weight::DeltaOut;
  };
  std::vector<WeightId> ids;
  for (const auto& [id, t] : decoder.weights().tensors) ids.push_back(id);
  for (const auto& [id, blocks] : decoder.weights().row_blocks) ids.push_back(id);
  std::vector<std::pair<WeightId, model::RowBlocks>> replaced;
  for (const auto& id : ids) {
    if (!rows_are_residual(id.weight) && !writes(id.weight)) continue;
    auto w = whole(decoder.weights(), id);
    auto w64 = w.to(torch::kFloat64);
    const auto dd = d.to(w.device());
    torch::Tensor out;
    if (w.dim() == 1) out = w64 - w64.dot(dd) * dd;                                  // a bias
    else if (rows_are_residual(id.weight)) out = w64 - torch::outer(w64.mv(dd), dd);  // [N, hidden]
    else out = w64 - torch::outer(dd, dd.matmul(w64));                               // [hidden, in]
    replaced.emplace_back(id, with_rows_replaced(decoder.weights().rows(id), {}, out));
  }
  decoder.replace_weights(replaced);
}

}  // namespace nnterp
