// Training a tuned lens (the recipe of the tuned-lens package, AlignmentResearch/tuned-lens): per
// step, one forward of the frozen model over a batch of prompts; for every layer but the last, the
// mean over unpadded positions of KL(final || softmax(project_on_vocab(translate(h)))), backpropagated
// layer by layer into its translator; the gradient clipped to norm 1; SGD with Nesterov momentum
// (or Adam) under a linear schedule. Checkpoints hold everything a step depends on, so a resumed
// run repeats the uninterrupted one bit for bit.
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include <torch/nn/utils/clip_grad.h>  // after torch/types.h and <vector>: it includes neither
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include "methods/method_utils.hpp"
#include "methods/tuned_lens_internal.hpp"
#include "nnterp/error.hpp"
#include "nnterp/tuned_lens.hpp"

namespace nnterp {

namespace tuned_lens_training {  // named, not anonymous: the library is a unity build

using tuned_lens_detail::LayerStates;

constexpr int64_t kLossWindow = 10;  // train_loss: the mean of the last steps' losses

std::string number_text(double x) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", x);
  return text;
}

// The options with their defaults resolved (what a checkpoint records and a resume must match).
TunedLensTrainOptions resolved(TunedLensTrainOptions o) {
  const bool adam = o.optimizer == LensOptimizer::Adam;
  // SGD: PyTorch's momentum scales the step by 1 / (1 − β); the reference undoes it, lr 1 · (1 − β).
  if (o.lr == 0) o.lr = adam ? 1e-3 : 1.0 * (1 - o.momentum);
  if (o.warmup_steps < 0) o.warmup_steps = adam ? std::min<int64_t>(1000, o.steps / 5) : 0;
  return o;
}

void check_options(const TunedLensTrainOptions& o) {
  auto positive = [](double v, const char* name) {
    if (!(v > 0) || !std::isfinite(v))
      throw Error(ErrorKind::InvalidArgument, name, "must be a positive number, got " + number_text(v));
  };
  if (o.steps < 1) throw Error(ErrorKind::InvalidArgument, "steps", "must be at least 1, got " + std::to_string(o.steps));
  methods_detail::check_batch_size(o.batch_size);
  positive(o.lr, "lr");
  positive(o.max_grad_norm, "max_grad_norm");
  if (o.momentum < 0 || o.momentum >= 1) throw Error(ErrorKind::InvalidArgument, "momentum", "must be in [0, 1), got " + number_text(o.momentum));
  if (o.weight_decay < 0) throw Error(ErrorKind::InvalidArgument, "weight_decay", "must be >= 0, got " + number_text(o.weight_decay));
  if (o.checkpoint_every < 1)
    throw Error(ErrorKind::InvalidArgument, "checkpoint_every", "must be at least 1, got " + std::to_string(o.checkpoint_every));
  if (o.resume && o.checkpoint.empty())
    throw Error(ErrorKind::InvalidArgument, "resume", "needs a checkpoint path to resume from", "set checkpoint (--checkpoint FILE)");
}

// The linear schedule of the reference (transformers' get_linear_schedule_with_warmup): up to 1 over
// the warmup steps, then down to 0 at `steps`. `step` counts from 0.
double lr_factor(int64_t step, const TunedLensTrainOptions& o) {
  if (step < o.warmup_steps) return static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  return static_cast<double>(o.steps - step) / static_cast<double>(std::max<int64_t>(1, o.steps - o.warmup_steps));
}

// Which prompts each step reads: step s takes positions [s·B, (s+1)·B) of an endless sequence of
// epochs, each epoch a shuffle seeded by (seed, epoch). A function of the step alone, so a resumed
// run draws what the uninterrupted one would have. Fisher–Yates on mt19937_64 (not std::shuffle,
// whose result the standard leaves to the library): the same order on every platform.
class PromptOrder {
 public:
  PromptOrder(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  std::vector<int64_t> batch(int64_t step, int64_t batch_size) {
    std::vector<int64_t> rows;
    for (int64_t p = step * batch_size; p < (step + 1) * batch_size; ++p) rows.push_back(epoch(p / n_)[static_cast<size_t>(p % n_)]);
    return rows;
  }

 private:
  const std::vector<int64_t>& epoch(int64_t e) {
    if (e == epoch_index_) return order_;
    std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(e));
    order_.resize(static_cast<size_t>(n_));
    for (int64_t i = 0; i < n_; ++i) order_[static_cast<size_t>(i)] = i;
    for (int64_t i = n_ - 1; i > 0; --i) std::swap(order_[static_cast<size_t>(i)], order_[rng() % static_cast<uint64_t>(i + 1)]);
    epoch_index_ = e;
    return order_;
  }
  int64_t n_;
  uint64_t seed_;
  int64_t epoch_index_ = -1;
  std::vector<int64_t> order_;
};

// Rows `rows` of a left-padded batch, without the columns that are padding in all of them.
TokenBatch gather_rows(const TokenBatch& all, const std::vector<int64_t>& rows) {
  auto index = torch::tensor(rows, torch::kInt64);
  auto ids = all.input_ids.index_select(0, index);
  auto mask = all.attention_mask.defined() ? all.attention_mask.index_select(0, index) : torch::ones_like(ids);
  const int64_t first = mask.sum(0).nonzero().min().item<int64_t>();
  return TokenBatch{ids.narrow(1, first, ids.size(1) - first), mask.narrow(1, first, mask.size(1) - first)};
}

// FNV-1a over every unpadded token id: a resume checks that the prompts are the same.
std::string prompts_hash(const TokenBatch& all) {
  auto ids = all.input_ids.contiguous();
  auto mask = all.attention_mask.defined() ? all.attention_mask.contiguous() : torch::ones_like(ids);
  const int64_t* id = ids.data_ptr<int64_t>();
  auto mask64 = mask.to(torch::kInt64).contiguous();
  const int64_t* m = mask64.data_ptr<int64_t>();
  uint64_t h = 1469598103934665603ULL;
  for (int64_t i = 0; i < ids.numel(); ++i) {
    if (!m[i]) continue;
    for (int byte = 0; byte < 8; ++byte) h = (h ^ ((static_cast<uint64_t>(id[i]) >> (8 * byte)) & 0xff)) * 1099511628211ULL;
  }
  char text[20];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

// What a checkpoint records of the run; resuming compares every entry.
std::map<std::string, std::string> run_metadata(const TunedLensTrainOptions& o, const TokenBatch& all, const std::string& fingerprint) {
  return {{"train.steps", std::to_string(o.steps)},
          {"train.batch_size", std::to_string(o.batch_size)},
          {"train.optimizer", lens_optimizer_name(o.optimizer)},
          {"train.lr", number_text(o.lr)},
          {"train.momentum", number_text(o.momentum)},
          {"train.weight_decay", number_text(o.weight_decay)},
          {"train.warmup_steps", std::to_string(o.warmup_steps)},
          {"train.max_grad_norm", number_text(o.max_grad_norm)},
          {"train.seed", std::to_string(o.seed)},
          {"train.prompts", std::to_string(all.input_ids.size(0))},
          {"train.prompts_hash", prompts_hash(all)},
          {"fingerprint", fingerprint}};
}

double mean_of_last(const std::vector<double>& losses, int64_t n) {
  if (losses.empty()) return std::nan("");
  const auto k = std::min<size_t>(losses.size(), static_cast<size_t>(n));
  double sum = 0;
  for (size_t i = losses.size() - k; i < losses.size(); ++i) sum += losses[i];
  return sum / static_cast<double>(k);
}

// The trained translators (every layer's but the last) and their optimiser.
struct Training {
  TunedLens lens;
  std::vector<torch::Tensor> params;      // weight 0, bias 0, weight 1, ...: shared with `lens`
  std::vector<std::string> param_names;   // their tensor names in a lens file
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  int64_t step = 0;
  std::vector<double> losses;             // per step
};

Training start_training(const StandardizedTransformer& model, const TunedLensTrainOptions& o) {
  const int64_t L = model.num_layers(), H = model.hidden_size();
  auto options = torch::TensorOptions().dtype(torch::kFloat32).device(model.device());
  std::vector<torch::Tensor> w, b;
  for (int64_t l = 0; l < L; ++l) {
    w.push_back(torch::zeros({H, H}, options));
    b.push_back(torch::zeros({H}, options));
  }
  Training t;
  t.lens = TunedLens(std::move(w), std::move(b), TunedLens::identity(model).info());
  for (int l = 0; l + 1 < L; ++l) {  // the last layer's translator stays zero: no parameter
    for (const auto& [p, kind] : {std::pair{t.lens.weight(l), ".weight"}, std::pair{t.lens.bias(l), ".bias"}}) {
      t.params.push_back(p);  // the lens's own tensor (a handle to the same storage)
      t.params.back().requires_grad_(true);
      t.param_names.push_back("layer_translators." + std::to_string(l) + kind);
    }
  }
  if (o.optimizer == LensOptimizer::Adam)
    t.optimizer = std::make_unique<torch::optim::Adam>(
        t.params, torch::optim::AdamOptions(o.lr).betas({o.momentum, 0.999}).weight_decay(o.weight_decay).amsgrad(true));
  else
    t.optimizer = std::make_unique<torch::optim::SGD>(
        t.params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(true).weight_decay(o.weight_decay));
  return t;
}

std::string state_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

// ---- checkpoints ---------------------------------------------------------------------------------

void save_checkpoint(const Training& t, const TunedLensTrainOptions& o, const std::map<std::string, std::string>& run) {
  auto tensors = tuned_lens_detail::translator_tensors(t.lens);
  auto metadata = tuned_lens_detail::lens_metadata(t.lens);
  metadata.insert(run.begin(), run.end());
  metadata["checkpoint_step"] = std::to_string(t.step);
  auto& state = t.optimizer->state();
  for (size_t i = 0; i < t.params.size(); ++i) {
    auto it = state.find(state_key(t.params[i]));
    if (it == state.end()) continue;  // before the first step
    const std::string prefix = "optimizer." + t.param_names[i] + ".";
    if (o.optimizer == LensOptimizer::Adam) {
      const auto& s = static_cast<const torch::optim::AdamParamState&>(*it->second);
      tensors.emplace_back(prefix + "exp_avg", s.exp_avg());
      tensors.emplace_back(prefix + "exp_avg_sq", s.exp_avg_sq());
      tensors.emplace_back(prefix + "max_exp_avg_sq", s.max_exp_avg_sq());
      metadata["optimizer.adam_step"] = std::to_string(s.step());
    } else {
      tensors.emplace_back(prefix + "momentum_buffer", static_cast<const torch::optim::SGDParamState&>(*it->second).momentum_buffer());
    }
  }
  tensors.emplace_back("train.losses", torch::tensor(t.losses, torch::kFloat64));
  tuned_lens_detail::write_atomically(o.checkpoint, tensors, metadata);
}

torch::Tensor checkpoint_tensor(const io::SafetensorsFile& file, const std::string& name, const torch::Tensor& like) {
  if (!file.contains(name))
    throw Error(ErrorKind::MissingWeight, file.path().string(), "has no tensor '" + name + "'", "a checkpoint written by train_tuned_lens holds it");
  auto t = file.tensor(name);
  if (t.sizes() != like.sizes())
    throw Error(ErrorKind::Shape, file.path().string(), "tensor '" + name + "' has the wrong shape");
  return t.to(like.options()).clone();
}

void check_same_run(const io::SafetensorsFile& file, const std::map<std::string, std::string>& run) {
  for (const auto& [key, value] : run) {
    auto it = file.metadata().find(key);
    const std::string was = it == file.metadata().end() ? "(none)" : it->second;
    if (was != value)
      throw Error(ErrorKind::InvalidArgument, file.path().string(),
                  "is a checkpoint of another run: " + key + " was " + was + ", this run has " + value,
                  "resume with the same model, prompts and options, or start afresh (without resume)");
  }
}

void resume_from_checkpoint(Training& t, const StandardizedTransformer& model, const TunedLensTrainOptions& o,
                            const std::map<std::string, std::string>& run) {
  std::error_code ec;
  if (!std::filesystem::exists(o.checkpoint, ec))
    throw Error(ErrorKind::NotFound, o.checkpoint.string(), "no checkpoint to resume from", "start without resume");
  auto file = io::SafetensorsFile::open(o.checkpoint);
  check_same_run(*file, run);
  const TunedLens saved = tuned_lens_detail::read_lens(*file, model);
  torch::NoGradGuard no_grad;
  for (int l = 0; l + 1 < saved.num_layers(); ++l) {
    t.lens.weight(l).copy_(saved.weight(l));
    t.lens.bias(l).copy_(saved.bias(l));
  }
  if (!file->contains("train.losses"))
    throw Error(ErrorKind::MissingWeight, file->path().string(), "has no tensor 'train.losses'",
                "is it a lens rather than a checkpoint? a checkpoint is written by training with a checkpoint path");
  auto stored = file->tensor("train.losses").to(torch::kFloat64).contiguous();
  t.losses.assign(stored.data_ptr<double>(), stored.data_ptr<double>() + stored.numel());
  t.step = static_cast<int64_t>(t.losses.size());
  t.lens.info().steps = t.step;
  t.lens.info().train_loss = mean_of_last(t.losses, kLossWindow);
  if (t.step == 0) return;  // no optimiser state yet
  auto& state = t.optimizer->state();
  for (size_t i = 0; i < t.params.size(); ++i) {
    const std::string prefix = "optimizer." + t.param_names[i] + ".";
    const auto& p = t.params[i];
    if (o.optimizer == LensOptimizer::Adam) {
      auto s = std::make_unique<torch::optim::AdamParamState>();
      auto adam_step = file->metadata().find("optimizer.adam_step");
      if (adam_step == file->metadata().end())
        throw Error(ErrorKind::Format, file->path().string(), "has Adam's state but no metadata 'optimizer.adam_step'");
      s->step(std::stoll(adam_step->second));
      s->exp_avg(checkpoint_tensor(*file, prefix + "exp_avg", p));
      s->exp_avg_sq(checkpoint_tensor(*file, prefix + "exp_avg_sq", p));
      s->max_exp_avg_sq(checkpoint_tensor(*file, prefix + "max_exp_avg_sq", p));
      state[state_key(p)] = std::move(s);
    } else {
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(checkpoint_tensor(*file, prefix + "momentum_buffer", p));
      state[state_key(p)] = std::move(s);
    }
  }
}

// ---- one step ------------------------------------------------------------------------------------

double train_step(Training& t, const StandardizedTransformer& model, const TokenBatch& batch, const TunedLensTrainOptions& o) {
  LayerStates s = tuned_lens_detail::layer_states(model, batch);
  t.optimizer->zero_grad();
  double sum = 0;
  const int trained = static_cast<int>(model.num_layers()) - 1;
  for (int l = 0; l < trained; ++l) {
    auto kl = tuned_lens_detail::kl_to_final(s.final_logprobs, tuned_lens_detail::lens_logits(model, t.lens, l, s.hidden[static_cast<size_t>(l)]));
    auto loss = kl.mean();
    loss.backward();  // layer by layer: one [positions, vocab] graph alive at a time, as the reference
    sum += loss.item<double>();
  }
  torch::nn::utils::clip_grad_norm_(t.params, o.max_grad_norm);
  for (auto& group : t.optimizer->param_groups()) group.options().set_lr(o.lr * lr_factor(t.step, o));
  t.optimizer->step();
  return sum / trained;
}

}  // namespace tuned_lens_training

TunedLens train_tuned_lens(const StandardizedTransformer& model, const TraceInput& prompts, const TunedLensTrainOptions& options) {
  using namespace tuned_lens_training;
  const TunedLensTrainOptions o = resolved(options);
  check_options(o);
  if (model.num_layers() < 2)
    throw Error(ErrorKind::InvalidArgument, "model", "has one layer: its lens is the model's own distribution, nothing to train");
  const int64_t N = input_size(prompts);
  if (N == 0) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given");
  torch::AutoGradMode grad(true);
  const TokenBatch all = tokenize_left_padded(model, prompts);
  Training t = start_training(model, o);
  const auto run = run_metadata(o, all, t.lens.info().fingerprint);
  if (o.resume) resume_from_checkpoint(t, model, o, run);
  PromptOrder order(N, o.seed);
  while (t.step < o.steps) {
    t.losses.push_back(train_step(t, model, gather_rows(all, order.batch(t.step, o.batch_size)), o));
    ++t.step;
    t.lens.info().steps = t.step;
    t.lens.info().train_loss = mean_of_last(t.losses, kLossWindow);
    if (!o.checkpoint.empty() && (t.step % o.checkpoint_every == 0 || t.step == o.steps)) save_checkpoint(t, o, run);
    if (o.on_step) o.on_step(TunedLensTrainProgress{t.step, o.steps, t.losses.back()});
  }
  std::vector<torch::Tensor> w, b;
  for (int l = 0; l < t.lens.num_layers(); ++l) {
    w.push_back(t.lens.weight(l).detach().cpu().clone());
    b.push_back(t.lens.bias(l).detach().cpu().clone());
  }
  return TunedLens(std::move(w), std::move(b), t.lens.info());
}

}  // namespace nnterp
