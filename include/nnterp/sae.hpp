// Sparse dictionaries: SAEs and transcoders, loaded from the formats people download, and spliced
// into the trace (Trace::sae in trace.hpp).
//
//   auto sae = nnterp::Sae::load("gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_82");
//   model.trace(batch, [&](nnterp::Trace& t) {
//     auto& f = t.sae(sae);                     // [B, T, d_sae] at the SAE's own point
//     f.index_put_({"...", 1234}, 0.0);         // ablate feature 1234: the forward continues with
//   });                                         // decode(f) + error (no edit: exactly the input)
//
// Formats (docs/sae.md has the exact formulas, src/sae/SOURCES.md where they come from):
//  - SAELens: a folder with cfg.json + sae_weights.safetensors (W_enc [d_in, d_sae], b_enc, W_dec
//    [d_sae, d_out], b_dec; "standard" (ReLU), "topk" (k), "jumprelu" (threshold), "gated" (b_gate,
//    b_mag, r_mag), and the transcoders "transcoder", "skip_transcoder" (W_skip), "jumprelu_transcoder",
//    "jumprelu_skip_transcoder"), with apply_b_dec_to_input and normalize_activations (none,
//    constant_norm_rescale, layer_norm; expected_average_only_in with a norm_scaling_factor).
//    SAELens 3–5 (top-level hook_name, activation_fn_kwargs.k) and 6 (metadata.hook_name, k) both load.
//  - Gemma Scope: params.safetensors (or params.npz converted to safetensors) with W_enc, W_dec, b_enc,
//    b_dec, threshold: JumpReLU without b_dec on the input. The point comes from the path
//    (".../gemma-scope-2b-pt-res/layer_12/...": layer 12, residual stream after the layer; -mlp:
//    mlp_output; -att: z; -transcoders: mlp_input → mlp_output) or from SaeLoadOptions::point.
//  - A single .safetensors file with those tensor names (a bare dictionary; give the point).
// Every failure is an Error naming the file and, where there is one, the tensor or config key.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "nnterp/points.hpp"

namespace nnterp {

class LanguageModel;

enum class SaeActivation {
  ReLU,      // relu(pre)                                    (SAELens "standard")
  TopK,      // the k largest of pre, relu'd; the rest 0     ("topk")
  JumpReLU,  // relu(pre) · (pre > relu(threshold))          ("jumprelu", Gemma Scope)
  Gated,     // (x·W_enc + b_gate > 0) · relu(x·(W_enc·exp(r_mag)) + b_mag)   ("gated")
};

// How the input is normalized before encoding (and the output mapped back after decoding).
enum class SaeNormalization {
  None,
  Scale,                // x · norm_scaling_factor in, ÷ it out (expected_average_only_in, folded)
  ConstantNormRescale,  // x · sqrt(d_in) / ‖x‖ per token in, the inverse out
  LayerNorm,            // (x − mean) / (std + 1e-5) per token in, · std + mean out (std unbiased, as torch.std)
};

struct SaeConfig {
  SaeActivation activation = SaeActivation::ReLU;
  int64_t d_in = 0, d_sae = 0, d_out = 0;  // d_out == d_in unless a transcoder
  int64_t k = 0;                           // TopK
  bool apply_b_dec_to_input = true;        // encode(x − b_dec) (never for transcoders)
  bool rescale_acts_by_decoder_norm = false;  // TopK: select on pre · ‖W_dec row‖, decode f / ‖W_dec row‖
  SaeNormalization normalization = SaeNormalization::None;
  double norm_scaling_factor = 1.0;        // SaeNormalization::Scale
  bool transcoder = false;                 // reads input_point, writes output_point
  std::string architecture;                // as the file names it ("topk", "jumprelu_transcoder", ...)
  std::string format;                      // "saelens", "gemma-scope", "safetensors"
  std::string hook_name, hook_name_out;    // as the config names them ("blocks.8.hook_resid_pre", ...)
  std::optional<PointId> input_point, output_point;  // resolved (unset when nothing names the point)
  std::string model_name;                  // the model it was trained on, when the config says
  std::filesystem::path source;            // the folder or file it was loaded from
};

// The parameters, in the SAELens layout. Unused ones are undefined tensors.
struct SaeWeights {
  torch::Tensor W_enc;      // [d_in, d_sae]
  torch::Tensor b_enc;      // [d_sae] (not for Gated)
  torch::Tensor W_dec;      // [d_sae, d_out]
  torch::Tensor b_dec;      // [d_out]
  torch::Tensor threshold;  // [d_sae] JumpReLU
  torch::Tensor b_gate, b_mag, r_mag;  // [d_sae] Gated
  torch::Tensor W_skip;     // [d_out, d_in] skip transcoders
};

struct SaeLoadOptions {
  std::optional<PointId> point;             // the point it reads and writes (overrides the config)
  std::optional<PointId> output_point;      // a transcoder's output point (overrides the config)
  std::optional<torch::ScalarType> dtype;   // convert the weights (default: as stored)
  std::optional<torch::Device> device;      // move the weights (default: CPU)
};

// What encoding remembers of its input, for decoding back (per-token normalization statistics).
struct SaeEncoding {
  torch::Tensor features;   // [..., d_sae]
  torch::Tensor out_scale;  // [..., 1] multiplies the decoded output (undefined: 1)
  torch::Tensor out_shift;  // [..., 1] then added (undefined: 0)
};

class Sae {
 public:
  // A SAELens folder, a Gemma Scope folder or params file, or a .safetensors file.
  static Sae load(const std::filesystem::path& path, const SaeLoadOptions& options = {});
  // From parameters in memory (tests, trainers); checked as a loaded file is.
  Sae(SaeConfig config, SaeWeights weights);

  const SaeConfig& config() const { return config_; }
  const SaeWeights& weights() const { return weights_; }
  int64_t d_in() const { return config_.d_in; }
  int64_t d_sae() const { return config_.d_sae; }
  int64_t d_out() const { return config_.d_out; }

  // The feature activations of x [..., d_in] (any float dtype; computed in the weights' dtype).
  torch::Tensor encode(const torch::Tensor& x) const;
  SaeEncoding encode_full(const torch::Tensor& x) const;
  // The pre-activations x̃·W_enc + b_enc (Gated: the magnitude path), [..., d_sae].
  torch::Tensor encode_pre(const torch::Tensor& x) const;
  // The reconstruction of the features, [..., d_out]. `input` is what was encoded: needed by the
  // per-token normalizations and by skip transcoders (an Error when they lack it).
  torch::Tensor decode(const torch::Tensor& features, const torch::Tensor& input = {}) const;
  torch::Tensor decode(const SaeEncoding& encoding, const torch::Tensor& input = {}) const;
  // decode(encode(x), x).
  torch::Tensor reconstruct(const torch::Tensor& x) const;
  // The linear part of decoding: what changing the features by `delta` changes in the output
  // (no bias, no shift), computed over the features `delta` touches only. [..., d_out].
  torch::Tensor decode_delta(const torch::Tensor& delta, const SaeEncoding& encoding) const;

  // Checks that the SAE reads and writes points this model has, with the right width; an Error
  // naming the SAE's file, the point and both widths otherwise.
  void check_fits(const LanguageModel& model) const;

  // The same SAE with its weights in `dtype` on `device`.
  Sae to(torch::Device device, torch::ScalarType dtype) const;
  // Writes the SAELens format (cfg.json + sae_weights.safetensors) into `dir`.
  void save_saelens(const std::filesystem::path& dir) const;

 private:
  SaeConfig config_;
  SaeWeights weights_;
};

// "relu", "topk", "jumprelu", "gated".
const char* sae_activation_name(SaeActivation activation);

// The point a hook name means: TransformerLens names ("blocks.8.hook_resid_pre", "blocks.3.hook_mlp_out",
// "blocks.2.attn.hook_z", "blocks.5.ln2.hook_normalized", ...), HF module names ("model.layers.8",
// "model.layers.3.mlp", "model.layers.2.self_attn", "layers.8") and nnterp's own ("layers.8.output").
// nullopt when it means none of them.
std::optional<PointId> point_from_hook_name(const std::string& hook_name);

}  // namespace nnterp
