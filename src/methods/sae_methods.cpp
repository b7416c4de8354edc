// SAE methods (sae_methods.hpp): top features per token, attribution of a logit to features, and
// SAELens's evaluation (fraction of variance explained, L0, dead features, loss recovered).
#include "nnterp/sae_methods.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "methods/method_utils.hpp"
#include "nnterp/error.hpp"
#include "nnterp/params.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp {

namespace sae_methods_detail {  // named, not anonymous: the library is a unity build

std::string sae_name(const Sae& sae) {
  return sae.config().source.empty() ? std::string("sae") : sae.config().source.string();
}

// Where the SAE writes back: a transcoder's output point, else the point it reads.
PointId output_point(const Sae& sae, const PointId& input) {
  const auto& c = sae.config();
  return c.transcoder && c.output_point ? *c.output_point : input;
}

// Points where a decoder row is itself a write into the residual stream, which reaches the final
// norm unchanged: direct logit attribution is defined there only.
bool writes_residual_stream(const PointId& p) {
  return p.point == Point::LayerInput || p.point == Point::ResidMid || p.point == Point::LayerOutput;
}

// A point's activation as dictionaries read it: [B, T, width] (z's heads flattened, as SAELens
// reads hook_z).
torch::Tensor token_rows(const torch::Tensor& x) { return x.dim() == 4 ? x.flatten(2) : x; }

// A [B, T] mask broadcast against a point's activation [B, T, ...].
torch::Tensor over_point(const torch::Tensor& mask, const torch::Tensor& x) {
  auto m = mask.to(x.device());
  while (m.dim() < x.dim()) m = m.unsqueeze(-1);
  return m;
}

// The tokens statistics count, [B, T] bool: the prompts' own tokens, without the tokenizer's special
// ones when `exclude_special` (SAELens's default in its evals).
torch::Tensor counted_tokens(const StandardizedTransformer& model, const TokenBatch& batch, bool exclude_special) {
  auto counted = batch.attention_mask.ne(0).cpu();
  const Tokenizer* tok = model.tokenizer();
  if (!exclude_special || !tok) return counted;
  auto ids = batch.input_ids.to(torch::kCPU, torch::kInt64).contiguous();
  auto ia = ids.accessor<int64_t, 2>();
  auto ca = counted.accessor<bool, 2>();
  for (int64_t b = 0; b < ids.size(0); ++b)
    for (int64_t t = 0; t < ids.size(1); ++t)
      if (ca[b][t] && tok->is_special_id(ia[b][t])) ca[b][t] = false;
  return counted;
}

std::string token_string(const StandardizedTransformer& model, int64_t id) {
  const Tokenizer* tok = model.tokenizer();
  return tok ? tok->decode({id}, false) : "#" + std::to_string(id);
}

// One target per prompt, from one for all or one each (checked against the vocabulary).
std::vector<int64_t> per_prompt_targets(const StandardizedTransformer& model, const std::vector<int64_t>& targets, int64_t N) {
  if (targets.size() != 1 && static_cast<int64_t>(targets.size()) != N)
    throw Error(ErrorKind::InvalidArgument, "targets",
                std::to_string(targets.size()) + " target tokens for " + std::to_string(N) + " prompts",
                "give one target for every prompt, or one per prompt");
  for (int64_t t : targets)
    if (t < 0 || t >= model.vocab_size())
      throw Error(ErrorKind::InvalidArgument, "targets",
                  "token id " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(model.vocab_size()));
  std::vector<int64_t> out;
  for (int64_t i = 0; i < N; ++i) out.push_back(targets[targets.size() == 1 ? 0 : static_cast<size_t>(i)]);
  return out;
}

// The prompts as one left-padded batch (methods then take row ranges of it, so every batch of any
// size sees the same token ids).
TraceInput as_token_batch(const StandardizedTransformer& model, const TraceInput& prompts) {
  if (input_size(prompts) == 0) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given");
  return TraceInput(tokenize_left_padded(model, prompts));
}

// Each token's top k features: [B, T, k] indices (-1 where the activation is 0) and activations.
std::pair<torch::Tensor, torch::Tensor> top_of(const torch::Tensor& features, int64_t k, const torch::Tensor& real) {
  auto [values, indices] = features.to(torch::kCPU, torch::kFloat32).topk(k, -1);
  auto keep = values.ne(0).logical_and(real.unsqueeze(-1));
  return {indices.masked_fill(keep.logical_not(), -1), values.masked_fill(keep.logical_not(), 0.0)};
}

// The logit contribution of each active feature of one token through the direct path: its write
// into the stream (Sae::decode_delta, so scaled as decoding scales it) through the final norm
// frozen at `stream` [H] and the target's column of W_U. [d_sae] float64, 0 for inactive features.
torch::Tensor direct_logits(const StandardizedTransformer& model, const Sae& sae, const torch::Tensor& features,
                            const torch::Tensor& input, const torch::Tensor& stream, const torch::Tensor& unembed_column) {
  const int64_t F = features.size(0);
  auto dla = torch::zeros({F}, torch::kFloat64);
  auto active = features.ne(0).nonzero().squeeze(1);
  const int64_t n = active.size(0);
  if (n == 0) return dla;
  // One row per active feature: that feature alone, at its activation.
  auto delta = torch::zeros({n, F}, features.options());
  delta.index_put_({torch::arange(n), active}, features.index_select(0, active));
  const auto encoding = sae.encode_full(input.unsqueeze(0));  // per-token scale of the normalizations
  auto writes = sae.decode_delta(delta, encoding).to(torch::kCPU, torch::kFloat64);  // [n, H]
  auto linear = model.final_norm_linear(stream.unsqueeze(0), writes.unsqueeze(0)).squeeze(0);  // [n, H]
  dla.index_put_({active}, linear.matmul(unembed_column) * model.logit_scale());
  return dla;
}

// The sums behind SAELens's ExplainedVarianceCalculator and the sparsity statistics, pooled over batches.
struct ReconstructionStats {
  torch::Tensor sum_x;     // float64 [width]
  torch::Tensor fired;     // float64 [d_sae]: tokens each feature fired on
  double sum_squared_norm = 0, sum_squared_residual = 0, sum_l0 = 0;
  int64_t tokens = 0;

  // x, x_hat [n, width] and features [n, d_sae] of the counted tokens.
  void add(const torch::Tensor& x_in, const torch::Tensor& x_hat_in, const torch::Tensor& features) {
    auto x = x_in.to(torch::kCPU, torch::kFloat64), x_hat = x_hat_in.to(torch::kCPU, torch::kFloat64);
    auto on = features.ne(0).cpu();
    if (!sum_x.defined()) sum_x = torch::zeros({x.size(1)}, torch::kFloat64), fired = torch::zeros({on.size(1)}, torch::kFloat64);
    sum_x += x.sum(0);
    sum_squared_norm += x.pow(2).sum().item<double>();
    sum_squared_residual += (x - x_hat).pow(2).sum().item<double>();
    sum_l0 += on.sum().item<double>();
    fired += on.sum(0).to(torch::kFloat64);
    tokens += x.size(0);
  }
  double fve() const {
    const double n = static_cast<double>(tokens);
    const double variance = sum_squared_norm / n - (sum_x / n).pow(2).sum().item<double>();
    const double mse = sum_squared_residual / n;
    if (variance < 1e-10) return mse < 1e-10 ? 1.0 : 0.0;  // as SAELens: a constant input
    return 1.0 - mse / variance;
  }
};

// Summed next-token cross-entropy of the predictions from the counted tokens ([B, T] bool), and how many.
std::pair<double, int64_t> next_token_loss(const torch::Tensor& logits, const TokenBatch& batch, const torch::Tensor& counted) {
  const int64_t T = logits.size(1);
  if (T < 2) return {0.0, 0};
  auto log_probs = logits.narrow(1, 0, T - 1).to(torch::kCPU, torch::kFloat32).log_softmax(-1);
  auto next = batch.input_ids.narrow(1, 1, T - 1).to(torch::kCPU, torch::kInt64).unsqueeze(-1);
  auto losses = -log_probs.gather(-1, next).squeeze(-1).to(torch::kFloat64);  // [B, T-1]
  // With left padding a counted token's successor is a real token.
  auto from = counted.narrow(1, 0, T - 1);
  return {losses.masked_select(from).sum().item<double>(), from.sum().item<int64_t>()};
}

// The features of one batch at the SAE's point, [B, T, d_sae] (the forward stops there).
torch::Tensor batch_features(const StandardizedTransformer& model, const TokenBatch& batch, const Sae& sae) {
  torch::NoGradGuard no_grad;
  torch::Tensor features;
  model.trace(batch, [&](Trace& t) {
    features = t.sae(sae).detach().clone();
    t.stop();  // nothing after the SAE's point is needed
  });
  return features;
}

// One batch of sae_feature_attribution: the target's logit at each row's column, the features, and
// the logit's gradient with respect to them (all [B, T, d_sae]).
struct AttributionBatch {
  torch::Tensor logit;     // float64 [B]
  torch::Tensor input;     // [B, T, d_in]: what the SAE read
  torch::Tensor features;  // [B, T, d_sae]
  torch::Tensor grad;      // [B, T, d_sae]: ∂logit/∂features through the splice
  torch::Tensor stream;    // float64 [B, H]: the last layer's output at the column (direct only)
};

AttributionBatch attribution_batch(const StandardizedTransformer& model, const Sae& sae, const TokenBatch& batch,
                                   const PointId& point, const torch::Tensor& columns, const torch::Tensor& target, bool direct) {
  AttributionBatch a;
  const auto rows = torch::arange(batch.input_ids.size(0));
  auto at_columns = [&](const torch::Tensor& x) { return x.index({rows.to(x.device()), columns.to(x.device())}); };
  torch::Tensor written, written_grad;
  TraceOptions with_grad;
  with_grad.grad = true;
  model.trace(batch, [&](Trace& t) {
    a.input = token_rows(t.at(point)).detach().clone();
    a.features = t.sae(sae).detach().clone();
    // The written point as a leaf of the same value: its .grad is the logit's gradient there. (Nothing
    // before it requires grad, so the unedited splice leaves it as it is.)
    auto& out = t.at(output_point(sae, point));
    out = out.detach().clone().requires_grad_(true);
    written = out;
    if (direct) a.stream = at_columns(t.layers_output[-1].detach()).to(torch::kCPU, torch::kFloat64);
    const auto& logits = t.logits();
    auto picked = at_columns(logits).gather(1, target.to(logits.device()).unsqueeze(1)).squeeze(1);
    a.logit = picked.detach().to(torch::kCPU, torch::kFloat64);
    picked.sum().backward();
    written_grad = written.grad().defined() ? written.grad().detach() : torch::zeros_like(written);
  }, with_grad);
  // The keep-error splice writes x + decode_delta(f' − f): the logit's gradient with respect to the
  // features is the written point's gradient through decode_delta's linear map. Taken at f itself,
  // it covers the features that fire, the only ones whose activation × gradient is not 0.
  torch::AutoGradMode enable_grad(true);
  auto f = a.features.clone().requires_grad_(true);
  auto change = sae.decode_delta(f, sae.encode_full(a.input));
  (change * token_rows(written_grad).to(change.scalar_type())).sum().backward();
  a.grad = f.grad().defined() ? f.grad().detach() : torch::zeros_like(f);
  return a;
}

// sae_evaluate's sums over the batches.
struct Evaluation {
  ReconstructionStats stats;
  double loss_clean = 0, loss_sae = 0, loss_zero = 0;
  int64_t predictions = 0;
};

// One batch of sae_evaluate: the clean run (what the SAE reads and what it replaces), the run with
// the reconstruction spliced in, and the run with the point zero-ablated.
void evaluate_batch(const StandardizedTransformer& model, const Sae& sae, const PointId& in, const TokenBatch& batch,
                    bool exclude_special, Evaluation& totals) {
  const PointId out = output_point(sae, in);
  const auto counted = counted_tokens(model, batch, exclude_special);
  torch::Tensor x_in, x_out;
  auto clean = model.trace(batch, [&](Trace& t) {
    x_in = t.at(in).detach().clone();
    x_out = out == in ? x_in : t.at(out).detach().clone();
  });
  const auto rows_in = token_rows(x_in);
  const auto features = sae.encode(rows_in);
  const auto reconstruction = sae.decode(features, rows_in).to(x_out.scalar_type()).reshape(x_out.sizes());
  const auto on = counted.to(x_out.device());
  totals.stats.add(token_rows(x_out).index({on}), token_rows(reconstruction).index({on}),
                   features.index({on.to(features.device())}));
  // As SAELens's replacement hook: the counted tokens only.
  auto with_sae = model.trace(batch, [&](Trace& t) {
    auto& x = t.at(out);
    x = torch::where(over_point(counted, x), reconstruction.to(x.device()), x);
  });
  // As SAELens's zero_ablate_hook: every position.
  auto zeroed = model.trace(batch, [&](Trace& t) {
    auto& x = t.at(out);
    x = torch::zeros_like(x);
  });
  const auto [clean_sum, n] = next_token_loss(clean, batch, counted);
  totals.loss_clean += clean_sum;
  totals.loss_sae += next_token_loss(with_sae, batch, counted).first;
  totals.loss_zero += next_token_loss(zeroed, batch, counted).first;
  totals.predictions += n;
}

}  // namespace sae_methods_detail

PointId sae_point(const StandardizedTransformer& model, const Sae& sae) {
  const auto& c = sae.config();
  if (!c.input_point)
    throw Error(ErrorKind::InvalidArgument, sae_methods_detail::sae_name(sae),
                "names no point of the model to read" +
                    (c.hook_name.empty() ? std::string() : " (hook '" + c.hook_name + "')"),
                "give the point: SaeLoadOptions::point, or `--point layers.{i}.output` on the command line");
  sae.check_fits(model);
  return *c.input_point;
}

SaeTopFeatures sae_top_features(const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae,
                                int64_t k, int64_t batch_size) {
  methods_detail::check_batch_size(batch_size);
  if (k < 1) throw Error(ErrorKind::InvalidArgument, "k", "must be at least 1, got " + std::to_string(k));
  sae_point(model, sae);
  const auto all = sae_methods_detail::as_token_batch(model, prompts);
  const int64_t N = input_size(all), T = all.tokens->input_ids.size(1), kk = std::min(k, sae.d_sae());
  SaeTopFeatures r;
  r.input_ids = all.tokens->input_ids.to(torch::kCPU, torch::kInt64);
  r.attention_mask = all.tokens->attention_mask.to(torch::kCPU, torch::kInt64);
  r.indices = torch::full({N, T, kk}, -1, torch::kInt64);
  r.activations = torch::zeros({N, T, kk}, torch::kFloat32);
  torch::NoGradGuard no_grad;
  for (int64_t b = 0; b < N; b += batch_size) {
    const int64_t e = std::min(N, b + batch_size);
    auto batch = tokenize_left_padded(model, input_slice(all, b, e));
    const auto features = sae_methods_detail::batch_features(model, batch, sae);
    auto [indices, values] = sae_methods_detail::top_of(features, kk, batch.attention_mask.ne(0).cpu());
    const int64_t Tb = indices.size(1);  // columns [T - Tb, T) of the full batch (left padding)
    r.indices.narrow(0, b, e - b).narrow(1, T - Tb, Tb).copy_(indices);
    r.activations.narrow(0, b, e - b).narrow(1, T - Tb, Tb).copy_(values);
  }
  auto ids = r.input_ids.accessor<int64_t, 2>();
  auto mask = r.attention_mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < N; ++i) {
    r.tokens.emplace_back();
    for (int64_t t = 0; t < T; ++t)
      if (mask[i][t]) r.tokens.back().push_back(sae_methods_detail::token_string(model, ids[i][t]));
  }
  return r;
}

torch::Tensor sae_feature_activations(const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae,
                                      const std::vector<int64_t>& features, int64_t batch_size) {
  methods_detail::check_batch_size(batch_size);
  sae_point(model, sae);
  for (int64_t f : features)
    if (f < 0 || f >= sae.d_sae())
      throw Error(ErrorKind::InvalidArgument, "features",
                  "feature " + std::to_string(f) + " is outside the SAE's " + std::to_string(sae.d_sae()) + " features");
  const auto all = sae_methods_detail::as_token_batch(model, prompts);
  const int64_t N = input_size(all), T = all.tokens->input_ids.size(1);
  const auto selected = torch::tensor(features, torch::kInt64);
  torch::Tensor out;
  for (int64_t b = 0; b < N; b += batch_size) {
    const int64_t e = std::min(N, b + batch_size);
    auto batch = tokenize_left_padded(model, input_slice(all, b, e));
    auto f = sae_methods_detail::batch_features(model, batch, sae);
    if (!features.empty()) f = f.index_select(-1, selected.to(f.device()));
    f = f.to(torch::kCPU, torch::kFloat32).masked_fill(batch.attention_mask.eq(0).cpu().unsqueeze(-1), 0.0);
    if (!out.defined()) out = torch::zeros({N, T, f.size(-1)}, torch::kFloat32);
    out.narrow(0, b, e - b).narrow(1, T - f.size(1), f.size(1)).copy_(f);
  }
  return out;
}

SaeAttribution sae_feature_attribution(const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae,
                                       const std::vector<int64_t>& targets, const SaeAttributionOptions& options) {
  methods_detail::check_batch_size(options.batch_size);
  if (options.top < 0) throw Error(ErrorKind::InvalidArgument, "SaeAttributionOptions::top", "must be at least 0");
  const PointId point = sae_point(model, sae);
  const bool direct = sae_methods_detail::writes_residual_stream(sae_methods_detail::output_point(sae, point));
  const auto all = sae_methods_detail::as_token_batch(model, prompts);
  const int64_t N = input_size(all);
  SaeAttribution r;
  r.targets = sae_methods_detail::per_prompt_targets(model, targets, N);
  const auto w_u = direct ? param(model, Param::W_U).to(torch::kCPU, torch::kFloat64) : torch::Tensor();  // [H, V]
  std::vector<torch::Tensor> logits, activations, attribution, at_idx, dla;
  TraceOptions with_grad;
  with_grad.grad = true;
  for (int64_t b = 0; b < N; b += options.batch_size) {
    const int64_t e = std::min(N, b + options.batch_size);
    auto batch = tokenize_left_padded(model, input_slice(all, b, e));
    const int64_t B = e - b;
    auto rows = torch::arange(B);
    auto columns = token_positions(batch.attention_mask, options.idx, "SaeAttributionOptions::idx");
    auto target = torch::tensor(std::vector<int64_t>(r.targets.begin() + b, r.targets.begin() + e), torch::kInt64);
    const auto a = sae_methods_detail::attribution_batch(model, sae, batch, point, columns, target, direct);
    const auto& f = a.features;
    auto real = batch.attention_mask.ne(0).to(f.device()).unsqueeze(-1);
    auto per_token = (f.to(torch::kFloat64) * a.grad.to(torch::kFloat64)).masked_fill(real.logical_not(), 0.0).cpu();
    logits.push_back(a.logit);
    attribution.push_back(per_token.sum(1));
    at_idx.push_back(per_token.index({rows, columns}));
    auto f_idx = f.index({rows.to(f.device()), columns.to(f.device())});
    activations.push_back(f_idx.to(torch::kCPU, torch::kFloat32));
    if (direct) {
      auto d = torch::zeros({B, sae.d_sae()}, torch::kFloat64);
      for (int64_t i = 0; i < B; ++i)
        d[i] = sae_methods_detail::direct_logits(model, sae, f_idx[i], a.input[i][columns[i].item<int64_t>()], a.stream[i],
                                                 w_u.select(1, target[i].item<int64_t>()));
      dla.push_back(d);
    }
  }
  r.logits = torch::cat(logits);
  r.activations = torch::cat(activations);
  r.attribution = torch::cat(attribution);
  r.attribution_at_idx = torch::cat(at_idx);
  if (direct) r.dla = torch::cat(dla);
  r.top_features = std::get<1>(r.attribution.abs().topk(std::min(options.top, sae.d_sae()), -1));
  return r;
}

SaeEvaluation sae_evaluate(const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae,
                           const SaeEvalOptions& options) {
  methods_detail::check_batch_size(options.batch_size, "SaeEvalOptions::batch_size");
  const PointId in = sae_point(model, sae);
  const auto all = sae_methods_detail::as_token_batch(model, prompts);
  const int64_t N = input_size(all);
  sae_methods_detail::Evaluation totals;
  torch::NoGradGuard no_grad;
  for (int64_t b = 0; b < N; b += options.batch_size) {
    auto batch = tokenize_left_padded(model, input_slice(all, b, std::min(N, b + options.batch_size)));
    sae_methods_detail::evaluate_batch(model, sae, in, batch, options.exclude_special_tokens, totals);
    if (options.on_batch) options.on_batch(std::min(N, b + options.batch_size));
  }
  const auto& stats = totals.stats;
  if (stats.tokens == 0)
    throw Error(ErrorKind::InvalidArgument, "prompts", "no token to evaluate the SAE on",
                options.exclude_special_tokens ? "every token is a special token; give longer prompts" : "");
  SaeEvaluation r;
  r.tokens = stats.tokens;
  r.predictions = totals.predictions;
  r.fve = stats.fve();
  r.mse = stats.sum_squared_residual / static_cast<double>(stats.tokens);
  r.l0 = stats.sum_l0 / static_cast<double>(stats.tokens);
  r.feature_density = stats.fired / static_cast<double>(stats.tokens);
  r.dead_fraction = stats.fired.eq(0).sum().item<double>() / static_cast<double>(sae.d_sae());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double P = static_cast<double>(totals.predictions);
  r.ce_clean = totals.predictions ? totals.loss_clean / P : nan;
  r.ce_sae = totals.predictions ? totals.loss_sae / P : nan;
  r.ce_zero = totals.predictions ? totals.loss_zero / P : nan;
  r.loss_recovered = (r.ce_zero - r.ce_sae) / (r.ce_zero - r.ce_clean);
  return r;
}

}  // namespace nnterp
