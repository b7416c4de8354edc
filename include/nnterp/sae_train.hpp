// Training a TopK sparse autoencoder on collected activations, written in the SAELens format.
//
//   nnterp::CollectOptions co;                     // every real token of every prompt at layer 2
//   co.layers = {2};
//   co.all_tokens = true;
//   co.out_dir = "acts";
//   nnterp::collect_token_activations(model, prompts, co);
//   nnterp::SaeTrainOptions o;
//   o.d_sae = 1024;
//   o.k = 32;
//   auto r = nnterp::train_topk_sae("acts", 2, o);  // streamed shard by shard
//   r.sae.save_saelens("sae/");                    // cfg.json + sae_weights.safetensors
//   // r.stats.heldout_fve, r.stats.l0, r.stats.dead_fraction, r.stats.loss_curve, ...
//
// The recipe is Gao et al. 2024, "Scaling and evaluating sparse autoencoders" (docs/sae.md,
// "Training"): x̂ = TopK(relu((x − b_dec)·W_enc + b_enc))·W_dec + b_dec, loss ‖x − x̂‖² (summed over
// d_in, mean over tokens) + aux_coefficient · AuxK, where AuxK reconstructs the residual x − x̂ from
// the aux_k largest pre-activations of the dead latents (no b_dec), scaled down by
// min(dead / aux_k, 1) as SAELens does; Adam (betas 0.9, 0.999, no weight decay) with lr ∝
// 1/sqrt(d_sae); b_dec starts at the data's geometric median (or mean), W_enc at W_decᵀ; the decoder
// rows stay unit-norm: the gradient's component along each row is removed before every step and
// the rows renormalized after it. The gradients are written out by hand (sparse in the k active
// latents), so a step costs one dense matmul (the encoder) plus O(batch · k · d_in).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nnterp/points.hpp"
#include "nnterp/sae.hpp"

namespace nnterp {

enum class DecoderBiasInit {
  GeometricMedian,  // of a sample of the training tokens (Weiszfeld's iterations), as Gao et al.
  Mean,
};

// Where training stands, at a loss-curve point (averages over the steps since the previous one).
struct SaeTrainProgress {
  int64_t step = 0, steps = 0;  // steps done, of
  int64_t tokens = 0;           // tokens trained on so far
  double mse = 0;               // ‖x − x̂‖² per token (on normalized inputs when normalize_activations)
  double normalized_mse = 0;    // mse ÷ the batch's variance (Σ‖x − mean‖² per token): 1 − its FVE
  double aux_loss = 0;          // AuxK, before aux_coefficient
  double l0 = 0;                // latents active per token
  double dead_fraction = 0;     // latents dead at that step (see dead_after_tokens)
  double seconds = 0;           // since training (this run) began
};

struct SaeTrainOptions {
  int64_t d_sae = 4096;         // latents
  int64_t k = 32;               // active latents per token
  int64_t batch_size = 4096;    // tokens per step
  int64_t steps = 0;            // optimizer steps; 0: `epochs` passes over the training tokens
  double epochs = 1;
  double lr = 0;                // Adam's; 0: 2e-4 / sqrt(d_sae / 2^14) (Gao et al.'s scaling)
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  uint64_t seed = 0;            // initialization, the shuffling and the held-out split
  int64_t dead_after_tokens = 10'000'000;  // a latent that has not fired in this many tokens is dead
  int64_t aux_k = 0;            // dead latents the AuxK loss uses; 0: d_in / 2
  double aux_coefficient = 1.0 / 32;
  DecoderBiasInit b_dec_init = DecoderBiasInit::GeometricMedian;
  // SAELens "expected_average_only_in": train on x · s with s = sqrt(d_in) / E‖x‖ (estimated on the
  // initialization sample); s is folded into the weights of the SAE returned, which then reads raw x
  // (normalize_activations "none": W_enc · s, W_dec / s, b_dec / s).
  bool normalize_activations = false;
  double holdout_fraction = 0.05;       // tokens (drawn with the seed) kept out of training for the stats
  int64_t max_holdout_tokens = 100'000; // at most this many of them are evaluated
  int64_t loss_curve_points = 100;      // about this many SaeTrainProgress in the result (and callbacks)
  // A checkpoint (parameters, Adam's state, the dead-latent counters, the loss curve) written every
  // checkpoint_every steps (0: only at the end) when `checkpoint` is set; with `resume`, training
  // continues from it when it exists (the same options and data are required; the result is the same
  // as an uninterrupted run's).
  std::filesystem::path checkpoint;
  int64_t checkpoint_every = 0;
  bool resume = false;
  // Called at each loss-curve point (after the checkpoint of that step, if one is due); may throw to stop.
  std::function<void(const SaeTrainProgress&)> on_progress;
  // What the SAE's cfg.json says about its activations (the folder overload fills them in from the
  // collection when unset): the point (hook_name "blocks.{i}.hook_resid_post" for layers.{i}.output)
  // and the model.
  std::optional<PointId> point;
  std::string model_name;
};

struct SaeTrainStats {
  // On the held-out tokens, with the SAE returned.
  double heldout_fve = 0;        // fraction of variance explained: 1 − Σ‖x − x̂‖² / Σ‖x − mean‖²
  double heldout_nmse = 0;       // 1 − heldout_fve
  double heldout_l0 = 0;         // latents active per token
  int64_t heldout_tokens = 0;
  // Training.
  double train_nmse = 0;         // normalized MSE over the last loss-curve interval
  int64_t dead_features = 0;     // latents dead at the end (not fired in dead_after_tokens)
  double dead_fraction = 0;
  int64_t steps = 0, train_tokens = 0;  // steps done; tokens in the training split
  double lr = 0;                 // as used (options.lr or its default)
  double norm_scaling_factor = 1;  // s (1 without normalize_activations)
  double seconds = 0;            // this run's training (a resumed run: since the resume)
  double tokens_per_second = 0;
  bool resumed = false;          // continued from options.checkpoint
  std::vector<SaeTrainProgress> loss_curve;
};

struct SaeTrainResult {
  Sae sae;  // SAELens "topk", normalization folded; save with sae.save_saelens(dir)
  SaeTrainStats stats;
};

// Trains on activations [N, d_in] (any float dtype; trained in float32 on the CPU).
SaeTrainResult train_topk_sae(const torch::Tensor& activations, const SaeTrainOptions& options = {});
// Trains on `layer` of a collection written by collect_token_activations (see collect.hpp; collect
// with all_tokens), read shard by shard: memory holds one shard, the held-out tokens and the model.
SaeTrainResult train_topk_sae(const std::filesystem::path& activations_dir, int layer, const SaeTrainOptions& options = {});

// The building blocks of a training step, exposed for tests and for other trainers.
namespace sae_training {

// Parameters in the SAELens layout (float32): W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in].
struct TopKParams {
  torch::Tensor W_enc, b_enc, W_dec, b_dec;
};

struct TopKStep {
  TopKParams grads;          // of the loss (mse + aux_coefficient · scale · aux)
  double mse = 0;            // ‖x − x̂‖² per token
  double aux = 0;            // AuxK per token, before aux_coefficient and its scale
  double variance = 0;       // Σ‖x − mean‖² per token, of this batch
  torch::Tensor fired;       // [d_sae] bool: latents active (> 0) on some token of the batch
  int64_t active = 0;        // active (latent, token) pairs
};

// The loss of a batch x [B, d_in] and its gradients (by hand: TopK passes the gradient to the k
// selected pre-activations where they are positive). `dead` [d_sae] bool marks the latents the AuxK
// loss may use (undefined or none: no AuxK). `buffers`: a previous step's gradients, reused for
// W_enc's and W_dec's when laid out as the parameters are (a training loop saves 150 MB of
// allocation a step at 24k latents).
TopKStep topk_loss_and_grads(const TopKParams& params, const torch::Tensor& x, int64_t k, const torch::Tensor& dead,
                             int64_t aux_k, double aux_coefficient, TopKParams buffers = {});

// Removes from grad_W_dec [d_sae, d_in] its component along each (unit) row of W_dec, in place: the
// step then moves rows along the sphere, to first order.
void remove_parallel_decoder_grad(const torch::Tensor& W_dec, torch::Tensor& grad_W_dec);
// Scales each row of W_dec to unit norm, in place.
void normalize_decoder_rows(torch::Tensor& W_dec);

// Per latent, the tokens since it last fired; dead once that reaches `dead_after_tokens`.
class DeadLatentTracker {
 public:
  DeadLatentTracker(int64_t d_sae, int64_t dead_after_tokens);
  // After a batch of `tokens` tokens in which the latents `fired` ([d_sae] bool) were active.
  void update(const torch::Tensor& fired, int64_t tokens);
  torch::Tensor dead() const;  // [d_sae] bool
  int64_t num_dead() const;
  torch::Tensor& tokens_since_fired() { return since_; }  // [d_sae] int64 (checkpointed)

 private:
  torch::Tensor since_;
  int64_t dead_after_;
};

// The geometric median of the rows of x [n, d] (Weiszfeld's iterations, in float64).
torch::Tensor geometric_median(const torch::Tensor& x, int max_iterations = 100, double tolerance = 1e-6);

}  // namespace sae_training

}  // namespace nnterp
