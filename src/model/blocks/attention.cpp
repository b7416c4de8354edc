// Eager attention over the canonical fused QKV projection (every QKV packing is re-ordered into
// [q | k | v] at load time, weights.cpp) or over multi-head latent attention's projections: the
// two differ in how q, k and v are made, and share everything after.
#include "model/blocks/blocks.hpp"

namespace nnterp::model {

namespace {

// [B, T, n·hd] → [B, n, T, hd]
torch::Tensor split_heads(const torch::Tensor& x, int64_t n, int64_t hd) {
  return x.view({x.size(0), x.size(1), n, hd}).transpose(1, 2);
}

torch::Tensor per_head_norm(const Norm& norm, QkNorm kind, const torch::Tensor& x /*[B,T,n,hd]*/) {
  if (kind == QkNorm::PerHead) return norm(x);
  // PerHeadSeparate: a LayerNorm over head_dim with a weight row (and bias row) per head.
  const int64_t n = x.size(2), hd = x.size(3);
  auto y = elementwise(x, [&](const torch::Tensor& v) { return at::layer_norm(v, {hd}, {}, {}, norm.eps); }) *
           norm.weight.view({n, hd});
  return norm.bias.defined() ? y + norm.bias.view({n, hd}) : y;
}

}  // namespace

torch::Tensor softmax_with_sinks(const torch::Tensor& scores, const torch::Tensor& sinks) {
  const int64_t B = scores.size(0), H = scores.size(1), T = scores.size(2), S = scores.size(3);
  auto sink_column = sinks.to(torch::kFloat32).view({1, H, 1, 1}).expand({B, H, T, 1});
  auto logits = torch::cat({scores.to(torch::kFloat32), sink_column}, -1);
  return torch::softmax(logits, -1).narrow(-1, 0, S);
}

namespace {

struct Heads {
  torch::Tensor q, k, v;  // [B, heads, T, ·]
  torch::Tensor gate;     // [B, T, heads·hd] for AttentionSpec::output_gate, else undefined
};

// The rotary part of MLA's q or k (its last qk_rope_dim dims, [B, h, T, rope]), rotated.
torch::Tensor rotate_latent_rope(const MlaSpec& m, torch::Tensor x, const RotaryTables& tables) {
  if (m.rope_deinterleave) {  // [x0, x1, x2, x3, ...] → [x0, x2, ..., x1, x3, ...]
    auto s = x.sizes().vec();
    x = x.reshape({s[0], s[1], s[2], s[3] / 2, 2}).transpose(-1, -2).reshape(s);
  }
  return apply_rotary(x, tables);
}

Heads latent_heads(const AttentionSpec& spec, const AttentionWeights& w, const torch::Tensor& x, const RotaryTables* rotary) {
  const auto& m = spec.mla;
  const int64_t B = x.size(0), T = x.size(1), H = spec.num_heads, nope = m.qk_nope_dim, rope = m.qk_rope_dim;
  const int64_t vd = spec.value_dim();
  auto q = split_heads(dense(w.q_a_w.defined() ? w.q_a_norm(dense(x, w.q_a_w, w.q_a_b)) : x, w.q_b_w), H, nope + rope);
  auto kv_a = dense(x, w.kv_a_w, w.kv_a_b);  // [B, T, kv_lora_rank + rope]
  auto kv = split_heads(dense(w.kv_a_norm(kv_a.narrow(-1, 0, m.kv_lora_rank)), w.kv_b_w), H, nope + vd);
  auto q_rope = q.narrow(-1, nope, rope);
  auto k_rope = kv_a.narrow(-1, m.kv_lora_rank, rope).unsqueeze(1);  // [B, 1, T, rope]: one head for all
  if (rotary) {
    q_rope = rotate_latent_rope(m, q_rope, *rotary);
    k_rope = rotate_latent_rope(m, k_rope, *rotary);
  }
  return {torch::cat({q.narrow(-1, 0, nope), q_rope}, -1),
          torch::cat({kv.narrow(-1, 0, nope), k_rope.expand({B, H, T, rope})}, -1), kv.narrow(-1, nope, vd), {}};
}

// q, k, v from the fused [q | k | v] projection, with the optional clip, QK-norms and rotary.
Heads projected_heads(const AttentionSpec& spec, const AttentionWeights& w, const torch::Tensor& x, const RotaryTables* rotary,
                      bool qk_norm) {
  const int64_t B = x.size(0), T = x.size(1);
  const int64_t H = spec.num_heads, KV = spec.num_kv_heads, hd = spec.head_dim;
  auto qkv = dense(x, w.qkv_w, w.qkv_b);
  if (spec.clip_qkv > 0)
    qkv = elementwise(qkv, [&](const torch::Tensor& t) { return t.clamp(-spec.clip_qkv, spec.clip_qkv); });
  const int64_t q_rows = (spec.output_gate ? 2 : 1) * H * hd;  // Qwen3-Next: per head [q_h | gate_h]
  auto q = qkv.narrow(-1, 0, q_rows);
  torch::Tensor gate;
  if (spec.output_gate) {
    auto per_head = q.reshape({B, T, H, 2 * hd});
    gate = per_head.narrow(-1, hd, hd).reshape({B, T, H * hd});
    q = per_head.narrow(-1, 0, hd).reshape({B, T, H * hd});
  }
  auto k = qkv.narrow(-1, q_rows, KV * hd);
  auto v = qkv.narrow(-1, q_rows + KV * hd, KV * hd);
  const QkNorm norm_kind = qk_norm ? spec.qk_norm : QkNorm::None;
  if (norm_kind == QkNorm::WholeProjection) {
    q = w.q_norm(q);
    k = w.k_norm(k);
  }
  const bool per_head_norm_kind = norm_kind == QkNorm::PerHead || norm_kind == QkNorm::PerHeadSeparate;
  if (per_head_norm_kind && !spec.qk_norm_after_rotary) {
    q = per_head_norm(w.q_norm, spec.qk_norm, q.reshape({B, T, H, hd})).reshape({B, T, H * hd});
    k = per_head_norm(w.k_norm, spec.qk_norm, k.reshape({B, T, KV, hd})).reshape({B, T, KV * hd});
  }
  q = split_heads(q, H, hd);
  k = split_heads(k, KV, hd);
  v = split_heads(v, KV, hd);
  if (rotary) {
    q = apply_rotary(q, *rotary);
    k = apply_rotary(k, *rotary);
  }
  if (per_head_norm_kind && spec.qk_norm_after_rotary) {  // [B, heads, T, hd]: the norm is over hd
    q = per_head_norm(w.q_norm, spec.qk_norm, q.transpose(1, 2)).transpose(1, 2);
    k = per_head_norm(w.k_norm, spec.qk_norm, k.transpose(1, 2)).transpose(1, 2);
  }
  return {q, k, v, gate};
}

}  // namespace

torch::Tensor attention(const AttentionSpec& spec, const AttentionWeights& w, const torch::Tensor& x,
                        const AttentionContext& ctx, const Tap& tap) {
  const int64_t B = x.size(0), T = x.size(1);
  const int64_t H = spec.num_heads, KV = spec.num_kv_heads;
  auto [q, k, v, gate] = spec.latent() ? latent_heads(spec, w, x, ctx.rotary) : projected_heads(spec, w, x, ctx.rotary, ctx.qk_norm);
  if (ctx.query_scale) q = (q * *ctx.query_scale).to(q.scalar_type());
  tap(Point::Query, ctx.layer, q);
  tap(Point::Key, ctx.layer, k);
  tap(Point::Value, ctx.layer, v);
  if (ctx.cache) std::tie(k, v) = ctx.cache->append(static_cast<size_t>(ctx.layer), k, v);
  // GQA / MQA: kv head j serves query heads j·g … j·g+g-1. Those g heads are folded into the rows
  // of one matmul against kv head j ([B, KV, g·T, ·]) instead of copying k and v g times.
  const int64_t g = H / KV;
  const double scale = spec.scale > 0 ? spec.scale : 1.0 / std::sqrt(static_cast<double>(spec.head_dim));
  if (spec.scale_query && scale != 1.0) q = q * scale;  // after the Query point: it stays q_proj's output
  auto fold = [&](const torch::Tensor& t) { return g == 1 ? t : t.reshape({B, KV, g * T, t.size(3)}); };
  auto unfold = [&](const torch::Tensor& t) { return g == 1 ? t : t.reshape({B, H, T, t.size(3)}); };
  // Scores in the dtype (rounded after the matmul), or in float32 up to a single rounding after
  // the ALiBi bias (Bloom's baddbmm) or none at all (GPT-J: q and k upcast); see ScoreRounding.
  const bool float32_scores = spec.score_rounding != ScoreRounding::AfterMatmul && q.scalar_type() != torch::kFloat32;
  auto scores = float32_scores ? unfold(torch::matmul(fold(q).to(torch::kFloat32), k.transpose(-1, -2).to(torch::kFloat32)))
                               : unfold(product(fold(q), k.transpose(-1, -2)));
  // scores is a fresh tensor: scale and biases go in place (same values, no [B,H,T,S] temporaries)
  // unless adding a float32 bias must promote a lower-precision score dtype.
  auto add_bias = [](torch::Tensor& s, const torch::Tensor& bias) {
    if (s.scalar_type() == bias.scalar_type()) s.add_(bias);
    else s = s + bias;
  };
  if (scale != 1.0 && !spec.scale_query) scores.mul_(scale);
  if (spec.softcap > 0) scores = elementwise(scores / spec.softcap, [](const torch::Tensor& t) { return torch::tanh(t); }) * spec.softcap;
  if (ctx.alibi && float32_scores && spec.score_rounding == ScoreRounding::AfterAlibi) {
    scores = (scores + ctx.alibi->to(q.scalar_type())).to(q.scalar_type());  // Bloom's alibi is in the dtype
  } else if (ctx.alibi) {
    add_bias(scores, *ctx.alibi);
  }
  add_bias(scores, *ctx.mask);
  tap(Point::AttnScores, ctx.layer, scores);
  auto probs = (w.sinks.defined() ? softmax_with_sinks(scores, w.sinks) : torch::softmax(scores, -1, torch::kFloat32))
                   .to(q.scalar_type());
  tap(Point::AttnProbs, ctx.layer, probs);
  const int64_t dv = v.size(-1);
  auto z = unfold(product(fold(probs), v)).transpose(1, 2).reshape({B, T, H, dv});
  if (gate.defined()) z = z * elementwise(gate, [](const torch::Tensor& t) { return torch::sigmoid(t); }).view({B, T, H, dv});
  tap(Point::Z, ctx.layer, z);
  return dense(z.reshape({B, T, H * dv}), w.o_w, w.o_b);
}

}  // namespace nnterp::model
