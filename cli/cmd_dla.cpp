// nnterp dla MODEL --prompt "The capital of France is" --target " Paris": direct logit attribution,
// the target's logit split over the embedding and each layer's attention and MLP.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/methods.hpp"
#include "progress.hpp"

namespace nnterp::cli {

struct DlaCmd : CommonOptions {
  PromptSource prompts;
  ChatFlags chat;
  std::string target, out;
  int64_t target_id = -1, idx = -1, top = 0, batch_size = 32;
  bool quiet = false;
};

static void run_dla(const DlaCmd& o) {
  auto model = load_model(o);
  auto prompts = apply_chat(resolve_prompts(o.prompts), o.chat, model);
  const int64_t target = answer_token(model, o.target, o.target_id, "--target");
  DlaOptions options;
  options.idx = o.idx;
  options.batch_size = o.batch_size;
  DlaResult r;
  std::vector<torch::Tensor> values, logits, model_logits;  // per chunk of --batch-size prompts (with a progress bar)
  const int64_t n_prompts = input_size(prompts);
  for_each_chunk(n_prompts, o.batch_size, progress_wanted(o.quiet), "prompts", [&](int64_t b, int64_t e) {
    r = direct_logit_attribution(model, b == 0 && e == n_prompts ? prompts : input_slice(prompts, b, e), {target}, options);
    values.push_back(r.values), logits.push_back(r.logits), model_logits.push_back(r.model_logits);
  });
  if (values.size() > 1) {
    r.values = torch::cat(values, 0), r.logits = torch::cat(logits, 0), r.model_logits = torch::cat(model_logits, 0);
    r.targets.assign(static_cast<size_t>(n_prompts), target);
  }
  if (!o.out.empty())
    write_results(o.out, {{"values", r.values}, {"logits", r.logits}, {"model_logits", r.model_logits}}, model, "dla");
  const int64_t N = r.values.size(0), C = r.values.size(1);
  if (o.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t i = 0; i < N; ++i) {
      nlohmann::json components = nlohmann::json::object();
      for (int64_t c = 0; c < C; ++c) components[r.components[static_cast<size_t>(c)]] = r.values[i][c].item<double>();
      rows.push_back({{"components", components}, {"logit", r.logits[i].item<double>()},
                      {"model_logit", r.model_logits[i].item<double>()}});
    }
    fmt::print("{}\n", nlohmann::json{{"model", model.path().string()}, {"target_id", target},
                                      {"target", token_display(model, target)}, {"prompts", rows}}.dump(2));
    return;
  }
  for (int64_t i = 0; i < N; ++i) {
    fmt::print("prompt {}: logit of {} = {:.4f} (the components' sum {:.4f}{})\n", i, token_display(model, target),
               r.model_logits[i].item<double>(), r.logits[i].item<double>(),
               model.final_softcap() > 0 ? ", before the final soft-cap" : "");
    std::vector<int64_t> order(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) order[static_cast<size_t>(c)] = c;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return std::abs(r.values[i][a].item<double>()) > std::abs(r.values[i][b].item<double>());
    });
    const int64_t shown = o.top > 0 ? std::min(o.top, C) : C;
    for (int64_t k = 0; k < shown; ++k) {
      const int64_t c = order[static_cast<size_t>(k)];
      fmt::print("  {:<18} {:>+10.4f}\n", r.components[static_cast<size_t>(c)], r.values[i][c].item<double>());
    }
  }
}

static CommandRegistration dla_command(62, [](CLI::App& app) {
  auto o = std::make_shared<DlaCmd>();
  auto* cmd = app.add_subcommand("dla", "direct logit attribution: a target token's logit split over the embedding and "
                                        "each layer's attention and MLP (final norm frozen at its scale)");
  add_model_options(*cmd, *o);
  add_prompt_options(*cmd, o->prompts);
  add_chat_options(*cmd, o->chat);
  cmd->add_option("--target", o->target, "the target token (first token of this text, e.g. \" Paris\")");
  non_negative_integer(cmd->add_option("--target-id", o->target_id, "the target as a token id"));
  any_integer(cmd->add_option("--idx", o->idx, "the token whose logits are attributed (default -1, the last)"));
  non_negative_integer(cmd->add_option("--top", o->top, "show the N largest components (default: 0, all)"));
  positive_integer(cmd->add_option("--batch-size", o->batch_size, "prompts per forward pass (default 32)"));
  add_quiet_option(*cmd, o->quiet);
  add_json_out_options(*cmd, *o, o->out, "print JSON", "save values [prompts, components], logits and model_logits");
  cmd->footer("Example:\n  nnterp dla --prompt \"The capital of France is\" --target \" Paris\" --top 5");
  cmd->callback([o] { run_dla(*o); });
});

}  // namespace nnterp::cli
