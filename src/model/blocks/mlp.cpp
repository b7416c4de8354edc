#include "model/blocks/blocks.hpp"

namespace nnterp::model {

torch::Tensor mlp(MlpKind kind, Activation activation, const MlpWeights& w, const torch::Tensor& x) {
  if (kind == MlpKind::Plain) return dense(activate(dense(x, w.up_w, w.up_b), activation), w.down_w, w.down_b);
  auto gate_up = dense(x, w.gate_up_w, w.gate_up_b);
  const int64_t inter = gate_up.size(-1) / 2;
  auto hidden = activate(gate_up.narrow(-1, 0, inter), activation) * gate_up.narrow(-1, inter, inter);
  return dense(hidden, w.down_w, w.down_b);
}

torch::Tensor moe(const MlpSpec& spec, const MoeWeights& w, const torch::Tensor& x, const Tap& tap, int layer) {
  const auto shape = x.sizes().vec();
  auto tokens = x.reshape({-1, x.size(-1)});  // [N, H]
  auto router_logits = dense(tokens, w.router_w);
  tap(Point::RouterLogits, layer, router_logits);
  auto routing = torch::softmax(router_logits, -1, torch::kFloat32);
  auto [top_weights, top_experts] = routing.topk(spec.moe.top_k, -1);
  if (spec.moe.normalize_top_k) top_weights = top_weights / top_weights.sum(-1, true);
  top_weights = top_weights.to(x.scalar_type());
  auto out = torch::zeros_like(tokens);
  // Each expert runs once over every token routed to it, across the batch: one GEMM per expert
  // instead of one per expert and batch row (GEMMs of a few rows run far below the sgemm rate).
  // Which tokens share an expert's GEMM then depends on the whole batch, and a GEMM's rounding can
  // depend on its row count, so a row's output depends on the other rows by float32 rounding only
  // (TraceTest.SteeringOneRowChangesOnlyThatRow bounds it at 1e-5 of the logits' range).
  for (int64_t e = 0; e < spec.moe.num_experts; ++e) {
    auto hits = (top_experts == e).nonzero();  // [n, 2]: (token, slot)
    if (hits.size(0) == 0) continue;
    auto token_index = hits.select(1, 0);
    auto weight = top_weights.index({token_index, hits.select(1, 1)}).unsqueeze(-1);
    auto y = mlp(MlpKind::Gated, spec.activation, w.experts[e], tokens.index_select(0, token_index));
    out.index_add_(0, token_index, y * weight);
  }
  if (spec.moe.shared_expert) {
    auto shared = mlp(MlpKind::Gated, spec.activation, w.shared, tokens);
    if (!w.shared_gate_w.defined()) {  // HunYuan: added as it is
      out = out + shared;
    } else {
      auto gate = elementwise(dense(tokens, w.shared_gate_w), [](const torch::Tensor& t) { return torch::sigmoid(t); });
      out = out + gate * shared;
    }
  }
  return out.view(shape);
}

}  // namespace nnterp::model
