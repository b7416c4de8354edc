// nnterp dla MODEL --prompt "The capital of France is" --target " Paris": direct logit attribution,
// the target's logit split over the embedding and each layer's attention and MLP.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/methods.hpp"

namespace nnterp::cli {

struct DlaCmd : CommonOptions {
  PromptSource prompts;
  ChatFlags chat;
  std::string target, out;
  int64_t target_id = -1, idx = -1, top = 0;
};

static void run_dla(const DlaCmd& o) {
  auto model = load_model(o);
  auto prompts = apply_chat(resolve_prompts(o.prompts), o.chat, model);
  const int64_t target = answer_token(model, o.target, o.target_id, "--target");
  DlaOptions options;
  options.idx = o.idx;
  auto r = direct_logit_attribution(model, prompts, {target}, options);
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
  cmd->add_option("--target-id", o->target_id, "the target as a token id");
  cmd->add_option("--idx", o->idx, "the token whose logits are attributed (default -1, the last)");
  cmd->add_option("--top", o->top, "show the N largest components (default: all)")->check(CLI::NonNegativeNumber);
  add_json_out_options(*cmd, *o, o->out, "print JSON", "save values [prompts, components], logits and model_logits");
  cmd->footer("Example:\n  nnterp dla --prompt \"The capital of France is\" --target \" Paris\" --top 5");
  cmd->callback([o] { run_dla(*o); });
});

}  // namespace nnterp::cli
