// nnterp patchscope MODEL --prompt SOURCE...: each source's last-token hidden state, layer by layer,
// patched into a target prompt (default: "king king\n1135 1135\nhello hello\n?"); prints what the
// target then predicts. With --generate N: per layer, the N tokens the target generates with the
// source's hidden state patched in (patchscope_generate).
#include <fmt/format.h>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/plot.hpp"
#include "progress.hpp"

namespace nnterp::cli {

struct PatchscopeCmd : CommonOptions {
  PromptSource source;
  ChatFlags chat;
  std::string target, target_inputs, layers, out, html;
  std::vector<int64_t> target_ids;
  int64_t index = -1, source_idx = -1, top = 5, batch_size = 32;
  bool quiet = false;
  int width = 0, height = 0;
  int64_t generate = 0;  // --generate N: N tokens generated per layer instead of the next-token top-k
};

static std::vector<TargetPrompt> cli_targets(const PatchscopeCmd& o, const StandardizedTransformer& model) {
  const int given = !o.target.empty() + !o.target_ids.empty() + !o.target_inputs.empty();
  if (given > 1)
    throw Error(ErrorKind::InvalidArgument, "target", "given several ways at once", "use one of --target, --target-ids, --target-inputs");
  if (!o.target_ids.empty()) return {TargetPrompt{"", o.index, o.target_ids}};
  if (!o.target_inputs.empty()) {
    auto b = io::read_token_inputs(o.target_inputs);
    std::vector<TargetPrompt> out;
    for (int64_t r = 0; r < b.input_ids.size(0); ++r) {
      auto row = b.input_ids[r].masked_select(b.attention_mask[r].ne(0)).contiguous();
      out.push_back(TargetPrompt{"", o.index, std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel())});
    }
    return out;
  }
  if (!o.target.empty()) return {TargetPrompt{o.target, o.index, {}}};
  // Instruct models get the repeat prompt inside their chat template (it_repeat_prompt).
  auto t = o.chat.chat && model.tokenizer()
               ? it_repeat_prompt(*model.tokenizer(), {"king", "1135", "hello"}, " ", "\n", "?", true, true, true,
                                  o.chat.options(model).chat)
               : repeat_prompt();
  t.index_to_patch = o.index;
  return {t};
}

// --generate N: for each layer, the target generated from with each source's hidden state patched in.
static void run_patchscope_generate(const PatchscopeCmd& o, const StandardizedTransformer& model, const TraceInput& sources,
                                    const std::vector<TargetPrompt>& targets, const std::vector<int>& layers) {
  if (targets.size() != 1)
    throw Error(ErrorKind::InvalidArgument, "--generate", "generates from one target prompt, but --target-inputs holds " +
                                                            std::to_string(targets.size()),
                "give one target row (or --target / --target-ids)");
  if (!o.html.empty()) throw Error(ErrorKind::InvalidArgument, "--html", "plots the next-token top-k, not --generate's text", "drop --html or --generate");
  const int64_t N = input_size(sources);
  std::vector<GenerateResult> results;  // one per layer, [N, T + generated]
  for (int layer : layers) results.push_back(patchscope_generate(model, sources, layer, targets[0], static_cast<int>(o.generate), o.source_idx));
  // The new tokens of source n at layer li: decoded text, or the ids without a tokenizer.
  auto new_ids = [&](size_t li, int64_t n) {
    const auto& r = results[li];
    auto row = r.ids[n].slice(0, r.prompt_length).masked_select(r.attention_mask[n].slice(0, r.prompt_length).ne(0)).contiguous();
    return std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
  };
  auto text = [&](size_t li, int64_t n) -> nlohmann::json {
    const auto& r = results[li];
    if (static_cast<int64_t>(r.texts.size()) > n) return r.texts[static_cast<size_t>(n)];
    return nullptr;
  };
  if (!o.out.empty()) {
    // [sources, layers, N new tokens]; -1 where generation had stopped (EOS).
    auto generated = torch::full({N, static_cast<int64_t>(layers.size()), o.generate}, -1, torch::kInt64);
    for (size_t li = 0; li < results.size(); ++li) {
      const auto& r = results[li];
      auto ids = r.ids.slice(1, r.prompt_length).masked_fill(r.attention_mask.slice(1, r.prompt_length).eq(0), -1);
      generated.select(1, static_cast<int64_t>(li)).slice(1, 0, ids.size(1)).copy_(ids);
    }
    write_results(o.out, {{"generated", generated},
                          {"layers", torch::tensor(std::vector<int64_t>(layers.begin(), layers.end()))}},
                  model, "patchscope --generate");
  }
  if (o.json) {
    nlohmann::json j;
    j["model"] = model.path().string();
    j["layers"] = layers;
    j["target"] = !targets[0].prompt.empty() ? nlohmann::json(targets[0].prompt) : nlohmann::json(nullptr);
    j["max_new_tokens"] = o.generate;
    j["sources"] = nlohmann::json::array();
    for (int64_t n = 0; n < N; ++n) {
      nlohmann::json s;
      s["prompt"] = prompt_json(sources, n);
      s["layers"] = nlohmann::json::array();
      for (size_t li = 0; li < layers.size(); ++li)
        s["layers"].push_back({{"layer", layers[li]}, {"text", text(li, n)}, {"ids", new_ids(li, n)}});
      j["sources"].push_back(s);
    }
    fmt::print("{}\n", j.dump(2));
    return;
  }
  for (int64_t n = 0; n < N; ++n) {
    fmt::print("source {}{}\n", n, sources.tokens ? "" : ": " + prompt_json(sources, n).dump());
    for (size_t li = 0; li < layers.size(); ++li) {
      const auto t = text(li, n);
      // Without a tokenizer, or when the text is empty (e.g. EOS at once), the ids say what came.
      const std::string ids = "ids " + nlohmann::json(new_ids(li, n)).dump();
      fmt::print("  layer {:>3}: {}\n", layers[li],
                 t.is_null() ? ids : t.get_ref<const std::string&>().empty() ? "\"\" (" + ids + ")" : t.dump());  // json: built here
    }
  }
}

static void run_patchscope(const PatchscopeCmd& o) {
  auto model = load_model(o);
  auto sources = apply_chat(resolve_prompts(o.source, "source prompts"), o.chat, model, "source prompts");
  auto targets = cli_targets(o, model);
  if (!model.tokenizer() && targets.size() == 1 && targets[0].token_ids.empty())
    throw Error(ErrorKind::InvalidArgument, "target", "the model has no tokenizer, so the target prompt must be token ids",
                "use --target-ids 1,2,3 or --target-inputs T.safetensors");
  PatchscopeOptions po;
  po.layers = parse_layers(o.layers, model);
  if (o.generate > 0) return run_patchscope_generate(o, model, sources, targets, po.layers);
  po.source_idx = o.source_idx;
  po.batch_size = o.batch_size;
  // Per chunk of --batch-size sources (with a progress bar); one target per source is sliced along.
  const int64_t n_sources = input_size(sources);
  std::vector<torch::Tensor> chunks;
  for_each_chunk(n_sources, o.batch_size, progress_wanted(o.quiet), "sources", [&](int64_t b, int64_t e) {
    if ((b == 0 && e == n_sources) || (targets.size() > 1 && static_cast<int64_t>(targets.size()) != n_sources)) {
      chunks.push_back(patchscope_lens(model, sources, targets, po));  // all at once (or the library's error)
      return;
    }
    auto t = targets.size() > 1 ? std::vector<TargetPrompt>(targets.begin() + b, targets.begin() + e) : targets;
    chunks.push_back(patchscope_lens(model, input_slice(sources, b, e), t, po));
  });
  auto probs = chunks.size() == 1 ? chunks[0] : torch::cat(chunks, 0);  // [N, layers, V]
  if (!o.html.empty()) {
    TopkPlotOptions tp;
    tp.k = o.top;
    tp.title = "Patchscope: top tokens per layer";
    tp.layers = resolve_layers(model, po.layers);
    if (!sources.tokens) tp.subtitles = sources.prompts;
    tp.width = o.width;
    tp.height = o.height;
    save_html(o.html, plot_topk_tokens(probs, model.tokenizer(), tp));
    fmt::print(stderr, "wrote {}\n", o.html);
  }
  if (!o.out.empty())
    write_results(o.out, {{"probs", probs}, {"layers", torch::tensor(std::vector<int64_t>(po.layers.begin(), po.layers.end()))}}, model,
                  "patchscope");
  const int64_t N = probs.size(0);
  if (o.json) {
    nlohmann::json j;
    j["model"] = model.path().string();
    j["layers"] = po.layers;
    j["target"] = targets.size() == 1 && !targets[0].prompt.empty() ? nlohmann::json(targets[0].prompt) : nlohmann::json(nullptr);
    j["sources"] = nlohmann::json::array();
    for (int64_t n = 0; n < N; ++n) {
      nlohmann::json s;
      s["prompt"] = prompt_json(sources, n);
      s["layers"] = nlohmann::json::array();
      for (size_t li = 0; li < po.layers.size(); ++li)
        s["layers"].push_back({{"layer", po.layers[li]}, {"top", top_json(model, probs[n][static_cast<int64_t>(li)], o.top)}});
      j["sources"].push_back(s);
    }
    fmt::print("{}\n", j.dump(2));
    return;
  }
  for (int64_t n = 0; n < N; ++n) {
    fmt::print("source {}{}\n", n, sources.tokens ? "" : ": " + prompt_json(sources, n).dump());
    for (size_t li = 0; li < po.layers.size(); ++li)
      fmt::print("  layer {:>3}:{}\n", po.layers[li], top_text(model, probs[n][static_cast<int64_t>(li)], o.top));
  }
}

static CommandRegistration patchscope_command(45, [](CLI::App& app) {
  auto o = std::make_shared<PatchscopeCmd>();
  auto* cmd = app.add_subcommand("patchscope", "patch each source's hidden state into a target prompt and read the prediction");
  add_model_options(*cmd, *o);
  add_prompt_options(*cmd, o->source, "", "source prompts");
  add_chat_options(*cmd, o->chat, "source prompts (and the default target: it_repeat_prompt)");
  cmd->add_option("--target", o->target, "target prompt (default: \"king king\\n1135 1135\\nhello hello\\n?\", in the chat template with --chat)");
  cmd->add_option("--target-ids", o->target_ids, "target prompt as token ids (models without a tokenizer)")->delimiter(',');
  cmd->add_option("--target-inputs", o->target_inputs, "target prompt(s) as safetensors input_ids/attention_mask: one row, or one per source")
      ->check(CLI::ExistingFile);
  cmd->add_option("--index", o->index, "position patched in the target: -1 (default) is the last token");
  cmd->add_option("--source-idx", o->source_idx, "source token whose hidden state is patched (default -1, the last)");
  cmd->add_option("--layers", o->layers, "layers: all (default), 3, 0,4,8, 2-5, -1");
  cmd->add_option("--top", o->top, "top tokens shown per layer (default 5)")->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", o->batch_size, "sources per forward pass (default 32)")->check(CLI::PositiveNumber);
  cmd->add_option("--generate", o->generate,
                  "generate N tokens from the target per layer, the source's hidden state patched in (instead of the "
                  "next-token top-k)")
      ->check(CLI::PositiveNumber);
  add_json_out_options(*cmd, *o, o->out, "print JSON", "save probs [sources, layers, vocab] to this safetensors file");
  cmd->add_option("--html", o->html,
                  "also write an interactive heatmap (layers x top tokens the target predicts, probabilities on hover) to this HTML file");
  add_plot_size_options(*cmd, o->width, o->height);
  add_quiet_option(*cmd, o->quiet);
  cmd->footer("Examples:\n  nnterp patchscope gpt2 --prompt \"Paris\" --prompt \"the Eiffel Tower\"\n"
              "  nnterp patchscope path/to/model --inputs sources.safetensors --target-ids 5,17,5,17,9 --json\n"
              "  nnterp patchscope --prompt \"The capital of France is Paris\" --layers 1-3 --generate 5");
  cmd->callback([o] { run_patchscope(*o); });
});

}  // namespace nnterp::cli
