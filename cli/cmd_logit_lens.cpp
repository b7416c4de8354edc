// nnterp logit-lens MODEL --prompt TEXT...: what each layer predicts for the next token (the top
// tokens of the logit lens at the last token), optionally the inverse lens, or with --tuned LENS the
// tuned lens (docs/tuned_lens.md).
#include <fmt/format.h>

#include <optional>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/plot.hpp"
#include "nnterp/tuned_lens.hpp"
#include "progress.hpp"

namespace nnterp::cli {

struct LogitLensCmd : CommonOptions {
  PromptSource source;
  ChatFlags chat;
  std::string layers, out, html, tuned;
  int64_t idx = -1, top = 5, batch_size = 32;
  bool inverse = false, quiet = false;
  int width = 0, height = 0;
};

static void run_logit_lens(const LogitLensCmd& o) {
  if (o.inverse && !o.tuned.empty()) throw UsageError("--inverse is the plain logit lens's: not with --tuned");
  auto model = load_model(o);
  std::optional<TunedLens> tuned;
  if (!o.tuned.empty()) tuned = TunedLens::load(o.tuned, model);
  auto prompts = apply_chat(resolve_prompts(o.source), o.chat, model);
  LensOptions lo;
  lo.layers = parse_layers(o.layers, model);
  lo.idx = o.idx;
  lo.batch_size = o.batch_size;
  LogitLensResult r;
  std::vector<torch::Tensor> probs, inverse;  // per chunk of --batch-size prompts (with a progress bar)
  const int64_t N = input_size(prompts);
  for_each_chunk(N, o.batch_size, progress_wanted(o.quiet), "prompts", [&](int64_t b, int64_t e) {
    auto chunk = b == 0 && e == N ? prompts : input_slice(prompts, b, e);
    if (tuned) {
      r.probs = tuned_lens(model, chunk, *tuned, lo);
      r.layers = resolve_layers(model, lo.layers);
    } else {
      r = logit_lens_with_inverse(model, chunk, lo, o.inverse);
    }
    probs.push_back(r.probs), inverse.push_back(r.inverse_probs);
  });
  if (probs.size() > 1) {
    r.probs = torch::cat(probs, 0);
    if (o.inverse) r.inverse_probs = torch::cat(inverse, 0);
  }
  if (!o.out.empty()) {
    std::vector<std::pair<std::string, torch::Tensor>> t{{"probs", r.probs}, {"layers", torch::tensor(std::vector<int64_t>(r.layers.begin(), r.layers.end()))}};
    if (o.inverse) t.emplace_back("inverse_probs", r.inverse_probs);
    write_results(o.out, t, model, tuned ? "logit-lens --tuned " + o.tuned : "logit-lens");
  }
  if (!o.html.empty()) {
    TopkPlotOptions po;
    po.k = o.top;
    if (tuned) po.title = "Tuned lens: top tokens per layer";
    po.layers = r.layers;
    po.width = o.width;
    po.height = o.height;
    if (!prompts.tokens) po.subtitles = prompts.prompts;
    save_html(o.html, plot_topk_tokens(r.probs, model.tokenizer(), po));
    fmt::print(stderr, "wrote {}\n", o.html);
  }
  const int64_t B = r.probs.size(0);
  if (o.json) {
    nlohmann::json j;
    j["model"] = model.path().string();
    j["lens"] = tuned ? "tuned" : "logit";
    if (tuned) j["tuned"] = o.tuned;
    j["layers"] = r.layers;
    j["prompts"] = nlohmann::json::array();
    for (int64_t b = 0; b < B; ++b) {
      nlohmann::json p;
      p["prompt"] = prompt_json(prompts, b);
      p["layers"] = nlohmann::json::array();
      for (size_t li = 0; li < r.layers.size(); ++li) {
        nlohmann::json l{{"layer", r.layers[li]}, {"top", top_json(model, r.probs[b][static_cast<int64_t>(li)], o.top)}};
        if (o.inverse) l["inverse_top"] = top_json(model, r.inverse_probs[b][static_cast<int64_t>(li)], o.top);
        p["layers"].push_back(l);
      }
      j["prompts"].push_back(p);
    }
    fmt::print("{}\n", j.dump(2));
    return;
  }
  if (tuned) fmt::print("tuned lens {}\n", o.tuned);
  for (int64_t b = 0; b < B; ++b) {
    fmt::print("prompt {}{}\n", b, prompts.tokens ? "" : ": " + prompt_json(prompts, b).dump());
    for (size_t li = 0; li < r.layers.size(); ++li) {
      fmt::print("  layer {:>3}:{}\n", r.layers[li], top_text(model, r.probs[b][static_cast<int64_t>(li)], o.top));
      if (o.inverse) fmt::print("    inverse:{}\n", top_text(model, r.inverse_probs[b][static_cast<int64_t>(li)], o.top));
    }
  }
}

static CommandRegistration logit_lens_command(40, [](CLI::App& app) {
  auto o = std::make_shared<LogitLensCmd>();
  auto* cmd = app.add_subcommand("logit-lens", "what each layer predicts for the next token (the logit lens)");
  add_model_options(*cmd, *o);
  add_prompt_options(*cmd, o->source);
  add_chat_options(*cmd, o->chat);
  cmd->add_option("--layers", o->layers, "layers to read: all (default), 3, 0,4,8, 2-5, -1");
  any_integer(cmd->add_option("--idx", o->idx, "token read in each prompt: -1 (default) is the last, 0 the first"));
  positive_integer(cmd->add_option("--top", o->top, "top tokens shown per layer (default 5)"));
  cmd->add_flag("--inverse", o->inverse, "also the inverse lens: softmax(lm_head(-ln_final(hidden))), as nnterp");
  cmd->add_option("--tuned", o->tuned, "the tuned lens instead: translators from this file (nnterp train-lens)")->check(CLI::ExistingFile);
  positive_integer(cmd->add_option("--batch-size", o->batch_size, "prompts per forward pass (default 32)"));
  add_json_out_options(*cmd, *o, o->out, "print JSON", "save probs [B, layers, vocab] (and inverse_probs) to this safetensors file");
  cmd->add_option("--html", o->html, "also write an interactive heatmap (layers x top tokens, probabilities on hover) to this HTML file");
  add_plot_size_options(*cmd, o->width, o->height);
  add_quiet_option(*cmd, o->quiet);
  cmd->footer("Examples:\n  nnterp logit-lens gpt2 --prompt \"The capital of France is\"\n"
              "  nnterp logit-lens --prompt \"The capital of France is\" --html lens.html\n"
              "  nnterp logit-lens --prompt \"The capital of France is\" --tuned models/default/tuned_lens.safetensors\n"
              "  nnterp logit-lens path/to/model --inputs in.safetensors --json --out lens.safetensors");
  cmd->callback([o] { run_logit_lens(*o); });
});

}  // namespace nnterp::cli
