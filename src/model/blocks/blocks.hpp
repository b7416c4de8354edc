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
  torch::Tensor weight, bias;  // undefined when absent
  torch::Tensor operator()(const torch::Tensor& x) const;
};
// The norm `weight` (Weight::AttnNorm, ...) of `layer` (-1 for a model-level norm) and its
// optional bias (bias_of(weight)) from the loaded weights (NonParametricLayerNorm needs none).
Norm make_norm(const Weights& w, Weight weight, int layer, const NormSpec& spec);

torch::Tensor activate(const torch::Tensor& x, Activation activation);

// cos/sin for one rotary spec at the given positions: [B, 1, T, dim].
struct RotaryTables {
  torch::Tensor cos, sin;
  int64_t dim = 0;
  RotaryLayout layout = RotaryLayout::Half;
};
RotaryTables rotary_tables(const RotarySpec& spec, const torch::Tensor& position_ids);
torch::Tensor apply_rotary(const torch::Tensor& x, const RotaryTables& tables);  // x: [B, h, T, hd]

// Additive attention mask [B, 1, T, S]: 0 where query i (absolute index past+i) may see key j,
// the lowest float elsewhere (finite, so fully masked pad rows stay NaN-free, as in HF).
torch::Tensor mask_bias(const torch::Tensor& key_mask, int64_t past, int64_t T, int64_t window);
// ALiBi score bias [B, heads, 1, S].
torch::Tensor alibi_bias(AlibiKind kind, int64_t heads, const torch::Tensor& key_mask);

struct AttentionWeights {
  torch::Tensor qkv_w, qkv_b, o_w, o_b;
  Norm q_norm, k_norm;
};
// What one attention call needs besides its weights.
struct AttentionContext {
  const torch::Tensor* mask = nullptr;    // [B, 1, T, S]
  const torch::Tensor* alibi = nullptr;   // [B, H, 1, S] or null
  const RotaryTables* rotary = nullptr;   // null: no rotary (NoPE, learned, ALiBi)
  torch::Tensor* cache_k = nullptr;       // extended in place when given
  torch::Tensor* cache_v = nullptr;
  int layer = 0;
};
torch::Tensor attention(const AttentionSpec& spec, const AttentionWeights& w, const torch::Tensor& x,
                        const AttentionContext& ctx, const Tap& tap);

struct MlpWeights {
  torch::Tensor up_w, up_b, gate_up_w, gate_up_b, down_w, down_b;
};
torch::Tensor mlp(MlpKind kind, Activation activation, const MlpWeights& w, const torch::Tensor& x);

struct MoeWeights {
  torch::Tensor router_w;
  std::vector<MlpWeights> experts;
  MlpWeights shared;
  torch::Tensor shared_gate_w;
};
torch::Tensor moe(const MlpSpec& spec, const MoeWeights& w, const torch::Tensor& x, const Tap& tap, int layer);

}  // namespace nnterp::model
