// Direct logit attribution: a target's logit split over the writes into the residual stream.
#include <algorithm>

#include "methods/method_utils.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/params.hpp"

namespace nnterp {

namespace {

// The residual stream's parts at one token of each row, [B, parts, H] float64, with their names:
// the embedding, then per layer its attention's and its MLP's increments.
torch::Tensor stream_parts(const StandardizedTransformer& model, const TokenBatch& batch, const torch::Tensor& columns,
                           std::vector<std::string>* names, torch::Tensor& last_logits) {
  const bool sequential = model.has_point({Point::ResidMid, 0});
  auto rows = torch::arange(batch.input_ids.size(0));
  auto at_token = [&](const torch::Tensor& x) { return x.index({rows, columns.to(x.device())}).to(torch::kFloat64).cpu(); };
  std::vector<torch::Tensor> parts;
  torch::NoGradGuard no_grad;
  auto logits = model.trace(batch, [&](Trace& t) {
    auto before = at_token(t.layers_input[0]);
    parts.push_back(before);
    for (int l = 0; l < t.num_layers(); ++l) {
      auto mid = sequential ? at_token(t.resid_mid[l]) : before + at_token(t.attentions_output[l]);
      auto after = at_token(t.layers_output[l]);
      parts.push_back(mid - before);
      parts.push_back(after - mid);
      before = after;
    }
  });
  last_logits = logits.index({rows, columns.to(logits.device())}).to(torch::kFloat64).cpu();
  if (names && names->empty()) {
    names->push_back("embed");
    for (int l = 0; l < model.num_layers(); ++l) {
      names->push_back("layers." + std::to_string(l) + ".attn");
      names->push_back("layers." + std::to_string(l) + ".mlp");
    }
  }
  return torch::stack(parts, 1);
}

}  // namespace

torch::Tensor head_results(const StandardizedTransformer& model, int layer, const torch::Tensor& z) {
  const auto w_o = param(model, Param::W_O, layer);  // [heads, d_v, hidden]; an Error naming it where absent
  if (!z.defined() || z.dim() != 4 || z.size(2) != w_o.size(0) || z.size(3) != w_o.size(1))
    throw Error(ErrorKind::Shape, "z", "expected layers." + std::to_string(layer) + ".z [B, T, " + std::to_string(w_o.size(0)) +
                                           ", " + std::to_string(w_o.size(1)) + "]");
  return torch::einsum("bthd,hdo->btho", {z, w_o.to(z.device(), z.scalar_type())});
}

DlaResult direct_logit_attribution(const StandardizedTransformer& model, const TraceInput& prompts,
                                   const std::vector<int64_t>& targets, const DlaOptions& options) {
  methods_detail::check_batch_size(options.batch_size);
  const int64_t N = input_size(prompts), V = model.vocab_size();
  if (N == 0) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given");
  if (targets.size() != 1 && static_cast<int64_t>(targets.size()) != N)
    throw Error(ErrorKind::InvalidArgument, "targets",
                std::to_string(targets.size()) + " target tokens for " + std::to_string(N) + " prompts",
                "give one target for every prompt, or one per prompt");
  for (int64_t t : targets)
    if (t < 0 || t >= V)
      throw Error(ErrorKind::InvalidArgument, "targets", "token id " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(V));
  DlaResult result;
  for (int64_t i = 0; i < N; ++i) result.targets.push_back(targets[targets.size() == 1 ? 0 : static_cast<size_t>(i)]);
  const auto w_u = param(model, Param::W_U).to(torch::kFloat64).cpu();  // [H, V]
  const auto b_u = has_param(model, Param::b_U) ? param(model, Param::b_U).to(torch::kFloat64).cpu() : torch::zeros({V}, torch::kFloat64);
  const double scale = model.logit_scale();
  std::vector<torch::Tensor> values, model_logits;
  for (int64_t b = 0; b < N; b += options.batch_size) {
    const int64_t e = std::min(N, b + options.batch_size);
    auto batch = tokenize_left_padded(model, input_slice(prompts, b, e));
    auto columns = token_positions(batch.attention_mask, options.idx, "DlaOptions::idx");
    torch::Tensor last_logits;
    auto parts = stream_parts(model, batch, columns, &result.components, last_logits);  // [B, n, H]
    auto stream = parts.sum(1);                                                          // the last layer's output
    auto linear = model.final_norm_linear(stream, parts);                                // [B, n, H]
    auto normed = model.final_norm(stream.to(model.dtype())).to(torch::kFloat64).cpu();
    auto bias_part = normed - linear.sum(1);  // the final norm's bias (0 without one), up to rounding
    auto target = torch::tensor(std::vector<int64_t>(result.targets.begin() + b, result.targets.begin() + e), torch::kInt64);
    auto directions = w_u.index_select(1, target).t();  // [B, H]: each row's target column of W_U
    auto per_part = (linear * directions.unsqueeze(1)).sum(-1) * scale;
    auto bias = ((bias_part * directions).sum(-1) + b_u.index_select(0, target)) * scale;
    values.push_back(torch::cat({per_part, bias.unsqueeze(1)}, 1));
    model_logits.push_back(last_logits.gather(1, target.unsqueeze(1)).squeeze(1));
  }
  result.components.push_back("bias");
  result.values = torch::cat(values, 0);
  result.logits = result.values.sum(1);
  result.model_logits = torch::cat(model_logits, 0);
  return result;
}

}  // namespace nnterp
