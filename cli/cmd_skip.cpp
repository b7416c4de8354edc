// nnterp skip [MODEL] --prompt ... --layers 2,3: layer skipping. Each listed layer is bypassed
// (its output is its input: Trace::skip_layer) and the next-token top-k is printed with and
// without the skipped layers, with the KL divergence between the two distributions.
#include <fmt/format.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "progress.hpp"
#include "nnterp/error.hpp"
#include "nnterp/inputs.hpp"
#include "nnterp/methods.hpp"

namespace nnterp::cli {

namespace {

struct SkipCmd : CommonOptions {
  PromptSource source;
  std::string layers, out, html;
  int width = 0, height = 0;
  int64_t top = 5;
};

// --layers: a layer list (io::parse_layers), or "none" (the plain run, to compare against).
std::vector<int> skipped_layers(const std::string& spec, const StandardizedTransformer& model) {
  if (spec == "none") return {};
  if (spec.empty())
    throw Error(ErrorKind::InvalidArgument, "--layers", "empty", "e.g. --layers 2,3, --layers 1-2, --layers -1 or --layers none");
  auto layers = io::parse_layers(spec, model.num_layers(), "--layers");
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

void run_skip(const SkipCmd& o) {
  const TraceInput prompts = resolve_prompts(o.source);
  auto model = load_model(o);
  const auto layers = skipped_layers(o.layers, model);
  const torch::Tensor plain = next_token_probs(model, prompts).to(torch::kFloat32);
  torch::Tensor skipped;
  model.trace(prompts, [&](Trace& t) {
    for (int l : layers) t.skip_layer(l);
    skipped = t.next_token_probs().to(torch::kFloat32).cpu();
  });
  // KL(plain || skipped) per prompt, in nats.
  const auto p = plain.to(torch::kFloat64), q = skipped.to(torch::kFloat64);
  const torch::Tensor kl = (p * (p.clamp_min(1e-30).log() - q.clamp_min(1e-30).log())).sum(-1).clamp_min(0.0);
  if (!o.out.empty())
    write_results(o.out,
                  {{"probs", plain}, {"probs_skipped", skipped}, {"kl", kl},
                   {"layers", torch::tensor(std::vector<int64_t>(layers.begin(), layers.end()), torch::kInt64)}},
                  model, "skip");
  if (!o.html.empty()) {
    std::string skipped_list;
    for (int l : layers) skipped_list += (skipped_list.empty() ? "" : ",") + std::to_string(l);
    save_comparison_html(o.html, plain, skipped, {"all layers", layers.empty() ? "no layer skipped" : "skipping " + skipped_list},
                         "Layer skipping: top next tokens with and without the layers", model, prompts, o.top, o.width,
                         o.height);
  }
  const int64_t N = plain.size(0);
  if (o.json) {
    nlohmann::json j = {{"model", model.path().string()}, {"skipped_layers", layers}};
    j["prompts"] = nlohmann::json::array();
    for (int64_t n = 0; n < N; ++n)
      j["prompts"].push_back({{"prompt", prompt_json(prompts, n)},
                              {"plain", top_json(model, plain[n], o.top)},
                              {"skipped", top_json(model, skipped[n], o.top)},
                              {"kl", kl[n].item<double>()}});
    fmt::print("{}\n", j.dump(2));
    return;
  }
  std::string list;
  for (int l : layers) list += (list.empty() ? "" : ",") + std::to_string(l);
  fmt::print("skipping layers: {}\n", list.empty() ? "none" : list);
  for (int64_t n = 0; n < N; ++n) {
    fmt::print("prompt {}{}\n", n, prompts.tokens ? "" : ": " + prompt_json(prompts, n).dump());
    fmt::print("  plain:  {}\n", top_text(model, plain[n], o.top));
    fmt::print("  skipped:{}\n", top_text(model, skipped[n], o.top));
    fmt::print("  KL(plain || skipped) = {:.4g} nats\n", kl[n].item<double>());
  }
}

}  // namespace

static CommandRegistration skip_command(48, [](CLI::App& app) {
  auto o = std::make_shared<SkipCmd>();
  auto* cmd = app.add_subcommand("skip", "layer skipping: next-token top-k with and without bypassing some layers");
  add_model_options(*cmd, *o);
  add_prompt_options(*cmd, o->source);
  cmd->add_option("--layers", o->layers,
                  "the layers bypassed (each one's output becomes its input): 3, 0,4,8, 2-5, -1, or none")
      ->required();
  cmd->add_option("--top", o->top, "top tokens shown (default 5)")->check(CLI::PositiveNumber);
  add_json_out_options(*cmd, *o, o->out, "print JSON",
                       "save probs and probs_skipped [prompts, vocab], kl [prompts] and layers to this safetensors file");
  cmd->add_option("--html", o->html, "also write a heatmap of the top tokens with and without the skipped layers to this HTML file");
  add_plot_size_options(*cmd, o->width, o->height);
  cmd->footer(
      "Examples:\n"
      "  nnterp skip --prompt 'The capital of France is' --layers 2,3\n"
      "  nnterp skip path/to/model --prompts prompts.txt --layers 10-12 --json\n"
      "  nnterp skip --inputs in.safetensors --layers -1 --out skip.safetensors");
  cmd->callback([o] { run_skip(*o); });
});

}  // namespace nnterp::cli
