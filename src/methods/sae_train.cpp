// train_topk_sae: a TopK SAE trained on collected activations (Gao et al. 2024; see sae_train.hpp
// and docs/sae.md, "Training"). The gradients are written by hand: only the k selected latents of a
// token carry gradient, so past the encoder's matmul a step works on [batch, k] gathers, not on
// dense [batch, d_sae] products (autograd would run four more dense matmuls of that size).
#include "nnterp/sae_train.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <vector>

#include "core/compute_threads.hpp"
#include "nnterp/collect.hpp"
#include "nnterp/error.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp {

namespace fs = std::filesystem;

namespace sae_training {

// Rows of W [F, d] gathered per token, in slices of tokens so the gather stays small: for each
// token b, fn(b0, rows [c, m, d]) over tokens [b0, b0 + c).
template <typename Fn>
static void for_each_gathered_slice(const torch::Tensor& W, const torch::Tensor& idx, Fn&& fn) {
  constexpr int64_t kSlice = 256;
  const int64_t B = idx.size(0), m = idx.size(1), d = W.size(1);
  for (int64_t b0 = 0; b0 < B; b0 += kSlice) {
    const int64_t c = std::min(kSlice, B - b0);
    fn(b0, W.index_select(0, idx.narrow(0, b0, c).reshape({-1})).view({c, m, d}));
  }
}

// Σ_j values[b, j] · W[idx[b, j]]: the decoding of sparse features, [B, d].
static torch::Tensor sparse_decode(const torch::Tensor& W, const torch::Tensor& idx, const torch::Tensor& values) {
  auto out = torch::empty({idx.size(0), W.size(1)}, W.options());
  for_each_gathered_slice(W, idx, [&](int64_t b0, const torch::Tensor& rows) {
    out.narrow(0, b0, rows.size(0)).copy_(torch::bmm(values.narrow(0, b0, rows.size(0)).unsqueeze(1), rows).squeeze(1));
  });
  return out;
}

// g[b] · W[idx[b, j]]: the gradient of the selected features given the output's gradient g, [B, m].
static torch::Tensor sampled_row_dots(const torch::Tensor& W, const torch::Tensor& idx, const torch::Tensor& g) {
  auto out = torch::empty(idx.sizes(), W.options());
  for_each_gathered_slice(W, idx, [&](int64_t b0, const torch::Tensor& rows) {
    out.narrow(0, b0, rows.size(0)).copy_(torch::bmm(rows, g.narrow(0, b0, rows.size(0)).unsqueeze(2)).squeeze(2));
  });
  return out;
}

// target[idx[b, j]] += values[b, j] · rows[b]: the transpose of sparse_decode, accumulated in place.
static void scatter_outer(torch::Tensor& target, const torch::Tensor& idx, const torch::Tensor& values, const torch::Tensor& rows) {
  constexpr int64_t kSlice = 256;
  const int64_t B = idx.size(0), m = idx.size(1), d = rows.size(1);
  for (int64_t b0 = 0; b0 < B; b0 += kSlice) {
    const int64_t c = std::min(kSlice, B - b0);
    auto outer = values.narrow(0, b0, c).unsqueeze(2) * rows.narrow(0, b0, c).unsqueeze(1);  // [c, m, d]
    target.index_add_(0, idx.narrow(0, b0, c).reshape({-1}), outer.view({c * m, d}));
  }
}

// The latents a step uses, per token: the k largest pre-activations, and for AuxK the aux_k largest
// among the dead latents. [B, m] each: latent ids and their pre-activations.
struct Selection {
  torch::Tensor idx, pre;
};

// Encodes x − b_dec a slice of tokens at a time, keeping only the selected latents: the [tokens,
// d_sae] pre-activations never exist whole (400 MB at batch 4096 × 24576 latents).
static void select_latents(const TopKParams& p, const torch::Tensor& centred_in, int64_t k, const torch::Tensor& dead_ids,
                           int64_t k_aux, Selection& main, Selection& aux) {
  const int64_t B = centred_in.size(0), F = p.W_enc.size(1);
  // 24 MB of pre-activations: under glibc's mmap threshold as configure_threads sets it (32 MB), so
  // the slices reuse the heap instead of faulting fresh pages in.
  const int64_t slice = std::max<int64_t>(1, (int64_t{6} << 20) / F);
  std::vector<torch::Tensor> idx, pre, aux_idx, aux_pre;
  for (int64_t b0 = 0; b0 < B; b0 += slice) {
    auto pre_slice = torch::addmm(p.b_enc, centred_in.narrow(0, b0, std::min(slice, B - b0)), p.W_enc);  // the one dense product
    auto top = pre_slice.topk(k, 1, /*largest=*/true, /*sorted=*/false);
    pre.push_back(std::get<0>(top));
    idx.push_back(std::get<1>(top));
    if (k_aux > 0) {
      auto top_dead = pre_slice.index_select(1, dead_ids).topk(k_aux, 1, /*largest=*/true, /*sorted=*/false);
      aux_pre.push_back(std::get<0>(top_dead));
      aux_idx.push_back(dead_ids.index_select(0, std::get<1>(top_dead).reshape({-1})).view(std::get<1>(top_dead).sizes()));
    }
  }
  main = {torch::cat(idx), torch::cat(pre)};
  if (k_aux > 0) aux = {torch::cat(aux_idx), torch::cat(aux_pre)};
}

// A zeroed gradient buffer shaped and laid out like `param`: `reuse` when it already is (no new
// allocation, no page faults for big parameters), else a new one.
static torch::Tensor zeroed_like(const torch::Tensor& param, torch::Tensor reuse) {
  if (reuse.defined() && reuse.sizes() == param.sizes() && reuse.strides() == param.strides() && reuse.dtype() == param.dtype())
    return reuse.zero_();
  return torch::zeros_like(param);
}

TopKStep topk_loss_and_grads(const TopKParams& p, const torch::Tensor& x, int64_t k, const torch::Tensor& dead, int64_t aux_k,
                             double aux_coefficient, TopKParams buffers) {
  torch::NoGradGuard no_grad;
  const int64_t B = x.size(0), F = p.W_enc.size(1);
  TopKStep step;
  // AuxK (Gao et al. §A.2) needs dead latents; SAELens' heuristic scales it down when they are few.
  auto dead_ids = dead.defined() ? dead.nonzero().reshape({-1}) : torch::empty({0}, torch::kInt64);
  const int64_t num_dead = dead_ids.numel();
  const int64_t k_aux = aux_coefficient > 0 ? std::min(aux_k, num_dead) : 0;
  const double aux_scale = aux_k > 0 ? std::min(1.0, static_cast<double>(num_dead) / static_cast<double>(aux_k)) : 0.0;

  auto centred_in = x - p.b_dec;  // apply_b_dec_to_input
  Selection main, aux;
  select_latents(p, centred_in, k, dead_ids, k_aux, main, aux);
  auto values = main.pre.clamp_min(0);
  auto error = sparse_decode(p.W_dec, main.idx, values) + p.b_dec - x;  // x̂ − x
  step.mse = error.pow(2).sum(1).mean().item<double>();
  step.variance = (x - x.mean(0)).pow(2).sum(1).mean().item<double>();
  auto g = error * (2.0 / static_cast<double>(B));  // ∂mse/∂x̂

  TopKParams& grads = step.grads;
  grads.W_dec = zeroed_like(p.W_dec, buffers.W_dec);
  scatter_outer(grads.W_dec, main.idx, values, g);
  auto dpre = sampled_row_dots(p.W_dec, main.idx, g) * main.pre.gt(0);  // relu: no gradient below 0
  auto dpre_idx = main.idx;
  if (k_aux > 0) {
    // The aux latents reconstruct the residual x − x̂ (a constant here), without b_dec.
    auto aux_values = aux.pre.clamp_min(0);
    auto aux_error = sparse_decode(p.W_dec, aux.idx, aux_values) + error;  // ê − (x − x̂)
    step.aux = aux_error.pow(2).sum(1).mean().item<double>();
    auto g_aux = aux_error * (2.0 * aux_coefficient * aux_scale / static_cast<double>(B));
    scatter_outer(grads.W_dec, aux.idx, aux_values, g_aux);
    dpre_idx = torch::cat({main.idx, aux.idx}, 1);
    dpre = torch::cat({dpre, sampled_row_dots(p.W_dec, aux.idx, g_aux) * aux.pre.gt(0)}, 1);
  }
  grads.b_enc = torch::zeros({F}, p.b_enc.options()).index_add_(0, dpre_idx.reshape({-1}), dpre.reshape({-1}));
  // W_enc's gradient is accumulated by latent ([d_sae, d_in] rows), then seen as [d_in, d_sae]; it is
  // laid out as W_enc is when W_enc is itself a transposed [d_sae, d_in] tensor (the trainer's).
  grads.W_enc = zeroed_like(p.W_enc, buffers.W_enc);
  auto W_enc_t = grads.W_enc.t();
  if (W_enc_t.is_contiguous()) {
    scatter_outer(W_enc_t, dpre_idx, dpre, centred_in);
  } else {
    auto rows = torch::zeros({F, x.size(1)}, p.W_enc.options());
    scatter_outer(rows, dpre_idx, dpre, centred_in);
    W_enc_t.copy_(rows);
  }
  // b_dec reaches the loss twice: added to x̂, and subtracted from the encoder's input.
  grads.b_dec = g.sum(0) - torch::mv(p.W_enc, grads.b_enc);

  auto active = main.pre.gt(0);
  step.active = active.sum().item<int64_t>();
  step.fired = torch::zeros({F}, torch::kBool).index_fill_(0, main.idx.masked_select(active), true);
  return step;
}

// Whether a row kernel can read these [rows, cols] tensors as plain float arrays.
static bool plain_float_rows(const torch::Tensor& a, const torch::Tensor& b) {
  return a.dim() == 2 && a.scalar_type() == torch::kFloat32 && a.is_contiguous() && a.device().is_cpu() && b.sizes() == a.sizes() &&
         b.scalar_type() == torch::kFloat32 && b.is_contiguous() && b.device().is_cpu();
}

// Threads for a fused loop over `work` floats: one below 4M (16 MB), where OpenMP's workers, spinning
// after the loop, would slow the OpenBLAS threads of the next matmul more than they help.
static int threads_for(int64_t work) { return work >= (int64_t{1} << 22) ? std::max(1, compute_threads()) : 1; }

void remove_parallel_decoder_grad(const torch::Tensor& W_dec, torch::Tensor& grad_W_dec) {
  torch::NoGradGuard no_grad;
  if (!plain_float_rows(W_dec, grad_W_dec)) {
    grad_W_dec.sub_((grad_W_dec * W_dec).sum(1, /*keepdim=*/true) * W_dec);
    return;
  }
  // One pass per row (the torch expression above makes five over the whole matrix).
  const int64_t rows = W_dec.size(0), cols = W_dec.size(1);
  const float* w = W_dec.data_ptr<float>();
  float* g = grad_W_dec.data_ptr<float>();
#pragma omp parallel for num_threads(threads_for(rows * cols)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* wr = w + r * cols;
    float* gr = g + r * cols;
    double dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < cols; ++c) dot += static_cast<double>(gr[c]) * wr[c];
    const float along = static_cast<float>(dot);
    for (int64_t c = 0; c < cols; ++c) gr[c] -= along * wr[c];
  }
}

void normalize_decoder_rows(torch::Tensor& W_dec) {
  torch::NoGradGuard no_grad;
  if (!plain_float_rows(W_dec, W_dec)) {
    W_dec.div_(W_dec.norm(2, 1, /*keepdim=*/true).clamp_min(1e-12));
    return;
  }
  const int64_t rows = W_dec.size(0), cols = W_dec.size(1);
  float* w = W_dec.data_ptr<float>();
#pragma omp parallel for num_threads(threads_for(rows * cols)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float* wr = w + r * cols;
    double sq = 0;
#pragma omp simd reduction(+ : sq)
    for (int64_t c = 0; c < cols; ++c) sq += static_cast<double>(wr[c]) * wr[c];
    const float inv = static_cast<float>(1.0 / std::max(std::sqrt(sq), 1e-12));
    for (int64_t c = 0; c < cols; ++c) wr[c] *= inv;
  }
}

DeadLatentTracker::DeadLatentTracker(int64_t d_sae, int64_t dead_after_tokens)
    : since_(torch::zeros({d_sae}, torch::kInt64)), dead_after_(dead_after_tokens) {}

void DeadLatentTracker::update(const torch::Tensor& fired, int64_t tokens) {
  since_.add_(tokens).masked_fill_(fired, 0);
}

torch::Tensor DeadLatentTracker::dead() const { return since_.ge(dead_after_); }
int64_t DeadLatentTracker::num_dead() const { return dead().sum().item<int64_t>(); }

torch::Tensor geometric_median(const torch::Tensor& x, int max_iterations, double tolerance) {
  torch::NoGradGuard no_grad;
  auto points = x.to(torch::kFloat64);
  auto median = points.mean(0);
  for (int i = 0; i < max_iterations; ++i) {
    auto weights = (points - median).norm(2, 1).clamp_min(1e-12).reciprocal();
    auto next = (weights.unsqueeze(1) * points).sum(0) / weights.sum();
    const double moved = (next - median).norm().item<double>();
    median = next;
    if (moved <= tolerance * (1.0 + median.norm().item<double>())) break;
  }
  return median.to(x.scalar_type());
}

}  // namespace sae_training

// ---- the training loop --------------------------------------------------------------------------

namespace sae_train_impl {

using sae_training::DeadLatentTracker;
using sae_training::TopKParams;

constexpr const char* kCheckpointFormat = "nnterp.sae_train_checkpoint";
constexpr int64_t kInMemoryChunkRows = int64_t{1} << 18;
constexpr int64_t kInitSampleTokens = 65'536;

const std::array<const char*, 4> kParamNames{"W_enc", "b_enc", "W_dec", "b_dec"};
std::array<torch::Tensor*, 4> fields(TopKParams& p) { return {&p.W_enc, &p.b_enc, &p.W_dec, &p.b_dec}; }

// SplitMix64: independent seeds for the streams a seed drives (init, order, shuffles, split).
uint64_t mix(uint64_t seed, uint64_t a, uint64_t b = 0) {
  uint64_t z = seed ^ (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
at::Generator generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }
enum Stream : uint64_t { kInit = 1, kOrder, kShuffle, kHoldout };

// Where the tokens come from: chunks of rows (a collection's shards, or slices of one tensor).
struct TokenChunks {
  int64_t d_in = 0;
  std::vector<int64_t> rows;                   // per chunk
  std::function<torch::Tensor(int64_t)> load;  // chunk i as float32 [rows[i], d_in]
};

// Which rows of chunk `c` are held out (the same on every pass, from the seed alone).
torch::Tensor heldout_mask(int64_t c, int64_t n, const SaeTrainOptions& o) {
  if (o.holdout_fraction <= 0) return torch::zeros({n}, torch::kBool);
  return torch::rand({n}, generator(mix(o.seed, kHoldout, static_cast<uint64_t>(c))), torch::kFloat64).lt(o.holdout_fraction);
}

// The training rows in batches: chunks in a seeded order each epoch, each chunk's training rows
// shuffled together with the previous chunk's leftover (fewer than a batch). Memory: one chunk.
class BatchStream {
 public:
  BatchStream(const TokenChunks& data, const SaeTrainOptions& o) : data_(data), o_(o) {}
  torch::Tensor next() {
    while (buffer_.defined() ? buffer_.size(0) - offset_ < o_.batch_size : true) refill();
    auto batch = buffer_.narrow(0, offset_, o_.batch_size);
    offset_ += o_.batch_size;
    return batch;
  }

 private:
  void refill() {
    const int64_t chunks = static_cast<int64_t>(data_.rows.size());
    if (position_ == chunks || epoch_ == 0) {
      order_ = torch::randperm(chunks, generator(mix(o_.seed, kOrder, static_cast<uint64_t>(epoch_))), torch::kInt64);
      ++epoch_;
      position_ = 0;
    }
    const int64_t c = order_[position_].item<int64_t>();
    auto chunk = data_.load(c);
    auto train = chunk.index({heldout_mask(c, chunk.size(0), o_).logical_not()});
    auto merged = buffer_.defined() ? torch::cat({buffer_.narrow(0, offset_, buffer_.size(0) - offset_), train}) : train;
    auto gen = generator(mix(o_.seed, kShuffle, static_cast<uint64_t>(epoch_) << 32 | static_cast<uint64_t>(position_)));
    buffer_ = merged.index_select(0, torch::randperm(merged.size(0), gen, torch::kInt64));
    offset_ = 0;
    ++position_;
  }

  const TokenChunks& data_;
  const SaeTrainOptions& o_;
  torch::Tensor order_, buffer_;
  int64_t epoch_ = 0, position_ = 0, offset_ = 0;
};

// One read of the data before training: the training-token count, the held-out tokens and a
// sample of training tokens for the initialization.
struct DataSummary {
  int64_t train_rows = 0;
  torch::Tensor heldout, sample;
};

DataSummary summarize(const TokenChunks& data, const SaeTrainOptions& o) {
  DataSummary s;
  std::vector<torch::Tensor> heldout, sample;
  int64_t heldout_n = 0, sample_n = 0;
  for (int64_t c = 0; c < static_cast<int64_t>(data.rows.size()); ++c) {
    auto mask = heldout_mask(c, data.rows[static_cast<size_t>(c)], o);
    const int64_t held = mask.sum().item<int64_t>();
    s.train_rows += data.rows[static_cast<size_t>(c)] - held;
    const bool want_heldout = held > 0 && heldout_n < o.max_holdout_tokens;
    const bool want_sample = sample_n < kInitSampleTokens && held < data.rows[static_cast<size_t>(c)];
    if (!want_heldout && !want_sample) continue;
    auto chunk = data.load(c);
    if (want_heldout) {
      auto rows = chunk.index({mask});
      rows = rows.narrow(0, 0, std::min(rows.size(0), o.max_holdout_tokens - heldout_n));
      heldout_n += rows.size(0);
      heldout.push_back(rows);
    }
    if (want_sample) {
      auto rows = chunk.index({mask.logical_not()});
      rows = rows.narrow(0, 0, std::min(rows.size(0), kInitSampleTokens - sample_n));
      sample_n += rows.size(0);
      sample.push_back(rows);
    }
  }
  s.heldout = heldout.empty() ? torch::empty({0, data.d_in}) : torch::cat(heldout);
  s.sample = sample.empty() ? torch::empty({0, data.d_in}) : torch::cat(sample);
  return s;
}

void check(bool ok, const char* field, const std::string& what) {
  if (!ok) throw Error(ErrorKind::InvalidArgument, std::string("SaeTrainOptions::") + field, what);
}

void check_options(const SaeTrainOptions& o, int64_t d_in) {
  check(o.d_sae >= 1, "d_sae", "must be at least 1, got " + std::to_string(o.d_sae));
  check(o.k >= 1 && o.k <= o.d_sae, "k", "must be in 1..d_sae (" + std::to_string(o.d_sae) + "), got " + std::to_string(o.k));
  check(o.batch_size >= 1, "batch_size", "must be at least 1, got " + std::to_string(o.batch_size));
  check(o.steps >= 0, "steps", "must be 0 (use epochs) or more, got " + std::to_string(o.steps));
  check(o.steps > 0 || (o.epochs > 0 && std::isfinite(o.epochs)), "epochs", "must be positive when steps is 0");
  check(o.lr >= 0 && std::isfinite(o.lr), "lr", "must be 0 (the default) or positive");
  check(o.adam_beta1 >= 0 && o.adam_beta1 < 1, "adam_beta1", "must be in [0, 1)");
  check(o.adam_beta2 >= 0 && o.adam_beta2 < 1, "adam_beta2", "must be in [0, 1)");
  check(o.adam_eps > 0, "adam_eps", "must be positive");
  check(o.dead_after_tokens >= 1, "dead_after_tokens", "must be at least 1, got " + std::to_string(o.dead_after_tokens));
  check(o.aux_k >= 0 && o.aux_k <= o.d_sae, "aux_k", "must be in 0..d_sae (0: d_in / 2), got " + std::to_string(o.aux_k));
  check(o.aux_coefficient >= 0 && std::isfinite(o.aux_coefficient), "aux_coefficient", "must be 0 or positive");
  check(o.holdout_fraction >= 0 && o.holdout_fraction < 1, "holdout_fraction", "must be in [0, 1)");
  check(o.max_holdout_tokens >= 0, "max_holdout_tokens", "must be 0 or more");
  check(o.loss_curve_points >= 1, "loss_curve_points", "must be at least 1");
  check(o.checkpoint_every >= 0, "checkpoint_every", "must be 0 (only at the end) or more");
  check(!o.resume || !o.checkpoint.empty(), "resume", "needs a checkpoint file (SaeTrainOptions::checkpoint)");
  check(d_in >= 1, "activations", "have no features (d_in 0)");
}

// The state a checkpoint holds.
struct TrainState {
  TopKParams params, m, v;  // Adam's first and second moments beside the parameters
  DeadLatentTracker tracker;
  int64_t step = 0;
  std::vector<SaeTrainProgress> curve;
};

TrainState initial_state(const torch::Tensor& sample, const SaeTrainOptions& o, int64_t d_in) {
  TrainState st{{}, {}, {}, DeadLatentTracker(o.d_sae, o.dead_after_tokens), 0, {}};
  auto gen = generator(mix(o.seed, kInit));
  st.params.W_dec = torch::randn({o.d_sae, d_in}, gen, torch::kFloat32);  // uniform directions once normalized
  sae_training::normalize_decoder_rows(st.params.W_dec);
  // W_enc = W_decᵀ, kept as the transpose of a [d_sae, d_in] tensor: its gradient accumulates by
  // latent rows with no transposing copy, and the encoder's matmul reads it transposed for free.
  st.params.W_enc = st.params.W_dec.clone().t();
  st.params.b_enc = torch::zeros({o.d_sae});
  st.params.b_dec = sample.size(0) == 0 ? torch::zeros({d_in})
                    : o.b_dec_init == DecoderBiasInit::Mean ? sample.mean(0)
                                                            : sae_training::geometric_median(sample);
  for (size_t i = 0; i < kParamNames.size(); ++i) {
    *fields(st.m)[i] = torch::zeros_like(*fields(st.params)[i]);
    *fields(st.v)[i] = torch::zeros_like(*fields(st.params)[i]);
  }
  return st;
}

// torch.optim.Adam's update (no weight decay) for one parameter, in one pass over its memory (the
// torch expression takes eight). p, m and v share a dense layout (m and v are made like p); g is
// brought to it when it differs.
void adam_update(torch::Tensor& p, torch::Tensor g, torch::Tensor& m, torch::Tensor& v, int64_t t, double lr,
                 const SaeTrainOptions& o) {
  if (g.strides() != p.strides()) g = torch::empty_strided(p.sizes(), p.strides(), p.options()).copy_(g);
  const float b1 = static_cast<float>(o.adam_beta1), b2 = static_cast<float>(o.adam_beta2), eps = static_cast<float>(o.adam_eps);
  const float step_size = static_cast<float>(lr / (1 - std::pow(o.adam_beta1, static_cast<double>(t))));
  const float inv_c2 = static_cast<float>(1 / (1 - std::pow(o.adam_beta2, static_cast<double>(t))));
  float* pp = p.data_ptr<float>();
  float* pm = m.data_ptr<float>();
  float* pv = v.data_ptr<float>();
  const float* pg = g.data_ptr<float>();
  const int64_t n = p.numel();
#pragma omp parallel for num_threads(sae_training::threads_for(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = pg[i];
    const float mi = b1 * pm[i] + (1 - b1) * gi;
    const float vi = b2 * pv[i] + (1 - b2) * gi * gi;
    pm[i] = mi;
    pv[i] = vi;
    pp[i] -= step_size * mi / (std::sqrt(vi * inv_c2) + eps);
  }
}

// What must match for a checkpoint to be resumed: "key=value" per setting.
std::vector<std::pair<std::string, std::string>> run_identity(const SaeTrainOptions& o, int64_t d_in, int64_t steps, double lr,
                                                             int64_t train_rows) {
  auto num = [](double x) {
    std::ostringstream s;
    s.precision(17);
    s << x;
    return s.str();
  };
  return {{"d_in", std::to_string(d_in)},
          {"d_sae", std::to_string(o.d_sae)},
          {"k", std::to_string(o.k)},
          {"batch_size", std::to_string(o.batch_size)},
          {"steps", std::to_string(steps)},
          {"lr", num(lr)},
          {"seed", std::to_string(o.seed)},
          {"dead_after_tokens", std::to_string(o.dead_after_tokens)},
          {"aux_k", std::to_string(o.aux_k)},
          {"aux_coefficient", num(o.aux_coefficient)},
          {"b_dec_init", o.b_dec_init == DecoderBiasInit::Mean ? "mean" : "geometric_median"},
          {"normalize_activations", o.normalize_activations ? "true" : "false"},
          {"holdout_fraction", num(o.holdout_fraction)},
          {"adam", num(o.adam_beta1) + "," + num(o.adam_beta2) + "," + num(o.adam_eps)},
          {"train_tokens", std::to_string(train_rows)}};
}

constexpr int kCurveColumns = 9;
torch::Tensor curve_tensor(const std::vector<SaeTrainProgress>& curve) {
  auto t = torch::zeros({static_cast<int64_t>(curve.size()), kCurveColumns}, torch::kFloat64);
  auto a = t.accessor<double, 2>();
  for (size_t i = 0; i < curve.size(); ++i) {
    const auto& p = curve[i];
    const double row[kCurveColumns] = {double(p.step), double(p.steps), double(p.tokens), p.mse, p.normalized_mse,
                                       p.aux_loss,     p.l0,            p.dead_fraction,  p.seconds};
    for (int j = 0; j < kCurveColumns; ++j) a[static_cast<int64_t>(i)][j] = row[j];
  }
  return t;
}
std::vector<SaeTrainProgress> curve_from_tensor(const torch::Tensor& t) {
  std::vector<SaeTrainProgress> curve;
  auto c = t.to(torch::kFloat64).contiguous();
  auto a = c.accessor<double, 2>();
  for (int64_t i = 0; i < c.size(0); ++i)
    curve.push_back({static_cast<int64_t>(a[i][0]), static_cast<int64_t>(a[i][1]), static_cast<int64_t>(a[i][2]), a[i][3], a[i][4],
                     a[i][5], a[i][6], a[i][7], a[i][8]});
  return curve;
}

void save_checkpoint(const fs::path& path, TrainState& st, const std::vector<std::pair<std::string, std::string>>& identity) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (size_t i = 0; i < kParamNames.size(); ++i) {
    tensors.emplace_back(kParamNames[i], *fields(st.params)[i]);
    tensors.emplace_back(std::string("adam.m.") + kParamNames[i], *fields(st.m)[i]);
    tensors.emplace_back(std::string("adam.v.") + kParamNames[i], *fields(st.v)[i]);
  }
  tensors.emplace_back("tokens_since_fired", st.tracker.tokens_since_fired());
  tensors.emplace_back("loss_curve", curve_tensor(st.curve));
  std::map<std::string, std::string> metadata{{"format", kCheckpointFormat}, {"step", std::to_string(st.step)}};
  for (const auto& [key, value] : identity) metadata["run." + key] = value;
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  fs::path tmp = path;
  tmp += ".tmp";
  io::save_safetensors(tmp, tensors, metadata);
  std::error_code ec;
  fs::rename(tmp, path, ec);  // atomic: an interrupted write leaves the previous checkpoint
  if (ec) throw Error(ErrorKind::Io, path.string(), "cannot move the checkpoint into place: " + ec.message());
}

void load_checkpoint(const fs::path& path, TrainState& st, const std::vector<std::pair<std::string, std::string>>& identity) {
  auto file = io::SafetensorsFile::open(path);
  const auto& meta = file->metadata();
  auto meta_value = [&](const std::string& key) {
    auto it = meta.find(key);
    return it == meta.end() ? std::string() : it->second;
  };
  if (meta_value("format") != kCheckpointFormat)
    throw Error(ErrorKind::Format, path.string(), "is not an SAE training checkpoint (no format \"" + std::string(kCheckpointFormat) + "\")");
  for (const auto& [key, value] : identity)
    if (meta_value("run." + key) != value)
      throw Error(ErrorKind::InvalidArgument, path.string(),
                  "was written by another training run: " + key + " was " + meta_value("run." + key) + ", now " + value,
                  "resume with the same options and activations, or start afresh (no resume, or another checkpoint file)");
  auto tensor = [&](const std::string& name, const torch::Tensor& like) {
    if (!file->contains(name)) throw Error(ErrorKind::Format, path.string(), "has no tensor '" + name + "'");
    auto t = file->tensor(name);
    if (t.sizes() != like.sizes() || t.scalar_type() != like.scalar_type())
      throw Error(ErrorKind::Shape, path.string(), "tensor '" + name + "' has the wrong shape or dtype");
    // Laid out as a fresh run lays it out (W_enc transposed), so the resumed steps compute alike.
    return torch::empty_strided(like.sizes(), like.strides(), like.options()).copy_(t);
  };
  for (size_t i = 0; i < kParamNames.size(); ++i) {
    *fields(st.params)[i] = tensor(kParamNames[i], *fields(st.params)[i]);
    *fields(st.m)[i] = tensor(std::string("adam.m.") + kParamNames[i], *fields(st.m)[i]);
    *fields(st.v)[i] = tensor(std::string("adam.v.") + kParamNames[i], *fields(st.v)[i]);
  }
  st.tracker.tokens_since_fired() = tensor("tokens_since_fired", st.tracker.tokens_since_fired());
  if (!file->contains("loss_curve")) throw Error(ErrorKind::Format, path.string(), "has no tensor 'loss_curve'");
  st.curve = curve_from_tensor(file->tensor("loss_curve"));
  try {
    st.step = std::stoll(meta_value("step"));
  } catch (const std::exception&) {
    throw Error(ErrorKind::Format, path.string(), "metadata 'step' is not an integer");
  }
}

// The SAE the parameters make, with the input scale folded in: it reads raw activations.
Sae make_sae(const TopKParams& p, double scale, const SaeTrainOptions& o, int64_t d_in) {
  SaeConfig c;
  c.activation = SaeActivation::TopK;
  c.d_in = c.d_out = d_in;
  c.d_sae = o.d_sae;
  c.k = o.k;
  c.apply_b_dec_to_input = true;
  c.normalization = SaeNormalization::None;
  c.architecture = "topk";
  c.format = "saelens";
  c.input_point = c.output_point = o.point;
  c.model_name = o.model_name;
  SaeWeights w;
  w.W_enc = (p.W_enc * scale).contiguous();
  w.b_enc = p.b_enc.clone();
  w.W_dec = (p.W_dec / scale).contiguous();
  w.b_dec = p.b_dec / scale;
  return Sae(std::move(c), std::move(w));
}

// FVE and L0 of the SAE on the held-out tokens.
void evaluate(const Sae& sae, const torch::Tensor& heldout, SaeTrainStats& stats) {
  torch::NoGradGuard no_grad;
  stats.heldout_tokens = heldout.size(0);
  if (heldout.size(0) == 0) return;
  const auto mean = heldout.to(torch::kFloat64).mean(0);
  double error = 0, variance = 0, active = 0;
  for (int64_t b = 0; b < heldout.size(0); b += 4096) {
    auto x = heldout.narrow(0, b, std::min<int64_t>(4096, heldout.size(0) - b));
    auto features = sae.encode(x);
    auto x_hat = sae.decode(features, x);
    error += (x - x_hat).to(torch::kFloat64).pow(2).sum().item<double>();
    variance += (x.to(torch::kFloat64) - mean).pow(2).sum().item<double>();
    active += features.ne(0).sum().item<double>();
  }
  stats.heldout_nmse = variance > 0 ? error / variance : 0;
  stats.heldout_fve = 1 - stats.heldout_nmse;
  stats.heldout_l0 = active / static_cast<double>(heldout.size(0));
}

// Averages over the steps of one loss-curve interval.
struct Interval {
  double mse = 0, variance = 0, aux = 0, active = 0;
  int64_t steps = 0, tokens = 0;
  void add(const sae_training::TopKStep& s, int64_t batch) {
    mse += s.mse;
    variance += s.variance;
    aux += s.aux;
    active += static_cast<double>(s.active);
    tokens += batch;
    ++steps;
  }
};

SaeTrainResult train(const TokenChunks& data, const SaeTrainOptions& o_in) {
  SaeTrainOptions o = o_in;
  check_options(o, data.d_in);
  const int64_t d_in = data.d_in;
  if (o.aux_k == 0) o.aux_k = std::min<int64_t>(o.d_sae, std::max<int64_t>(1, d_in / 2));
  const DataSummary summary = summarize(data, o);
  if (summary.train_rows == 0)
    throw Error(ErrorKind::InvalidArgument, "activations", "no token left to train on",
                "collect more tokens, or lower SaeTrainOptions::holdout_fraction");
  if (!torch::isfinite(summary.sample).all().item<bool>() || !torch::isfinite(summary.heldout).all().item<bool>())
    throw Error(ErrorKind::InvalidArgument, "activations", "hold NaN or infinite values");
  const int64_t steps = o.steps > 0 ? o.steps
                                    : std::max<int64_t>(1, static_cast<int64_t>(std::ceil(o.epochs * static_cast<double>(summary.train_rows) /
                                                                                         static_cast<double>(o.batch_size))));
  const double lr = o.lr > 0 ? o.lr : 2e-4 / std::sqrt(static_cast<double>(o.d_sae) / 16384.0);
  const double mean_norm = summary.sample.norm(2, 1).mean().item<double>();
  const double scale = o.normalize_activations && mean_norm > 0 ? std::sqrt(static_cast<double>(d_in)) / mean_norm : 1.0;
  const auto identity = run_identity(o, d_in, steps, lr, summary.train_rows);

  TrainState st = initial_state(summary.sample * scale, o, d_in);
  SaeTrainStats stats;
  if (o.resume && fs::exists(o.checkpoint)) {
    load_checkpoint(o.checkpoint, st, identity);
    stats.resumed = true;
  }
  BatchStream stream(data, o);
  for (int64_t s = 0; s < st.step; ++s) stream.next();  // the batches the checkpointed steps saw

  const int64_t log_every = std::max<int64_t>(1, steps / o.loss_curve_points);
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  const int64_t first_step = st.step;
  Interval interval;
  TopKParams grad_buffers;
  while (st.step < steps) {
    auto x = stream.next();
    if (scale != 1.0) x = x * scale;
    auto dead = o.aux_coefficient > 0 ? st.tracker.dead() : torch::Tensor();
    auto s = sae_training::topk_loss_and_grads(st.params, x, o.k, dead, o.aux_k, o.aux_coefficient, grad_buffers);
    sae_training::remove_parallel_decoder_grad(st.params.W_dec, s.grads.W_dec);
    ++st.step;
    for (size_t i = 0; i < kParamNames.size(); ++i)
      adam_update(*fields(st.params)[i], *fields(s.grads)[i], *fields(st.m)[i], *fields(st.v)[i], st.step, lr, o);
    sae_training::normalize_decoder_rows(st.params.W_dec);
    st.tracker.update(s.fired, x.size(0));
    interval.add(s, x.size(0));
    grad_buffers = s.grads;

    const bool log_point = st.step % log_every == 0 || st.step == steps;
    if (log_point) {
      const double n = static_cast<double>(interval.steps);
      st.curve.push_back({st.step, steps, st.step * o.batch_size, interval.mse / n,
                          interval.variance > 0 ? interval.mse / interval.variance : 0, interval.aux / n,
                          interval.active / static_cast<double>(interval.tokens),
                          static_cast<double>(st.tracker.num_dead()) / static_cast<double>(o.d_sae), seconds()});
      interval = Interval{};
    }
    const bool checkpoint_due = o.checkpoint_every > 0 ? st.step % o.checkpoint_every == 0 || st.step == steps : st.step == steps;
    if (!o.checkpoint.empty() && checkpoint_due) save_checkpoint(o.checkpoint, st, identity);
    if (log_point && o.on_progress) o.on_progress(st.curve.back());
  }

  stats.seconds = seconds();
  stats.steps = st.step;
  stats.train_tokens = summary.train_rows;
  stats.lr = lr;
  stats.norm_scaling_factor = scale;
  const int64_t trained = (st.step - first_step) * o.batch_size;
  stats.tokens_per_second = stats.seconds > 0 ? static_cast<double>(trained) / stats.seconds : 0;
  stats.dead_features = st.tracker.num_dead();
  stats.dead_fraction = static_cast<double>(stats.dead_features) / static_cast<double>(o.d_sae);
  stats.train_nmse = st.curve.empty() ? 0 : st.curve.back().normalized_mse;
  stats.loss_curve = st.curve;
  SaeTrainResult result{make_sae(st.params, scale, o, d_in), stats};
  evaluate(result.sae, summary.heldout, result.stats);
  return result;
}

// "gpt2" from a hub cache path ".../models--openai-community--gpt2/snapshots/<hash>", else the folder's name.
std::string model_name_from_path(const std::string& path) {
  const auto at = path.find("models--");
  if (at != std::string::npos) {
    std::string name = path.substr(at + 8, path.find('/', at) - at - 8);
    for (size_t dash; (dash = name.find("--")) != std::string::npos;) name.replace(dash, 2, "/");
    return name;
  }
  fs::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace sae_train_impl

SaeTrainResult train_topk_sae(const torch::Tensor& activations, const SaeTrainOptions& options) {
  if (!activations.defined() || activations.dim() != 2 || !activations.is_floating_point() || activations.size(0) == 0)
    throw Error(ErrorKind::Shape, "activations", "expected a non-empty float tensor [tokens, d_in]",
                "one row per token, e.g. ActivationShards::layer(i) of an all-token collection");
  sae_train_impl::TokenChunks data;
  data.d_in = activations.size(1);
  const auto source = activations.detach().to(torch::kCPU);
  const int64_t N = source.size(0), chunk = sae_train_impl::kInMemoryChunkRows;
  for (int64_t b = 0; b < N; b += chunk) data.rows.push_back(std::min(chunk, N - b));
  data.load = [source, chunk](int64_t i) { return source.narrow(0, i * chunk, std::min(chunk, source.size(0) - i * chunk)).to(torch::kFloat32); };
  return sae_train_impl::train(data, options);
}

SaeTrainResult train_topk_sae(const fs::path& activations_dir, int layer, const SaeTrainOptions& options) {
  auto shards = std::make_shared<ActivationShards>(ActivationShards::open(activations_dir));
  if (std::find(shards->layers().begin(), shards->layers().end(), layer) == shards->layers().end()) {
    std::string have;
    for (int l : shards->layers()) have += (have.empty() ? "" : ", ") + std::to_string(l);
    throw Error(ErrorKind::InvalidArgument, activations_dir.string(),
                "layer " + std::to_string(layer) + " was not collected (layers: " + have + ")");
  }
  sae_train_impl::TokenChunks data;
  data.d_in = shards->hidden_size();
  for (int64_t i = 0; i < shards->num_shards(); ++i) data.rows.push_back(shards->shard_rows(i));
  data.load = [shards, layer](int64_t i) { return shards->shard_layer(i, layer).to(torch::kFloat32); };
  SaeTrainOptions o = options;
  if (!o.point) o.point = PointId{shards->point(), layer};
  if (o.model_name.empty()) o.model_name = sae_train_impl::model_name_from_path(shards->model());
  return sae_train_impl::train(data, o);
}

}  // namespace nnterp
