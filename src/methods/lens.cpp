// Lenses: the logit lens (and its inverse), next-token probabilities, patchscopes.
#include <algorithm>

#include "core/tensor_text.hpp"
#include "methods/method_utils.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp {


// ---- logit lens ---------------------------------------------------------------------------------

LogitLensResult logit_lens_with_inverse(const StandardizedTransformer& model, const TraceInput& prompts,
                                        const LensOptions& options, bool inverse) {
  methods_detail::check_batch_size(options.batch_size);
  torch::NoGradGuard no_grad;
  LogitLensResult result;
  result.layers = resolve_layers(model, options.layers);
  const int64_t N = input_size(prompts);
  if (N == 0) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given");
  std::vector<torch::Tensor> probs, inv;
  for (int64_t b = 0; b < N; b += options.batch_size) {
    const int64_t e = std::min(N, b + options.batch_size);
    auto batch = tokenize_left_padded(model, input_slice(prompts, b, e));
    // [layers, B, H] → [B, layers, H]: one projection for every layer at once.
    auto hidden = methods_detail::batch_activations(model, batch, options.idx, result.layers, Point::LayerOutput).transpose(0, 1).contiguous();
    probs.push_back(torch::softmax(model.project_on_vocab(hidden).to(torch::kFloat32), -1));
    // nnterp's inverse lens negates after the final norm: softmax(lm_head(-ln_final(h))).
    if (inverse) inv.push_back(torch::softmax(model.unembed(-model.final_norm(hidden)).to(torch::kFloat32), -1));
  }
  result.probs = torch::cat(probs, 0);
  if (inverse) result.inverse_probs = torch::cat(inv, 0);
  return result;
}

torch::Tensor logit_lens(const StandardizedTransformer& model, const TraceInput& prompts, const LensOptions& options) {
  return logit_lens_with_inverse(model, prompts, options, false).probs;
}

torch::Tensor next_token_probs(const StandardizedTransformer& model, const TraceInput& prompts, int64_t batch_size) {
  methods_detail::check_batch_size(batch_size);
  torch::NoGradGuard no_grad;
  const int64_t N = input_size(prompts);
  if (N == 0) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given");
  std::vector<torch::Tensor> out;
  for (int64_t b = 0; b < N; b += batch_size) {
    auto batch = tokenize_left_padded(model, input_slice(prompts, b, std::min(N, b + batch_size)));
    ForwardInput in;
    in.input_ids = batch.input_ids;
    in.attention_mask = batch.attention_mask;
    in.logits_last_only = true;
    auto logits = model.forward(in);
    out.push_back(torch::softmax(logits.select(1, -1).to(torch::kFloat32), -1).to(torch::kCPU));
  }
  return torch::cat(out, 0);
}

// ---- patchscopes ----------------------------------------------------------------------------------

TargetPrompt repeat_prompt(const std::vector<std::string>& words, const std::string& rel, const std::string& sep,
                           const std::string& placeholder, int64_t index_to_patch) {
  std::string prompt;
  for (const auto& w : words) prompt += w + rel + w + sep;
  prompt += placeholder;
  return TargetPrompt{prompt, index_to_patch, {}};
}

namespace methods_detail {

std::vector<int64_t> encode_for_model(const StandardizedTransformer& model, const std::string& text, const std::string& what) {
  const Tokenizer* tok = model.tokenizer();
  if (!tok)
    throw Error(ErrorKind::InvalidArgument, what, "is text but the model has no tokenizer (no tokenizer.json in " + model.path().string() + ")",
                "give token ids instead (TargetPrompt::token_ids, Prompt::token_ids, --target-inputs)");
  auto ids = tok->encode_ids(text, true);
  if (ids.empty())
    throw Error(ErrorKind::InvalidArgument, what, "is empty after tokenization (and the tokenizer adds no BOS token)",
                "give a non-empty prompt: a forward pass needs at least one token");
  return ids;
}

int64_t pad_id_of(const StandardizedTransformer& model) { return model.tokenizer() ? model.tokenizer()->padding_id() : 0; }

}  // namespace methods_detail

namespace {

// The targets for sources [begin, end) as one left-padded batch, and the patched column of each row.
std::pair<TokenBatch, torch::Tensor> target_batch(const StandardizedTransformer& model, const std::vector<TargetPrompt>& targets,
                                                  int64_t begin, int64_t end) {
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> index;
  std::vector<std::vector<int64_t>> cache(targets.size());
  for (int64_t i = begin; i < end; ++i) {
    const size_t k = targets.size() == 1 ? 0 : static_cast<size_t>(i);
    const auto& t = targets[k];
    if (cache[k].empty()) cache[k] = t.token_ids.empty() ? methods_detail::encode_for_model(model, t.prompt, "target prompt " + std::to_string(k)) : t.token_ids;
    rows.push_back(cache[k]);
    index.push_back(t.index_to_patch);
  }
  TokenBatch batch = left_pad(rows, methods_detail::pad_id_of(model));
  const int64_t B = batch.input_ids.size(0);
  auto pos = torch::empty({B}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) {
    auto one = token_positions(batch.attention_mask.narrow(0, b, 1), index[static_cast<size_t>(b)], "index_to_patch");
    pos[b] = one[0].item<int64_t>();
  }
  return {batch, pos};
}

torch::Tensor run_patchscope(const StandardizedTransformer& model, const std::function<torch::Tensor(int64_t, int64_t)>& latents_of,
                             int64_t N, std::vector<TargetPrompt> targets, const std::vector<int>& layers,
                             int64_t batch_size) {
  if (targets.empty()) targets.push_back(repeat_prompt());
  if (targets.size() != 1 && static_cast<int64_t>(targets.size()) != N)
    throw Error(ErrorKind::InvalidArgument, "targets",
                "expected one target prompt or one per source (" + std::to_string(N) + "), got " + std::to_string(targets.size()));
  std::vector<int> order = methods_detail::forward_order(layers);
  std::vector<torch::Tensor> out;  // per source batch: [b, layers, V]
  for (int64_t b = 0; b < N; b += batch_size) {
    const int64_t e = std::min(N, b + batch_size);
    auto latents = latents_of(b, e);  // [layers, n, H]
    auto target = target_batch(model, targets, b, e);
    const TokenBatch& batch = target.first;
    const torch::Tensor& pos = target.second;
    auto rows = torch::arange(e - b, torch::kInt64);
    // The target's own layer outputs (the same in every patched run up to the patched layer).
    std::vector<torch::Tensor> clean(order.size());
    model.trace(batch, [&](Trace& t) {
      for (size_t i = 0; i < order.size(); ++i) clean[i] = t.layers_output[order[i]].clone();
      t.stop();
    });
    std::vector<torch::Tensor> per_layer;
    for (size_t li = 0; li < layers.size(); ++li) {
      const int l = layers[li];
      const size_t oi = static_cast<size_t>(std::lower_bound(order.begin(), order.end(), l) - order.begin());
      auto patched = clean[oi].clone();
      patched.index_put_({rows, pos}, latents[static_cast<int64_t>(li)].to(patched.options()));
      torch::Tensor probs;
      // Layers 0..l are skipped: their output is the clean output with the patch, so only the
      // layers after l run.
      model.trace(batch, [&](Trace& t) {
        t.skip_layers(0, l, patched);
        probs = t.next_token_probs().to(torch::kFloat32).to(torch::kCPU);
      });
      per_layer.push_back(probs);
    }
    out.push_back(torch::stack(per_layer, 1));
  }
  return torch::cat(out, 0);
}

}  // namespace

torch::Tensor patchscope_lens(const StandardizedTransformer& model, const TraceInput& sources,
                              const std::vector<TargetPrompt>& targets, const PatchscopeOptions& options) {
  methods_detail::check_batch_size(options.batch_size);
  torch::NoGradGuard no_grad;
  auto layers = resolve_layers(model, options.layers);
  const int64_t N = input_size(sources);
  if (N == 0) throw Error(ErrorKind::InvalidArgument, "source prompts", "no prompt given");
  auto latents_of = [&](int64_t b, int64_t e) {
    return methods_detail::batch_activations(model, tokenize_left_padded(model, input_slice(sources, b, e)), options.source_idx, layers,
                             Point::LayerOutput);
  };
  return run_patchscope(model, latents_of, N, targets, layers, options.batch_size);
}

torch::Tensor patchscope_lens(const StandardizedTransformer& model, const torch::Tensor& latents,
                              const std::vector<TargetPrompt>& targets, const PatchscopeOptions& options) {
  methods_detail::check_batch_size(options.batch_size);
  torch::NoGradGuard no_grad;
  auto layers = resolve_layers(model, options.layers);
  if (!latents.defined() || latents.dim() != 3 || latents.size(0) != static_cast<int64_t>(layers.size()) ||
      latents.size(2) != model.hidden_size())
    throw Error(ErrorKind::Shape, "latents",
                "expected [layers = " + std::to_string(layers.size()) + ", sources, hidden = " + std::to_string(model.hidden_size()) +
                    "], got " + tensor_text(latents),
                "one row of latents per patched layer (PatchscopeOptions::layers, default every layer)");
  const int64_t N = latents.size(1);
  if (N == 0) throw Error(ErrorKind::InvalidArgument, "latents", "no source (dimension 1 is empty)");
  auto latents_of = [&](int64_t b, int64_t e) { return latents.narrow(1, b, e - b); };
  return run_patchscope(model, latents_of, N, targets, layers, options.batch_size);
}

}  // namespace nnterp
