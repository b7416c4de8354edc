// Token mixers without attention, whose whole memory of the past is a small state that the KV
// cache keeps per layer: LFM2's gated short convolution (its last kernel − 1 conv inputs) and
// Qwen3-Next's Gated DeltaNet (conv inputs and a [key_dim × value_dim] matrix per value head).
#include "model/blocks/blocks.hpp"

namespace nnterp::model {

torch::Tensor causal_depthwise_conv(const torch::Tensor& inputs, const torch::Tensor& kernel, const torch::Tensor& bias,
                                    torch::Tensor* state) {
  const int64_t B = inputs.size(0), C = inputs.size(1), K = kernel.size(-1);
  // The K − 1 inputs before these: the state, or zeros at a sequence's start (HF's zero padding).
  auto before = state && state->defined() ? state->to(inputs.scalar_type()) : torch::zeros({B, C, K - 1}, inputs.options());
  auto all = torch::cat({before, inputs}, -1);  // [B, C, K − 1 + T]
  if (state) *state = all.narrow(-1, all.size(-1) - (K - 1), K - 1).clone();
  return elementwise(all, [&](const torch::Tensor& in) {  // float32 where libtorch has no f16 conv
    const torch::Tensor b = bias.defined() ? bias.to(in.scalar_type()) : torch::Tensor();
    return torch::conv1d(in, kernel.to(in.scalar_type()), b, torch::IntArrayRef{1}, torch::IntArrayRef{0},
                         torch::IntArrayRef{1}, C);
  });
}

torch::Tensor short_conv(const ShortConvWeights& w, const torch::Tensor& x, torch::Tensor* state) {
  const int64_t H = x.size(2);
  auto bcx = dense(x, w.in_w, w.in_b).transpose(1, 2);  // [B, 3H, T]
  // b · x through the conv; HF does not mask left pads here, so pads flow into the first real tokens.
  auto conv = causal_depthwise_conv(bcx.narrow(1, 0, H) * bcx.narrow(1, 2 * H, H), w.kernel_w, w.kernel_b, state);
  auto y = (bcx.narrow(1, H, H) * conv).transpose(1, 2);  // c · conv, [B, T, H]
  return dense(y.contiguous(), w.out_w, w.out_b);
}

namespace {

torch::Tensor l2_normalized(const torch::Tensor& x) { return x * torch::rsqrt((x * x).sum(-1, true) + 1e-6); }

// The gated delta rule, one position at a time, in float32: per value head
// S ← S·exp(g_t); S += k_t ⊗ β_t (v_t − Sᵀk_t); o_t = Sᵀq_t. q, k [B, h, T, dk], v [B, h, T, dv],
// g, beta [B, h, T]; state [B, h, dk, dv].
torch::Tensor delta_rule(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g,
                         const torch::Tensor& beta, torch::Tensor& state) {
  const int64_t T = q.size(2);
  auto out = torch::empty({v.size(0), v.size(1), T, v.size(3)}, v.options());
  for (int64_t t = 0; t < T; ++t) {
    auto k_t = k.select(2, t), q_t = q.select(2, t);
    state = state * g.select(2, t).exp().unsqueeze(-1).unsqueeze(-1);
    auto remembered = (state * k_t.unsqueeze(-1)).sum(-2);  // Sᵀk, [B, h, dv]
    auto delta = (v.select(2, t) - remembered) * beta.select(2, t).unsqueeze(-1);
    state = state + k_t.unsqueeze(-1) * delta.unsqueeze(-2);
    out.select(2, t).copy_((state * q_t.unsqueeze(-1)).sum(-2));
  }
  return out;
}

}  // namespace

torch::Tensor gated_deltanet(const DeltaNetSpec& s, const DeltaNetWeights& w, const torch::Tensor& x0,
                             const torch::Tensor& real, torch::Tensor* conv_state, torch::Tensor* recurrent_state) {
  const int64_t B = x0.size(0), T = x0.size(1), kh = s.key_heads, vh = s.value_heads, dk = s.key_dim, dv = s.value_dim;
  const int64_t g = vh / kh;
  const auto x = real.defined() ? x0 * real.unsqueeze(-1).to(x0.scalar_type()) : x0;
  auto qkvz = dense(x, w.qkvz_w).view({B, T, kh, 2 * dk + 2 * g * dv});
  auto ba = dense(x, w.ba_w).view({B, T, kh, 2 * g});
  auto z = qkvz.narrow(-1, 2 * dk + g * dv, g * dv).reshape({B, T, vh, dv});
  auto b = ba.narrow(-1, 0, g).reshape({B, T, vh}), a = ba.narrow(-1, g, g).reshape({B, T, vh});
  auto mixed = torch::cat({qkvz.narrow(-1, 0, dk).reshape({B, T, kh * dk}), qkvz.narrow(-1, dk, dk).reshape({B, T, kh * dk}),
                           qkvz.narrow(-1, 2 * dk, g * dv).reshape({B, T, vh * dv})}, -1);
  auto conv = causal_depthwise_conv(mixed.transpose(1, 2), w.conv_w, {}, conv_state);
  conv = elementwise(conv, [](const torch::Tensor& t) { return at::silu(t); }).transpose(1, 2);  // [B, T, channels]
  auto heads = [&](int64_t offset, int64_t n, int64_t d) {  // [B, T, n·d] → [B, n, T, d] in float32
    return conv.narrow(-1, offset, n * d).reshape({B, T, n, d}).transpose(1, 2).to(torch::kFloat32);
  };
  auto q = l2_normalized(heads(0, kh, dk)).repeat_interleave(g, 1) / std::sqrt(static_cast<double>(dk));
  auto k = l2_normalized(heads(kh * dk, kh, dk)).repeat_interleave(g, 1);
  auto v = heads(2 * kh * dk, vh, dv);
  auto beta = torch::sigmoid(b.to(torch::kFloat32)).transpose(1, 2);  // [B, vh, T]
  auto decay = (-w.a_log.to(torch::kFloat32).exp() * torch::softplus(a.to(torch::kFloat32) + w.dt_bias.to(torch::kFloat32)))
                   .transpose(1, 2);
  torch::Tensor state = recurrent_state && recurrent_state->defined() ? recurrent_state->to(torch::kFloat32)
                                                                       : torch::zeros({B, vh, dk, dv}, q.options());
  auto o = delta_rule(q, k, v, decay, beta, state).transpose(1, 2).to(x0.scalar_type());  // [B, T, vh, dv]
  if (recurrent_state) *recurrent_state = state;
  // The gated norm: w · rms(o), then × silu(z) in float32.
  auto of = o.to(torch::kFloat32);
  auto normed = w.norm_w * (of * torch::rsqrt(of.pow(2).mean(-1, true) + s.norm_eps)).to(o.scalar_type());
  auto gated = (normed.to(torch::kFloat32) * at::silu(z.to(torch::kFloat32))).to(o.scalar_type());
  return dense(gated.reshape({B, T, vh * dv}), w.out_w);
}

}  // namespace nnterp::model
