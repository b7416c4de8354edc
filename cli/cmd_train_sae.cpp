// nnterp train-sae [MODEL] --activations DIR --features N --k K --out DIR: a TopK SAE trained on
// activations collected with `nnterp collect --all-tokens`, written in the SAELens format.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "nnterp/collect.hpp"
#include "nnterp/error.hpp"
#include "nnterp/sae_train.hpp"
#include "nnterp/threading.hpp"
#include "progress.hpp"

namespace nnterp::cli {

struct TrainSaeCmd {
  std::string model, activations, out, checkpoint, b_dec_init = "geometric-median";
  int layer = -1, threads = 0;
  int64_t features = 0, k = 0, steps = 0, batch_size = 4096, dead_after = 10'000'000, aux_k = 0, checkpoint_every = 0;
  uint64_t seed = 0;
  double epochs = 1, lr = 0, aux_coefficient = 1.0 / 32, holdout = 0.05;
  bool normalize = false, resume = false, quiet = false, json = false;
};

// The collection in --activations, and the layer to train on (--layer, or its only layer).
static std::pair<ActivationShards, int> open_sae_activations(const TrainSaeCmd& o) {
  namespace fs = std::filesystem;
  if (!fs::exists(fs::path(o.activations) / "manifest.json"))
    throw Error(ErrorKind::NotFound, "--activations", "'" + o.activations + "' is not an activation collection (no manifest.json)",
                "collect one first: nnterp collect MODEL --prompts FILE --layers L --all-tokens --out-dir " + o.activations);
  auto shards = ActivationShards::open(o.activations);
  std::string layers;
  for (int l : shards.layers()) layers += (layers.empty() ? "" : ", ") + std::to_string(l);
  if (o.layer < 0) {
    if (shards.layers().size() != 1)
      throw Error(ErrorKind::InvalidArgument, "--layer", "the collection holds layers " + layers + ": say which to train on");
    return {shards, shards.layers().front()};
  }
  if (std::find(shards.layers().begin(), shards.layers().end(), o.layer) == shards.layers().end())
    throw Error(ErrorKind::InvalidArgument, "--layer", fmt::format("layer {} was not collected in {} (layers: {})", o.layer, o.activations, layers));
  return {shards, o.layer};
}

static DecoderBiasInit parse_b_dec_init(const std::string& s) {
  if (s == "geometric-median") return DecoderBiasInit::GeometricMedian;
  if (s == "mean") return DecoderBiasInit::Mean;
  throw Error(ErrorKind::InvalidArgument, "--b-dec-init", "unknown initialization '" + s + "'", "geometric-median or mean");
}

static nlohmann::json train_progress_json(const SaeTrainProgress& p) {
  return {{"step", p.step},         {"tokens", p.tokens},  {"mse", p.mse},
          {"normalized_mse", p.normalized_mse}, {"aux_loss", p.aux_loss}, {"l0", p.l0},
          {"dead_fraction", p.dead_fraction},   {"seconds", p.seconds}};
}

static void print_train_sae_stats(const TrainSaeCmd& o, const SaeTrainResult& r, const std::string& point, int64_t tokens) {
  const auto& s = r.stats;
  const auto& c = r.sae.config();
  if (o.json) {
    nlohmann::json curve = nlohmann::json::array();
    for (const auto& p : s.loss_curve) curve.push_back(train_progress_json(p));
    nlohmann::json j{{"out", o.out},
                     {"activations", o.activations},
                     {"point", point},
                     {"d_in", c.d_in},
                     {"d_sae", c.d_sae},
                     {"k", c.k},
                     {"steps", s.steps},
                     {"batch_size", o.batch_size},
                     {"train_tokens", s.train_tokens},
                     {"lr", s.lr},
                     {"norm_scaling_factor", s.norm_scaling_factor},
                     {"heldout_tokens", s.heldout_tokens},
                     {"heldout_fve", s.heldout_fve},
                     {"heldout_nmse", s.heldout_nmse},
                     {"heldout_l0", s.heldout_l0},
                     {"train_nmse", s.train_nmse},
                     {"dead_features", s.dead_features},
                     {"dead_fraction", s.dead_fraction},
                     {"seconds", s.seconds},
                     {"tokens_per_second", s.tokens_per_second},
                     {"resumed", s.resumed},
                     {"loss_curve", curve}};
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("trained a TopK SAE on {}: d_in {}, d_sae {}, k {}\n", point, c.d_in, c.d_sae, c.k);
  fmt::print("  {} steps of {} tokens ({:.1f} epochs of {} training tokens), lr {:.3g}{}\n", s.steps, o.batch_size,
             static_cast<double>(s.steps * o.batch_size) / static_cast<double>(std::max<int64_t>(1, s.train_tokens)), s.train_tokens,
             s.lr, s.resumed ? ", resumed from " + o.checkpoint : "");
  fmt::print("  {:.1f} s, {:.0f} tokens/s\n", s.seconds, s.tokens_per_second);
  if (s.heldout_tokens > 0)
    fmt::print("  held out ({} of {} tokens): FVE {:.4f} (normalized MSE {:.4f}), L0 {:.2f}\n", s.heldout_tokens, tokens, s.heldout_fve,
               s.heldout_nmse, s.heldout_l0);
  fmt::print("  training: normalized MSE {:.4f} (last interval)\n", s.train_nmse);
  fmt::print("  dead latents: {} of {} ({:.1f}%), none fired in the last {} tokens\n", s.dead_features, c.d_sae, 100 * s.dead_fraction,
             o.dead_after);
  fmt::print("wrote {}/cfg.json and {}/sae_weights.safetensors (SAELens \"topk\")\n", o.out, o.out);
}

static void run_train_sae(const TrainSaeCmd& o) {
  if (!o.model.empty()) reject_prompt_as_model(o.model);
  const DecoderBiasInit b_dec_init = parse_b_dec_init(o.b_dec_init);
  if (o.resume && o.checkpoint.empty())
    throw Error(ErrorKind::InvalidArgument, "--resume", "needs --checkpoint FILE (the file to continue from)");
  configure_threads(o.threads);
  auto [shards, layer] = open_sae_activations(o);
  if (!shards.all_tokens())
    fmt::print(stderr, "nnterp train-sae: note: {} holds one token per prompt; SAEs are trained on every token "
                       "(nnterp collect --all-tokens)\n", o.activations);

  SaeTrainOptions options;
  options.d_sae = o.features;
  options.k = o.k;
  options.batch_size = o.batch_size;
  options.steps = o.steps;
  options.epochs = o.epochs;
  options.lr = o.lr;
  options.seed = o.seed;
  options.dead_after_tokens = o.dead_after;
  options.aux_k = o.aux_k;
  options.aux_coefficient = o.aux_coefficient;
  options.b_dec_init = b_dec_init;
  options.normalize_activations = o.normalize;
  options.holdout_fraction = o.holdout;
  options.checkpoint = o.checkpoint;
  options.checkpoint_every = o.checkpoint_every;
  options.resume = o.resume;
  if (!o.model.empty()) options.model_name = o.model;
  std::unique_ptr<Progress> bar;
  options.on_progress = [&](const SaeTrainProgress& p) {
    if (!bar) bar = std::make_unique<Progress>(p.steps, "steps", progress_wanted(o.quiet));
    bar->update(p.step);
  };
  auto result = train_topk_sae(o.activations, layer, options);
  if (bar) bar->finish();
  result.sae.save_saelens(o.out);
  print_train_sae_stats(o, result, PointId{shards.point(), layer}.name(), shards.num_rows());
}

static CommandRegistration train_sae_command(64, [](CLI::App& app) {
  auto o = std::make_shared<TrainSaeCmd>();
  auto* cmd = app.add_subcommand("train-sae", "train a TopK sparse autoencoder on collected activations (written in the SAELens format)");
  cmd->add_option("model", o->model,
                  "the model the activations come from, as cfg.json's model_name (default: the collection's model folder name)");
  cmd->add_option("--activations", o->activations, "a collection of every token's activations (nnterp collect --all-tokens --out-dir)")
      ->required();
  any_integer(cmd->add_option("--layer", o->layer, "the collected layer to train on (default: the collection's only layer)"));
  positive_integer(cmd->add_option("--features", o->features, "latents of the SAE (d_sae), e.g. 16 × the hidden size"))->required();
  positive_integer(cmd->add_option("--k", o->k, "active latents per token (TopK)"))->required();
  cmd->add_option("--out", o->out, "folder to write cfg.json + sae_weights.safetensors into")->required();
  non_negative_integer(cmd->add_option("--steps", o->steps, "optimizer steps (default: --epochs passes over the training tokens)"));
  positive_number(cmd->add_option("--epochs", o->epochs, "passes over the training tokens when --steps is not given (default 1)"));
  positive_integer(cmd->add_option("--batch-size", o->batch_size, "tokens per step (default 4096)"));
  non_negative_number(cmd->add_option("--lr", o->lr, "Adam's learning rate (default: 2e-4 / sqrt(features / 16384), Gao et al.)"));
  cmd->add_option("--seed", o->seed, "seed of the initialization, the shuffling and the held-out split (default 0)");
  positive_integer(cmd->add_option("--dead-after", o->dead_after, "a latent is dead once it has not fired in this many tokens (default 10000000)"));
  non_negative_integer(cmd->add_option("--aux-k", o->aux_k, "dead latents the AuxK loss uses (default: hidden size / 2)"));
  non_negative_number(cmd->add_option("--aux-coefficient", o->aux_coefficient, "weight of the AuxK loss (default 1/32)"));
  cmd->add_option("--b-dec-init", o->b_dec_init, "the decoder bias starts at: geometric-median (default) or mean of the tokens");
  cmd->add_flag("--normalize", o->normalize,
                "train on x · sqrt(d_in) / E‖x‖ (SAELens expected_average_only_in); the scale is folded into the saved weights");
  number_where(cmd->add_option("--holdout", o->holdout, "fraction of the tokens held out for the reported FVE (default 0.05)"),
               [](double v) { return v >= 0 && v < 1; }, "a fraction in [0, 1)");
  cmd->add_option("--checkpoint", o->checkpoint, "write the training state to this file (every --checkpoint-every steps and at the end)");
  non_negative_integer(cmd->add_option("--checkpoint-every", o->checkpoint_every, "steps between checkpoints (default: only at the end)"));
  cmd->add_flag("--resume", o->resume, "continue from --checkpoint when it exists (same options and activations)");
  non_negative_integer(cmd->add_option("--threads", o->threads, "threads for the matmuls (default: every core)"));
  add_quiet_option(*cmd, o->quiet);
  cmd->add_flag("--json", o->json, "print the statistics (and the loss curve) as JSON");
  cmd->footer("Examples:\n"
              "  nnterp collect --prompts models/default/corpus/train.txt --layers 2 --all-tokens --out-dir acts/\n"
              "  nnterp train-sae --activations acts/ --features 1024 --k 16 --epochs 20 --batch-size 1024 --out sae/\n"
              "  nnterp train-sae gpt2 --activations acts/ --layer 8 --features 24576 --k 32 --checkpoint ckpt.safetensors --resume --out sae/");
  cmd->callback([o] { run_train_sae(*o); });
});

}  // namespace nnterp::cli
