// The tuned lens (Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the
// Tuned Lens"): per layer, a learned affine translator h ↦ h + A_l h + b_l before the model's own
// final norm and unembedding, trained to minimise KL(final distribution || lens distribution).
//
//   nnterp::StandardizedTransformer model;                                   // the default model
//   auto lens  = nnterp::TunedLens::load("models/default/tuned_lens.safetensors", model);
//   auto probs = nnterp::tuned_lens(model, {"The capital of France is"}, lens);  // [1, layers, vocab]
//
//   nnterp::TunedLensTrainOptions o;  o.steps = 500;  o.checkpoint = "ckpt.safetensors";
//   auto trained = nnterp::train_tuned_lens(model, prompts, o);
//   trained.save("lens.safetensors");
//
// A lens has one translator per layer (layers_output[l], l = 0..L-1). The last layer's translator
// is never trained and stays zero: its output through the final norm and unembedding already is the
// model's distribution. A zero translator is the identity, so an untrained lens is the logit lens.
//
// The file (safetensors, the tuned-lens package's state-dict names): layer_translators.{i}.weight
// [hidden, hidden] (A_i, applied as h @ A_iᵀ) and layer_translators.{i}.bias [hidden], float32,
// with metadata format = "nnterp.tuned_lens", hidden_size, num_layers, model, fingerprint, steps,
// train_loss. See docs/tuned_lens.md.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "nnterp/methods.hpp"
#include "nnterp/model.hpp"

namespace nnterp {

// How a lens was made (its file's metadata).
struct TunedLensInfo {
  std::string model;        // the model's folder name
  std::string fingerprint;  // unembedding_fingerprint() of the model it was trained on
  int64_t steps = 0;        // training steps taken
  double train_loss = std::numeric_limits<double>::quiet_NaN();  // mean KL over the trained layers, last steps
};

class TunedLens {
 public:
  TunedLens() = default;
  // `weights` [H, H] and `biases` [H], one per layer (converted to float32).
  TunedLens(std::vector<torch::Tensor> weights, std::vector<torch::Tensor> biases, TunedLensInfo info = {});
  // Every translator zero: the logit lens.
  static TunedLens identity(const LanguageModel& model);
  // Reads a lens file and checks it against `model` (hidden size, layer count, every tensor present
  // with its shape): an Error naming the file and the mismatch. A lens trained on another model of
  // the same shape loads with a warning on stderr (its fingerprint differs).
  static TunedLens load(const std::filesystem::path& path, const LanguageModel& model);
  void save(const std::filesystem::path& path) const;

  // hidden [..., H] from layers_output[layer] → the translated hidden state, in hidden's dtype.
  torch::Tensor translate(int layer, const torch::Tensor& hidden) const;

  int64_t num_layers() const { return static_cast<int64_t>(weights_.size()); }
  int64_t hidden_size() const { return weights_.empty() ? 0 : weights_[0].size(0); }
  const torch::Tensor& weight(int layer) const;
  const torch::Tensor& bias(int layer) const;
  const TunedLensInfo& info() const { return info_; }
  TunedLensInfo& info() { return info_; }

 private:
  std::vector<torch::Tensor> weights_, biases_;
  TunedLensInfo info_;
};

// A short fingerprint of what a lens depends on besides the hidden states (the final norm and the
// unembedding): architecture, sizes and the norms of ln_final's weight and W_U (5 digits).
std::string unembedding_fingerprint(const LanguageModel& model);

// The tuned lens at token `options.idx` of each prompt: [batch, layers, vocab] probabilities, as
// logit_lens (with TunedLens::identity it equals logit_lens exactly).
torch::Tensor tuned_lens(const StandardizedTransformer& model, const TraceInput& prompts, const TunedLens& lens,
                         const LensOptions& options = {});

// Mean KL(final distribution || lens distribution) per layer, over every unpadded position of every
// prompt (or only each prompt's last token): [layers] float64, in nats. With TunedLens::identity,
// the logit lens's KL. The last layer's is 0 for both.
torch::Tensor lens_kl_to_final(const StandardizedTransformer& model, const TraceInput& prompts, const TunedLens& lens,
                               int64_t batch_size = 32, bool last_token_only = false);

// ---- training ----------------------------------------------------------------------------------

enum class LensOptimizer {
  Sgd,   // the tuned-lens package's default: SGD, Nesterov momentum, no warmup, linear decay to 0
  Adam,  // its alternative: Adam (amsgrad), linear warmup then linear decay
};

struct TunedLensTrainProgress {
  int64_t step = 0, steps = 0;  // steps done, of
  double loss = 0;              // this step's mean KL over the trained layers (nats)
};

struct TunedLensTrainOptions {
  int64_t steps = 250;
  int64_t batch_size = 32;  // prompts per step (every unpadded token of each)
  LensOptimizer optimizer = LensOptimizer::Sgd;
  double lr = 0;            // 0: the optimizer's default (SGD 1.0 · (1 − momentum) = 0.1, Adam 1e-3)
  double momentum = 0.9;    // SGD's momentum, Adam's β1
  double weight_decay = 1e-3;
  int64_t warmup_steps = -1;  // -1: 0 for SGD, min(1000, steps / 5) for Adam
  double max_grad_norm = 1.0;
  uint64_t seed = 42;       // the order prompts are drawn in
  // A checkpoint (translators, optimiser state, step) written every `checkpoint_every` steps and
  // at the end; empty: none. With `resume`, training continues from it, giving the same lens as a
  // run never interrupted; it must have been written with the same prompts count and options.
  std::filesystem::path checkpoint;
  int64_t checkpoint_every = 50;
  bool resume = false;
  std::function<void(const TunedLensTrainProgress&)> on_step;  // after each step (and its checkpoint)
};

// Trains a tuned lens on `prompts` (the model's parameters are not changed).
TunedLens train_tuned_lens(const StandardizedTransformer& model, const TraceInput& prompts,
                           const TunedLensTrainOptions& options = {});

// "sgd" / "adam" (an Error naming `option` otherwise), and back.
LensOptimizer parse_lens_optimizer(const std::string& name, const std::string& option = "optimizer");
const char* lens_optimizer_name(LensOptimizer optimizer);

}  // namespace nnterp
