#include <limits>

#include "model/blocks/blocks.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

namespace {

// gpt-oss: (up + 1) · g · sigmoid(1.702 · g) with g = min(gate, limit), up clamped to ±limit.
torch::Tensor clamped_swiglu(const torch::Tensor& gate, const torch::Tensor& up, double limit) {
  return elementwise(gate, [&](const torch::Tensor& g0) {
    auto g = g0.clamp_max(limit);
    return (up.to(g.scalar_type()).clamp(-limit, limit) + 1) * (g * torch::sigmoid(g * 1.702));
  });
}

}  // namespace

torch::Tensor mlp_hidden(MlpKind kind, const MlpSpec& spec, const MlpWeights& w, const torch::Tensor& x) {
  auto act = [&](const torch::Tensor& t) {
    return spec.activation == Activation::Xielu ? xielu(t, w.xielu) : activate(t, spec.activation);
  };
  if (kind == MlpKind::Plain) return act(dense(x, w.up_w, w.up_b));
  auto gate_up = dense(x, w.gate_up_w, w.gate_up_b);
  const int64_t inter = gate_up.size(-1) / 2;
  auto gate = spec.gate_up_interleaved ? gate_up.slice(-1, 0, 2 * inter, 2) : gate_up.narrow(-1, 0, inter);
  auto up = spec.gate_up_interleaved ? gate_up.slice(-1, 1, 2 * inter, 2) : gate_up.narrow(-1, inter, inter);
  return spec.swiglu_limit > 0 ? clamped_swiglu(gate, up, spec.swiglu_limit) : act(gate) * up;
}

torch::Tensor mlp(MlpKind kind, const MlpSpec& spec, const MlpWeights& w, const torch::Tensor& x) {
  return dense(mlp_hidden(kind, spec, w, x), w.down_w, w.down_b);
}

namespace {

torch::Tensor float32_dense(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto f32 = [](const torch::Tensor& t) { return t.defined() ? t.to(torch::kFloat32) : t; };
  return dense(f32(x), f32(w), f32(b));
}

// Scores of experts outside the `top_groups` best groups set to 0.0 (HF's masked_fill value).
torch::Tensor keep_top_groups(const MoeSpec& m, const torch::Tensor& choice) {
  const int64_t n = choice.size(0);
  auto grouped = choice.view({n, m.groups, m.num_experts / m.groups});
  auto group_scores = m.group_score == GroupScore::Max ? std::get<0>(grouped.max(-1))
                                                       : std::get<0>(grouped.topk(2, -1)).sum(-1);
  auto best = std::get<1>(group_scores.topk(m.top_groups, -1));
  auto keep = torch::zeros_like(group_scores, torch::kBool).scatter_(1, best, true);
  return grouped.masked_fill(keep.logical_not().unsqueeze(-1), 0.0).view({n, m.num_experts});
}

// PhiMoE's sparsemixer, as HF computes it in eval (see RouterScoring::Sparsemixer).
Routing sparsemixer_top2(const torch::Tensor& router_logits, double jitter) {
  const auto scores = router_logits.to(torch::kFloat32);
  const double inf = std::numeric_limits<double>::infinity();
  auto pick = [&](const torch::Tensor& candidates) {  // the experts already chosen are at -inf
    auto [best, index] = candidates.max(-1, true);
    auto far = (best - scores) / torch::max(scores.abs(), best) > 2 * jitter;
    return std::make_pair(index, torch::softmax(candidates.masked_fill(far, -inf), -1).gather(-1, index));
  };
  const auto [first, first_weight] = pick(scores);
  const auto [second, second_weight] = pick(scores.scatter(-1, first, -inf));
  return {torch::cat({first, second}, -1), torch::cat({first_weight, second_weight}, -1)};
}

}  // namespace

Routing route(const MoeSpec& m, const torch::Tensor& router_logits, const torch::Tensor& score_bias) {
  if (m.scoring == RouterScoring::Sparsemixer) return sparsemixer_top2(router_logits, m.jitter);
  auto scores = m.scoring == RouterScoring::Sigmoid ? torch::sigmoid(router_logits.to(torch::kFloat32))
                                                    : torch::softmax(router_logits, -1, torch::kFloat32);
  auto choice = score_bias.defined() ? scores + score_bias.to(torch::kFloat32).reshape({-1}) : scores;
  if (m.groups > 1) choice = keep_top_groups(m, choice);
  Routing r;
  r.experts = std::get<1>(choice.topk(m.top_k, -1));
  r.weights = scores.gather(-1, r.experts);
  if (m.normalize_top_k) {
    auto sum = r.weights.sum(-1, true);
    if (m.normalize_floor > 0) sum = sum.clamp_min(m.normalize_floor);
    if (m.normalize_epsilon > 0) sum = sum + m.normalize_epsilon;
    r.weights = r.weights / sum;
  }
  if (m.routed_scaling != 1.0) r.weights = r.weights * m.routed_scaling;
  return r;
}

namespace {

// An edited expert_indices must name experts that exist: an index out of range would route the
// token nowhere, silently.
void check_expert_indices(const torch::Tensor& experts, int64_t num_experts, int layer) {
  auto [lo, hi] = torch::aminmax(experts);
  if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= num_experts)
    throw Error(ErrorKind::InvalidArgument, PointId{Point::ExpertIndices, layer}.name(),
                "expert indices must lie in [0, " + std::to_string(num_experts) + "), got " +
                    std::to_string(lo.item<int64_t>()) + ".." + std::to_string(hi.item<int64_t>()),
                "write indices of existing experts (to ablate one, set its expert_weights entry to 0)");
}

}  // namespace

torch::Tensor moe(const MlpSpec& spec, const MoeWeights& w, const torch::Tensor& x, const Tap& tap, int layer) {
  const auto shape = x.sizes().vec();
  auto tokens = x.reshape({-1, x.size(-1)});  // [N, H]
  auto router_logits = spec.moe.router_in_float32 ? float32_dense(tokens, w.router_w, w.router_b)
                                                  : dense(tokens, w.router_w, w.router_b);
  tap(Point::RouterLogits, layer, router_logits);
  auto [top_experts, top_weights] = route(spec.moe, router_logits, w.score_bias);
  tap(Point::ExpertIndices, layer, top_experts);
  tap(Point::ExpertWeights, layer, top_weights);
  if (tap.hooks()) check_expert_indices(top_experts, spec.moe.num_experts, layer);
  // DeepSeek-V3 sums the weighted experts in float32 and rounds once; the others round each.
  const auto sum_dtype = spec.moe.sum_in_float32 ? torch::kFloat32 : x.scalar_type();
  top_weights = top_weights.to(sum_dtype);
  auto out = torch::zeros(tokens.sizes(), tokens.options().dtype(sum_dtype));
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
    auto routed = tokens.index_select(0, token_index);
    if (spec.moe.weight_on_input) {  // Llama-4: expert(x · w)
      out.index_add_(0, token_index, mlp(MlpKind::Gated, spec, w.experts[e], routed * weight).to(sum_dtype));
      continue;
    }
    out.index_add_(0, token_index, (mlp(MlpKind::Gated, spec, w.experts[e], routed) * weight).to(sum_dtype));
  }
  out = out.to(x.scalar_type());
  if (spec.moe.shared_expert) {
    auto shared = mlp(MlpKind::Gated, spec, w.shared, tokens);
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
