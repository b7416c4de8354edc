// Inputs and batching shared by the methods; get_token_activations, batched collection in
// memory, steering vectors from data.
#include <algorithm>

#include "core/tensor_text.hpp"
#include "methods/method_utils.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp {


std::vector<int> resolve_layers(const StandardizedTransformer& model, const std::vector<int>& layers) {
  const int L = static_cast<int>(model.num_layers());
  std::vector<int> out;
  if (layers.empty()) {
    for (int i = 0; i < L; ++i) out.push_back(i);
    return out;
  }
  for (int l : layers) {
    int r = l < 0 ? l + L : l;
    if (r < 0 || r >= L)
      throw Error(ErrorKind::InvalidArgument, "layers", "layer " + std::to_string(l) + " is out of range: the model has " +
                                                            std::to_string(L) + " layers (0.." + std::to_string(L - 1) +
                                                            ", or -1..-" + std::to_string(L) + " from the end)");
    out.push_back(r);
  }
  return out;
}

TokenBatch left_pad(const std::vector<std::vector<int64_t>>& rows, int64_t pad_id) {
  if (rows.empty()) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given");
  size_t T = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].empty()) throw Error(ErrorKind::InvalidArgument, "prompt " + std::to_string(i), "has no token");
    T = std::max(T, rows[i].size());
  }
  const auto B = static_cast<int64_t>(rows.size());
  auto ids = torch::full({B, static_cast<int64_t>(T)}, pad_id, torch::kInt64);
  auto mask = torch::zeros({B, static_cast<int64_t>(T)}, torch::kInt64);
  auto ia = ids.accessor<int64_t, 2>();
  auto ma = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& r = rows[static_cast<size_t>(b)];
    const size_t off = T - r.size();
    for (size_t t = 0; t < r.size(); ++t) {
      ia[b][static_cast<int64_t>(off + t)] = r[t];
      ma[b][static_cast<int64_t>(off + t)] = 1;
    }
  }
  return TokenBatch{ids, mask};
}

int64_t input_size(const TraceInput& input) {
  if (input.tokens) return input.tokens->input_ids.defined() ? input.tokens->input_ids.size(0) : 0;
  return static_cast<int64_t>(input.prompts.size());
}

TraceInput input_slice(const TraceInput& input, int64_t begin, int64_t end) {
  const int64_t n = input_size(input);
  begin = std::clamp<int64_t>(begin, 0, n);
  end = std::clamp<int64_t>(end, begin, n);
  if (!input.tokens)
    return TraceInput(std::vector<std::string>(input.prompts.begin() + begin, input.prompts.begin() + end));
  TokenBatch b;
  b.input_ids = input.tokens->input_ids.narrow(0, begin, end - begin);
  if (input.tokens->attention_mask.defined()) {
    b.attention_mask = input.tokens->attention_mask.narrow(0, begin, end - begin);
    // Drop the leading columns that are padding in every row left (as if tokenized alone).
    if (end > begin) {
      auto any = b.attention_mask.ne(0).any(0);  // [T]
      auto nz = any.nonzero();
      if (nz.numel() > 0) {
        int64_t first = nz[0][0].item<int64_t>();
        if (first > 0) {
          b.input_ids = b.input_ids.narrow(1, first, b.input_ids.size(1) - first);
          b.attention_mask = b.attention_mask.narrow(1, first, b.attention_mask.size(1) - first);
        }
      }
    }
  }
  return TraceInput(b);
}

TokenBatch tokenize_left_padded(const StandardizedTransformer& model, const TraceInput& input) {
  if (input_size(input) == 0) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given");
  TokenBatch batch = model.tokenize(input);
  if (batch.input_ids.scalar_type() != torch::kInt64)
    throw Error(ErrorKind::Shape, "input_ids", "expected int64 token ids, got " + tensor_text(batch.input_ids));
  batch.attention_mask = batch.attention_mask.to(torch::kInt64);
  auto m = batch.attention_mask.ne(0);
  if (batch.input_ids.size(1) == 0 || !m.select(1, -1).all().item<bool>()) {
    throw Error(ErrorKind::InvalidArgument, "attention_mask",
                "some rows do not end with a real token: the inputs are not left-padded (or a row is empty)",
                "nnterp's methods read the last token of each row; pad on the left (the tokenizer's default)");
  }
  if (batch.input_ids.size(1) > 1) {
    // Left padding: along each row the mask never goes from 1 back to 0.
    auto drops = m.narrow(1, 0, m.size(1) - 1).logical_and(m.narrow(1, 1, m.size(1) - 1).logical_not());
    if (drops.any().item<bool>())
      throw Error(ErrorKind::InvalidArgument, "attention_mask", "has padding between real tokens: the inputs are not left-padded",
                  "each row of the mask must be 0…0 1…1");
  }
  return batch;
}

torch::Tensor token_positions(const torch::Tensor& attention_mask, int64_t idx, const std::string& what) {
  const int64_t B = attention_mask.size(0), T = attention_mask.size(1);
  auto lengths = attention_mask.ne(0).sum(1).to(torch::kInt64);  // [B]
  auto la = lengths.accessor<int64_t, 1>();
  auto out = torch::empty({B}, torch::kInt64);
  auto oa = out.accessor<int64_t, 1>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = la[b];
    int64_t pos = idx < 0 ? T + idx : (T - len) + idx;
    if ((idx < 0 && -idx > len) || (idx >= 0 && idx >= len))
      throw Error(ErrorKind::InvalidArgument, what,
                  "token index " + std::to_string(idx) + " is outside prompt " + std::to_string(b) + " of the batch, which has " +
                      std::to_string(len) + " tokens",
                  "negative indices count from the last token (-1), non-negative ones from the first");
    oa[b] = pos;
  }
  return out;
}

// ---- activations ------------------------------------------------------------------------------

namespace methods_detail {

torch::Tensor batch_activations(const StandardizedTransformer& model, const TokenBatch& batch, int64_t idx,
                                const std::vector<int>& layers, Point point) {
  auto pos = token_positions(batch.attention_mask, idx);
  auto rows = torch::arange(batch.input_ids.size(0), torch::kInt64);
  std::vector<int> order = forward_order(layers);
  std::vector<torch::Tensor> got(order.size());
  model.trace(batch, [&](Trace& t) {
    for (size_t i = 0; i < order.size(); ++i) {
      auto& v = t.at(PointId{point, order[i]});
      got[i] = v.index({rows.to(v.device()), pos.to(v.device())}).to(torch::kCPU);  // advanced indexing copies
    }
    t.stop();
  });
  std::vector<torch::Tensor> out;
  out.reserve(layers.size());
  for (int l : layers) out.push_back(got[static_cast<size_t>(std::lower_bound(order.begin(), order.end(), l) - order.begin())]);
  return torch::stack(out);
}

}  // namespace methods_detail

torch::Tensor get_token_activations(const StandardizedTransformer& model, const TraceInput& prompts, int64_t idx,
                                    const std::vector<int>& layers, Point point) {
  methods_detail::check_residual_point(point);
  torch::NoGradGuard no_grad;
  auto resolved = resolve_layers(model, layers);
  return methods_detail::batch_activations(model, tokenize_left_padded(model, prompts), idx, resolved, point);
}

torch::Tensor collect_token_activations_batched(const StandardizedTransformer& model, const TraceInput& prompts,
                                                int64_t batch_size, const std::vector<int>& layers, int64_t idx,
                                                Point point) {
  CollectOptions options;
  options.batch_size = batch_size;
  options.layers = layers;
  options.idx = idx;
  options.point = point;
  options.progress = false;
  options.dtype = torch::ScalarType::Undefined;  // keep the model's dtype
  return collect_token_activations(model, prompts, options).activations;
}

// ---- steering vectors -------------------------------------------------------------------------

torch::Tensor steering_vectors(const StandardizedTransformer& model, const TraceInput& positive, const TraceInput& negative,
                               const std::vector<int>& layers, const SteeringVectorOptions& options) {
  if (input_size(positive) == 0) throw Error(ErrorKind::InvalidArgument, "positive prompts", "no prompt given");
  if (input_size(negative) == 0) throw Error(ErrorKind::InvalidArgument, "negative prompts", "no prompt given");
  auto pos = collect_token_activations_batched(model, positive, options.batch_size, layers, options.idx, options.point);
  auto neg = collect_token_activations_batched(model, negative, options.batch_size, layers, options.idx, options.point);
  return (pos.to(torch::kFloat64).mean(1) - neg.to(torch::kFloat64).mean(1)).to(torch::kFloat32);
}

torch::Tensor steering_vector(const StandardizedTransformer& model, const TraceInput& positive, const TraceInput& negative,
                              int layer, const SteeringVectorOptions& options) {
  return steering_vectors(model, positive, negative, {layer}, options)[0];
}

}  // namespace nnterp
