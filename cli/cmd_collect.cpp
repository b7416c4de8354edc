// nnterp collect MODEL --prompts FILE --out-dir DIR: the activations of one token of every prompt
// (or, --all-tokens, of every real token: what `nnterp train-sae` reads) at chosen layers, streamed
// to safetensors shards (resumable), or saved to one file (--out).
#include <fmt/format.h>
#include <optional>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "progress.hpp"

namespace nnterp::cli {

struct CollectCmd : CommonOptions {
  PromptSource source;
  ChatFlags chat;
  std::string layers, point = "layers.{i}.output", out_dir, out, save_dtype = "f32";
  int64_t idx = -1, batch_size = 32, shard_size = 0;
  double max_shard_mb = 256;
  bool overwrite = false, no_progress = false, all_tokens = false, skip_first_token = false;
  std::string sae_path;  // --sae: store this SAE's features of the activations
};

// The saved dtype: any model dtype but auto (activations have no checkpoint dtype).
static torch::ScalarType parse_save_dtype(const std::string& s) {
  if (auto dtype = parse_dtype_option(s, "--save-dtype")) return *dtype;
  throw Error(ErrorKind::InvalidArgument, "--save-dtype", "auto is not a dtype to save in", "float32, bfloat16 or float16");
}

static void run_collect(const CollectCmd& o) {
  if (o.out_dir.empty() && o.out.empty())
    throw Error(ErrorKind::InvalidArgument, "--out-dir / --out", "nowhere to write the activations",
                "give --out-dir DIR (shards) or --out FILE.safetensors");
  // Every option checked before the model loads.
  const Point point = parse_point_kind(o.point, /*residual_only=*/true);
  const torch::ScalarType save_dtype = parse_save_dtype(o.save_dtype);
  auto model = load_model(o);
  auto prompts = apply_chat(resolve_prompts(o.source), o.chat, model);
  CollectOptions co;
  co.layers = parse_layers(o.layers, model);
  co.idx = o.idx;
  co.all_tokens = o.all_tokens;
  co.skip_first_token = o.skip_first_token;
  co.point = point;
  co.batch_size = o.batch_size;
  co.out_dir = o.out_dir;
  co.shard_size = o.shard_size;
  co.max_shard_bytes = static_cast<int64_t>(o.max_shard_mb * 1024 * 1024);
  co.dtype = save_dtype;
  co.overwrite = o.overwrite;
  co.progress = progress_wanted(o.no_progress);
  if (!o.sae_path.empty()) {
    co.sae = std::make_shared<const Sae>(Sae::load(o.sae_path));
    if (o.layers.empty()) co.layers.clear();  // the SAE's layer (parse_layers gives every layer for none)
  }
  const int64_t width = co.sae ? co.sae->d_sae() : model.hidden_size();  // of a stored row
  auto r = collect_token_activations(model, prompts, co);
  if (!o.out.empty()) {
    auto acts = r.activations.defined() ? r.activations : load_activations(o.out_dir);
    std::vector<std::pair<std::string, torch::Tensor>> tensors{
        {"activations", acts}, {"layers", torch::tensor(std::vector<int64_t>(r.layers.begin(), r.layers.end()))}};
    if (o.all_tokens) {
      auto shards = r.activations.defined() ? std::optional<ActivationShards>() : ActivationShards::open(o.out_dir);
      tensors.emplace_back("prompt_index", shards ? shards->prompt_index() : r.prompt_index);
      tensors.emplace_back("position", shards ? shards->position() : r.position);
    } else {
      tensors.emplace_back("prompt_index", torch::arange(r.num_prompts, torch::kInt64));
    }
    write_results(o.out, tensors, model, "collect");
  }
  const double rate = r.seconds > 0 ? static_cast<double>(r.num_prompts) / r.seconds : 0.0;
  if (o.json) {
    nlohmann::json j{{"model", model.path().string()}, {"num_prompts", r.num_prompts}, {"layers", r.layers},
                     {"point", o.point},          {"idx", o.idx},                 {"hidden_size", width},
                     {"seconds", r.seconds},      {"prompts_per_second", rate}};
    if (co.sae) j["sae"] = {{"path", o.sae_path}, {"point", co.sae->config().input_point->name()}, {"d_sae", width}};
    if (o.all_tokens) {
      j.erase("idx");
      j["all_tokens"] = true;
      j["skip_first_token"] = o.skip_first_token;
      j["num_tokens"] = r.num_rows;
    }
    if (!o.out_dir.empty()) {
      j["out_dir"] = o.out_dir;
      j["shards"] = r.shards.size();
      j["shards_written"] = r.shards_written;
      j["shards_skipped"] = r.shards_skipped;
      j["shard_size"] = r.shard_size;
    }
    if (!o.out.empty()) j["out"] = o.out;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  const std::string rows = o.all_tokens ? fmt::format("{} prompts ({} tokens)", r.num_prompts, r.num_rows) : fmt::format("{} prompts", r.num_prompts);
  fmt::print("collected {} × {} layers × {} in {:.2f}s ({:.1f} prompts/s)\n", rows, r.layers.size(), width, r.seconds, rate);
  if (!o.out_dir.empty())
    fmt::print("{}: {} shards ({} written, {} already there) of up to {} {}\n", o.out_dir, r.shards.size(), r.shards_written,
               r.shards_skipped, r.shard_size, o.all_tokens ? "tokens" : "prompts");
  if (!o.out.empty()) fmt::print("wrote activations [layers, {}, hidden] to {}\n", o.all_tokens ? "tokens" : "prompts", o.out);
}

static CommandRegistration collect_command(50, [](CLI::App& app) {
  auto o = std::make_shared<CollectCmd>();
  auto* cmd = app.add_subcommand("collect", "collect one token's activations of many prompts (streamed to disk, resumable)");
  add_model_options(*cmd, *o);
  add_prompt_options(*cmd, o->source);
  add_chat_options(*cmd, o->chat);
  cmd->add_option("--layers", o->layers, "layers: all (default), 3, 0,4,8, 2-5, -1");
  auto* idx = any_integer(cmd->add_option("--idx", o->idx, "token of each prompt: -1 (default) is the last, 0 the first"));
  auto* all_tokens = cmd->add_flag("--all-tokens", o->all_tokens,
                                   "every real (unpadded) token of every prompt, not one (for `nnterp train-sae`); shards add `position`");
  all_tokens->excludes(idx);
  cmd->add_flag("--skip-first-token", o->skip_first_token,
                "with --all-tokens: leave out each prompt's first token (a BOS, whose activations are outliers)")
      ->needs(all_tokens);
  cmd->add_option("--sae", o->sae_path,
                  "store this SAE's features of the activations instead (SAELens / Gemma Scope folder); point and layer are the SAE's");
  cmd->add_option("--point", o->point, "per-layer point: output (default), input, attn_input, attn_output, resid_mid, mlp_input, mlp_output");
  positive_integer(cmd->add_option("--batch-size", o->batch_size, "prompts per forward pass (default 32)"));
  cmd->add_option("--out-dir", o->out_dir, "write shard-NNNNN.safetensors + manifest.json here (rerun to resume)");
  non_negative_integer(cmd->add_option("--shard-size", o->shard_size, "prompts per shard (default: as many as fit in --max-shard-mb)"));
  positive_number(
      cmd->add_option("--max-shard-mb", o->max_shard_mb, "memory bound: the most MiB of activations held at once (default 256)"));
  cmd->add_option("--save-dtype", o->save_dtype, "dtype the activations are saved in: f32 (default), f16, bf16");
  cmd->add_flag("--overwrite", o->overwrite, "replace a different collection already in --out-dir");
  cmd->add_flag("--no-progress", o->no_progress, "no progress bar (it is only drawn on a terminal anyway)");
  add_quiet_option(*cmd, o->no_progress);
  add_json_out_options(*cmd, *o, o->out, "print a JSON summary",
                       "also save activations [layers, prompts (or tokens), hidden] to one safetensors file");
  cmd->footer("Examples:\n  nnterp collect gpt2 --prompts prompts.txt --layers 4,8,11 --out-dir acts/\n"
              "  nnterp collect --prompts models/default/corpus/train.txt --layers 2 --all-tokens --out-dir acts/   (then train-sae)\n"
              "  nnterp collect path/to/model --inputs in.safetensors --out acts.safetensors --json");
  cmd->callback([o] { run_collect(*o); });
});

}  // namespace nnterp::cli
