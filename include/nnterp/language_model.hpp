// LanguageModel: a HuggingFace causal LM loaded from a local folder (or the offline hub cache)
// behind one standardized interface, whatever the architecture: sizes, the tokenizer, one forward
// pass with hooks at every standardized point. The trace and generation sit on top of it
// (StandardizedTransformer, nnterp/model.hpp, is the class to use).
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nnterp/config.hpp"
#include "nnterp/forward.hpp"
#include "nnterp/points.hpp"

namespace nnterp {

class Tokenizer;

// The dtype of the weights and activations, with HF's `torch_dtype` meaning. kAutoDType is HF's
// "auto": the checkpoint's own dtype (config.json's torch_dtype/dtype, else its first floating
// tensor). float32 is the default, as in HF's from_pretrained: bf16/f16 checkpoints are converted
// at load (twice their size in memory; a load that cannot fit is refused before it starts).
// Weights stored in the chosen dtype are used in place from the memory-mapped file; see
// docs/dtypes.md for what runs in which precision (on CPU the matmuls of a bf16/f16 model run in
// float32 on float32-converted slices of the weights, rounded to the dtype: libtorch's CPU kernels
// are 60x slower in bf16 and missing in f16).
inline constexpr std::nullopt_t kAutoDType = std::nullopt;

struct LoadOptions {
  std::optional<torch::ScalarType> dtype = torch::kFloat32;  // kFloat32, kBFloat16, kFloat16 or kAutoDType
  torch::Device device = torch::kCPU;                         // cpu, cuda, cuda:N (a CUDA build of libtorch)
  bool load_tokenizer = true;                                 // when the folder has tokenizer.json
  bool validate = true;  // run validate_model() at load; throw if a check fails
};

// "auto", "float32" (also "fp32", "f32"), "bfloat16" ("bf16"), "float16" ("fp16", "f16", "half"),
// as HF's torch_dtype strings and the CLI's --dtype; anything else is an Error naming `option`.
std::optional<torch::ScalarType> parse_dtype_option(const std::string& text, const std::string& option = "dtype");
// "cpu", "cuda", "cuda:N". Asking for CUDA from a CPU-only libtorch (Debian's), or for a GPU index
// that does not exist, is an Error naming `option` and saying what to do.
torch::Device parse_device_option(const std::string& text, const std::string& option = "device");
// The HF spelling of a dtype: "float32", "bfloat16", "float16".
std::string dtype_name(torch::ScalarType dtype);

// What a load did, for `nnterp info` and the benchmarks.
struct LoadReport {
  std::map<std::string, int64_t> stored_bytes;  // checkpoint dtype ("BF16") → bytes of its tensors
  torch::ScalarType dtype = torch::kFloat32;    // weights and activations
  torch::ScalarType matmul_dtype = torch::kFloat32;  // what the matmuls compute in (see kAutoDType)
  torch::Device device = torch::kCPU;
  int64_t bytes_in_place = 0;  // weights used straight from the memory-mapped files
  int64_t bytes_copied = 0;    // weights built in memory (converted, fused, re-ordered, moved to a GPU)
  double load_seconds = 0;     // open + weights + tokenizer + validation
  int64_t peak_rss_bytes = 0;  // the process's peak resident memory after the load (0 if unknown)
};

// A standardized module and the checkpoint tensors behind it (for `nnterp info`).
struct ModuleInfo {
  std::string name;                                         // "layers.3.self_attn"
  std::map<std::string, std::vector<std::string>> weights;  // standardized weight → HF names
};

class LanguageModel {
 public:
  // `model` is a folder or a hub id resolved offline (see hub.hpp).
  explicit LanguageModel(const std::string& model, const LoadOptions& options = {});
  ~LanguageModel();
  LanguageModel(LanguageModel&&) noexcept;
  LanguageModel& operator=(LanguageModel&&) noexcept;

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
  // Whether the model has a mixture-of-experts router (the layers.{i}.router_logits point).
  bool has_router() const;                   // a mixture of experts (router logits at its MoE layers)
  bool has_router(int64_t layer) const;      // layer `layer` is an MoE layer (false for a dense one)
  // Attention sinks (gpt-oss): a logit per head joins each softmax without a value, so the rows of
  // attention_probabilities sum to less than 1 (the sink takes the rest).
  bool has_attention_sinks() const;
  // Whether layer `layer` mixes its tokens by attention (false for LFM2's short-convolution layers,
  // which have no q / k / v / attention probabilities; their attn_output is the mixer's output).
  bool has_attention(int64_t layer) const;
  // Whether this model computes `point` (attention points at attention layers, router_logits at MoE
  // layers); `why_not` says why when it does not (an empty string when it does).
  bool has_point(const PointId& point, std::string* why_not = nullptr) const;
  // The shape `point` has in a forward over `batch` rows of `tokens` new tokens after `past` cached
  // ones, from the config alone (nothing runs); an Error naming the point when it does not exist.
  std::vector<int64_t> point_shape(const PointId& point, int64_t batch, int64_t tokens, int64_t past = 0) const;
  // Empty, or how this architecture's outputs for a row depend on the row's left padding, as HF's
  // do (PhiMoE's longrope measures the padded length): a row run alone or in another batch then
  // differs beyond rounding. nnterp reproduces HF rather than correct it.
  const std::string& padding_dependence() const;
  // The number of learned absolute positions (a hard limit on sequence length); nullopt when
  // positions are rotary, ALiBi or absent (those run beyond config.json's maximum, with a warning).
  std::optional<int64_t> learned_positions() const;
  // The dtype of the weights and activations (LoadOptions::dtype resolved), and their device.
  torch::ScalarType dtype() const;
  torch::Device device() const;
  const LoadReport& load_report() const;

  // The standardized module tree: embed_tokens, layers.{i}.self_attn, layers.{i}.mlp, ln_final, lm_head.
  std::vector<ModuleInfo> modules() const;

  // One forward pass; see ForwardInput. Logits [B, T, V], in dtype() on device() (inputs may be on
  // any device: they are moved to the model's).
  // Inputs are checked (docs/bad_inputs.md): int64 [B, T] ids in [0, vocab), a bool/integer 0/1
  // mask with at least one 1 per row (left or right padding both work). Learned absolute positions
  // are a hard limit (Error); rotary/ALiBi models run beyond config.json's max_position_embeddings
  // and warn once per model on stderr.
  torch::Tensor forward(const ForwardInput& input, PointHooks* hooks = nullptr) const;
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        PointHooks* hooks = nullptr) const;
  // The EOS / pad ids from generation_config.json, else config.json, else the tokenizer.
  std::vector<int64_t> eos_token_ids() const;
  std::optional<int64_t> pad_token_id() const;

  // Token ids + attention mask for prompts (left padding), or the given tokens checked as forward()
  // checks them. An empty prompt list, or a prompt with no token (an empty string with a tokenizer
  // that adds no BOS), is an Error naming the prompt's index.
  TokenBatch tokenize(const TraceInput& inputs) const;

  // The model's own final norm + lm_head + final scaling/soft-cap applied to a residual-stream tensor.
  torch::Tensor project_on_vocab(const torch::Tensor& hidden) const;
  // Its two halves, project_on_vocab(h) == unembed(final_norm(h)): the final norm (ln_final), and
  // lm_head with the final scaling / soft-cap (what the `logits` point holds).
  torch::Tensor final_norm(const torch::Tensor& hidden) const;
  torch::Tensor unembed(const torch::Tensor& normed) const;
  // The final norm as a linear map with its scale frozen at `hidden` [..., H] (LayerNorm: its
  // centring too), applied to `parts` [..., n, H], float64, without its bias: when the parts sum to
  // `hidden`, their images sum to final_norm(hidden) minus the norm's bias (direct logit attribution,
  // as TransformerLens freezes the final LayerNorm's scale).
  torch::Tensor final_norm_linear(const torch::Tensor& hidden, const torch::Tensor& parts) const;
  // What unembed applies after lm_head: logits × logit_scale (1 for most; Cohere's logit_scale,
  // 1 / Granite's logits_scaling), then final_softcap · tanh(logits / final_softcap) when it is > 0
  // (Gemma-2).
  double logit_scale() const;
  double final_softcap() const;

  // The tokenizer from the model folder (tokenizer.json); null when the folder has none.
  const Tokenizer* tokenizer() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  friend struct LanguageModelAccess;  // the library's model layer (src/model/access.hpp)
};

}  // namespace nnterp
