// Activation patching over a grid of layers × (heads ×) positions, several patches per forward pass.
#include <algorithm>

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

bool is_head_point(Point p) { return p == Point::Query || p == Point::Key || p == Point::Value || p == Point::AttnProbs; }

struct PatchJob {
  int layer;
  int64_t head = -1, position = -1;
};

}  // namespace

PatchingResult activation_patching(const StandardizedTransformer& model, const TraceInput& clean, const TraceInput& corrupted,
                                   const PatchingOptions& options) {
  methods_detail::check_batch_size(options.batch_size);
  if (!options.metric)
    throw Error(ErrorKind::InvalidArgument, "PatchingOptions::metric", "no metric given",
                "e.g. options.metric = logit_diff_metric(correct_token, incorrect_token)");
  const Point point = options.point;
  const bool heads = is_head_point(point);
  if (!heads && !methods_detail::is_residual_shaped(point))
    throw Error(ErrorKind::InvalidArgument, "PatchingOptions::point",
                std::string("cannot patch '") + point_info(point).pattern + "'",
                "patch layers.{i}.input/output, attn_output, mlp_output (or attn_input, mlp_input), or per head q, k, v, attn_probs");
  torch::NoGradGuard no_grad;
  PatchingResult result;
  result.layers = resolve_layers(model, options.layers);
  auto cb = tokenize_left_padded(model, clean);
  auto xb = tokenize_left_padded(model, corrupted);
  if (cb.input_ids.sizes() != xb.input_ids.sizes() || !torch::equal(cb.attention_mask, xb.attention_mask))
    throw Error(ErrorKind::InvalidArgument, "clean and corrupted prompts",
                "tokenize to different shapes or padding (" + shape_text(cb.input_ids.sizes()) + " vs " +
                    shape_text(xb.input_ids.sizes()) + ")",
                "activation patching compares positions one to one: use prompts with the same number of tokens");
  const int64_t B = cb.input_ids.size(0), T = cb.input_ids.size(1);
  const bool per_position = options.per_position;
  const bool per_head = heads && options.per_head;
  if (per_position) {
    if (options.positions.empty()) {
      for (int64_t p = 0; p < T; ++p) result.positions.push_back(p);
    } else {
      for (int64_t p : options.positions) {
        const int64_t r = p < 0 ? p + T : p;
        if (r < 0 || r >= T)
          throw Error(ErrorKind::InvalidArgument, "PatchingOptions::positions",
                      "position " + std::to_string(p) + " is outside the " + std::to_string(T) + " columns of the batch");
        result.positions.push_back(r);
      }
    }
  }

  // The clean activations and metrics.
  const std::vector<int> order = methods_detail::forward_order(result.layers);
  std::map<int, torch::Tensor> cache;
  auto clean_logits = model.trace(cb, [&](Trace& t) {
    for (int l : order) cache[l] = t.at(PointId{point, l}).clone();
  });
  result.clean_metric = options.metric(clean_logits.select(1, -1)).item<double>();
  result.corrupted_metric = options.metric(model.forward(xb.input_ids, xb.attention_mask).select(1, -1)).item<double>();
  const int64_t H = heads ? cache.begin()->second.size(1) : 1;

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
        if (job.head >= 0) {
          rows = rows.select(1, job.head);
          src = src.select(1, job.head);
        }
        const int64_t pos_dim = heads ? (job.head >= 0 ? 1 : 2) : 1;
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

  std::vector<int64_t> shape{static_cast<int64_t>(result.layers.size())};
  result.dims = {"layer"};
  if (per_head) {
    shape.push_back(H);
    result.dims.push_back("head");
  }
  if (per_position) {
    shape.push_back(static_cast<int64_t>(result.positions.size()));
    result.dims.push_back("position");
  }
  result.values = torch::tensor(values, torch::kFloat64).reshape(shape);
  return result;
}

}  // namespace nnterp
