// nnterp sae MODEL --sae DIR --prompt TEXT: a sparse dictionary's features on prompts: the most active
// features of every token (text, JSON, or a tokens × features heatmap), the features behind a
// target token's logit (--attribute), and how well the dictionary stands in for the model (--eval).
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/error.hpp"
#include "nnterp/plot.hpp"
#include "nnterp/sae_methods.hpp"
#include "progress.hpp"

namespace nnterp::cli {

// A token as JSON shows it (quoted, escapes visible).
static std::string quoted(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct SaeCmd : CommonOptions {
  PromptSource prompts;
  ChatFlags chat;
  std::string sae_path, point, html, attribute;
  int64_t top = 5, attribute_id = -1, idx = -1, batch_size = 32, html_features = 40;
  bool eval = false, quiet = false;
  int width = 0, height = 0;
};

// One prompt's tokens with their top features (the prompt's own tokens only).
struct PromptFeatures {
  std::vector<std::string> tokens;
  std::vector<int64_t> ids;
  std::vector<std::vector<std::pair<int64_t, double>>> top;  // per token: (feature, activation), most active first
};

static Sae load_sae(const SaeCmd& o) {
  SaeLoadOptions lo;
  if (!o.point.empty()) {
    try {
      lo.point = parse_point(o.point);
    } catch (const Error& e) {
      throw Error(ErrorKind::InvalidArgument, "--point", e.message(), e.hint());
    }
  }
  return Sae::load(o.sae_path, lo);
}

static std::vector<PromptFeatures> top_features(const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae,
                                                const SaeCmd& o) {
  std::vector<PromptFeatures> out;
  const int64_t N = input_size(prompts);
  for_each_chunk(N, o.batch_size, progress_wanted(o.quiet), "prompts", [&](int64_t b, int64_t e) {
    auto r = sae_top_features(model, b == 0 && e == N ? prompts : input_slice(prompts, b, e), sae, std::max<int64_t>(o.top, 1),
                              o.batch_size);
    auto ids = r.input_ids.accessor<int64_t, 2>();
    auto mask = r.attention_mask.accessor<int64_t, 2>();
    auto fi = r.indices.accessor<int64_t, 3>();
    auto fa = r.activations.accessor<float, 3>();
    for (int64_t i = 0; i < r.input_ids.size(0); ++i) {
      PromptFeatures p;
      p.tokens = r.tokens[static_cast<size_t>(i)];
      for (int64_t t = 0; t < r.input_ids.size(1); ++t) {
        if (!mask[i][t]) continue;
        p.ids.push_back(ids[i][t]);
        p.top.emplace_back();
        for (int64_t k = 0; k < r.indices.size(2); ++k)
          if (fi[i][t][k] >= 0) p.top.back().emplace_back(fi[i][t][k], fa[i][t][k]);
      }
      out.push_back(std::move(p));
    }
  });
  return out;
}

static void print_top_features(const std::vector<PromptFeatures>& all, const TraceInput& prompts) {
  for (size_t b = 0; b < all.size(); ++b) {
    fmt::print("prompt {}{}\n", b, prompts.tokens ? "" : ": " + prompt_json(prompts, static_cast<int64_t>(b)).dump());
    const auto& p = all[b];
    for (size_t t = 0; t < p.tokens.size(); ++t) {
      std::string features;
      for (const auto& [f, a] : p.top[t]) features += fmt::format("  {:>6} {:>7.3f}", "f" + std::to_string(f), a);
      fmt::print("  {:>3} {:<16}{}\n", t, quoted(p.tokens[t]), features.empty() ? "  (no feature fires)" : features);
    }
  }
}

static nlohmann::json top_features_json(const std::vector<PromptFeatures>& all, const TraceInput& prompts) {
  nlohmann::json rows = nlohmann::json::array();
  for (size_t b = 0; b < all.size(); ++b) {
    nlohmann::json tokens = nlohmann::json::array();
    const auto& p = all[b];
    for (size_t t = 0; t < p.tokens.size(); ++t) {
      nlohmann::json features = nlohmann::json::array();
      for (const auto& [f, a] : p.top[t]) features.push_back({{"feature", f}, {"activation", a}});
      tokens.push_back({{"position", t}, {"id", p.ids[t]}, {"token", p.tokens[t]}, {"features", features}});
    }
    rows.push_back({{"prompt", prompt_json(prompts, static_cast<int64_t>(b))}, {"tokens", tokens}});
  }
  return rows;
}

// The heatmap's columns for one prompt: the features in some token's top list, by their largest
// activation, at most `limit`.
static std::vector<int64_t> heatmap_features(const PromptFeatures& p, int64_t limit) {
  std::map<int64_t, double> best;
  for (const auto& token : p.top)
    for (const auto& [f, a] : token) best[f] = std::max(best[f], a);
  std::vector<std::pair<int64_t, double>> order(best.begin(), best.end());
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<int64_t> out;
  for (const auto& [f, a] : order)
    if (static_cast<int64_t>(out.size()) < limit) out.push_back(f);
  return out;
}

static void save_heatmap(const SaeCmd& o, const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae,
                         const std::vector<PromptFeatures>& all) {
  std::vector<torch::Tensor> values;
  std::vector<std::vector<std::string>> tokens;
  std::vector<std::vector<int64_t>> features;
  for (size_t b = 0; b < all.size(); ++b) {
    features.push_back(heatmap_features(all[b], o.html_features));
    tokens.push_back(all[b].tokens);
    const auto prompt = input_slice(prompts, static_cast<int64_t>(b), static_cast<int64_t>(b) + 1);
    // Every token's activation of the chosen features, not only where they made a token's top list.
    auto acts = features.back().empty() ? torch::zeros({1, static_cast<int64_t>(all[b].tokens.size()), 0})
                                        : sae_feature_activations(model, prompt, sae, features.back(), 1);
    values.push_back(acts[0].narrow(0, acts.size(1) - static_cast<int64_t>(all[b].tokens.size()),
                                    static_cast<int64_t>(all[b].tokens.size())));
  }
  TokenFeaturePlotOptions po;
  po.title = "SAE features per token (" + sae.config().source.filename().string() + ")";
  po.width = o.width;
  po.height = o.height;
  if (!prompts.tokens) po.subtitles = prompts.prompts;
  save_html(o.html, plot_token_features(values, tokens, features, po));
  fmt::print(stderr, "wrote {}\n", o.html);
}

static SaeAttribution attribute(const SaeCmd& o, const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae,
                                int64_t target) {
  SaeAttributionOptions ao;
  ao.idx = o.idx;
  ao.batch_size = o.batch_size;
  ao.top = std::max<int64_t>(o.top, 1);
  SaeAttribution r;
  std::vector<torch::Tensor> logits, acts, attribution, at_idx, dla, top;  // per chunk of --batch-size prompts
  const int64_t N = input_size(prompts);
  for_each_chunk(N, o.batch_size, progress_wanted(o.quiet), "prompts", [&](int64_t b, int64_t e) {
    r = sae_feature_attribution(model, b == 0 && e == N ? prompts : input_slice(prompts, b, e), sae, {target}, ao);
    logits.push_back(r.logits), acts.push_back(r.activations), attribution.push_back(r.attribution);
    at_idx.push_back(r.attribution_at_idx), top.push_back(r.top_features);
    if (r.dla.defined()) dla.push_back(r.dla);
  });
  if (logits.size() > 1) {
    r.logits = torch::cat(logits), r.activations = torch::cat(acts), r.attribution = torch::cat(attribution);
    r.attribution_at_idx = torch::cat(at_idx), r.top_features = torch::cat(top);
    if (!dla.empty()) r.dla = torch::cat(dla);
    r.targets.assign(static_cast<size_t>(N), target);
  }
  return r;
}

static nlohmann::json attribution_json(const SaeAttribution& r, int64_t b) {
  nlohmann::json features = nlohmann::json::array();
  for (int64_t k = 0; k < r.top_features.size(1); ++k) {
    const int64_t f = r.top_features[b][k].item<int64_t>();
    nlohmann::json row{{"feature", f},
                       {"activation", r.activations[b][f].item<double>()},
                       {"attribution", r.attribution[b][f].item<double>()},
                       {"attribution_at_idx", r.attribution_at_idx[b][f].item<double>()}};
    row["dla"] = r.dla.defined() ? nlohmann::json(r.dla[b][f].item<double>()) : nlohmann::json(nullptr);
    features.push_back(row);
  }
  return {{"logit", r.logits[b].item<double>()}, {"features", features}};
}

static void print_attribution(const SaeAttribution& r, const StandardizedTransformer& model, int64_t target) {
  for (int64_t b = 0; b < r.logits.size(0); ++b) {
    fmt::print("prompt {}: logit of {} = {:.4f}; the features with the largest attribution (activation × gradient, "
               "summed over tokens)\n",
               b, quoted(token_display(model, target)), r.logits[b].item<double>());
    fmt::print("  {:>8} {:>10} {:>12} {:>12} {:>10}\n", "feature", "activation", "attribution", "at idx", "DLA");
    for (int64_t k = 0; k < r.top_features.size(1); ++k) {
      const int64_t f = r.top_features[b][k].item<int64_t>();
      fmt::print("  {:>8} {:>10.4f} {:>+12.4f} {:>+12.4f} {:>10}\n", "f" + std::to_string(f), r.activations[b][f].item<double>(),
                 r.attribution[b][f].item<double>(), r.attribution_at_idx[b][f].item<double>(),
                 r.dla.defined() ? fmt::format("{:+.4f}", r.dla[b][f].item<double>()) : "-");
    }
  }
  if (!r.dla.defined()) fmt::print("(DLA: defined only for an SAE that writes the residual stream itself)\n");
}

static SaeEvaluation evaluate(const SaeCmd& o, const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae) {
  Progress bar(input_size(prompts), "prompts", progress_wanted(o.quiet));
  SaeEvalOptions eo;
  eo.batch_size = o.batch_size;
  eo.on_batch = [&](int64_t done) { bar.update(done); };
  auto r = sae_evaluate(model, prompts, sae, eo);
  bar.finish();
  return r;
}

static nlohmann::json evaluation_json(const SaeEvaluation& e) {
  return {{"tokens", e.tokens},         {"predictions", e.predictions}, {"fve", e.fve},           {"mse", e.mse},
          {"l0", e.l0},                 {"dead_fraction", e.dead_fraction}, {"ce_clean", e.ce_clean}, {"ce_sae", e.ce_sae},
          {"ce_zero", e.ce_zero},       {"loss_recovered", e.loss_recovered}};
}

static void print_evaluation(const SaeEvaluation& e, const Sae& sae) {
  fmt::print("evaluation over {} tokens ({} next-token predictions; special tokens left out, as SAELens does):\n", e.tokens,
             e.predictions);
  fmt::print("  fraction of variance explained  {:.4f}   (MSE {:.5g})\n", e.fve, e.mse);
  fmt::print("  L0 (features firing per token)  {:.2f}\n", e.l0);
  fmt::print("  dead features                   {:.4f}   ({} of {} never fired)\n", e.dead_fraction,
             static_cast<int64_t>(std::llround(e.dead_fraction * static_cast<double>(sae.d_sae()))), sae.d_sae());
  fmt::print("  cross-entropy clean / with the SAE / zero-ablated   {:.4f} / {:.4f} / {:.4f}\n", e.ce_clean, e.ce_sae, e.ce_zero);
  fmt::print("  loss recovered                  {:.4f}   ((CE zero − CE SAE) / (CE zero − CE clean))\n", e.loss_recovered);
}

static void run_sae(const SaeCmd& o) {
  if (!o.attribute.empty() && o.attribute_id >= 0)
    throw UsageError("--attribute and --attribute-id both give the target token: give one");
  auto model = load_model(o);
  auto sae = load_sae(o);
  const PointId point = sae_point(model, sae);  // fits the model, before any forward
  auto prompts = apply_chat(resolve_prompts(o.prompts), o.chat, model);
  const bool attributing = !o.attribute.empty() || o.attribute_id >= 0;
  const int64_t target = attributing ? answer_token(model, o.attribute, o.attribute_id, "--attribute") : -1;

  std::vector<PromptFeatures> features;
  if (o.top > 0 || !o.html.empty()) features = top_features(model, prompts, sae, o);
  if (!o.html.empty()) save_heatmap(o, model, prompts, sae, features);
  std::optional<SaeAttribution> attribution;
  if (attributing) attribution = attribute(o, model, prompts, sae, target);
  std::optional<SaeEvaluation> evaluation;
  if (o.eval) evaluation = evaluate(o, model, prompts, sae);

  if (o.json) {
    nlohmann::json j{{"model", model.path().string()},
                     {"sae", {{"path", o.sae_path}, {"point", point.name()}, {"d_sae", sae.d_sae()},
                              {"architecture", sae.config().architecture}}}};
    if (o.top > 0) j["prompts"] = top_features_json(features, prompts);
    if (attribution) {
      nlohmann::json rows = nlohmann::json::array();
      for (int64_t b = 0; b < attribution->logits.size(0); ++b) rows.push_back(attribution_json(*attribution, b));
      j["attribution"] = {{"target_id", target}, {"target", token_display(model, target)}, {"idx", o.idx}, {"prompts", rows}};
    }
    if (evaluation) j["eval"] = evaluation_json(*evaluation);
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("SAE {} at {}: {} features ({})\n", o.sae_path, point.name(), sae.d_sae(), sae.config().architecture);
  if (o.top > 0) print_top_features(features, prompts);
  if (attribution) print_attribution(*attribution, model, target);
  if (evaluation) print_evaluation(*evaluation, sae);
}

static CommandRegistration sae_command(64, [](CLI::App& app) {
  auto o = std::make_shared<SaeCmd>();
  auto* cmd = app.add_subcommand("sae", "a sparse autoencoder's features on prompts: the top features of every token, the "
                                        "features behind a token's logit (--attribute), its quality (--eval)");
  add_model_options(*cmd, *o);
  cmd->add_option("--sae", o->sae_path, "the SAE: a SAELens folder, a Gemma Scope folder or params file, or a .safetensors file")
      ->required();
  cmd->add_option("--point", o->point, "the point the SAE reads and writes, e.g. layers.2.output (default: from its config)");
  add_prompt_options(*cmd, o->prompts);
  add_chat_options(*cmd, o->chat);
  non_negative_integer(
      cmd->add_option("--top", o->top, "features shown per token and per attribution (default 5; 0: no per-token table)"));
  cmd->add_option("--html", o->html, "write a tokens × features heatmap of the top features to this HTML file");
  positive_integer(cmd->add_option("--html-features", o->html_features, "the most features (columns) per heatmap (default 40)"));
  add_plot_size_options(*cmd, o->width, o->height);
  cmd->add_option("--attribute", o->attribute,
                  "list the features behind this token's logit (first token of the text, e.g. \" Paris\"): "
                  "activation × gradient, and direct logit attribution");
  non_negative_integer(cmd->add_option("--attribute-id", o->attribute_id, "the token to attribute, as a token id"));
  any_integer(cmd->add_option("--idx", o->idx, "the token whose next-token logit --attribute explains (default -1, the last)"));
  cmd->add_flag("--eval", o->eval,
                "evaluate the SAE on the prompts: fraction of variance explained, L0, dead features, loss recovered");
  positive_integer(cmd->add_option("--batch-size", o->batch_size, "prompts per forward pass (default 32)"));
  add_quiet_option(*cmd, o->quiet);
  cmd->add_flag("--json", o->json, "print JSON");
  cmd->footer("Examples:\n  nnterp sae --sae models/default/sae/layers.2.output --prompt \"The capital of France is\" --html features.html\n"
              "  nnterp sae --sae models/default/sae/layers.2.output --prompt \"The capital of France is\" --attribute \" Paris\"\n"
              "  nnterp sae --sae models/default/sae/layers.2.output --prompts prompts.txt --eval --top 0");
  cmd->callback([o] { run_sae(*o); });
});

}  // namespace nnterp::cli
