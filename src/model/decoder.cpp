#include "model/decoder.hpp"

#include <map>

#include "core/tensor_text.hpp"
#include "model/input_checks.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

namespace {

void expect_shape(const WeightId& id, const torch::Tensor& t, std::vector<int64_t> expected, const std::string& why) {
  if (!t.defined()) return;
  if (t.sizes().vec() != expected)
    throw Error(ErrorKind::Shape, id.name(),
                "expected shape " + shape_text(expected) + " (" + why + "), got " + shape_text(t.sizes()),
                "config.json and the checkpoint disagree");
}

// Row blocks have the shape of their fused weight: the rows summed, the columns of each.
void expect_shape(const WeightId& id, const RowBlocks& blocks, std::vector<int64_t> expected, const std::string& why) {
  if (blocks.empty()) return;
  if (blocks.size() == 1) return expect_shape(id, blocks[0], expected, why);
  std::vector<int64_t> shape{0, blocks[0].dim() == 2 ? blocks[0].size(1) : -1};
  std::string parts;
  for (const auto& b : blocks) {
    shape[0] += b.dim() == 2 ? b.size(0) : 0;
    if (b.dim() != 2 || b.size(1) != shape[1]) shape[1] = -1;
    parts += (parts.empty() ? "" : " + ") + shape_text(b.sizes());
  }
  if (shape != expected)
    throw Error(ErrorKind::Shape, id.name(), "expected shape " + shape_text(expected) + " (" + why + "), got " + parts,
                "config.json and the checkpoint disagree");
}

}  // namespace

// Tables shared by every layer of one forward pass, built once per pass (or per distinct layer
// geometry: sliding windows and rotary specs differ between layers of some models).
struct Decoder::PassState {
  torch::Tensor key_mask;  // bool [B, S]
  torch::Tensor position_ids;
  int64_t past = 0, T = 0;
  torch::ScalarType dtype = torch::kFloat32;  // the model's
  RotaryPrecision rotary_precision = RotaryPrecision::InDtype;
  KVCache* cache = nullptr;
  std::map<std::pair<int64_t, int64_t>, torch::Tensor> masks;  // (window, chunk) → additive mask
  std::vector<std::pair<const RotarySpec*, RotaryTables>> rotary;
  torch::Tensor alibi;
  torch::Tensor temperature;  // [1, 1, T, 1], for LayerSpec::temperature_tuning

  const torch::Tensor& mask(const LayerSpec& layer) {
    const std::pair<int64_t, int64_t> key{layer.sliding_window, layer.attention_chunk};
    auto it = masks.find(key);
    if (it == masks.end()) it = masks.emplace(key, mask_bias(key_mask, past, T, key.first, key.second)).first;
    return it->second;
  }
  // The new positions' mask [B, T] when a prompt (no cache yet) has pads, else undefined: the Gated
  // DeltaNet zeroes the pads' inputs then, as HF does (later positions are real tokens).
  torch::Tensor prompt_pads() const {
    if (past > 0 || key_mask.all().item<bool>()) return {};
    return key_mask.narrow(1, past, T);
  }
  // Llama-4's temperature at indices past..past+T-1 of the padded sequence (AttentionSpec).
  const torch::Tensor& query_temperature(const AttentionSpec& a) {
    if (!temperature.defined()) {
      auto index = torch::arange(past, past + T, key_mask.device()).to(torch::kFloat32);
      temperature = (torch::log1p(torch::floor((index + 1.0) / a.temperature_floor)) * a.temperature_scale + 1.0)
                        .view({1, 1, T, 1});
    }
    return temperature;
  }
  const RotaryTables& tables(const RotarySpec& spec) {
    for (const auto& [s, t] : rotary)
      if (*s == spec) return t;
    rotary.emplace_back(&spec, rotary_tables(spec, position_ids, dtype, rotary_precision, past + T));
    return rotary.back().second;
  }
};

Decoder::Decoder(ArchSpec spec, Weights weights) : spec_(std::move(spec)), weights_(std::move(weights)) { bind(); }

void Decoder::replace_weights(const std::vector<std::pair<WeightId, RowBlocks>>& replacements) {
  for (const auto& [id, blocks] : replacements) {
    if (weights_.row_blocks.count(id)) {
      weights_.row_blocks[id] = blocks;
    } else {
      if (blocks.size() != 1) throw std::logic_error("replace_weights: " + id.name() + " is one tensor");
      weights_.tensors[id] = blocks[0];
    }
  }
  bind();
}

// The per-layer views the forward reads, taken from weights_ (again after replace_weights).
void Decoder::bind() {
  const auto& w = weights_;
  layers_.clear();
  embed_w_ = w.get({Weight::Embed});
  pos_w_ = w.get_or_undefined({Weight::PosEmbed});
  head_w_ = w.get({Weight::LmHead});
  head_b_ = w.get_or_undefined({Weight::LmHeadBias});
  auto applied = [&](double multiplier) {
    if (!spec_.embed_multiplier_rounded) return multiplier;
    return torch::scalar_tensor(multiplier, torch::kFloat64).to(embed_w_.scalar_type()).item<double>();
  };
  embed_multiplier_inside_ = applied(spec_.embed_multiplier_inside);
  embed_multiplier_ = applied(spec_.embed_multiplier);
  if (spec_.embed_norm) embed_norm_ = make_norm(w, Weight::EmbedNorm, -1, spec_.norm);
  final_norm_ = make_norm(w, Weight::FinalNorm, -1, spec_.norm);
  for (int i = 0; i < spec_.num_layers; ++i) {
    Layer L;
    auto get = [&](Weight weight) { return w.get({weight, i}); };
    auto get_or_undefined = [&](Weight weight) { return w.get_or_undefined({weight, i}); };
    if (spec_.pre_attn_norm) L.attn_norm = make_norm(w, Weight::AttnNorm, i, spec_.norm);
    if (spec_.pre_mlp_norm) L.mlp_norm = make_norm(w, Weight::MlpNorm, i, spec_.norm);
    if (spec_.post_attn_norm) L.post_attn_norm = make_norm(w, Weight::PostAttnNorm, i, spec_.norm);
    if (spec_.post_mlp_norm) L.post_mlp_norm = make_norm(w, Weight::PostMlpNorm, i, spec_.norm);
    if (spec_.layers[i].mixer == Mixer::GatedDeltaNet) {
      L.deltanet = {get(Weight::DeltaQkvz), get(Weight::DeltaBa), get(Weight::DeltaConv), get(Weight::DeltaALog),
                    get(Weight::DeltaDtBias), get(Weight::DeltaNorm), get(Weight::DeltaOut)};
    } else if (spec_.layers[i].mixer == Mixer::ShortConv) {
      L.conv = {get(Weight::ConvIn), get_or_undefined(Weight::ConvInBias), get(Weight::ConvKernel),
                get_or_undefined(Weight::ConvKernelBias), get(Weight::ConvOut), get_or_undefined(Weight::ConvOutBias)};
    } else if (spec_.attn.latent()) {
      const NormSpec latent_norm{NormKind::RMSNorm, spec_.attn.mla.norm_eps};
      if (spec_.attn.mla.q_lora_rank > 0) {
        L.attn.q_a_w = get(Weight::QA);
        L.attn.q_a_b = get_or_undefined(Weight::QABias);
        L.attn.q_a_norm = make_norm(w, Weight::QANorm, i, latent_norm);
      }
      L.attn.q_b_w = get(Weight::QB);
      L.attn.kv_a_w = get(Weight::KvA);
      L.attn.kv_a_b = get_or_undefined(Weight::KvABias);
      L.attn.kv_a_norm = make_norm(w, Weight::KvANorm, i, latent_norm);
      L.attn.kv_b_w = get(Weight::KvB);
    } else {
      L.attn.qkv_w = w.rows({Weight::Qkv, i});
      L.attn.qkv_b = get_or_undefined(Weight::QkvBias);
    }
    if (spec_.layers[i].mixer == Mixer::Attention) {
      L.attn.o_w = get(Weight::O);
      L.attn.o_b = get_or_undefined(Weight::OBias);
      L.attn.sinks = get_or_undefined(Weight::AttnSinks);
    }
    if (spec_.attn.qk_norm != QkNorm::None && spec_.layers[i].mixer == Mixer::Attention) {
      L.attn.q_norm = make_norm(w, Weight::QNorm, i, spec_.attn.qk_norm_spec);
      L.attn.k_norm = make_norm(w, Weight::KNorm, i, spec_.attn.qk_norm_spec);
    }
    if (layer_mlp_kind(spec_, i) == MlpKind::MoE) {
      L.moe.router_w = get(Weight::Router);
      L.moe.router_b = get_or_undefined(Weight::RouterBias);
      L.moe.score_bias = get_or_undefined(Weight::RouterScoreBias);
      for (int e = 0; e < spec_.mlp.moe.num_experts; ++e) {
        MlpWeights expert;
        expert.gate_up_w = w.rows({Weight::ExpertGateUp, i, e});
        expert.gate_up_b = w.get_or_undefined({Weight::ExpertGateUpBias, i, e});
        expert.down_w = w.get({Weight::ExpertDown, i, e});
        expert.down_b = w.get_or_undefined({Weight::ExpertDownBias, i, e});
        L.moe.experts.push_back(std::move(expert));
      }
      if (spec_.mlp.moe.shared_expert) {
        L.moe.shared.gate_up_w = w.rows({Weight::SharedGateUp, i});
        L.moe.shared.down_w = get(Weight::SharedDown);
        L.moe.shared_gate_w = get_or_undefined(Weight::SharedGate);  // absent: the shared expert is ungated
      }
    } else {
      L.mlp.up_w = get_or_undefined(Weight::Up);
      L.mlp.up_b = get_or_undefined(Weight::UpBias);
      L.mlp.gate_up_w = w.rows_or_empty({Weight::GateUp, i});
      L.mlp.gate_up_b = get_or_undefined(Weight::GateUpBias);
      L.mlp.down_w = get(Weight::Down);
      L.mlp.down_b = get_or_undefined(Weight::DownBias);
      if (spec_.mlp.activation == Activation::Xielu)
        L.mlp.xielu = {get(Weight::XieluAlphaP), get(Weight::XieluAlphaN), get(Weight::XieluBeta), get(Weight::XieluEps)};
    }
    layers_.push_back(std::move(L));
  }
  check_weights();
}

void Decoder::check_weights() const {
  const int64_t Hd = spec_.hidden, V = spec_.vocab, nh = spec_.attn.num_heads, kv = spec_.attn.num_kv_heads,
                hd = spec_.attn.head_dim, I = spec_.mlp.intermediate;
  if (nh <= 0 || kv <= 0 || hd <= 0 || nh % kv != 0)
    throw Error(ErrorKind::Config, spec_.name, "num_attention_heads (" + std::to_string(nh) +
                                                   ") must be a positive multiple of num_key_value_heads (" +
                                                   std::to_string(kv) + ")");
  expect_shape(WeightId{Weight::Embed}, embed_w_, {V, Hd}, "vocab_size × hidden_size");
  expect_shape(WeightId{Weight::LmHead}, head_w_, {V, Hd}, "vocab_size × hidden_size");
  for (int i = 0; i < spec_.num_layers; ++i) {
    const auto& L = layers_[i];
    if (spec_.layers[i].mixer == Mixer::ShortConv) {
      check_short_conv_weights(i);
    } else if (spec_.layers[i].mixer == Mixer::GatedDeltaNet) {
      check_deltanet_weights(i);
    } else {
      check_attention_weights(i);
    }
    const MlpKind kind = layer_mlp_kind(spec_, i);
    if (kind == MlpKind::Gated)
      expect_shape({Weight::GateUp, i}, L.mlp.gate_up_w, {2 * I, Hd}, "2·intermediate × hidden");
    if (kind == MlpKind::Plain)
      expect_shape({Weight::Up, i}, L.mlp.up_w, {I, Hd}, "intermediate × hidden");
    if (kind != MlpKind::MoE) {
      expect_shape({Weight::Down, i}, L.mlp.down_w, {Hd, I}, "hidden × intermediate");
      continue;
    }
    const int64_t E = spec_.mlp.moe.num_experts;
    expect_shape({Weight::Router, i}, L.moe.router_w, {E, Hd}, "experts × hidden");
    expect_shape({Weight::RouterBias, i}, L.moe.router_b, {E}, "experts");
    if (L.moe.score_bias.defined() && L.moe.score_bias.numel() != E)  // ERNIE stores it [1, experts]
      expect_shape({Weight::RouterScoreBias, i}, L.moe.score_bias, {E}, "experts");
  }
}

void Decoder::check_attention_weights(int i) const {
  const auto& L = layers_[i];
  const int64_t Hd = spec_.hidden, nh = spec_.attn.num_heads, kv = spec_.attn.num_kv_heads, hd = spec_.attn.head_dim;
  const int64_t qkv_rows = ((spec_.attn.output_gate ? 2 : 1) * nh + 2 * kv) * hd;
  expect_shape({Weight::Qkv, i}, L.attn.qkv_w, {qkv_rows, Hd}, "(heads + 2·kv_heads)·head_dim × hidden");
  expect_shape({Weight::QkvBias, i}, L.attn.qkv_b, {qkv_rows}, "(heads + 2·kv_heads)·head_dim");
  if (spec_.attn.latent()) check_latent_weights(i);
  expect_shape({Weight::O, i}, L.attn.o_w, {Hd, nh * spec_.attn.value_dim()}, "hidden × heads·v_head_dim");
  expect_shape({Weight::AttnSinks, i}, L.attn.sinks, {nh}, "one sink per attention head");
}

void Decoder::check_short_conv_weights(int i) const {
  const auto& C = layers_[i].conv;
  const int64_t Hd = spec_.hidden, k = spec_.short_conv_kernel;
  expect_shape({Weight::ConvIn, i}, C.in_w, {3 * Hd, Hd}, "3·hidden × hidden");
  expect_shape({Weight::ConvKernel, i}, C.kernel_w, {Hd, 1, k}, "hidden × 1 × conv_L_cache");
  expect_shape({Weight::ConvOut, i}, C.out_w, {Hd, Hd}, "hidden × hidden");
}

void Decoder::check_deltanet_weights(int i) const {
  const auto& D = layers_[i].deltanet;
  const auto& s = spec_.deltanet;
  const int64_t Hd = spec_.hidden, keys = s.key_heads * s.key_dim, values = s.value_heads * s.value_dim;
  if (s.key_heads < 1 || s.value_heads % s.key_heads != 0)
    throw Error(ErrorKind::Config, spec_.name, "linear_num_value_heads (" + std::to_string(s.value_heads) +
                                                   ") must be a multiple of linear_num_key_heads (" + std::to_string(s.key_heads) + ")");
  expect_shape({Weight::DeltaQkvz, i}, D.qkvz_w, {2 * keys + 2 * values, Hd}, "(2·key heads·dk + 2·value heads·dv) × hidden");
  expect_shape({Weight::DeltaBa, i}, D.ba_w, {2 * s.value_heads, Hd}, "2·value heads × hidden");
  expect_shape({Weight::DeltaConv, i}, D.conv_w, {2 * keys + values, 1, s.conv_kernel}, "conv channels × 1 × kernel");
  expect_shape({Weight::DeltaALog, i}, D.a_log, {s.value_heads}, "value heads");
  expect_shape({Weight::DeltaDtBias, i}, D.dt_bias, {s.value_heads}, "value heads");
  expect_shape({Weight::DeltaNorm, i}, D.norm_w, {s.value_dim}, "value head dim");
  expect_shape({Weight::DeltaOut, i}, D.out_w, {Hd, values}, "hidden × value heads·dv");
}

void Decoder::check_latent_weights(int i) const {
  const auto& A = layers_[i].attn;
  const auto& m = spec_.attn.mla;
  const int64_t Hd = spec_.hidden, nh = spec_.attn.num_heads, rope = m.qk_rope_dim;
  const int64_t q_in = m.q_lora_rank > 0 ? m.q_lora_rank : Hd;
  expect_shape({Weight::QA, i}, A.q_a_w, {m.q_lora_rank, Hd}, "q_lora_rank × hidden");
  expect_shape({Weight::QB, i}, A.q_b_w, {nh * (m.qk_nope_dim + rope), q_in},
               "heads·(qk_nope_head_dim + qk_rope_head_dim) × (q_lora_rank or hidden)");
  expect_shape({Weight::KvA, i}, A.kv_a_w, {m.kv_lora_rank + rope, Hd}, "(kv_lora_rank + qk_rope_head_dim) × hidden");
  expect_shape({Weight::KvB, i}, A.kv_b_w, {nh * (m.qk_nope_dim + spec_.attn.value_dim()), m.kv_lora_rank},
               "heads·(qk_nope_head_dim + v_head_dim) × kv_lora_rank");
}

torch::Tensor Decoder::output_layer(const torch::Tensor& normed) const {
  constexpr int64_t kMmapThreshold = int64_t(32) << 20;  // glibc's largest
  const int64_t V = head_w_.size(0), rows = normed.numel() / std::max<int64_t>(normed.size(-1), 1);
  if (!native_matmul(head_w_) || !normed.is_cpu() || normed.scalar_type() != head_w_.scalar_type() ||
      rows * V * static_cast<int64_t>(head_w_.element_size()) <= kMmapThreshold)
    return dense(normed, head_w_, head_b_);
  std::unique_lock<std::mutex> lock(logits_mutex_, std::try_to_lock);
  // Reusable only when this is the last handle on the buffer and on its storage (no view of it).
  const bool free_buffer = logits_buffer_.defined() && logits_buffer_.use_count() == 1 &&
                           logits_buffer_.storage().use_count() == 1;
  if (!lock.owns_lock() || (logits_buffer_.defined() && !free_buffer)) return dense(normed, head_w_, head_b_);
  auto shape = normed.sizes().vec();
  shape.back() = V;
  if (!logits_buffer_.defined()) logits_buffer_ = torch::empty(shape, normed.options());
  logits_buffer_.resize_(shape);  // keeps the storage when it is large enough
  auto out = logits_buffer_.view({rows, V});
  at::mm_out(out, normed.reshape({rows, normed.size(-1)}), head_w_.t());
  if (head_b_.defined()) logits_buffer_.add_(head_b_);
  return logits_buffer_;
}

torch::Tensor Decoder::unembed(const torch::Tensor& normed) const {
  auto logits = output_layer(normed);
  if (spec_.logit_scale != 1.0) logits = logits * spec_.logit_scale;
  if (spec_.final_softcap > 0)
    logits = elementwise(logits / spec_.final_softcap, [](const torch::Tensor& t) { return torch::tanh(t); }) * spec_.final_softcap;
  return logits;
}

torch::Tensor Decoder::project_on_vocab(const torch::Tensor& hidden) const { return unembed(final_norm_(hidden)); }

torch::Tensor Decoder::mlp_branch(int i, const torch::Tensor& x, const Tap& tap) const {
  const auto& L = layers_[i];
  const MlpKind kind = layer_mlp_kind(spec_, i);
  if (kind == MlpKind::MoE) return moe(spec_.mlp, L.moe, x, tap, i);
  auto hidden = mlp_hidden(kind, spec_.mlp, L.mlp, x);
  tap(Point::MlpHidden, i, hidden);
  return dense(hidden, L.mlp.down_w, L.mlp.down_b);
}

// A mixer whose memory is a state: the cache's, else (when hooks may read it) one for this pass
// alone. The states are points after the mixer ran; a write replaces what the cache keeps, so it
// changes the next pass (generation's next step), not this one.
torch::Tensor Decoder::recurrent_mixer(int i, const torch::Tensor& x, PassState& state, const Tap& tap) const {
  const auto& L = layers_[i];
  const size_t li = static_cast<size_t>(i);
  torch::Tensor local_conv, local_recurrent;
  torch::Tensor* conv = state.cache ? &state.cache->states[li] : tap.hooks() ? &local_conv : nullptr;
  torch::Tensor* recurrent = state.cache ? &state.cache->recurrent[li] : tap.hooks() ? &local_recurrent : nullptr;
  torch::Tensor out = spec_.layers[li].mixer == Mixer::ShortConv
                          ? short_conv(L.conv, x, conv)
                          : gated_deltanet(spec_.deltanet, L.deltanet, x, state.prompt_pads(), conv, recurrent);
  if (conv) tap(Point::ConvState, i, *conv);
  if (recurrent && recurrent->defined()) tap(Point::RecurrentState, i, *recurrent);
  return out;
}

torch::Tensor Decoder::mixer(int i, const torch::Tensor& x, PassState& state, const Tap& tap) const {
  const auto& L = layers_[i];
  const auto& layer_spec = spec_.layers[i];
  if (layer_spec.mixer != Mixer::Attention) return recurrent_mixer(i, x, state, tap);
  AttentionContext ctx;
  ctx.layer = i;
  ctx.mask = &state.mask(layer_spec);
  ctx.qk_norm = layer_spec.qk_norm;
  if (layer_spec.temperature_tuning) ctx.query_scale = &state.query_temperature(spec_.attn);
  if (spec_.positions == PositionKind::Alibi) ctx.alibi = &state.alibi;
  if (layer_spec.positions == PositionKind::Rotary) ctx.rotary = &state.tables(layer_spec.rotary);
  ctx.cache = state.cache;
  return attention(spec_.attn, L.attn, x, ctx, tap);
}

torch::Tensor Decoder::block(int i, const torch::Tensor& x, PassState& state, const Tap& tap) const {
  const auto& L = layers_[i];
  const double r = spec_.residual_multiplier;
  auto scaled = [r](const torch::Tensor& t) { return r == 1.0 ? t : t * r; };

  torch::Tensor attn_in = spec_.pre_attn_norm ? L.attn_norm(x) : x;
  tap(Point::AttnInput, i, attn_in);
  torch::Tensor a = mixer(i, attn_in, state, tap);
  if (spec_.quirks.attn_output_includes_residual) a = x + a;
  tap(Point::AttnOutput, i, a);
  if (spec_.post_attn_norm) a = L.post_attn_norm(a);

  if (spec_.residual == Residual::Parallel) {
    torch::Tensor mlp_in = spec_.pre_mlp_norm ? L.mlp_norm(x) : attn_in;
    tap(Point::MlpInput, i, mlp_in);
    torch::Tensor m = mlp_branch(i, mlp_in, tap);
    tap(Point::MlpOutput, i, m);
    if (spec_.post_mlp_norm) m = L.post_mlp_norm(m);
    if (spec_.quirks.parallel_branches_summed_first) return (scaled(a) + scaled(m)) + x;
    return (x + scaled(a)) + scaled(m);
  }
  torch::Tensor h = spec_.quirks.attn_output_includes_residual ? a : x + scaled(a);
  tap(Point::ResidMid, i, h);
  torch::Tensor mlp_in = spec_.pre_mlp_norm ? L.mlp_norm(h) : h;
  tap(Point::MlpInput, i, mlp_in);
  torch::Tensor m = mlp_branch(i, mlp_in, tap);
  if (spec_.quirks.mlp_output_includes_residual) m = h + m;
  tap(Point::MlpOutput, i, m);
  if (spec_.post_mlp_norm) m = L.post_mlp_norm(m);
  return spec_.quirks.mlp_output_includes_residual ? m : h + scaled(m);
}

// See input_checks.hpp.
void check_forward_input(const ForwardInput& in, int64_t past, int64_t vocab) {
  const auto& ids = in.input_ids;
  if (!ids.defined() || ids.dim() != 2 || ids.scalar_type() != torch::kInt64)
    throw Error(ErrorKind::Shape, "input_ids",
                "expected an int64 tensor [batch, tokens], got " +
                    (ids.defined() ? shape_text(ids.sizes()) + " " + c10::toString(ids.scalar_type()) : std::string("none")),
                !ids.defined()                          ? "give token ids [batch, tokens]"
                : ids.dim() == 1                        ? "add the batch dimension: input_ids.unsqueeze(0)"
                : ids.scalar_type() != torch::kInt64    ? "token ids are int64: convert with .to(torch::kInt64)"
                                                        : "input_ids has two dimensions: [batch, tokens]");
  if (ids.size(0) == 0 || ids.size(1) == 0)
    throw Error(ErrorKind::InvalidArgument, "input_ids", "empty batch or sequence (shape " + shape_text(ids.sizes()) + ")",
                "give at least one row with at least one token");
  auto [lo, hi] = torch::aminmax(ids);
  if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= vocab) {
    auto bad = ((ids < 0) | (ids >= vocab)).nonzero()[0];  // the first offending (row, position)
    const int64_t b = bad[0].item<int64_t>(), t = bad[1].item<int64_t>();
    throw Error(ErrorKind::InvalidArgument, "input_ids",
                "token ids must lie in [0, " + std::to_string(vocab) + "), got " + std::to_string(ids[b][t].item<int64_t>()) +
                    " at row " + std::to_string(b) + ", position " + std::to_string(t) + " (min " +
                    std::to_string(lo.item<int64_t>()) + ", max " + std::to_string(hi.item<int64_t>()) + ")",
                "was the input tokenized with this model's tokenizer? Padding positions need a valid id too (the mask hides them)");
  }
  const auto& mask = in.attention_mask;
  if (mask.defined()) {
    const int64_t B = ids.size(0), S = past + ids.size(1);
    if (mask.dim() != 2 || mask.size(0) != B || mask.size(1) != S)
      throw Error(ErrorKind::Shape, "attention_mask",
                  "expected [" + std::to_string(B) + ", " + std::to_string(S) + "] (batch, cached + new tokens), got " +
                      shape_text(mask.sizes()));
    if (mask.scalar_type() != torch::kBool && !c10::isIntegralType(mask.scalar_type(), /*includeBool=*/false))
      throw Error(ErrorKind::Shape, "attention_mask", "expected an integer or bool mask of 0/1, got " + tensor_text(mask),
                  "convert with .to(torch::kInt64); additive (0 / -inf) float masks are not supported");
    if (mask.scalar_type() != torch::kBool) {
      auto [mlo, mhi] = torch::aminmax(mask);
      if (mlo.item<int64_t>() < 0 || mhi.item<int64_t>() > 1) {
        auto bad = ((mask != 0) & (mask != 1)).nonzero()[0];
        const int64_t b = bad[0].item<int64_t>(), t = bad[1].item<int64_t>();
        throw Error(ErrorKind::InvalidArgument, "attention_mask",
                    "values must be 0 (padding) or 1 (token), got " + std::to_string(mask[b][t].item<int64_t>()) + " at row " +
                        std::to_string(b) + ", position " + std::to_string(t));
      }
    }
    auto real = mask.ne(0).any(1);  // [B]
    if (!real.all().item<bool>()) {
      const int64_t b = real.logical_not().nonzero()[0][0].item<int64_t>();
      throw Error(ErrorKind::InvalidArgument, "attention_mask",
                  "row " + std::to_string(b) + " has no real token (its mask is all zeros)",
                  "drop the empty row: every row needs at least one token with mask 1");
    }
  }
  if (in.position_ids.defined() && in.position_ids.sizes() != ids.sizes())
    throw Error(ErrorKind::Shape, "position_ids", "expected the shape of input_ids " + shape_text(ids.sizes()) +
                                                      ", got " + shape_text(in.position_ids.sizes()));
  if (in.position_ids.defined() && in.position_ids.scalar_type() != torch::kInt64)
    throw Error(ErrorKind::Shape, "position_ids", "expected int64 positions, got " + tensor_text(in.position_ids));
  if (in.position_ids.defined() && in.position_ids.min().item<int64_t>() < 0)
    throw Error(ErrorKind::InvalidArgument, "position_ids", "positions must be >= 0, got " +
                                                                std::to_string(in.position_ids.min().item<int64_t>()));
}

// The input's tensors on `device` (the model's); the checks run first, on the caller's tensors.
static ForwardInput on_device(const ForwardInput& in, const torch::Device& device) {
  ForwardInput out = in;
  for (auto* t : {&out.input_ids, &out.attention_mask, &out.position_ids})
    if (t->defined() && t->device() != device) *t = t->to(device);
  return out;
}

torch::Tensor Decoder::forward(const ForwardInput& caller_input, PointHooks* hooks) const {
  const int64_t past = caller_input.cache ? caller_input.cache->length() : 0;
  check_forward_input(caller_input, past, spec_.vocab);
  const ForwardInput in = on_device(caller_input, embed_w_.device());
  const auto& ids = in.input_ids;
  const int64_t B = ids.size(0), T = ids.size(1);
  PassState state;
  state.past = past;
  state.T = T;
  state.dtype = embed_w_.scalar_type();
  state.rotary_precision = spec_.attn.rotary_precision;
  state.key_mask = in.attention_mask.defined() ? in.attention_mask.to(torch::kBool)
                                               : torch::ones({B, past + T}, torch::TensorOptions().dtype(torch::kBool).device(ids.device()));
  if (in.position_ids.defined()) {
    state.position_ids = in.position_ids;
  } else {
    // As HF generation: cumsum(mask) - 1 over all (cached + new) tokens, pads set to 1.
    auto m = state.key_mask.to(torch::kInt64);
    auto pos = (m.cumsum(-1) - 1).masked_fill(m == 0, 1);
    state.position_ids = pos.narrow(1, past, T);
  }
  if (spec_.max_positions > 0 && spec_.positions == PositionKind::Learned) {
    int64_t max_pos = state.position_ids.max().item<int64_t>();
    if (max_pos >= spec_.max_positions)
      throw Error(ErrorKind::InvalidArgument, "input_ids",
                  "position " + std::to_string(max_pos) + " is beyond the model's " + std::to_string(spec_.max_positions) +
                      " learned positions (0.." + std::to_string(spec_.max_positions - 1) + ")",
                  "shorten the input to at most " + std::to_string(spec_.max_positions) + " tokens (" + spec_.name +
                      " has learned absolute positions and cannot extrapolate)");
  }
  if (in.cache && in.cache->keys.size() != static_cast<size_t>(spec_.num_layers)) {
    in.cache->keys.assign(spec_.num_layers, torch::Tensor());
    in.cache->values.assign(spec_.num_layers, torch::Tensor());
  }
  if (in.cache && in.cache->states.size() != static_cast<size_t>(spec_.num_layers))
    in.cache->states.assign(spec_.num_layers, torch::Tensor());
  if (in.cache && in.cache->recurrent.size() != static_cast<size_t>(spec_.num_layers))
    in.cache->recurrent.assign(spec_.num_layers, torch::Tensor());
  state.cache = in.cache;
  if (spec_.positions == PositionKind::Alibi) state.alibi = alibi_bias(spec_.alibi, spec_.attn.num_heads, state.key_mask);

  Tap tap(hooks);
  try {
    torch::Tensor x = at::embedding(embed_w_, ids);
    if (embed_multiplier_inside_ != 1.0) x = x * embed_multiplier_inside_;
    tap(Point::Embed, -1, x);
    if (embed_multiplier_ != 1.0) x = x * embed_multiplier_;
    if (spec_.positions == PositionKind::Learned)
      x = x + at::embedding(pos_w_, state.position_ids + spec_.learned_position_offset);
    if (spec_.embed_norm) x = embed_norm_(x);
    for (int i = 0; i < spec_.num_layers; ++i) {
      tap(Point::LayerInput, i, x);
      torch::Tensor replacement = hooks ? hooks->skip_layer(i, x) : torch::Tensor();
      if (replacement.defined()) {
        if (replacement.sizes() != x.sizes())
          throw Error(ErrorKind::Shape, PointId{Point::LayerOutput, i}.name(), "a skipped layer's replacement must have shape " +
                                                                     shape_text(x.sizes()) + ", got " + shape_text(replacement.sizes()));
        // With a KV cache the block still runs, so that later steps find this layer's keys/values.
        if (state.cache) block(i, x, state, Tap(nullptr));
        x = replacement;
      } else {
        x = block(i, x, state, tap);
      }
      tap(Point::LayerOutput, i, x);
    }
    if (in.cache) in.cache->state_positions = past + T;
    x = final_norm_(x);
    tap(Point::FinalNorm, -1, x);
    if (in.logits_last_only) x = x.narrow(1, T - 1, 1);
    torch::Tensor logits = unembed(x);
    tap(Point::Logits, -1, logits);
    return logits;
  } catch (const StopForward&) {
    return {};
  }
}

}  // namespace nnterp::model
