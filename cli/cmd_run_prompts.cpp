// nnterp run-prompts MODEL --prompts FILE.jsonl: prompts with target categories
// ({"prompt": "...", "targets": {"fr": ["chat", "chien"], "en": ["cat"]}} per line) → each
// category's probability (next token, or per layer with --lens logit-lens) as CSV or JSON.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/plot.hpp"
#include "nnterp/tokenizer.hpp"
#include "progress.hpp"

namespace nnterp::cli {

struct RunPromptsCmd : CommonOptions {
  std::string prompts_file, inputs, lens = "next-token", layers, csv, out, html;
  int64_t batch_size = 32;
  bool allow_collisions = false, quiet = false;
  int width = 0, height = 0;
  ChatFlags chat;
};

static void run_run_prompts(const RunPromptsCmd& o) {
  if (o.lens != "next-token" && o.lens != "logit-lens")
    throw Error(ErrorKind::InvalidArgument, "--lens", "unknown lens '" + o.lens + "'", "next-token or logit-lens");
  if (o.lens != "logit-lens" && !o.layers.empty())
    throw Error(ErrorKind::InvalidArgument, "--layers", "only means something with --lens logit-lens", "add --lens logit-lens");
  auto model = load_model(o);
  const bool with_ids = !o.inputs.empty();
  auto prompts = read_target_prompts(o.prompts_file, model.tokenizer(), with_ids);
  if (prompts.empty()) throw Error(ErrorKind::InvalidArgument, o.prompts_file, "holds no prompt");
  if (with_ids) {
    auto b = io::read_token_inputs(o.inputs);
    if (b.input_ids.size(0) != static_cast<int64_t>(prompts.size()))
      throw Error(ErrorKind::InvalidArgument, o.inputs,
                  "has " + std::to_string(b.input_ids.size(0)) + " rows but " + o.prompts_file + " has " + std::to_string(prompts.size()) +
                      " records", "one targets record per row of input_ids");
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto row = b.input_ids[static_cast<int64_t>(i)].masked_select(b.attention_mask[static_cast<int64_t>(i)].ne(0)).contiguous();
      prompts[i].token_ids.assign(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    }
  }
  if (o.chat.chat) {
    if (with_ids) throw Error(ErrorKind::InvalidArgument, "--chat", "wraps text prompts, but --inputs gives token ids");
    if (!model.tokenizer()) throw Error(ErrorKind::InvalidArgument, "--chat", "the model has no tokenizer");
    std::vector<std::string> texts;
    for (const auto& p : prompts) texts.push_back(p.prompt);
    auto rows = chat_prompt_ids(*model.tokenizer(), texts, o.chat.options(model));
    for (size_t i = 0; i < prompts.size(); ++i) prompts[i].token_ids = std::move(rows[i]);
  } else {
    apply_chat(TraceInput(std::vector<std::string>{}), o.chat, model);  // refuses --system without --chat
  }
  if (!o.allow_collisions)
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto c = prompts[i].collisions();
      if (!c.empty())
        throw Error(ErrorKind::InvalidArgument, o.prompts_file + ":" + std::to_string(i + 1),
                    "token " + std::to_string(c[0].token) + " (" + nlohmann::json(token_display(model, c[0].token)).dump() +
                        ") belongs to categories '" + c[0].categories[0] + "' and '" + c[0].categories[1] + "'",
                    "make the targets distinct, or pass --allow-collisions");
    }
  RunPromptsOptions ro;
  ro.batch_size = o.batch_size;
  ro.progress = progress_wanted(o.quiet);
  std::vector<int> layers;
  if (o.lens == "logit-lens") {
    LensOptions lo;
    lo.layers = layers = parse_layers(o.layers, model);
    ro.probs = logit_lens_fn(lo);
  } else if (o.lens != "next-token") {
    throw Error(ErrorKind::InvalidArgument, "--lens", "unknown lens '" + o.lens + "'", "next-token or logit-lens");
  }
  auto results = run_prompts(model, prompts, ro);
  if (!o.out.empty()) {
    std::vector<std::pair<std::string, torch::Tensor>> t;
    for (const auto& [c, r] : results) t.emplace_back(c, r);
    if (!layers.empty()) t.emplace_back("layers", torch::tensor(std::vector<int64_t>(layers.begin(), layers.end())));
    write_results(o.out, t, model, "run-prompts");
  }
  if (!o.html.empty()) {
    CategoryPlotOptions po;
    po.layers = layers;
    if (layers.empty()) po.x_title = "next token";
    po.width = o.width;
    po.height = o.height;
    save_html(o.html, plot_category_curves(results, po));
    fmt::print(stderr, "wrote {}\n", o.html);
  }
  auto table = prompts_to_table(prompts, results, model.tokenizer(), layers);
  if (!o.csv.empty()) {
    std::ofstream f(o.csv);
    if (!f) throw Error(ErrorKind::Io, o.csv, "cannot open for writing");
    f << table.to_csv();
  }
  if (o.json)
    fmt::print("{}\n", table.to_json(2));
  else
    fmt::print("{}", table.to_csv());
}

static CommandRegistration run_prompts_command(55, [](CLI::App& app) {
  auto o = std::make_shared<RunPromptsCmd>();
  auto* cmd = app.add_subcommand("run-prompts", "probability of target token categories for many prompts (CSV/JSON)");
  add_model_options(*cmd, *o);
  cmd->add_option("--prompts", o->prompts_file,
                  "JSONL: {\"prompt\": \"...\", \"targets\": {\"category\": [\"word\" or token id, ...]}} per line")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("--inputs", o->inputs, "pre-tokenized prompts (safetensors input_ids/attention_mask), one row per JSONL record")
      ->check(CLI::ExistingFile);
  cmd->add_option("--lens", o->lens, "next-token (default) or logit-lens (a probability per layer)");
  cmd->add_option("--layers", o->layers, "logit-lens layers: all (default), 3, 0,4,8, 2-5, -1");
  positive_integer(cmd->add_option("--batch-size", o->batch_size, "prompts per forward pass (default 32)"));
  cmd->add_flag("--allow-collisions", o->allow_collisions, "allow a token in several categories");
  add_chat_options(*cmd, o->chat);
  cmd->add_option("--csv", o->csv, "also write the table to this CSV file");
  add_json_out_options(*cmd, *o, o->out, "print the table as JSON (default: CSV)",
                       "save each category's probabilities [N, layers] to this safetensors file");
  cmd->add_option("--html", o->html, "also write each category's probability across layers as an interactive plot (HTML)");
  add_plot_size_options(*cmd, o->width, o->height);
  add_quiet_option(*cmd, o->quiet);
  cmd->footer("Example:\n  echo '{\"prompt\": \"Le chat\", \"targets\": {\"fr\": [\"est\"], \"en\": [\"is\"]}}' > p.jsonl\n"
              "  nnterp run-prompts gpt2 --prompts p.jsonl --lens logit-lens --json");
  cmd->callback([o] { run_run_prompts(*o); });
});

}  // namespace nnterp::cli
