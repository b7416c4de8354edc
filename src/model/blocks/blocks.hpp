// The shared math of every architecture: norms, activations, positions (rotary, ALiBi, masks),
// attention, MLP and mixture-of-experts. Each takes small structs, never an ArchSpec.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "model/arch.hpp"
#include "model/weights.hpp"
#include "nnterp/forward.hpp"

namespace nnterp::model {

// ---- kernels in the model's dtype (kernels.cpp) ------------------------------------------
// The dtype the matmuls of a `dtype` model compute in on `device`: float32 for bf16/f16 on the CPU
// (with inputs in the dtype and one rounding of the result to it), else `dtype` itself.
torch::ScalarType matmul_dtype(torch::ScalarType dtype, const torch::Device& device);
// Whether the matmuls of `t` run in its own dtype (matmul_dtype is t's dtype).
bool native_matmul(const torch::Tensor& t);
// x·wᵀ + b (a linear layer) and the batched matrix product a·b, with the numbers of a native
// kernel in x's (a's) dtype (see matmul_dtype). A RowBlocks weight is the row blocks of one
// projection kept apart (q | k | v, gate | up used in place from the file, Weights::row_blocks):
// the output is the blocks' outputs side by side, the same numbers as the fused weight's.
torch::Tensor dense(const torch::Tensor& x, const RowBlocks& w, const torch::Tensor& b = {});
torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b = {});
torch::Tensor product(const torch::Tensor& a, const torch::Tensor& b);
// x [M, K] · Wᵀ for W [N, K] (float32/bfloat16/float16 on the CPU, contiguous or the transposed
// view of a contiguous [K, N]) and M ≤ kMaxProductRows rows of input, in float32 (matvec.cpp): the
// weights read once for all M rows. Undefined when it does not apply (another dtype or layout, more
// rows, no AVX2 + FMA, or autograd must record the product: the kernel has no backward).
inline constexpr int64_t kMaxProductRows = 8;
torch::Tensor small_product(const torch::Tensor& w, const torch::Tensor& x);
// a [..., M, K] · b [..., K, N] (float32, CPU, same batch dims, M ≤ kMaxProductRows) with the same
// kernel per batch: attention's q·kᵀ and probs·v in a decode step, where libtorch's bmm costs more
// per (batch, head) than the product itself. b's [K, N] may be row-major or the transpose of a
// row-major [N, K], and its batch dims strided. Undefined when it does not apply.
torch::Tensor batched_small_product(const torch::Tensor& a, const torch::Tensor& b);
// Whether libtorch has no element-wise kernels for x's dtype on x's device (f16 on the CPU).
bool lacks_kernels(const torch::Tensor& x);
// op(x), computed in float32 and rounded back to x's dtype where lacks_kernels(x): what a native
// kernel computes (they work in float32 inside) where libtorch has none.
template <class Op>
torch::Tensor elementwise(const torch::Tensor& x, Op op) {
  return lacks_kernels(x) ? op(x.to(torch::kFloat32)).to(x.scalar_type()) : op(x);
}

// Calls the hooks at a point and checks that a write kept the shape and dtype.
class Tap {
 public:
  explicit Tap(PointHooks* hooks) : hooks_(hooks) {}
  void operator()(Point point, int layer, torch::Tensor& value) const {
    if (hooks_) call(point, layer, value);
  }
  PointHooks* hooks() const { return hooks_; }

 private:
  void call(Point point, int layer, torch::Tensor& value) const;
  PointHooks* hooks_;
};

struct Norm {
  NormKind kind = NormKind::RMSNorm;
  double eps = 1e-5;
  bool weight_in_float32 = false;  // NormSpec::weight_in_float32
  torch::Tensor weight, bias;  // undefined when absent
  torch::Tensor operator()(const torch::Tensor& x) const;
  // The norm as the linear map it is at `at` [..., H] with its scale (and for LayerNorm its
  // centring) frozen there, applied to `parts` [..., n, H], in float64, without the bias: for parts
  // summing to `at`, Σ linear_part + bias = norm(at) (direct logit attribution).
  torch::Tensor linear_part(const torch::Tensor& at, const torch::Tensor& parts) const;
};
// The norm `weight` (Weight::AttnNorm, ...) of `layer` (-1 for a model-level norm) and its
// optional bias (bias_of(weight)) from the loaded weights (NonParametricLayerNorm needs none).
Norm make_norm(const Weights& w, Weight weight, int layer, const NormSpec& spec);

torch::Tensor activate(const torch::Tensor& x, Activation activation);

// cos/sin for one rotary spec at the given positions: [B, 1, T, dim], computed in float32 and
struct RotaryTables {
  torch::Tensor cos, sin;
  int64_t dim = 0;
  RotaryLayout layout = RotaryLayout::Half;
  bool float32_math = false;  // rotate in float32 and round once (RotaryPrecision)
};
// rounded to `dtype` (the model's) unless `precision` keeps them in float32. `sequence_length`
// (cached + new positions, pads counted) picks longrope's regime.
RotaryTables rotary_tables(const RotarySpec& spec, const torch::Tensor& position_ids, torch::ScalarType dtype,
                           RotaryPrecision precision = RotaryPrecision::InDtype, int64_t sequence_length = 0);
torch::Tensor apply_rotary(const torch::Tensor& x, const RotaryTables& tables);  // x: [B, h, T, hd]

// Additive attention mask [B, 1, T, S]: 0 where query i (absolute index past+i) may see key j,
// the lowest float elsewhere (finite, so fully masked pad rows stay NaN-free, as in HF). With
// `chunk` > 0 a query sees only the keys of its own chunk of `chunk` real tokens (LayerSpec).
torch::Tensor mask_bias(const torch::Tensor& key_mask, int64_t past, int64_t T, int64_t window, int64_t chunk = 0);
// ALiBi score bias [B, heads, 1, S].
torch::Tensor alibi_bias(AlibiKind kind, int64_t heads, const torch::Tensor& key_mask);

struct AttentionWeights {
  RowBlocks qkv_w;
  torch::Tensor qkv_b, o_w, o_b;
  torch::Tensor sinks;  // [heads] or undefined (AttentionSpec)
  // Multi-head latent attention (AttentionSpec::mla) instead of qkv_w / qkv_b; q_a_w undefined
  // when q comes from one projection (q_b_w) of the input.
  torch::Tensor q_a_w, q_a_b, q_b_w, kv_a_w, kv_a_b, kv_b_w;
  Norm q_a_norm, kv_a_norm;
  Norm q_norm, k_norm;
};
// What one attention call needs besides its weights.
struct AttentionContext {
  const torch::Tensor* mask = nullptr;    // [B, 1, T, S]
  const torch::Tensor* alibi = nullptr;   // [B, H, 1, S] or null
  const RotaryTables* rotary = nullptr;   // null: no rotary (NoPE, learned, ALiBi)
  bool qk_norm = true;                    // LayerSpec::qk_norm
  const torch::Tensor* query_scale = nullptr;  // [1, 1, T, 1] multiplying q (temperature tuning) or null
  KVCache* cache = nullptr;               // this layer's past keys/values, extended when given
  int layer = 0;
};
torch::Tensor attention(const AttentionSpec& spec, const AttentionWeights& w, const torch::Tensor& x,
                        const AttentionContext& ctx, const Tap& tap);

// xIELU (Apertus): softplus(alpha_p)·x² + beta·x for x > 0, else
// (expm1(min(x, eps)) − x)·(beta + softplus(alpha_n)) + beta·x, its scalars taken in bfloat16 as HF does.
struct XieluParams {
  torch::Tensor alpha_p, alpha_n, beta, eps;
};
torch::Tensor xielu(const torch::Tensor& x, const XieluParams& params);

struct ShortConvWeights {
  torch::Tensor in_w, in_b, kernel_w, kernel_b, out_w, out_b;
};
// Mixer::ShortConv on x [B, T, H]. `state` (may be null) holds the last kernel − 1 conv inputs
// [B, H, kernel − 1] of the positions before x (zeros when undefined, as at a sequence's start) and
// is replaced by those after x.
torch::Tensor short_conv(const ShortConvWeights& w, const torch::Tensor& x, torch::Tensor* state);

struct DeltaNetWeights {
  torch::Tensor qkvz_w, ba_w, conv_w, a_log, dt_bias, norm_w, out_w;
};
// Mixer::GatedDeltaNet on x [B, T, H]. `real` (bool [B, T] or undefined) zeroes the left pads'
// inputs, as HF does during a prompt; `conv_state` / `recurrent_state` (may be null) hold the
// state before x (zeros when undefined) and are replaced by the state after it.
torch::Tensor gated_deltanet(const DeltaNetSpec& spec, const DeltaNetWeights& w, const torch::Tensor& x,
                             const torch::Tensor& real, torch::Tensor* conv_state, torch::Tensor* recurrent_state);
// The causal depthwise convolution of inputs [B, C, T] with kernel [C, 1, K] (and optional bias)
// after the K − 1 inputs of `state` (zeros when null or undefined), which it then replaces.
torch::Tensor causal_depthwise_conv(const torch::Tensor& inputs, const torch::Tensor& kernel, const torch::Tensor& bias,
                                    torch::Tensor* state);

struct MlpWeights {
  RowBlocks gate_up_w;  // empty for a plain MLP
  torch::Tensor up_w, up_b, gate_up_b, down_w, down_b;
  XieluParams xielu;  // Activation::Xielu only
};
// A plain or gated MLP as `spec` describes it (its kind is `kind`: an MoE's experts are Gated).
torch::Tensor mlp(MlpKind kind, const MlpSpec& spec, const MlpWeights& w, const torch::Tensor& x);
// Its neurons, the input of the down projection: mlp() = dense(mlp_hidden(), down).
torch::Tensor mlp_hidden(MlpKind kind, const MlpSpec& spec, const MlpWeights& w, const torch::Tensor& x);
// softmax over the keys and one sink logit per head (sinks [heads]) for scores [B, heads, T, S],
// in float32: the keys' probabilities, which sum to less than 1.
torch::Tensor softmax_with_sinks(const torch::Tensor& scores, const torch::Tensor& sinks);

struct MoeWeights {
  torch::Tensor router_w, router_b, score_bias;
  std::vector<MlpWeights> experts;
  MlpWeights shared;
  torch::Tensor shared_gate_w;
};
// The routing decision for each token: its top_k experts [N, k] and their weights [N, k]
// (float32), from the router's logits [N, experts] and the optional score bias [experts].
struct Routing {
  torch::Tensor experts, weights;
};
Routing route(const MoeSpec& spec, const torch::Tensor& router_logits, const torch::Tensor& score_bias = {});
torch::Tensor moe(const MlpSpec& spec, const MoeWeights& w, const torch::Tensor& x, const Tap& tap, int layer);

}  // namespace nnterp::model
