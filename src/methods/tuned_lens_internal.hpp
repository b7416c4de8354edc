// Internals shared by tuned_lens.cpp (the lens, its file, applying it) and tuned_lens_train.cpp.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nnterp/safetensors.hpp"
#include "nnterp/tuned_lens.hpp"

namespace nnterp::tuned_lens_detail {

// layer_translators.{i}.weight / .bias of every layer.
std::vector<std::pair<std::string, torch::Tensor>> translator_tensors(const TunedLens& lens);
// format, hidden_size, num_layers, model, fingerprint, steps, train_loss.
std::map<std::string, std::string> lens_metadata(const TunedLens& lens);
// save_safetensors to a temporary file beside `path`, then renamed over it.
void write_atomically(const std::filesystem::path& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata);
// The translators of a lens file (or checkpoint), checked against the model.
TunedLens read_lens(const io::SafetensorsFile& file, const LanguageModel& model);
// An Error unless the lens has the model's layer count and hidden size.
void check_fits(const TunedLens& lens, const LanguageModel& model);

// One forward over `batch`: every layer's output at the unpadded positions (or each row's last
// token), [n, H] in the model's dtype, and the final distribution there as log-probabilities [n, V].
struct LayerStates {
  std::vector<torch::Tensor> hidden;
  torch::Tensor final_logprobs;
};
LayerStates layer_states(const StandardizedTransformer& model, const TokenBatch& batch, bool last_token_only = false);

// The lens's logits at `layer` for hidden [n, H]: project_on_vocab(translate(layer, hidden)).
torch::Tensor lens_logits(const StandardizedTransformer& model, const TunedLens& lens, int layer, const torch::Tensor& hidden);
// KL(final || lens) per position, [n] float32.
torch::Tensor kl_to_final(const torch::Tensor& final_logprobs, const torch::Tensor& lens_logits);

}  // namespace nnterp::tuned_lens_detail
