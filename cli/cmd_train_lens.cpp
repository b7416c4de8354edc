// nnterp train-lens [MODEL] --prompts FILE --out LENS.safetensors: trains a tuned lens (per-layer
// affine translators, docs/tuned_lens.md) on the model's own activations, with a progress bar,
// checkpoints and --resume; then prints, per layer, the logit lens's and the tuned lens's KL to the
// final distribution on the training prompts (or on --eval's).
#include <fmt/format.h>

#include <chrono>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/tuned_lens.hpp"
#include "progress.hpp"

namespace nnterp::cli {

struct TrainLensCmd : CommonOptions {
  PromptSource source;
  std::string out, checkpoint, optimizer = "sgd", eval;
  int64_t steps = 250, batch_size = 32, checkpoint_every = 50, warmup = -1;
  double lr = 0, weight_decay = 1e-3;
  uint64_t seed = 42;
  bool resume = false, quiet = false;
};

static TunedLensTrainOptions train_options(const TrainLensCmd& o) {
  if (o.resume && o.checkpoint.empty()) throw UsageError("--resume needs --checkpoint FILE (the checkpoint to resume from)");
  TunedLensTrainOptions t;
  t.steps = o.steps;
  t.batch_size = o.batch_size;
  t.optimizer = parse_lens_optimizer(o.optimizer, "--optimizer");
  t.lr = o.lr;
  t.weight_decay = o.weight_decay;
  t.warmup_steps = o.warmup;
  t.seed = o.seed;
  t.checkpoint = o.checkpoint;
  t.checkpoint_every = o.checkpoint_every;
  t.resume = o.resume;
  return t;
}

// Per layer, KL(final || lens) of the logit lens and of the trained lens on `prompts` (`what`).
static void print_kl_table(const StandardizedTransformer& model, const TraceInput& prompts, const std::string& what,
                           const TunedLens& lens, int64_t batch_size) {
  auto plain = lens_kl_to_final(model, prompts, TunedLens::identity(model), batch_size);
  auto tuned = lens_kl_to_final(model, prompts, lens, batch_size);
  fmt::print("KL(final || lens) on {}, nats per token:\n  layer  logit lens  tuned lens\n", what);
  for (int64_t l = 0; l < model.num_layers(); ++l)
    fmt::print("  {:>5}  {:>10.4f}  {:>10.4f}{}\n", l, plain[l].item<double>(), tuned[l].item<double>(),
               l + 1 == model.num_layers() ? "  (last layer: identity, never trained)" : "");
}

static void run_train_lens(const TrainLensCmd& o) {
  auto options = train_options(o);  // every option checked before the model loads
  auto model = load_model(o);
  auto prompts = resolve_prompts(o.source);
  Progress bar(o.steps, "steps", progress_wanted(o.quiet));
  options.on_step = [&](const TunedLensTrainProgress& p) { bar.update(p.step); };
  const auto start = std::chrono::steady_clock::now();
  TunedLens lens = train_tuned_lens(model, prompts, options);
  bar.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  lens.save(o.out);
  fmt::print("trained {} steps in {:.1f} s; train loss (mean KL over layers 0-{}, last steps) {:.4f} nats\n",
             lens.info().steps, seconds, model.num_layers() - 2, lens.info().train_loss);
  if (o.eval.empty()) print_kl_table(model, prompts, "the training prompts", lens, o.batch_size);
  else print_kl_table(model, TraceInput(io::read_prompt_file(o.eval)), o.eval, lens, o.batch_size);
  fmt::print(stderr, "wrote {}\n", o.out);
}

static CommandRegistration train_lens_command(42, [](CLI::App& app) {
  auto o = std::make_shared<TrainLensCmd>();
  auto* cmd = app.add_subcommand("train-lens", "train a tuned lens (per-layer affine translators) on the model's own activations");
  add_model_options(*cmd, *o);
  add_prompt_options(*cmd, o->source, "", "training prompts");
  cmd->add_option("--out", o->out, "write the lens to this safetensors file")->required();
  positive_integer(cmd->add_option("--steps", o->steps, "optimiser steps (default 250)"));
  positive_integer(cmd->add_option("--batch-size", o->batch_size, "prompts per step, every token of each (default 32)"));
  cmd->add_option("--optimizer", o->optimizer, "sgd (default: Nesterov momentum, as the tuned-lens package) or adam");
  positive_number(cmd->add_option("--lr", o->lr, "learning rate (default: 0.1 for sgd, 1e-3 for adam)"));
  non_negative_number(cmd->add_option("--weight-decay", o->weight_decay, "weight decay (default 1e-3)"));
  non_negative_integer(cmd->add_option("--warmup", o->warmup, "linear warmup steps (default: 0 for sgd, steps/5 for adam)"));
  non_negative_integer(cmd->add_option("--seed", o->seed, "seed of the order prompts are drawn in (default 42)"));
  cmd->add_option("--checkpoint", o->checkpoint, "write a checkpoint (translators, optimiser state, step) to this file");
  positive_integer(cmd->add_option("--checkpoint-every", o->checkpoint_every, "steps between checkpoints (default 50; and at the end)"));
  cmd->add_flag("--resume", o->resume, "continue from --checkpoint: the same lens as a run never interrupted");
  cmd->add_option("--eval", o->eval, "prompts file to report the KL table on (default: the training prompts)")->check(CLI::ExistingFile);
  add_quiet_option(*cmd, o->quiet);
  cmd->footer("Examples:\n  nnterp train-lens --prompts models/default/corpus/train.txt --out lens.safetensors\n"
              "  nnterp train-lens path/to/model --prompts corpus.txt --out lens.safetensors --steps 1000 --checkpoint ckpt.safetensors\n"
              "  nnterp train-lens path/to/model --prompts corpus.txt --out lens.safetensors --steps 1000 --checkpoint ckpt.safetensors --resume\n"
              "  nnterp logit-lens --prompt \"The capital of France is\" --tuned lens.safetensors");
  cmd->callback([o] { run_train_lens(*o); });
});

}  // namespace nnterp::cli
