// Activation patching over a grid of layers × (heads ×) positions, several patches per forward pass.
#include <algorithm>
#include <map>

#include "core/tensor_text.hpp"
#include "methods/method_utils.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/patching.hpp"

namespace nnterp {


PatchMetric logit_diff_metric(int64_t correct, int64_t incorrect) {
  return [correct, incorrect](const torch::Tensor& last) {
    const int64_t V = last.size(-1);
    for (int64_t id : {correct, incorrect})
      if (id < 0 || id >= V)
        throw Error(ErrorKind::InvalidArgument, "logit_diff_metric", "token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(V));
    return (last.select(-1, correct).to(torch::kFloat64) - last.select(-1, incorrect).to(torch::kFloat64)).mean();
  };
}

PatchMetric logit_diff_metric(const torch::Tensor& correct, const torch::Tensor& incorrect) {
  if (!correct.defined() || !incorrect.defined() || correct.dim() != 1 || correct.sizes() != incorrect.sizes())
    throw Error(ErrorKind::Shape, "logit_diff_metric", "expected two int64 [batch] tensors of answer tokens, got " +
                                                          tensor_text(correct) + " and " + tensor_text(incorrect));
  auto c = correct.to(torch::kInt64).unsqueeze(1), w = incorrect.to(torch::kInt64).unsqueeze(1);
  return [c, w](const torch::Tensor& last) {
    if (last.size(0) != c.size(0))
      throw Error(ErrorKind::Shape, "logit_diff_metric", "has answers for " + std::to_string(c.size(0)) + " prompts, the batch has " +
                                                             std::to_string(last.size(0)));
    auto l = last.to(torch::kFloat64);
    return (l.gather(1, c.to(l.device())) - l.gather(1, w.to(l.device()))).mean();
  };
}

torch::Tensor PatchingResult::normalized() const {
  const double denom = clean_metric - corrupted_metric;
  if (denom == 0.0)
    throw Error(ErrorKind::InvalidArgument, "PatchingResult::normalized", "the clean and corrupted metrics are equal (" +
                                                                              std::to_string(clean_metric) + "): nothing to normalize by");
  return (values - corrupted_metric) / denom;
}

namespace {

bool is_head_point(Point p) {
  return p == Point::Query || p == Point::Key || p == Point::Value || p == Point::AttnProbs || p == Point::Z;
}
// Where the heads are in a [B, ...] activation: [B, heads, T, ·], or z's [B, T, heads, d_v].
int64_t head_dim_of(Point p) { return p == Point::Z ? 2 : 1; }

struct PatchJob {
  int layer;
  int64_t head = -1, position = -1;
};

// What both kinds of patching check and prepare: the options, the two batches (same shape and
// padding), the layers and the position columns.
struct PatchSetup {
  TokenBatch clean, corrupted;
  bool heads = false, per_head = false, per_position = true;
  int64_t B = 0, T = 0;
};

PatchSetup prepare_patching(const StandardizedTransformer& model, const TraceInput& clean, const TraceInput& corrupted,
                            const PatchingOptions& options, PatchingResult& result) {
  methods_detail::check_batch_size(options.batch_size);
  if (!options.metric)
    throw Error(ErrorKind::InvalidArgument, "PatchingOptions::metric", "no metric given",
                "e.g. options.metric = logit_diff_metric(correct_token, incorrect_token)");
  PatchSetup s;
  s.heads = is_head_point(options.point);
  if (!s.heads && !methods_detail::is_residual_shaped(options.point))
    throw Error(ErrorKind::InvalidArgument, "PatchingOptions::point",
                std::string("cannot patch '") + point_info(options.point).pattern + "'",
                "patch layers.{i}.input/output, attn_output, mlp_output (or attn_input, mlp_input, resid_mid), or per head q, "
                "k, v, attn_probs, z");
  result.layers = resolve_layers(model, options.layers);
  s.clean = tokenize_left_padded(model, clean);
  s.corrupted = tokenize_left_padded(model, corrupted);
  if (s.clean.input_ids.sizes() != s.corrupted.input_ids.sizes() || !torch::equal(s.clean.attention_mask, s.corrupted.attention_mask))
    throw Error(ErrorKind::InvalidArgument, "clean and corrupted prompts",
                "tokenize to different shapes or padding (" + shape_text(s.clean.input_ids.sizes()) + " vs " +
                    shape_text(s.corrupted.input_ids.sizes()) + ")",
                "activation patching compares positions one to one: use prompts with the same number of tokens");
  s.B = s.clean.input_ids.size(0);
  s.T = s.clean.input_ids.size(1);
  s.per_position = options.per_position;
  s.per_head = s.heads && options.per_head;
  if (s.per_position) {
    if (options.positions.empty()) {
      for (int64_t p = 0; p < s.T; ++p) result.positions.push_back(p);
    } else {
      for (int64_t p : options.positions) {
        const int64_t r = p < 0 ? p + s.T : p;
        if (r < 0 || r >= s.T)
          throw Error(ErrorKind::InvalidArgument, "PatchingOptions::positions",
                      "position " + std::to_string(p) + " is outside the " + std::to_string(s.T) + " columns of the batch");
        result.positions.push_back(r);
      }
    }
  }
  return s;
}

// The grid's shape and dimension names: layers (× heads) (× positions).
std::vector<int64_t> grid_shape(const PatchSetup& s, PatchingResult& result, int64_t heads) {
  std::vector<int64_t> shape{static_cast<int64_t>(result.layers.size())};
  result.dims = {"layer"};
  if (s.per_head) {
    shape.push_back(heads);
    result.dims.push_back("head");
  }
  if (s.per_position) {
    shape.push_back(static_cast<int64_t>(result.positions.size()));
    result.dims.push_back("position");
  }
  return shape;
}

// The clean activations at `point` of `layers` (in forward order), and the clean logits.
torch::Tensor clean_activations(const StandardizedTransformer& model, const TokenBatch& clean, Point point,
                                const std::vector<int>& layers, std::map<int, torch::Tensor>& out) {
  torch::NoGradGuard no_grad;
  return model.trace(clean, [&](Trace& t) {
    for (int l : methods_detail::forward_order(layers)) out[l] = t.at(PointId{point, l}).clone();
  });
}

}  // namespace

PatchingResult activation_patching(const StandardizedTransformer& model, const TraceInput& clean, const TraceInput& corrupted,
                                   const PatchingOptions& options) {
  if (options.method == PatchMethod::Attribution) return attribution_patching(model, clean, corrupted, options);
  PatchingResult result;
  const PatchSetup s = prepare_patching(model, clean, corrupted, options, result);
  const Point point = options.point;
  const bool heads = s.heads, per_head = s.per_head, per_position = s.per_position;
  const auto& xb = s.corrupted;
  const int64_t B = s.B;
  torch::NoGradGuard no_grad;

  // The clean activations and metrics.
  std::map<int, torch::Tensor> cache;
  auto clean_logits = clean_activations(model, s.clean, point, result.layers, cache);
  result.clean_metric = options.metric(clean_logits.select(1, -1)).item<double>();
  result.corrupted_metric = options.metric(model.forward(xb.input_ids, xb.attention_mask).select(1, -1)).item<double>();
  const int64_t head_dim = head_dim_of(point);
  const int64_t H = heads ? cache.begin()->second.size(head_dim) : 1;

  std::vector<PatchJob> jobs;
  for (int l : result.layers)
    for (int64_t h = 0; h < (per_head ? H : 1); ++h) {
      if (per_position) {
        for (int64_t p : result.positions) jobs.push_back({l, per_head ? h : -1, p});
      } else {
        jobs.push_back({l, per_head ? h : -1, -1});
      }
    }

  std::vector<double> values(jobs.size());
  const int64_t group = std::max<int64_t>(1, options.batch_size / B);
  for (size_t g0 = 0; g0 < jobs.size(); g0 += static_cast<size_t>(group)) {
    const size_t g1 = std::min(jobs.size(), g0 + static_cast<size_t>(group));
    const int64_t k = static_cast<int64_t>(g1 - g0);
    TokenBatch batch{xb.input_ids.repeat({k, 1}), xb.attention_mask.repeat({k, 1})};
    std::vector<size_t> by_layer(g1 - g0);
    for (size_t j = 0; j < by_layer.size(); ++j) by_layer[j] = g0 + j;
    std::stable_sort(by_layer.begin(), by_layer.end(), [&](size_t a, size_t b) { return jobs[a].layer < jobs[b].layer; });
    auto logits = model.trace(batch, [&](Trace& t) {
      for (size_t j : by_layer) {
        const auto& job = jobs[j];
        auto& live = t.at(PointId{point, job.layer});
        auto rows = live.narrow(0, static_cast<int64_t>(j - g0) * B, B);  // a view: edits reach the forward
        auto src = cache[job.layer].to(live.device());
        int64_t pos_dim = heads && head_dim == 1 ? 2 : 1;
        if (job.head >= 0) {
          rows = rows.select(head_dim, job.head);
          src = src.select(head_dim, job.head);
          if (head_dim < pos_dim) --pos_dim;
        }
        if (job.position >= 0) {
          rows = rows.select(pos_dim, job.position);
          src = src.select(pos_dim, job.position);
        }
        rows.copy_(src);
      }
    });
    auto last = logits.select(1, -1);
    for (size_t j = g0; j < g1; ++j)
      values[j] = options.metric(last.narrow(0, static_cast<int64_t>(j - g0) * B, B)).item<double>();
  }

  result.values = torch::tensor(values, torch::kFloat64).reshape(grid_shape(s, result, H));
  return result;
}

// Attribution patching: the first-order estimate of each patch's effect, from one clean forward
// and one corrupted forward + backward: metric(corrupted with a ← a_clean) ≈ metric(corrupted) +
// (a_clean − a_corrupted) · ∂metric/∂a, the product summed over the patched slice (the batch, the
// features, and the heads or positions not on the grid).
PatchingResult attribution_patching(const StandardizedTransformer& model, const TraceInput& clean, const TraceInput& corrupted,
                                    const PatchingOptions& options) {
  PatchingResult result;
  const PatchSetup s = prepare_patching(model, clean, corrupted, options, result);
  const Point point = options.point;
  std::map<int, torch::Tensor> clean_acts, corrupted_acts;
  auto clean_logits = clean_activations(model, s.clean, point, result.layers, clean_acts);
  result.clean_metric = options.metric(clean_logits.select(1, -1)).item<double>();
  TraceOptions with_grad;
  with_grad.grad = true;
  std::map<int, torch::Tensor> grads;
  model.trace(s.corrupted, [&](Trace& t) {
    // Everything after the embedding depends on it: each point read is then a non-leaf the trace
    // keeps the .grad of.
    t.token_embeddings().requires_grad_(true);
    for (int l : methods_detail::forward_order(result.layers)) corrupted_acts[l] = t.at(PointId{point, l});
    auto metric = options.metric(t.logits().select(1, -1));
    result.corrupted_metric = metric.item<double>();
    metric.backward();
    for (auto& [l, a] : corrupted_acts) grads[l] = a.grad().defined() ? a.grad() : torch::zeros_like(a);
  }, with_grad);
  torch::NoGradGuard no_grad;
  int64_t H = 1;
  std::vector<torch::Tensor> rows;
  for (int l : result.layers) {
    // [B, T, features] or [B, heads, T, features] (z: [B, T, heads, d_v]) → [T] or [heads, T]
    auto effect = ((clean_acts[l].to(torch::kFloat64) - corrupted_acts[l].detach().to(torch::kFloat64)) *
                   grads[l].to(torch::kFloat64)).sum(-1).sum(0);
    if (point == Point::Z) effect = effect.t();
    if (s.heads) H = effect.size(0);
    if (s.heads && !s.per_head) effect = effect.sum(0);
    if (s.per_position)
      effect = effect.index_select(-1, torch::tensor(result.positions, torch::kInt64).to(effect.device()));
    else
      effect = effect.sum(-1);
    rows.push_back(effect.cpu() + result.corrupted_metric);
  }
  result.values = torch::stack(rows).reshape(grid_shape(s, result, H));
  return result;
}

}  // namespace nnterp
