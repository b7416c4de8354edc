// patchscope_generate: a patchscope whose target is generated from, with the patch applied on
// the prompt pass and kept in the KV cache.
#include "core/tensor_text.hpp"
#include "nnterp/error.hpp"
#include "nnterp/generate.hpp"
#include "nnterp/methods.hpp"

namespace nnterp {

GenerateResult patchscope_generate(const StandardizedTransformer& model, const torch::Tensor& latents, int layer,
                                   const TargetPrompt& target, int max_new_tokens) {
  const int64_t H = model.hidden_size();
  if (!latents.defined() || latents.dim() != 2 || latents.size(1) != H || latents.size(0) == 0)
    throw Error(ErrorKind::Shape, "patchscope latents", "expected [N, hidden = " + std::to_string(H) + "], got " + tensor_text(latents));
  const int L = static_cast<int>(model.num_layers());
  if (layer < -L || layer >= L)
    throw Error(ErrorKind::InvalidArgument, "patchscope layer",
                "layer " + std::to_string(layer) + " is out of range: the model has " + std::to_string(L) + " layers (0.." +
                    std::to_string(L - 1) + ", or -1..-" + std::to_string(L) + " from the end)");
  if (layer < 0) layer += L;
  TokenBatch one = target.token_ids.empty()
                       ? model.tokenize(TraceInput(target.prompt))
                       : TokenBatch{torch::tensor(target.token_ids, torch::kInt64).unsqueeze(0), {}};
  one = model.tokenize(TraceInput(one));  // fills and checks the attention mask
  const int64_t N = latents.size(0), T = one.input_ids.size(1);
  const int64_t position = target.index_to_patch < 0 ? T + target.index_to_patch : target.index_to_patch;
  if (position < 0 || position >= T)
    throw Error(ErrorKind::InvalidArgument, "patchscope index_to_patch",
                "position " + std::to_string(target.index_to_patch) + " is outside the target of " + std::to_string(T) + " tokens");
  TokenBatch batch{one.input_ids.expand({N, T}).contiguous(), one.attention_mask.expand({N, T}).contiguous()};
  GenerateOptions options;
  options.max_new_tokens = max_new_tokens;
  return model.generate(batch, options, at_prompt([&](Trace& t) {
    auto& hidden = t.layers_output[layer];
    hidden = hidden.clone();
    hidden.select(1, position).copy_(latents.to(hidden.options()));
  }));
}

GenerateResult patchscope_generate(const StandardizedTransformer& model, const TraceInput& sources, int layer,
                                   const TargetPrompt& target, int max_new_tokens, int64_t source_idx) {
  auto latents = get_token_activations(model, sources, source_idx, {layer}).select(0, 0);  // [N, hidden]
  return patchscope_generate(model, latents, layer, target, max_new_tokens);
}

}  // namespace nnterp
