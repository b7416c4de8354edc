// StandardizedTransformer: a HuggingFace causal LM loaded from a local folder (or the offline
// hub cache) behind one standardized interface, whatever the architecture.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nnterp/config.hpp"
#include "nnterp/forward.hpp"
#include "nnterp/generate.hpp"
#include "nnterp/points.hpp"
#include "nnterp/trace.hpp"

namespace nnterp {

namespace model { class Decoder; struct ArchSpec; }
class Tokenizer;

struct LoadOptions {
  torch::ScalarType dtype = torch::kFloat32;  // compute dtype; F16/BF16 weights are converted
  bool load_tokenizer = true;                 // when the folder has tokenizer.json
  bool validate = true;                       // run validate_model() at load; throw if a check fails
};

// A standardized module and the checkpoint tensors behind it (for `nnterp info`).
struct ModuleInfo {
  std::string name;                                       // "layers.3.self_attn"
  std::map<std::string, std::vector<std::string>> weights;  // standardized weight → HF names
};

class StandardizedTransformer {
 public:
  // `model` is a folder or a hub id resolved offline (see hub.hpp).
  explicit StandardizedTransformer(const std::string& model, const LoadOptions& options = {});
  ~StandardizedTransformer();
  StandardizedTransformer(StandardizedTransformer&&) noexcept;
  StandardizedTransformer& operator=(StandardizedTransformer&&) noexcept;

  const std::filesystem::path& path() const;
  const Config& config() const;
  const std::string& architecture() const;  // registry name ("llama")
  const std::string& hf_class() const;      // "LlamaForCausalLM"
  int64_t num_layers() const;
  int64_t num_heads() const;
  int64_t num_kv_heads() const;
  int64_t head_dim() const;
  int64_t hidden_size() const;
  int64_t vocab_size() const;

  // The standardized module tree: embed_tokens, layers.{i}.self_attn, layers.{i}.mlp, ln_final, lm_head.
  std::vector<ModuleInfo> modules() const;

  // One forward pass; see ForwardInput. Logits [B, T, V].
  // Inputs are checked (docs/bad_inputs.md): int64 [B, T] ids in [0, vocab), a bool/integer 0/1
  // mask with at least one 1 per row (left or right padding both work). Learned absolute positions
  // are a hard limit (Error); rotary/ALiBi models run beyond config.json's max_position_embeddings
  // and warn once per model on stderr.
  torch::Tensor forward(const ForwardInput& input, PointHooks* hooks = nullptr) const;
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        PointHooks* hooks = nullptr) const;
  // Runs `body` in lock-step with one forward pass (see trace.hpp); returns the logits
  // (undefined if the body called stop()).
  torch::Tensor trace(const TraceInput& inputs, const TraceBody& body, const TraceOptions& options = {}) const;
  // Batched generation with a KV cache; `body` intervenes at chosen steps (see generate.hpp).
  GenerateResult generate(const TraceInput& inputs, const GenerateOptions& options = {}, const StepBody& body = {}) const;
  // The EOS / pad ids from generation_config.json, else config.json, else the tokenizer.
  std::vector<int64_t> eos_token_ids() const;
  std::optional<int64_t> pad_token_id() const;

  // Token ids + attention mask for prompts (left padding), or the given tokens checked as forward()
  // checks them. An empty prompt list, or a prompt with no token (an empty string with a tokenizer
  // that adds no BOS), is an Error naming the prompt's index.
  TokenBatch tokenize(const TraceInput& inputs) const;

  // The model's own final norm + lm_head + final scaling/soft-cap applied to a residual-stream tensor.
  torch::Tensor project_on_vocab(const torch::Tensor& hidden) const;

  // The tokenizer from the model folder (tokenizer.json); null when the folder has none.
  const Tokenizer* tokenizer() const;

  const model::Decoder& decoder() const;
  const model::ArchSpec& arch() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nnterp
