// nnterp patch MODEL --prompt CLEAN --corrupted-prompt CORRUPTED --correct " Paris" --incorrect " Rome":
// activation patching (as TransformerLens' patching tools): the logit difference after patching
// each layer × position (× head) of the clean run into the corrupted run; with --method atp, its
// first-order estimate from one forward + backward (attribution patching).
#include <fmt/format.h>

#include <numeric>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/plot.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/tokenizer.hpp"
#include "progress.hpp"

namespace nnterp::cli {

struct PatchCmd : CommonOptions {
  PromptSource clean, corrupted;
  ChatFlags chat;
  std::string point = "layers.{i}.output", layers, correct, incorrect, out, method = "exact", html;
  std::vector<int64_t> positions;
  int64_t correct_id = -1, incorrect_id = -1, batch_size = 32;
  bool all_positions = false, no_per_head = false, normalized = false, quiet = false;
  int width = 0, height = 0;
};

// Exact patching with a progress bar: the layers in chunks, one library call each. A chunk holds
// whole forward passes (its patches a multiple of the batch_size / prompts patches a pass runs),
// so every pass holds the same patches as in one call and the values are the same, bit for bit.
static PatchingResult patch_with_progress(const StandardizedTransformer& model, const TraceInput& clean,
                                          const TraceInput& corrupted, const PatchingOptions& po) {
  const auto layers = resolve_layers(model, po.layers);
  if (layers.empty()) return activation_patching(model, clean, corrupted, po);
  const auto batch = tokenize_left_padded(model, clean);
  const int64_t B = std::max<int64_t>(1, batch.input_ids.size(0)), T = batch.input_ids.size(1);
  const bool head_point = po.point == Point::Query || po.point == Point::Key || po.point == Point::Value ||
                          po.point == Point::AttnProbs || po.point == Point::Z;
  const int64_t heads = head_point && po.per_head
                            ? (po.point == Point::Key || po.point == Point::Value ? model.num_kv_heads() : model.num_heads())
                            : 1;
  const int64_t columns = !po.per_position ? 1 : po.positions.empty() ? T : static_cast<int64_t>(po.positions.size());
  const int64_t per_layer = std::max<int64_t>(1, heads * columns), group = std::max<int64_t>(1, po.batch_size / B);
  const int64_t chunk = group / std::gcd(group, per_layer);  // layers whose patches fill whole passes
  std::vector<PatchingResult> parts;
  for_each_chunk(static_cast<int64_t>(layers.size()), chunk, true, "layers", [&](int64_t b, int64_t e) {
    PatchingOptions part = po;
    part.layers.assign(layers.begin() + b, layers.begin() + e);
    parts.push_back(activation_patching(model, clean, corrupted, part));
  });
  PatchingResult r = parts.front();
  std::vector<torch::Tensor> values;
  for (const auto& p : parts) values.push_back(p.values);
  r.values = torch::cat(values, 0);
  r.layers = layers;
  return r;
}

// The token ids of the first prompt of `input`, one per column of its (left-padded) batch.
static std::vector<int64_t> first_row_tokens(const StandardizedTransformer& model, const TraceInput& input) {
  auto ids = tokenize_left_padded(model, input).input_ids[0].contiguous().to(torch::kInt64);
  return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
}

static void run_patch(const PatchCmd& o) {
  auto model = load_model(o);
  auto clean = apply_chat(resolve_prompts(o.clean, "clean prompts"), o.chat, model, "clean prompts");
  TraceInput corrupted = std::vector<std::string>{};
  if (!o.corrupted.given() && !o.clean.inputs.empty()) {
    // One --inputs file may hold both runs: input_ids (clean) and corrupted_input_ids.
    auto file = io::SafetensorsFile::open(o.clean.inputs);
    if (!file->contains("corrupted_input_ids"))
      throw Error(ErrorKind::InvalidArgument, "corrupted prompts", "none given",
                  "use --corrupted-prompt, --corrupted-prompts, --corrupted-inputs, or a corrupted_input_ids tensor in --inputs");
    TokenBatch b;
    b.input_ids = file->tensor("corrupted_input_ids").clone();
    b.attention_mask = file->contains("corrupted_attention_mask") ? file->tensor("corrupted_attention_mask").clone()
                                                                  : clean.tokens->attention_mask.clone();
    corrupted = TraceInput(b);
  } else {
    corrupted = apply_chat(resolve_prompts(o.corrupted, "corrupted prompts"), o.chat, model, "corrupted prompts");
  }
  PatchingOptions po;
  po.method = o.method == "atp" ? PatchMethod::Attribution : PatchMethod::Activation;
  po.point = parse_point_kind(o.point);
  po.layers = parse_layers(o.layers, model);
  po.per_position = !o.all_positions;
  po.positions = o.positions;
  po.per_head = !o.no_per_head;
  po.batch_size = o.batch_size;
  const int64_t c = answer_token(model, o.correct, o.correct_id, "--correct");
  const int64_t w = answer_token(model, o.incorrect, o.incorrect_id, "--incorrect");
  po.metric = logit_diff_metric(c, w);
  auto r = po.method == PatchMethod::Activation && progress_wanted(o.quiet)
               ? patch_with_progress(model, clean, corrupted, po)
               : activation_patching(model, clean, corrupted, po);
  if (!o.html.empty()) {
    PatchPlotOptions pp;
    pp.title = o.method == "atp" ? "Attribution patching (first-order estimates)" : "Activation patching";
    std::string metric = "logit[" + token_display(model, c) + "] - logit[" + token_display(model, w) + "]";
    for (size_t at; (at = metric.find_first_of("<>")) != std::string::npos;)  // plotly titles are HTML
      metric.replace(at, 1, metric[at] == '<' ? "&lt;" : "&gt;");
    pp.title += fmt::format(": {} at {}", metric, point_info(po.point).pattern);
    pp.normalized = o.normalized && r.clean_metric != r.corrupted_metric;
    pp.clean_tokens = first_row_tokens(model, clean);
    pp.corrupted_tokens = first_row_tokens(model, corrupted);
    pp.width = o.width;
    pp.height = o.height;
    save_html(o.html, plot_patching(r, model.tokenizer(), pp));
    fmt::print(stderr, "wrote {}\n", o.html);
  }
  auto shown = o.normalized ? r.normalized() : r.values;
  if (!o.out.empty())
    write_results(o.out,
                  {{"values", r.values},
                   {"layers", torch::tensor(std::vector<int64_t>(r.layers.begin(), r.layers.end()))},
                   {"positions", torch::tensor(r.positions.empty() ? std::vector<int64_t>{-1} : r.positions)},
                   {"clean_metric", torch::tensor({r.clean_metric})},
                   {"corrupted_metric", torch::tensor({r.corrupted_metric})}},
                  model, "patch");
  if (o.json) {
    auto to_nested = [](const torch::Tensor& t) {
      auto flat = t.to(torch::kFloat64).contiguous();
      std::vector<double> v(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
      nlohmann::json j = v;
      // Re-nest row-major.
      for (int64_t d = t.dim() - 1; d >= 1; --d) {
        nlohmann::json nested = nlohmann::json::array();
        const size_t n = static_cast<size_t>(t.size(d));
        for (size_t i = 0; i < j.size(); i += n) nested.push_back(nlohmann::json(std::vector<nlohmann::json>(j.begin() + i, j.begin() + i + n)));
        j = nested;
      }
      return j;
    };
    nlohmann::json j{{"model", model.path().string()},
                     {"method", o.method},
                     {"point", point_info(po.point).pattern},
                     {"dims", r.dims},
                     {"layers", r.layers},
                     {"positions", r.positions},
                     {"correct_id", c},
                     {"incorrect_id", w},
                     {"clean_metric", r.clean_metric},
                     {"corrupted_metric", r.corrupted_metric},
                     {"values", to_nested(r.values)}};
    if (r.clean_metric != r.corrupted_metric) j["normalized"] = to_nested(r.normalized());
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{}point {}  metric: logit[{}] - logit[{}]  clean {:.4f}  corrupted {:.4f}{}\n",
             o.method == "atp" ? "attribution patching (first-order estimates)  " : "", point_info(po.point).pattern,
             token_display(model, c), token_display(model, w), r.clean_metric, r.corrupted_metric,
             o.normalized ? "  (normalized: 1 = clean, 0 = corrupted)" : "");
  // One row per layer (and head); columns are positions, or a single value.
  const bool heads = std::find(r.dims.begin(), r.dims.end(), "head") != r.dims.end();
  std::string header = heads ? "layer head" : "layer";
  if (!r.positions.empty())
    for (int64_t p : r.positions) header += fmt::format(" {:>8}", "pos " + std::to_string(p));
  else
    header += fmt::format(" {:>8}", "all pos");
  fmt::print("{}\n", header);
  auto rows = shown.reshape({-1, r.positions.empty() ? 1 : static_cast<int64_t>(r.positions.size())});
  const int64_t H = heads ? shown.size(1) : 1;
  for (int64_t i = 0; i < rows.size(0); ++i) {
    std::string line = heads ? fmt::format("{:>5} {:>4}", r.layers[static_cast<size_t>(i / H)], i % H)
                             : fmt::format("{:>5}", r.layers[static_cast<size_t>(i)]);
    for (int64_t p = 0; p < rows.size(1); ++p) line += fmt::format(" {:>8.4f}", rows[i][p].item<double>());
    fmt::print("{}\n", line);
  }
}

static CommandRegistration patch_command(60, [](CLI::App& app) {
  auto o = std::make_shared<PatchCmd>();
  auto* cmd = app.add_subcommand("patch", "activation patching: clean → corrupted, per layer × position (× head)");
  add_model_options(*cmd, *o);
  add_prompt_options(*cmd, o->clean, "", "clean prompts");
  add_prompt_options(*cmd, o->corrupted, "corrupted", "corrupted prompts");
  add_chat_options(*cmd, o->chat, "clean and corrupted prompts");
  cmd->add_option("--correct", o->correct, "the correct answer's token (first token of this text, e.g. \" Paris\")");
  cmd->add_option("--incorrect", o->incorrect, "the incorrect answer's token");
  cmd->add_option("--correct-id", o->correct_id, "the correct answer as a token id");
  cmd->add_option("--incorrect-id", o->incorrect_id, "the incorrect answer as a token id");
  cmd->add_option("--point", o->point,
                  "what to patch: output (default, resid_post), input (resid_pre), attn_output, resid_mid, mlp_output, or per head "
                  "q, k, v, attn_probs, z");
  cmd->add_option("--layers", o->layers, "layers: all (default), 3, 0,4,8, 2-5, -1");
  cmd->add_option("--positions", o->positions, "positions (columns, negative from the end; default all)")->delimiter(',');
  cmd->add_option("--method", o->method,
                  "exact (default: run every patch) or atp (attribution patching: every cell estimated to first order from "
                  "one forward + backward; fast on big grids)")
      ->check(CLI::IsMember({"exact", "atp"}));
  cmd->add_flag("--all-positions", o->all_positions, "patch every position at once (no position axis)");
  cmd->add_flag("--no-per-head", o->no_per_head, "for q/k/v/attn_probs: patch all heads at once");
  cmd->add_flag("--normalized", o->normalized, "show (value - corrupted) / (clean - corrupted)");
  cmd->add_option("--batch-size", o->batch_size, "rows per forward pass (several patches run together; default 32)")
      ->check(CLI::PositiveNumber);
  add_json_out_options(*cmd, *o, o->out, "print JSON", "save values (and layers, positions, metrics) to this safetensors file");
  cmd->add_option("--html", o->html,
                  "also write the grid as an interactive heatmap (layers x positions labelled with their tokens) to this HTML file");
  add_plot_size_options(*cmd, o->width, o->height);
  add_quiet_option(*cmd, o->quiet);
  cmd->footer("Examples:\n  nnterp patch gpt2 --prompt \"The Eiffel Tower is in\" --corrupted-prompt \"The Colosseum is in\" "
              "--correct \" Paris\" --incorrect \" Rome\"\n"
              "  nnterp patch path/to/model --inputs clean.safetensors --corrupted-inputs corrupted.safetensors "
              "--correct-id 11 --incorrect-id 12 --point attn_output --json\n"
              "  nnterp patch --prompt \"The capital of France is\" --corrupted-prompt \"The capital of Spain is\" "
              "--correct \" Paris\" --incorrect \" Madrid\" --method atp --html patch.html");
  cmd->callback([o] { run_patch(*o); });
});

}  // namespace nnterp::cli
